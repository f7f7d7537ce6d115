"""One-shot magnitude pruning of the pretrained weights, then fine-tuning."""

from __future__ import annotations

from isp_lib.context import RunContext
from isp_lib.methods.base import Method, PatternOptions, PruneState
from isp_lib.patterns import magnitude_to, pattern_of


class OneShot(Method):
    """Global magnitude pruning of the pretrained weights straight to the target sparsity
    (Han et al. 2015; the paper's "One-shot [Mag]"), then fine-tune for the budget T. With an
    N:M ``pattern``, the N largest weights of every group are kept instead."""

    name = "oneshot"
    summary = "global magnitude prune of the pretrained weights to the target, then fine-tune"
    Options = PatternOptions

    def run(self, ctx: RunContext, opts: PatternOptions) -> None:
        state = ctx.resume(PruneState)
        if not state.pruned:
            pattern = pattern_of(opts, ctx.params)
            ctx.set_mask(magnitude_to(ctx.params, ctx.mask, ctx.sparsity, pattern))
            state.pruned = True
        ctx.finetune(ctx.make_trainer("final"), ctx.budget)
