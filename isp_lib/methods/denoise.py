"""The denoised prune of Instant Soup Pruning (Jaiswal et al. 2023, Alg. 2)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from isp_lib.context import RunContext
from isp_lib.masks import Mask, global_magnitude_prune, magnitude_prune_to, magnitudes
from isp_lib.patterns import NMPattern, project
from isp_lib.seeds import stream_rng


@dataclass(frozen=True)
class Protocol:
    """One look-ahead's training protocol: learning rate, weight decay and data subset size."""

    lr: float
    weight_decay: float
    data_frac: float


@dataclass
class DenoiseReport:
    """What one denoised prune did (kept in the run's trace).

    Attributes:
        own_sparsity: sparsity of the main model's own magnitude mask.
        lookahead_sparsity: sparsity of each look-ahead's magnitude mask.
        union_sparsity: sparsity of the union of all of them.
        adjusted: True if the one-shot adjustment pruned straight to the target.
        sparsity: sparsity of the returned mask.
    """

    own_sparsity: float
    lookahead_sparsity: list[float]
    union_sparsity: float
    adjusted: bool
    sparsity: float


def copy_weights_(dst: nn.Module, src: nn.Module) -> None:
    """Copy parameters and buffers of ``src`` into the same-shaped ``dst`` in place."""
    with torch.no_grad():
        for d, s in zip(dst.parameters(), src.parameters(), strict=True):
            d.copy_(s)
        for d, s in zip(dst.buffers(), src.buffers(), strict=True):
            d.copy_(s)


def merge_denoised(
    main_weights: Mapping[str, torch.Tensor],
    lookahead_weights: Iterable[Mapping[str, torch.Tensor]],
    mask: Mask,
    rate: float,
    target: float,
    adjust_gap: float,
    force_adjust: bool,
    pattern: NMPattern | None = None,
) -> tuple[Mask, DenoiseReport]:
    """The mask logic of Alg. 2, a function of tensors only.

    The main weights' global magnitude mask (a share ``rate`` of the weights kept by ``mask``
    removed) starts the union; each look-ahead's weights give one more such mask, and a weight
    is removed only if every mask removes it. If the union's sparsity is within ``adjust_gap``
    of ``target`` (or beyond it, or ``force_adjust``), the main weights are pruned straight to
    the exact ``target`` instead.

    With an N:M ``pattern`` the union is projected back onto it (:func:`~isp_lib.patterns.project`):
    within each group the union's kept weights rank first, then the other weights ``mask``
    keeps, each by the main weights' magnitude; a group keeps the union's weights, topped up to
    N where the union keeps fewer, and the adjustment keeps exactly the first N.

    ``lookahead_weights`` is consumed one item at a time and nothing of an item is kept but its
    mask, so a lazy iterable (as :func:`denoised_prune` passes) holds one look-ahead's weights
    in memory at a time; the inputs are never modified.

    Args:
        main_weights: the main model's prunable weights, by name (the keys of ``mask``).
        lookahead_weights: each look-ahead's weights over the same names.
        mask: the current mask.
        rate: share of the kept weights each magnitude mask removes (the paper's s).
        target: the target sparsity.
        adjust_gap: the one-shot adjustment threshold, in sparsity (0.05 = 5 points).
        force_adjust: prune to the exact target regardless of the gap.
        pattern: an N:M pattern (``mask`` keeps at least N per group), or None.

    Returns:
        The new mask (a subset of ``mask``) and a :class:`DenoiseReport`; its
        ``union_sparsity`` is the union's before any projection.
    """
    union = global_magnitude_prune(main_weights, mask, rate)
    own = union.sparsity()
    look = []
    for weights in lookahead_weights:
        mask_n = global_magnitude_prune(weights, mask, rate)
        look.append(mask_n.sparsity())
        union = union.union(mask_n)
    union_sparsity = union.sparsity()
    if pattern is not None:
        union = project(magnitudes(main_weights, mask), mask, union, pattern, exact=False)
    adjusted = force_adjust or union.sparsity() >= target - adjust_gap
    if not adjusted:
        new = union
    elif pattern is None:
        new = magnitude_prune_to(main_weights, mask, target)
    else:
        new = project(magnitudes(main_weights, mask), mask, union, pattern, exact=True)
    return new, DenoiseReport(own, look, union_sparsity, adjusted, new.sparsity())


def lookaheads(
    ctx: RunContext, scratch: nn.Module, protocols: list[Protocol], round_idx: int
) -> Iterator[dict[str, torch.Tensor]]:
    """Train the look-aheads one after the other in ``scratch``, yielding each one's weights.

    Each look-ahead copies the main model's current weights into ``scratch`` (nothing is
    reloaded from disk) and trains ``ctx.hp.lookahead_steps`` steps with a fresh AdamW under its
    protocol, on its own random data subset, with the current mask enforced. The yielded dict
    holds ``scratch``'s live parameters over the prunable scope: read it before asking for the
    next look-ahead.

    Args:
        ctx: the run context (main model, data, current mask, ledger).
        scratch: a same-architecture module, overwritten by every look-ahead.
        protocols: one :class:`Protocol` per look-ahead.
        round_idx: ISP round, for the look-aheads' random streams.

    Yields:
        The trained look-ahead's prunable weights, by name.
    """
    n_train = len(ctx.train_set)
    named = dict(scratch.named_parameters())
    scope = {k: named[k] for k in ctx.mask}
    for n, proto in enumerate(protocols):
        copy_weights_(scratch, ctx.model)
        key = f"lookahead-{round_idx}-{n}"
        rng = stream_rng(ctx.seed, f"subset:{key}")
        size = min(n_train, max(ctx.hp.batch_size, round(proto.data_frac * n_train)))
        subset = np.sort(rng.choice(n_train, size=size, replace=False))
        trainer = ctx.make_trainer(
            key, model=scratch, lr=proto.lr, weight_decay=proto.weight_decay, indices=subset,
            constant_lr=True,
        )
        trainer.train(ctx.hp.lookahead_steps, "lookahead", desc=f"look-ahead {n + 1}")
        yield scope


def denoised_prune(
    ctx: RunContext,
    scratch: nn.Module | None,
    protocols: list[Protocol],
    rate: float,
    round_idx: int,
    force_adjust: bool,
    adjust_gap: float,
    pattern: NMPattern | None = None,
) -> tuple[Mask, DenoiseReport]:
    """Alg. 2 on the run: train the look-aheads (:func:`lookaheads`) and merge their masks with
    the main model's (:func:`merge_denoised`) towards ``ctx.sparsity``.

    Look-ahead weights are discarded; the main model and its optimizer are untouched.

    Args:
        ctx: the run context (main model, data, current mask, ledger).
        scratch: a same-architecture module used for every look-ahead (None if no protocols).
        protocols: one :class:`Protocol` per look-ahead (the paper's N = len(protocols)).
        rate: share of the remaining weights each mask removes (the paper's s).
        round_idx: ISP round, for the look-aheads' random streams.
        force_adjust: prune to the exact target regardless of the gap.
        adjust_gap: the one-shot adjustment threshold, in sparsity (0.05 = 5 points).
        pattern: an N:M pattern, or None (see :func:`merge_denoised`).

    Returns:
        The new mask (a subset of ``ctx.mask``) and a :class:`DenoiseReport`.
    """
    looks = lookaheads(ctx, scratch, protocols, round_idx) if protocols else ()
    return merge_denoised(ctx.params, looks, ctx.mask, rate, ctx.sparsity, adjust_gap,
                          force_adjust, pattern)
