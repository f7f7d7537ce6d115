"""The denoised prune of Instant Soup Pruning (Jaiswal et al. 2023, Alg. 2)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from isp_lib.context import RunContext
from isp_lib.masks import Mask, global_magnitude_prune, magnitude_prune_to
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


def denoised_prune(
    ctx: RunContext,
    scratch: nn.Module | None,
    protocols: list[Protocol],
    rate: float,
    round_idx: int,
    force_adjust: bool,
    adjust_gap: float,
) -> tuple[Mask, DenoiseReport]:
    """Alg. 2: union of cheap magnitude masks from look-ahead copies, then one-shot adjustment.

    The main model's own magnitude mask (a share ``rate`` of the remaining weights removed)
    starts the union. Each look-ahead copies the main model's current weights into ``scratch``
    (allocated once by the caller: nothing is reloaded from disk), trains
    ``ctx.hp.lookahead_steps`` steps with a fresh AdamW under its protocol on its own random
    data subset with the current mask enforced, and is pruned the same way; a weight is removed
    only if every mask removes it. If the union is within ``adjust_gap`` of the target (or
    beyond it, or ``force_adjust``), the main model's own weights are pruned straight to the
    exact target instead. Look-ahead weights are discarded; the main model and its optimizer
    are untouched.

    Args:
        ctx: the run context (main model, data, current mask, ledger).
        scratch: a same-architecture module used for every look-ahead (None if no protocols).
        protocols: one :class:`Protocol` per look-ahead (the paper's N = len(protocols)).
        rate: share of the remaining weights each mask removes (the paper's s).
        round_idx: ISP round, for the look-aheads' random streams.
        force_adjust: prune to the exact target regardless of the gap.
        adjust_gap: the one-shot adjustment threshold, in sparsity (0.05 = 5 points).

    Returns:
        The new mask (a subset of ``ctx.mask``) and a :class:`DenoiseReport`.
    """
    union = global_magnitude_prune(ctx.params, ctx.mask, rate)
    own = union.sparsity()
    n_train = len(ctx.train_set)
    named = dict(scratch.named_parameters()) if scratch is not None else {}
    scratch_scope = {k: named[k] for k in ctx.mask} if named else {}
    look = []
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
        mask_n = global_magnitude_prune(scratch_scope, ctx.mask, rate)
        look.append(mask_n.sparsity())
        union = union.union(mask_n)
    union_sparsity = union.sparsity()
    adjusted = force_adjust or union_sparsity >= ctx.sparsity - adjust_gap
    new = magnitude_prune_to(ctx.params, ctx.mask, ctx.sparsity) if adjusted else union
    return new, DenoiseReport(own, look, union_sparsity, adjusted, new.sparsity())
