"""GraSP: gradient signal preservation (Wang et al., ICLR 2020)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from isp_lib.context import RunContext
from isp_lib.methods.scored import ScoredPruning
from isp_lib.ranges import ranged
from isp_lib.saliency import balanced_indices, grasp_scores, score_batches
from isp_lib.seeds import stream_seed


@dataclass(frozen=True)
class GraSPOptions:
    """Attributes:
    per_class: examples per class in the class-balanced scoring batch (reference code: 10).
    temperature: logit temperature of both passes (reference code: 200).
    """

    per_class: int = ranged(">= 1", 10)
    temperature: float = ranged("> 0", 200.0)


class GraSP(ScoredPruning):
    """GraSP at the pretrained weights: remove the weights with the highest -w * (H g).

    The reference code re-initialises the network before scoring; here the *pretrained*
    weights are scored and kept (a pretrained model must not be re-initialised). One
    Hessian-vector product over a class-balanced batch, eval mode, prunable scope only,
    global pruning to the exact target, then fine-tuning.
    """

    name = "grasp"
    summary = "GraSP (Wang et al. 2020): prune the highest -w*Hg at the pretrained weights"
    Options = GraSPOptions

    def score_indices(self, ctx: RunContext, opts: GraSPOptions) -> np.ndarray:
        seed = stream_seed(ctx.seed, "subset:grasp")
        return balanced_indices(ctx.train_set, opts.per_class, seed=seed)

    def scores(self, ctx: RunContext, opts: GraSPOptions, indices: np.ndarray
               ) -> dict[str, torch.Tensor]:
        batches = score_batches(ctx.train_set, ctx.collate, indices, ctx.hp.batch_size,
                                ctx.device)
        ctx.ledger.add("score", 2 * len(batches), 2 * len(indices))
        s = grasp_scores(ctx.model, ctx.params, batches, opts.temperature)
        return {n: -v for n, v in s.items()}
