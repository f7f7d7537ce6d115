"""Pruning at the pretrained weights by a saliency score, then fine-tuning (SNIP, GraSP)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from isp_lib.context import RunContext
from isp_lib.masks import prune_lowest, target_count
from isp_lib.methods.base import Method, PruneState


class ScoredPruning(Method):
    """Score the pretrained weights once, prune the lowest-scored globally to the exact target
    over the prunable scope, then fine-tune for the budget T with validation selection.

    Subclasses implement :meth:`scores` (higher = keep) and :meth:`score_indices`. The scoring
    passes are counted in the ledger under phase ``"score"``, one step per forward-backward
    pass over a batch.
    """

    def score_indices(self, ctx: RunContext, opts: Any) -> np.ndarray:
        """Training examples the score is computed on."""
        raise NotImplementedError

    def scores(self, ctx: RunContext, opts: Any, indices: np.ndarray) -> dict[str, torch.Tensor]:
        """Keep score per prunable weight; also records the scoring passes in the ledger."""
        raise NotImplementedError

    def run(self, ctx: RunContext, opts: Any) -> None:
        state = ctx.resume(PruneState)
        if not state.pruned:
            scores = self.scores(ctx, opts, self.score_indices(ctx, opts))
            ctx.set_mask(prune_lowest(scores, ctx.mask, target_count(ctx.mask, ctx.sparsity)))
            state.pruned = True
            ctx.save()
        ctx.finetune(ctx.make_trainer("final"), ctx.budget)
