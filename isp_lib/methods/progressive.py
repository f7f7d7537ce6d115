"""Progressive magnitude pruning: periodic prune-and-retrain inside one training run."""

from __future__ import annotations

from dataclasses import dataclass

from isp_lib.context import RunContext
from isp_lib.masks import global_magnitude_prune, magnitude_prune_to, rounds_to_reach
from isp_lib.methods.base import Method
from isp_lib.ranges import ranged


@dataclass(frozen=True)
class ProgressiveOptions:
    """Attributes:
    prune_frac: share of the budget T over which the prune events are spread evenly.
    """

    prune_frac: float = ranged("(0, 1]", 0.5)


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
        for j in range(state.round, rounds):
            ctx.train_until(trainer, events[j], "train", desc=f"progressive {j + 1}/{rounds}")
            if j == rounds - 1:
                mask = magnitude_prune_to(ctx.params, ctx.mask, ctx.sparsity)
            else:
                mask = global_magnitude_prune(ctx.params, ctx.mask, ctx.hp.rate)
            ctx.set_mask(mask, trainer)
            state.round = j + 1
            ctx.save(trainer)
        ctx.finetune(trainer, ctx.budget)
