"""One-shot magnitude pruning of the pretrained weights, then fine-tuning."""

from __future__ import annotations

from dataclasses import dataclass

from isp_lib.context import RunContext
from isp_lib.masks import layerwise_magnitude_prune_to
from isp_lib.methods.base import Method, PatternOptions, PruneState
from isp_lib.patterns import check_group, magnitude_to, pattern_of
from isp_lib.ranges import added_later, one_of


@dataclass(frozen=True)
class OneShotOptions(PatternOptions):
    """Attributes:
    group: where weights compete: ``global`` (all prunable weights, the paper's and the
        default) or ``layer`` (each weight tensor pruned to the target sparsity by its own
        magnitudes, a kit option: no layer can be emptied). Added after the first records:
        left out of the config hash while ``global``.
    """

    group: str = added_later(one_of(("global", "layer"), "global"))


class OneShot(Method):
    """Global magnitude pruning of the pretrained weights straight to the target sparsity
    (Han et al. 2015; the paper's "One-shot [Mag]"), then fine-tune for the budget T. With an
    N:M ``pattern``, the N largest weights of every group are kept instead; with
    ``group=layer``, every weight tensor is pruned to the target by its own magnitudes."""

    name = "oneshot"
    summary = "global magnitude prune of the pretrained weights to the target, then fine-tune"
    Options = OneShotOptions

    def check(self, sparsity: float, opts: OneShotOptions) -> None:
        check_group(opts, "global")

    def run(self, ctx: RunContext, opts: OneShotOptions) -> None:
        state = ctx.resume(PruneState)
        if not state.pruned:
            if opts.group == "layer":
                mask = layerwise_magnitude_prune_to(ctx.params, ctx.mask, ctx.sparsity)
            else:
                pattern = pattern_of(opts, ctx.params)
                mask = magnitude_to(ctx.params, ctx.mask, ctx.sparsity, pattern)
            ctx.set_mask(mask)
            state.pruned = True
        ctx.finetune(ctx.make_trainer("final"), ctx.budget)
