"""From official splits to train/val/test: reading HF splits, label checks, caps, carving val.

Every loader returns :class:`OfficialSplits` (the data set's own train and test splits);
:func:`make_splits` then caps them to the profile's sizes and carves the validation split off
train with a fixed seed, so that every method in a comparison sees the same three splits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from isp_lib.data.base import Split
from isp_lib.errors import UserError
from isp_lib.profiles import Profile

if TYPE_CHECKING:
    import datasets


@dataclass
class OfficialSplits:
    """A data set as published, before caps and before the validation split is carved.

    Attributes:
        train: the official train split.
        test: the split that results are reported on.
        class_names: one name per class; empty for regression.
    """

    train: Split
    test: Split
    class_names: list[str]


class HFSplit(NamedTuple):
    """One split of a Hugging Face data set and where it came from (for error messages)."""

    table: datasets.Dataset
    origin: str


class LazyColumn(Sequence[Any]):
    """A column of an HF data set whose values (e.g. images) are decoded one at a time.

    An integer index decodes one value; an index array or slice returns another lazy view,
    so subsets of a large image set cost nothing until their images are read.
    """

    def __init__(self, table: datasets.Dataset, column: str, rows: np.ndarray | None = None):
        self._table = table.select_columns([column])
        self._column = column
        self._rows = np.arange(len(table)) if rows is None else np.asarray(rows, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, (int, np.integer)):
            return self._table[int(self._rows[key])][self._column]
        return LazyColumn(self._table, self._column, self._rows[key])


def load_hf_splits(
    what: str, hub_id: str, config: str | None, eval_split: str, source: str | None
) -> dict[str, HFSplit]:
    """Load the official train and evaluation splits from the hub or from local parquet files.

    Args:
        what: the data set as error messages name it (e.g. ``"GLUE 'sst2'"``).
        hub_id: Hugging Face hub id used when ``source`` is None.
        config: hub configuration name, if any.
        eval_split: the split reported as test (file stem when reading ``source``).
        source: a folder holding ``train.parquet`` and ``<eval_split>.parquet``, or None.

    Returns:
        ``{"train": ..., "test": ...}``.
    """
    import datasets
    import pyarrow.parquet as pq

    names = {"train": "train", "test": eval_split}
    files = [f"{split}.parquet" for split in names.values()]
    if source is None:
        try:
            return {
                ours: HFSplit(datasets.load_dataset(hub_id, config, split=theirs),
                              f"{hub_id} split '{theirs}'")
                for ours, theirs in names.items()
            }
        except OSError as err:
            raise UserError(
                f"cannot load {what} from the hub (offline?): pass a local folder with "
                f"{'/'.join(files)} as --data-source, or run with network access"
            ) from err
    loaded = {}
    for ours, theirs in names.items():
        path = Path(source) / f"{theirs}.parquet"
        if not path.is_file():
            raise UserError(
                f"{path} not found: pass as --data-source a folder holding {' and '.join(files)} "
                f"for {what}"
            )
        try:
            pq.read_schema(path)  # not a parquet file: refused here, before datasets logs it
            table = datasets.load_dataset("parquet", data_files=str(path), split="train")
        except (OSError, ValueError, datasets.exceptions.DatasetsError):
            # pyarrow's ArrowInvalid (not a parquet file) is a ValueError
            raise UserError(
                f"cannot read {path}: write it with datasets' to_parquet in the hub's schema"
            ) from None
        loaded[ours] = HFSplit(table, str(path))
    return loaded


def read_column(split: HFSplit, column: str) -> list[Any]:
    """Return all values of ``column`` (decoded) as a list.

    Args:
        split: the HF split.
        column: column name.

    Returns:
        The column's values, one per row.
    """
    require_columns(split, [column])
    return split.table[column][:]


def require_columns(split: HFSplit, columns: Sequence[str]) -> None:
    """Raise :class:`UserError` unless ``split`` has every column in ``columns``."""
    missing = [c for c in columns if c not in split.table.column_names]
    if missing:
        raise UserError(
            f"{split.origin} lacks column(s) {', '.join(missing)}: "
            f"use the hub's schema (columns {', '.join(columns)})"
        )


def label_names(split: HFSplit, column: str) -> list[str]:
    """Class names of a ``ClassLabel`` column.

    Args:
        split: the HF split.
        column: the label column.

    Returns:
        The names in class-id order.
    """
    import datasets

    require_columns(split, [column])
    feature = split.table.features[column]
    if not isinstance(feature, datasets.ClassLabel):
        raise UserError(
            f"{split.origin}: column '{column}' is {feature}, not a ClassLabel: "
            "write it with features=datasets.Features({..., column: ClassLabel(names=[...])})"
        )
    return list(feature.names)


def class_labels(values: Sequence[Any], num_classes: int, origin: str) -> np.ndarray:
    """Check and convert class ids.

    Args:
        values: one class id per row (None marks a missing label).
        num_classes: number of classes; valid ids are ``0 .. num_classes - 1``.
        origin: file or split the labels came from, named in the error.

    Returns:
        int64 labels.
    """
    arr = _as_float(values)
    bad = ~np.isfinite(arr) | (arr != np.round(arr)) | (arr < 0) | (arr >= num_classes)
    _raise_on_bad(bad, values, origin, f"a class id in [0, {num_classes})")
    return arr.astype(np.int64)


def float_labels(values: Sequence[Any], origin: str) -> np.ndarray:
    """Check and convert regression targets.

    Args:
        values: one target per row (None marks a missing label).
        origin: file or split the labels came from, named in the error.

    Returns:
        float32 targets.
    """
    arr = _as_float(values)
    _raise_on_bad(~np.isfinite(arr), values, origin, "a finite number")
    return arr.astype(np.float32)


def _as_float(values: Sequence[Any]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _raise_on_bad(bad: np.ndarray, values: Sequence[Any], origin: str, expected: str) -> None:
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise UserError(
            f"{origin}: row {row} has label {values[row]!r}, not {expected}: "
            "fix or drop that row"
        )


def make_splits(
    official: OfficialSplits, profile: Profile, val_seed: int, stratify: bool
) -> tuple[Split, Split, Split]:
    """Cap the official splits to the profile's sizes and carve validation off train.

    Args:
        official: the data set's own splits.
        profile: supplies ``max_train``, ``max_test``, ``val_fraction`` and ``max_val``.
        val_seed: seed of every random choice here (independent of the run seed).
        stratify: keep class proportions when capping (classification only).

    Returns:
        ``(train, val, test)``; train and val are disjoint and together form the capped train.
    """
    capped = take(official.train, sample(official.train.labels, profile.max_train, val_seed,
                                         stratify))
    train_idx, val_idx = carve_val(len(capped), profile.val_fraction, profile.max_val, val_seed)
    test = take(official.test, sample(official.test.labels, profile.max_test, val_seed, stratify))
    return take(capped, train_idx), take(capped, val_idx), test


def sample(labels: np.ndarray, size: int | None, seed: int, stratify: bool) -> np.ndarray:
    """Choose ``size`` rows deterministically (all rows when ``size`` is None or too large).

    Args:
        labels: the split's labels.
        size: how many rows to keep.
        seed: seed of ``numpy.random.default_rng``.
        stratify: keep each class's share (up to rounding) instead of a plain random subset.

    Returns:
        Sorted row indices.
    """
    n = len(labels)
    if size is None or size >= n:
        return np.arange(n)
    order = np.random.default_rng(seed).permutation(n)
    if stratify:
        order = order[np.argsort(_spread(labels[order]), kind="stable")]
    return np.sort(order[:size])


def _spread(labels: np.ndarray) -> np.ndarray:
    """Key each row by its rank within its class over the class size, so classes interleave."""
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    by_class = np.argsort(inverse, kind="stable")
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    rank = np.empty(len(labels))
    rank[by_class] = np.arange(len(labels)) - starts
    return (rank + 0.5) / counts[inverse]


def carve_val(
    n: int, fraction: float, max_val: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``n`` train rows into train and validation rows.

    Args:
        n: number of (capped) train rows.
        fraction: share carved off as validation; at least one row.
        max_val: cap on the validation size (None: no cap).
        seed: seed of ``numpy.random.default_rng``.

    Returns:
        ``(train_rows, val_rows)``, each sorted.
    """
    n_val = max(1, round(fraction * n))
    if max_val is not None:
        n_val = min(n_val, max_val)
    if n_val >= n:
        raise UserError(
            f"{n} training example(s) are too few to carve a validation split: "
            "raise max_train or lower val_fraction"
        )
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def take(split: Split, rows: np.ndarray) -> Split:
    """Rows of ``split``, keeping lazily decoded inputs lazy."""
    if isinstance(split.inputs, LazyColumn):
        return Split(inputs=split.inputs[rows], labels=split.labels[rows])
    return split.subset(rows)
