"""Early-Bird tickets (You et al., ICLR 2020; Chen et al. 2021, EarlyBERT, for BERT)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from isp_lib.context import RunContext
from isp_lib.masks import Mask
from isp_lib.methods.base import Method
from isp_lib.patterns import magnitude_to, pattern_of, pattern_option
from isp_lib.ranges import added_later, ranged


def hamming_distance(a: Mask, b: Mask) -> float:
    """Normalised Hamming distance: the share of entries where two masks differ."""
    a._check_same_keys(b)
    diff = sum(int((a[n] != b[n]).sum()) for n in a)
    return diff / a.num_total()


def first_draw(distances: Sequence[float], window: int, threshold: float) -> int | None:
    """Index of the first distance at which the last ``window`` distances are all below
    ``threshold`` (Early-Bird's stopping rule), or None if that never happens."""
    for i in range(window - 1, len(distances)):
        if max(distances[i - window + 1:i + 1]) < threshold:
            return i
    return None


@dataclass(frozen=True)
class EarlyBirdOptions:
    """Attributes:
    interval_frac: a mask is drawn every ``interval_frac`` epochs of dense training.
    window: how many consecutive mask distances must stay below the threshold (reference: 5).
    threshold: normalised Hamming distance threshold (reference: 0.1).
    rewind: fine-tune the ticket from the pretrained weights (True) or from the weights
        where it was drawn (False).
    pattern: ``none`` or ``N:M``: every drawn mask keeps the N largest weights of each group
        (:mod:`isp_lib.patterns`); left out of the config hash while ``none``.
    """

    interval_frac: float = ranged("> 0", 0.2)
    window: int = ranged(">= 1", 5)
    threshold: float = ranged("(0, 1]", 0.1)
    rewind: bool = True
    pattern: str = added_later(pattern_option())


@dataclass
class EarlyBirdState:
    """Attributes:
    distances: Hamming distance of each drawn mask to the one drawn before it.
    draw_step: the dense training step at which the ticket was drawn (None while searching).
    drawn_early: the stopping rule held before the budget T ran out (None while searching).
    """

    distances: list[float] = field(default_factory=list)
    draw_step: int | None = None
    drawn_early: bool | None = None


class EarlyBird(Method):
    """Early-Bird: train densely, draw a magnitude mask at the target every interval, and stop
    once the normalised Hamming distance between consecutive masks stays below ``threshold``
    for ``window`` draws; then fine-tune the ticket for T with validation selection.

    The original prunes channels (and EarlyBERT heads and neurons) by batch-norm or
    self-attention coefficients; here masks are unstructured global magnitude masks over the
    same prunable scope as every other method. If the criterion never holds within the budget
    T, the ticket is drawn at T. Cost: search steps + T.
    """

    name = "earlybird"
    summary = "Early-Bird tickets (You et al. 2020): draw once consecutive masks stop changing"
    Options = EarlyBirdOptions

    def search(self, ctx: RunContext, opts: EarlyBirdOptions, state: EarlyBirdState) -> None:
        """Dense training with periodic mask draws until the stopping rule holds; the last mask
        drawn is left in the ``"prev_mask"`` stash entry."""
        interval = max(1, math.ceil(opts.interval_frac * ctx.steps_per_epoch))
        trainer = ctx.make_trainer("search")
        dists = state.distances
        prev = ctx.stash.get("prev_mask")
        dense = Mask.ones_like(ctx.params)
        pattern = pattern_of(opts, ctx.params)
        while trainer.step_count < ctx.budget:
            trainer.train(min(interval, ctx.budget - trainer.step_count), "train",
                          desc="earlybird search", end=ctx.budget)
            mask = magnitude_to(ctx.params, dense, ctx.sparsity, pattern)
            if prev is not None:
                dists.append(hamming_distance(Mask(prev), mask))
            prev = {n: m.clone() for n, m in mask.items()}
            ctx.stash["prev_mask"] = prev
            if first_draw(dists, opts.window, opts.threshold) is not None:
                break
            ctx.save(trainer)
        state.draw_step = trainer.step_count
        state.drawn_early = first_draw(dists, opts.window, opts.threshold) is not None

    def run(self, ctx: RunContext, opts: EarlyBirdOptions) -> None:
        state = ctx.resume(EarlyBirdState)
        if state.draw_step is None:
            if opts.rewind and "init" not in ctx.stash:
                ctx.snapshot("init")
            self.search(ctx, opts, state)
            ticket = Mask({n: m for n, m in ctx.stash.pop("prev_mask").items()})
            if opts.rewind:
                ctx.restore("init")
            ctx.set_mask(ticket)
            ctx.save()
        ctx.finetune(ctx.make_trainer("final"), ctx.budget)

