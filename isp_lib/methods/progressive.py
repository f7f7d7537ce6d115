"""Progressive magnitude pruning: periodic prune-and-retrain inside one training run."""

from __future__ import annotations

from dataclasses import dataclass

from isp_lib.context import RunContext
from isp_lib.masks import rounds_to_reach
from isp_lib.methods.base import Method
from isp_lib.patterns import magnitude_step, magnitude_to, pattern_of, pattern_option
from isp_lib.ranges import added_later, ranged


@dataclass(frozen=True)
class ProgressiveOptions:
    """Attributes:
    prune_frac: share of the budget T over which the prune events are spread evenly.
    pattern: ``none`` or ``N:M`` (:mod:`isp_lib.patterns`): the prune events keep at least N
        per group, the last exactly N; left out of the config hash while ``none``.
    """

    prune_frac: float = ranged("(0, 1]", 0.5)
    pattern: str = added_later(pattern_option())


@dataclass
class ProgressiveState:
    """Attributes:
    round: prune events done.
    """

    round: int = 0


class Progressive(Method):
    """The paper's "Progressive [Mag]" baseline (Sec. 3.2: "periodic pruning using
    magnitude-based pruning followed by retraining"). One trainer and one schedule over the
    budget T; R = ceil(log(1-S)/log(1-s)) global magnitude prunes of a share s (``hp.rate``) of
    the remaining weights at evenly spaced steps within the first ``prune_frac`` of T, the last
    one straight to the exact target; the rest of T is fine-tuning with validation selection.
    """

    name = "progressive"
    summary = "periodic magnitude prune + retrain within one budget T (baseline)"
    Options = ProgressiveOptions

    def run(self, ctx: RunContext, opts: ProgressiveOptions) -> None:
        rounds = rounds_to_reach(ctx.sparsity, ctx.hp.rate)
        horizon = round(opts.prune_frac * ctx.budget)
        events = [max(1, round(horizon * (j + 1) / rounds)) for j in range(rounds)]
        state = ctx.resume(ProgressiveState)
        trainer = ctx.make_trainer("main")
        pattern = pattern_of(opts, ctx.params)
        for j in range(state.round, rounds):
            ctx.train_until(trainer, events[j], "train", desc=f"progressive {j + 1}/{rounds}")
            if j == rounds - 1:
                mask = magnitude_to(ctx.params, ctx.mask, ctx.sparsity, pattern)
            else:
                mask = magnitude_step(ctx.params, ctx.mask, ctx.hp.rate, pattern)
            ctx.set_mask(mask, trainer)
            state.round = j + 1
            ctx.save(trainer)
        ctx.finetune(trainer, ctx.budget)
