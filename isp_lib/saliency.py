"""Pruning-at-initialisation scores: SNIP and GraSP, computed at the pretrained weights.

Both are computed in eval mode (no dropout, so the two passes of GraSP see the same function)
and in float32, over the prunable tensors only. Higher score = more important to keep.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.data import Dataset

from isp_lib.train import Collate, move, task_loss


def labels_of(dataset: Dataset) -> np.ndarray:
    """All labels of ``dataset`` (its ``labels`` tensor if it has one, else item by item)."""
    labels = getattr(dataset, "labels", None)
    if labels is None:
        labels = [dataset[i]["labels"] for i in range(len(dataset))]
        return torch.stack(labels).numpy()
    return torch.as_tensor(labels).numpy()


def balanced_indices(dataset: Dataset, per_class: int, seed: int) -> np.ndarray:
    """Up to ``per_class`` random examples of every class (GraSP's class-balanced batch).

    Regression data (float labels) has no classes: ``per_class`` times 10 random examples.

    Args:
        dataset: training examples with ``"labels"``.
        per_class: examples per class.
        seed: seed of the draw.

    Returns:
        Sorted example indices.
    """
    labels = labels_of(dataset)
    rng = np.random.default_rng(seed)
    if np.issubdtype(labels.dtype, np.floating):
        return np.sort(rng.choice(len(labels), size=min(len(labels), 10 * per_class),
                                  replace=False))
    out = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        out.append(rng.choice(idx, size=min(per_class, len(idx)), replace=False))
    return np.sort(np.concatenate(out))


def score_batches(dataset: Dataset, collate: Collate, indices: np.ndarray, batch_size: int,
                  device: torch.device) -> list[dict[str, torch.Tensor]]:
    """Collated batches of ``indices`` (in order) on ``device``, for the scores below."""
    return [move(collate([dataset[int(i)] for i in indices[s:s + batch_size]]), device)
            for s in range(0, len(indices), batch_size)]


def _loss(model: nn.Module, batch: Mapping[str, torch.Tensor], temperature: float
          ) -> torch.Tensor:
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    return task_loss(model(**inputs) / temperature, batch["labels"])


def snip_scores(model: nn.Module, params: Mapping[str, torch.Tensor],
                batches: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """SNIP connection sensitivity |g * w| (Lee et al. 2019), g averaged over ``batches``.

    Args:
        model: the network at the weights to score.
        params: name -> prunable weight tensor of ``model``.
        batches: collated batches (with ``"labels"``) on the model's device.

    Returns:
        name -> score tensor shaped like the weight.
    """
    names = list(params)
    grads = {n: torch.zeros_like(params[n]) for n in names}
    was_training = model.training
    model.eval()
    for batch in batches:
        g = torch.autograd.grad(_loss(model, batch, 1.0), [params[n] for n in names])
        for n, gi in zip(names, g, strict=True):
            grads[n] += gi / len(batches)
    model.train(was_training)
    return {n: (grads[n] * params[n].detach()).abs() for n in names}


def grasp_scores(model: nn.Module, params: Mapping[str, torch.Tensor],
                 batches: Sequence[Mapping[str, torch.Tensor]], temperature: float = 200.0
                 ) -> dict[str, torch.Tensor]:
    """GraSP scores S = -w * (H g) (Wang et al. 2020), by one Hessian-vector product.

    As in the reference code, logits are divided by ``temperature``, g is the gradient summed
    over ``batches`` (first pass, no graph), and Hg is the gradient of sum(g * grad) (second
    pass). GraSP removes the weights with the *highest* S (their removal least reduces the
    gradient flow), so the importance to keep is -S: this function returns S; prune with
    ``-S`` as the keep score. No weight is re-initialised. Attention runs on PyTorch's math
    kernel here, the one whose backward is itself differentiable.

    Args:
        model: the network at the weights to score.
        params: name -> prunable weight tensor of ``model``.
        batches: collated batches (with ``"labels"``) on the model's device.
        temperature: logit temperature (200 in the reference code).

    Returns:
        name -> S tensor shaped like the weight.
    """
    names = list(params)
    weights = [params[n] for n in names]
    was_training = model.training
    model.eval()
    g = [torch.zeros_like(w) for w in weights]
    hg = [torch.zeros_like(w) for w in weights]
    with sdpa_kernel(SDPBackend.MATH):
        for batch in batches:
            for acc, gi in zip(g, torch.autograd.grad(_loss(model, batch, temperature), weights),
                               strict=True):
                acc += gi
        for batch in batches:
            grad = torch.autograd.grad(_loss(model, batch, temperature), weights,
                                       create_graph=True)
            z = sum((gi * fi).sum() for gi, fi in zip(g, grad, strict=True))
            for acc, h in zip(hg, torch.autograd.grad(z, weights), strict=True):
                acc += h
    model.train(was_training)
    return {n: -w.detach() * h for n, w, h in zip(names, weights, hg, strict=True)}

