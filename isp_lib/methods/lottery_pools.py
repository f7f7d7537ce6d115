"""Lottery Pools: interpolating IMP's tickets (Yin et al., 2022)."""

from __future__ import annotations

from dataclasses import dataclass

from isp_lib.context import RunContext
from isp_lib.errors import UserError
from isp_lib.masks import Mask, magnitude_prune_to
from isp_lib.methods.imp import IMP
from isp_lib.ranges import ranged
from isp_lib.soups import best_interpolation


@dataclass(frozen=True)
class LotteryPoolsOptions:
    """Attributes:
    pool_size: how many of IMP's intermediate tickets (the nearest to the target sparsity)
        join the pool; 0 takes all of them.
    alphas: interpolation coefficients tried per ticket (0 always competes too).
    """

    pool_size: int = ranged(">= 0", 5)
    alphas: tuple[float, ...] = ranged("[0, 1]", (0.05, 0.1, 0.2, 0.3, 0.5))


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

    def merge(self, ctx: RunContext, opts: LotteryPoolsOptions) -> None:
        """Greedy interpolation of the pool into ``ctx.stash["pool"]`` (resumable per ticket)."""
        trace = ctx.progress.setdefault("pool_trace", [])
        for r in self.pool(ctx.progress["round"], opts)[len(trace):]:
            alpha, val, merged = best_interpolation(
                ctx.stash["pool"], ctx.get_artifact(f"ticket-{r}"), opts.alphas,
                ctx.evaluate_state)
            ctx.stash["pool"] = merged
            trace.append({"round": r, "alpha": alpha, "val": val})
            ctx.save()

    def run(self, ctx: RunContext, opts: LotteryPoolsOptions) -> None:
        if "pooled" not in ctx.progress:
            if "ticket_val" not in ctx.progress:
                super().run(ctx, opts)
                ctx.progress["ticket_val"] = ctx.progress["best_val"]
                ctx.close_finetune("ticket")
                ctx.snapshot("pool")
                ctx.save()
            self.merge(ctx, opts)
            ctx.model.load_state_dict(ctx.stash.pop("pool"))
            ctx.set_mask(magnitude_prune_to(ctx.params, Mask.ones_like(ctx.params),
                                            ctx.sparsity))
            ctx.progress["pooled"] = True
            ctx.save()
        ctx.finetune(ctx.make_trainer("pool-final"), ctx.budget)
