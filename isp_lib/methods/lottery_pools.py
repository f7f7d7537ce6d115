"""Lottery Pools: interpolating IMP's tickets (Yin et al., 2022)."""

from __future__ import annotations

from dataclasses import dataclass, field

from isp_lib.context import RunContext
from isp_lib.errors import UserError
from isp_lib.masks import Mask
from isp_lib.methods.imp import IMP, IMPState
from isp_lib.patterns import magnitude_to, pattern_of, pattern_option
from isp_lib.ranges import added_later, ranged
from isp_lib.soups import best_interpolation


@dataclass(frozen=True)
class LotteryPoolsOptions:
    """Attributes:
    pool_size: how many of IMP's intermediate tickets (the nearest to the target sparsity)
        join the pool; 0 takes all of them.
    alphas: interpolation coefficients tried per ticket (0 always competes too).
    pattern: ``none`` or ``N:M``, for IMP's rounds and the re-prune of the pool
        (:mod:`isp_lib.patterns`); left out of the config hash while ``none``.
    """

    pool_size: int = ranged(">= 0", 5)
    alphas: tuple[float, ...] = ranged("[0, 1]", (0.05, 0.1, 0.2, 0.3, 0.5))
    pattern: str = added_later(pattern_option())


@dataclass
class PoolsState(IMPState):
    """Attributes (besides IMP's):
    ticket_val: best validation metric of IMP's fine-tuned ticket (None while IMP runs).
    pool_trace: per pooled ticket, its round, coefficient and the merge's validation metric.
    pooled: the pool is merged and re-pruned (the final fine-tune may have begun).
    """

    ticket_val: float | None = None
    pool_trace: list[dict] = field(default_factory=list)
    pooled: bool = False


class LotteryPools(IMP):
    """Lottery Pools on top of IMP: after IMP (R rounds, then the ticket at the target
    fine-tuned for T), the ticket is greedily interpolated with the trained tickets of the
    earlier rounds, nearest sparsity first, each coefficient chosen on validation from
    ``alphas`` and 0. As the paper says (Sec. 3.2), the merged weights are then pruned by global
    magnitude to the exact target and fine-tuned for T. Cost: (R + 2) x T.
    """

    name = "lottery-pools"
    summary = "Lottery Pools (Yin et al. 2022): interpolate IMP's tickets, re-prune, fine-tune"
    Options = LotteryPoolsOptions

    def check(self, sparsity: float, opts: LotteryPoolsOptions) -> None:
        if sparsity <= 0.0:
            raise UserError("lottery-pools prunes: use a --sparsity above 0")

    def pool(self, rounds: int, opts: LotteryPoolsOptions) -> list[int]:
        """The rounds whose tickets join the pool, nearest to the target first."""
        order = list(range(rounds - 1, -1, -1))
        return order[:opts.pool_size] if opts.pool_size else order

    def after_round(self, ctx: RunContext, opts: LotteryPoolsOptions, r: int, rounds: int
                    ) -> None:
        if r in self.pool(rounds, opts):
            ctx.put_artifact(f"ticket-{r}", ctx.state())

    def merge(self, ctx: RunContext, opts: LotteryPoolsOptions, state: PoolsState) -> None:
        """Greedy interpolation of the pool into the ``"pool"`` snapshot (resumable per ticket)."""
        for r in self.pool(state.round, opts)[len(state.pool_trace):]:
            alpha, val, merged = best_interpolation(
                ctx.stash["pool"], ctx.get_artifact(f"ticket-{r}"), opts.alphas,
                ctx.evaluate_state)
            ctx.stash["pool"] = merged
            state.pool_trace.append({"round": r, "alpha": alpha, "val": val})
            ctx.save()

    def run(self, ctx: RunContext, opts: LotteryPoolsOptions) -> None:
        state = ctx.resume(PoolsState)
        if not state.pooled:
            if state.ticket_val is None:
                super().run(ctx, opts)
                state.ticket_val = ctx.close_finetune("ticket")
                ctx.snapshot("pool")
                ctx.save()
            self.merge(ctx, opts, state)
            ctx.model.load_state_dict(ctx.stash.pop("pool"))
            ctx.set_mask(magnitude_to(ctx.params, Mask.ones_like(ctx.params), ctx.sparsity,
                                      pattern_of(opts)))
            state.pooled = True
            ctx.save()
        ctx.finetune(ctx.make_trainer("pool-final"), ctx.budget)
