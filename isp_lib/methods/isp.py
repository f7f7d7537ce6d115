"""Instant Soup Pruning (Jaiswal et al., ICML 2023, Alg. 1)."""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field

from isp_lib.context import RunContext
from isp_lib.methods.base import Method
from isp_lib.methods.denoise import Protocol, denoised_prune
from isp_lib.patterns import pattern_of, pattern_option, reached
from isp_lib.ranges import added_later, ranged


@dataclass(frozen=True)
class ISPOptions:
    """Attributes:
    lookahead_data_frac: share of the training split each look-ahead draws at random (~10%).
    vary_protocol: vary learning rate and weight decay across look-aheads, as the paper says
        (False reproduces the official code, which varies only the data subset).
    lookahead_lr_mults: look-ahead n uses ``hp.lr * lookahead_lr_mults[n % len]``.
    lookahead_wds: look-ahead n uses weight decay ``lookahead_wds[n % len]``.
    mask_budget_frac: share M/T of the budget the mask-generation rounds may use; the round
        after which the next one would not fit prunes straight to the target. The kit's
        default 0.1 leaves 90% of T to fine-tune the subnetwork; the paper's is 0.6.
    fit_rate: raise a round's rate above ``hp.rate`` where needed for the rounds that fit in
        the mask budget to reach the target at a constant rate, so that a short budget does
        not end in one large jump to the target. A kit option (default True); the paper's
        fixed s is False.
    pattern: ``none`` or ``N:M`` (:mod:`isp_lib.patterns`): each round's union of look-ahead
        masks is projected back onto the pattern (:func:`~isp_lib.methods.denoise.merge_denoised`),
        keeping at least N per group, and the adjustment exactly N. Left out of the config
        hash while ``none``.

    The kit's defaults (``fit_rate=True``, ``mask_budget_frac=0.1``) were chosen on
    validation accuracy by ``results/isp_defaults_cnn.yaml``: the paper's schedule ends in a
    jump to 90% sparsity with 40% of T left and reaches 62.75% validation accuracy on the
    stand-in where one-shot reaches 83.0%. The paper's schedule is
    ``--set fit_rate=false --set mask_budget_frac=0.6``.
    """

    lookahead_data_frac: float = ranged("(0, 1]", 0.1)
    vary_protocol: bool = True
    lookahead_lr_mults: tuple[float, ...] = ranged("> 0", (1.0, 2.0, 0.5, 1.5, 0.75))
    lookahead_wds: tuple[float, ...] = ranged(">= 0", (0.0, 0.01, 0.1, 0.001, 0.05))
    mask_budget_frac: float = ranged("(0, 1]", 0.1)
    fit_rate: bool = True
    pattern: str = added_later(pattern_option())


@dataclass
class ISPState:
    """Attributes:
    trace: per round, its main-model steps, rate and denoise report (:func:`denoised_prune`).
    round: rounds done.
    mask_steps: main-model steps when the target was reached (None before).
    lookaheads: each look-ahead's learning rate, weight decay and data share (the protocols).
    """

    trace: list[dict] = field(default_factory=list)
    round: int = 0
    mask_steps: int | None = None
    lookaheads: list[dict] = field(default_factory=list)


class ISP(Method):
    """Instant Soup Pruning: one training run of budget T that prunes as it goes.

    Round i trains the main model ``ceil(t * (i + 1) * steps_per_epoch)`` steps (t =
    ``hp.seed_frac``: cheap rounds at trivial sparsity, longer ones as it gets harder), then
    calls the denoised prune (Alg. 2, :func:`~isp_lib.methods.denoise.denoised_prune`) with
    N = ``hp.denoisers`` look-aheads of C = ``hp.lookahead_steps`` steps each, until the exact
    target is reached; the same trainer (optimizer state and schedule unchanged) then fine-tunes
    the subnetwork for the rest of T with validation selection. Cost: T + (rounds x N x C).
    """

    name = "isp"
    summary = "Instant Soup Pruning (Alg. 1+2): denoised prune rounds inside one budget T"
    Options = ISPOptions

    def protocols(self, ctx: RunContext, opts: ISPOptions) -> list[Protocol]:
        """The N look-ahead protocols (learning rate, weight decay, data share)."""
        out = []
        for n in range(ctx.hp.denoisers):
            if opts.vary_protocol:
                lr = ctx.hp.lr * opts.lookahead_lr_mults[n % len(opts.lookahead_lr_mults)]
                wd = opts.lookahead_wds[n % len(opts.lookahead_wds)]
            else:
                lr, wd = ctx.hp.lr, ctx.hp.weight_decay
            out.append(Protocol(lr, wd, opts.lookahead_data_frac))
        return out

    def run(self, ctx: RunContext, opts: ISPOptions) -> None:
        spe, t = ctx.steps_per_epoch, ctx.hp.seed_frac
        mask_budget = round(opts.mask_budget_frac * ctx.budget)
        protocols = self.protocols(ctx, opts)
        scratch = copy.deepcopy(ctx.model) if protocols else None
        state = ctx.resume(ISPState)
        state.lookaheads = [asdict(p) for p in protocols]
        main = ctx.make_trainer("main")
        pattern = pattern_of(opts, ctx.params)

        def round_steps(k: int) -> int:
            return max(1, math.ceil(t * (k + 1) * spe))

        def rounds_left(k: int, done: int) -> int:
            """Rounds k, k+1, ... that fit in the mask budget, round k included."""
            n = 1
            while done + round_steps(k) + round_steps(k + 1) <= mask_budget:
                done, k, n = done + round_steps(k), k + 1, n + 1
            return n

        while not reached(ctx.mask, ctx.sparsity, pattern):
            i = state.round
            steps = round_steps(i)
            last = main.step_count + steps + round_steps(i + 1) > mask_budget
            rate = ctx.hp.rate
            if opts.fit_rate:
                rate = max(rate, fitted_rate(ctx.mask.sparsity(), ctx.sparsity,
                                             rounds_left(i, main.step_count)))
            main.train(steps, "train", desc=f"isp round {i + 1}")
            mask, report = denoised_prune(ctx, scratch, protocols, rate, i, force_adjust=last,
                                          adjust_gap=ctx.hp.adjust_gap, pattern=pattern)
            ctx.set_mask(mask, main)
            state.trace.append({"round": i, "main_steps": main.step_count, "rate": rate,
                                **asdict(report)})
            state.round = i + 1
            ctx.save(main)
        if state.mask_steps is None:  # not again on a resume
            state.mask_steps = main.step_count
        ctx.finetune(main, ctx.budget)


def fitted_rate(current: float, target: float, rounds: int) -> float:
    """The constant share of the remaining weights to prune per round to go from ``current``
    to ``target`` sparsity in ``rounds`` rounds (0 if already there).

    >>> round(fitted_rate(0.0, 0.9, 2), 4)
    0.6838
    """
    if current >= target:
        return 0.0
    return 1.0 - ((1.0 - target) / (1.0 - current)) ** (1.0 / max(1, rounds))
