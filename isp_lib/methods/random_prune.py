"""Random pruning at the start, then fine-tuning (the paper's "Random" row)."""

from __future__ import annotations

import torch

from isp_lib.context import RunContext
from isp_lib.masks import random_prune_to
from isp_lib.methods.base import Method, NoOptions, PruneState
from isp_lib.seeds import stream_seed


class RandomPruning(Method):
    """Remove a uniformly random set of weights (exact count, global) from the pretrained model,
    then fine-tune the subnetwork for the budget T."""

    name = "random"
    summary = "random global mask at the target, then fine-tune (baseline)"

    def run(self, ctx: RunContext, opts: NoOptions) -> None:
        state = ctx.resume(PruneState)
        if not state.pruned:
            gen = torch.Generator().manual_seed(stream_seed(ctx.seed, "random-mask"))
            ctx.set_mask(random_prune_to(ctx.mask, ctx.sparsity, gen))
            state.pruned = True
        ctx.finetune(ctx.make_trainer("final"), ctx.budget)
