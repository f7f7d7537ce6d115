"""What every model builder returns: the module plus how to feed it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from isp_lib.data.base import Split

Batch = dict[str, torch.Tensor]


@dataclass
class ModelBundle:
    """A classifier ready for the trainer.

    Attributes:
        model: ``model(**inputs) -> logits`` of shape (batch, num_labels), where ``inputs`` is a
            collated batch without its ``"labels"`` entry.
        family: ``"bert"`` or ``"clip"``; selects the prunable scope (``isp_lib.scope``).
        make_dataset: turns a raw :class:`~isp_lib.data.base.Split` into a torch ``Dataset``
            whose items are dicts of tensors including ``"labels"``.
        collate: stacks/pads a list of such items into a :data:`Batch`.
        tokenizer: the text tokenizer (BERT family; None for image models), for export.
        make_device_dataset: the fast path's ``make_dataset`` (:mod:`isp_lib.accel`), whose
            items the model finishes on its device (CLIP: images decoded once into uint8,
            resized and normalised by the model); None: ``make_dataset`` serves both paths.
    """

    model: nn.Module
    family: str
    make_dataset: Callable[[Split], Dataset]
    collate: Callable[[list[dict[str, torch.Tensor]]], Batch]
    tokenizer: Any = None
    make_device_dataset: Callable[[Split], Dataset] | None = None
