"""Per-example test predictions in a result record: compact, and tied to their test set.

A record carries ``test_predictions`` (the predicted class of each test example, in test-split
order; float16 values for a regression task), ``test_labels_sha256`` (so two records are known
to share a test set) and, for classification, ``test_confusion`` (rows: true class, columns:
predicted class), which shows a collapse to one class in the record itself. Paired comparisons
(:mod:`isp_lib.report`) read the predictions back with :func:`decode_predictions`.
"""

from __future__ import annotations

import base64
import hashlib
import zlib

import numpy as np


def encode_predictions(values: np.ndarray, regression: bool = False) -> dict:
    """Pack predictions as zlib-compressed, base64-encoded little-endian codes.

    Args:
        values: one prediction per example (class ids, or floats for regression).
        regression: store float16 values instead of class codes.

    Returns:
        ``{"dtype", "n", "data"}``, JSON-ready; 10,000 class ids take a few KB.

    >>> enc = encode_predictions(np.array([0, 2, 1, 1]))
    >>> decode_predictions(enc).tolist()
    [0, 2, 1, 1]
    """
    values = np.asarray(values).reshape(-1)
    if regression:
        codes = values.astype("<f2")
    elif values.size and (values.min() < 0 or values.max() >= 2**16):
        raise ValueError("class ids must lie in [0, 65536)")
    else:
        codes = values.astype("<u1" if not values.size or values.max() < 256 else "<u2")
    data = base64.b64encode(zlib.compress(codes.tobytes(), 9)).decode("ascii")
    return {"dtype": codes.dtype.str, "n": int(codes.size), "data": data}


def decode_predictions(encoded: dict) -> np.ndarray:
    """Inverse of :func:`encode_predictions` (class ids as int64, regression values float32)."""
    raw = zlib.decompress(base64.b64decode(encoded["data"]))
    codes = np.frombuffer(raw, dtype=np.dtype(encoded["dtype"]))
    if codes.size != encoded["n"]:
        raise ValueError(f"predictions hold {codes.size} values, expected {encoded['n']}")
    return codes.astype(np.float32 if codes.dtype.kind == "f" else np.int64)


def labels_sha256(labels: np.ndarray) -> str:
    """SHA-256 (first 16 hex digits) of the test labels, in order: names a test set.

    >>> labels_sha256(np.array([1, 0])) == labels_sha256(np.array([1, 0], dtype=np.int32))
    True
    """
    labels = np.asarray(labels).reshape(-1)
    canon = labels.astype("<f4") if labels.dtype.kind == "f" else labels.astype("<i8")
    return hashlib.sha256(canon.tobytes()).hexdigest()[:16]


def confusion(pred: np.ndarray, gold: np.ndarray, num_classes: int) -> list[list[int]]:
    """Counts: row = true class, column = predicted class.

    >>> confusion(np.array([0, 0, 1]), np.array([0, 1, 1]), 2)
    [[1, 0], [1, 1]]
    """
    out = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(out, (np.asarray(gold, dtype=np.int64), np.asarray(pred, dtype=np.int64)), 1)
    return out.tolist()


def predicted_classes(confusion_counts: list[list[int]]) -> int:
    """How many classes a confusion matrix shows as predicted at least once (1 = collapse)."""
    return int((np.asarray(confusion_counts).sum(0) > 0).sum())
