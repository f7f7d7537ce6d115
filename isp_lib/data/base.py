"""Raw data splits shared by every loader: inputs before any tokenisation or transform."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np


@dataclass
class Split:
    """One split of a data set, before the model's tokenizer or image transform.

    Attributes:
        inputs: a sequence of examples: ``str`` (single text), ``tuple[str, str]`` (text pair),
            or an image (``PIL.Image.Image`` or a ``uint8`` array, HxW or HxWxC).
        labels: int64 class ids, or float32 targets for regression tasks.
    """

    inputs: Sequence[Any]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: Sequence[int] | np.ndarray) -> Split:
        """Return the examples at ``idx`` (in that order) as a new split."""
        idx = np.asarray(idx, dtype=np.int64)
        if isinstance(self.inputs, list | tuple):
            inputs: Sequence[Any] = [self.inputs[int(i)] for i in idx]
        else:  # numpy arrays and lazy columns index by array and stay lazy
            inputs = self.inputs[idx]
        return Split(inputs=inputs, labels=self.labels[idx])


@dataclass
class RawData:
    """A data set as the kit uses it: train, a validation split carved from train, and test.

    Attributes:
        name: registry name (e.g. ``"drugreview"``).
        kind: ``"text"`` or ``"image"``.
        train, val, test: the three splits. ``val`` is carved from the official train split
            with a fixed seed; ``test`` is the split that papers report (for GLUE, the official
            validation split, since GLUE's test labels are hidden).
        class_names: one name per class (used by CLIP's zero-shot head); empty for regression.
        metric: ``"accuracy"``, ``"matthews"`` or ``"pearson"``.
        num_labels: number of classes, or 1 for regression.
    """

    name: str
    kind: Literal["text", "image"]
    train: Split
    val: Split
    test: Split
    class_names: list[str]
    metric: str
    num_labels: int
