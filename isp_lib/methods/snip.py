"""SNIP: single-shot pruning by connection sensitivity (Lee et al., ICLR 2019)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from isp_lib.context import RunContext
from isp_lib.methods.scored import ScoredPruning
from isp_lib.ranges import ranged
from isp_lib.saliency import score_batches, snip_scores
from isp_lib.seeds import stream_rng


@dataclass(frozen=True)
class SNIPOptions:
    """Attributes:
    batches: random training batches (of the profile's batch size) the gradient is averaged
        over; the reference code uses one.
    """

    batches: int = ranged(">= 1", 1)


class SNIP(ScoredPruning):
    """SNIP at the pretrained weights: keep the weights with the largest |g * w|.

    Choices where the paper is vague: the score is taken at the *pretrained* weights (not a
    random init), in eval mode, over the prunable scope only, with g the mean gradient over
    ``batches`` random training batches; pruning is global to the exact target.
    """

    name = "snip"
    summary = "SNIP (Lee et al. 2019): prune the lowest |grad * weight| at the pretrained weights"
    Options = SNIPOptions

    def score_indices(self, ctx: RunContext, opts: SNIPOptions) -> np.ndarray:
        n = len(ctx.train_set)
        size = min(n, opts.batches * ctx.hp.batch_size)
        return stream_rng(ctx.seed, "subset:snip").choice(n, size=size, replace=False)

    def scores(self, ctx: RunContext, opts: SNIPOptions, indices: np.ndarray
               ) -> dict[str, torch.Tensor]:
        batches = score_batches(ctx.train_set, ctx.collate, indices, ctx.hp.batch_size,
                                ctx.device)
        ctx.ledger.add("score", len(batches), len(indices))
        return snip_scores(ctx.model, ctx.params, batches)
