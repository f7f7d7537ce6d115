"""One-shot magnitude pruning of the pretrained weights, then fine-tuning."""

from __future__ import annotations

from isp_lib.context import RunContext
from isp_lib.masks import magnitude_prune_to
from isp_lib.methods.base import Method, NoOptions, PruneState


class OneShot(Method):
    """Global magnitude pruning of the pretrained weights straight to the target sparsity
    (Han et al. 2015; the paper's "One-shot [Mag]"), then fine-tune for the budget T."""

    name = "oneshot"
    summary = "global magnitude prune of the pretrained weights to the target, then fine-tune"

    def run(self, ctx: RunContext, opts: NoOptions) -> None:
        state = ctx.resume(PruneState)
        if not state.pruned:
            ctx.set_mask(magnitude_prune_to(ctx.params, ctx.mask, ctx.sparsity))
            state.pruned = True
        ctx.finetune(ctx.make_trainer("final"), ctx.budget)
