"""Iterative magnitude pruning with rewinding to the pretrained weights (LTH / IMP)."""

from __future__ import annotations

from dataclasses import dataclass, field

from isp_lib.context import RunContext
from isp_lib.masks import Mask, cosine_similarity, magnitude_prune_to, rounds_to_reach
from isp_lib.methods.base import Method, PatternOptions
from isp_lib.patterns import magnitude_step, magnitude_to, pattern_of


@dataclass
class IMPState:
    """Attributes:
    round: rounds done (each trained, pruned and rewound).
    trace: per round, its mask against one-shot magnitude pruning (:meth:`IMP.compare_to_oneshot`).
    """

    round: int = 0
    trace: list[dict] = field(default_factory=list)


class IMP(Method):
    """Lottery tickets by IMP (Frankle & Carbin 2019; Chen et al. 2020 for pretrained BERT).

    Each round fine-tunes for the full budget T from the rewind point with the current mask,
    then prunes a share s (``hp.rate``) of the remaining weights by global magnitude; the last
    round prunes straight to the exact target. The ticket (mask on the rewind weights) is then
    fine-tuned once more for T with validation selection. Cost: (R + 1) x T steps. Here the
    rewind point is the pretrained weights (step 0); :class:`LTHRewind` rewinds to an early step.

    ``IMPState.trace`` records, per round, the mask's sparsity and its cosine similarity to
    the one-shot magnitude mask of the pretrained weights at the same sparsity (paper Fig. 3),
    of the kept and of the pruned indicators. With an N:M ``pattern`` the rounds keep at least
    N per group and the last exactly N (:mod:`isp_lib.patterns`); the trace still compares
    with the unstructured one-shot mask.
    """

    name = "imp"
    summary = "IMP/LTH: R full fine-tunes, prune s each, rewind to the pretrained weights"
    Options = PatternOptions

    def rewind_step(self, ctx: RunContext, opts: object) -> int:
        """The step whose weights every round restarts from (0: the pretrained weights)."""
        return 0

    def after_round(self, ctx: RunContext, opts: object, r: int, rounds: int) -> None:
        """Called once round ``r`` of ``rounds`` is trained, before it prunes (a hook)."""

    def compare_to_oneshot(self, ctx: RunContext, mask: Mask, r: int) -> dict:
        """Round ``r``'s mask against one-shot magnitude pruning of the pretrained weights."""
        init = {n: ctx.stash["init"][n] for n in mask}
        oneshot = magnitude_prune_to(init, Mask.ones_like(init), mask.sparsity())
        return {"round": r + 1, "sparsity": mask.sparsity(),
                "cos_kept": cosine_similarity(mask, oneshot, "kept"),
                "cos_pruned": cosine_similarity(mask, oneshot, "pruned")}

    def run(self, ctx: RunContext, opts: object) -> None:
        state = ctx.resume(IMPState)
        rounds = rounds_to_reach(ctx.sparsity, ctx.hp.rate)
        rewind = self.rewind_step(ctx, opts)
        pattern = pattern_of(opts, ctx.params)
        if "init" not in ctx.stash:
            ctx.snapshot("init")
            ctx.save()
        for r in range(state.round, rounds):
            key = f"round-{r}"
            trainer = ctx.make_trainer(key, start_step=rewind if r else 0)
            if r == 0 and rewind and "rewind" not in ctx.stash:
                ctx.train_until(trainer, rewind, "train", desc="imp round 1 (to rewind point)")
                ctx.snapshot("rewind")
                ctx.save(trainer)
            ctx.train_until(trainer, ctx.budget, "train", desc=f"imp round {r + 1}/{rounds}")
            self.after_round(ctx, opts, r, rounds)
            if r == rounds - 1:
                mask = magnitude_to(ctx.params, ctx.mask, ctx.sparsity, pattern)
            else:
                mask = magnitude_step(ctx.params, ctx.mask, ctx.hp.rate, pattern)
            state.trace.append(self.compare_to_oneshot(ctx, mask, r))
            ctx.mask = mask
            ctx.restore("rewind" if rewind else "init")
            state.round = r + 1
            ctx.save()
        trainer = ctx.make_trainer("final", start_step=rewind)
        ctx.finetune(trainer, ctx.budget)
