"""Hyperparameters that scale with the task: ISP's look-ahead steps, denoisers and rate chosen
from the training-set size and the budget T, so that the look-aheads stay a bounded share of T
(:data:`LOOKAHEAD_SHARE`). Used by :func:`isp_lib.api.prune` where the user gives none; the
profiles keep their own values (the ``paper`` profile the paper's Table 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from isp_lib.methods.isp import ISPOptions, fitted_rate

#: The bound of :func:`scaled_hparams`: look-ahead steps of a whole ISP run, as a share of T.
LOOKAHEAD_SHARE = 0.3

#: The paper's BERT settings (Table 1), used as they are when the budget allows them.
PAPER_LOOKAHEAD_STEPS, PAPER_DENOISERS, PAPER_RATE = 30, 4, 0.1



@dataclass(frozen=True)
class ScaledHparams:
    """The look-ahead settings :func:`scaled_hparams` chose, and the numbers behind them.

    Attributes:
        lookahead_steps: C, steps per look-ahead.
        denoisers: N, look-aheads per prune round.
        rate: s, share of the remaining weights a round prunes (a floor under ISP's
            ``fit_rate``).
        budget: T, optimizer steps of the run's one fine-tune.
        rounds: the most prune rounds ISP can run in its mask budget (an upper bound).
        lookahead_cost: ``rounds * denoisers * lookahead_steps``, the most look-ahead steps.
        bound: the allowed look-ahead steps, ``LOOKAHEAD_SHARE * budget``.
    """

    lookahead_steps: int
    denoisers: int
    rate: float
    budget: int
    rounds: int
    lookahead_cost: int
    bound: float

    @property
    def share(self) -> float:
        """Look-ahead steps at most, as a share of T."""
        return self.lookahead_cost / self.budget


def isp_rounds(budget: int, steps_per_epoch: int, seed_frac: float,
               mask_budget_frac: float) -> int:
    """The most prune rounds ISP runs (:class:`~isp_lib.methods.isp.ISP`): round k trains
    ``max(1, ceil(seed_frac * (k + 1) * steps_per_epoch))`` steps, and the rounds stop once the
    next one would not fit in ``round(mask_budget_frac * budget)`` steps (at least one round).

    >>> isp_rounds(budget=31250, steps_per_epoch=3125, seed_frac=0.075, mask_budget_frac=0.1)
    4
    """
    mask_budget = round(mask_budget_frac * budget)

    def steps(k: int) -> int:
        return max(1, math.ceil(seed_frac * (k + 1) * steps_per_epoch))

    rounds, done = 1, steps(0)
    while done + steps(rounds) <= mask_budget:
        done, rounds = done + steps(rounds), rounds + 1
    return rounds


def scaled_hparams(
    n_train: int,
    *,
    epochs: float,
    batch_size: int,
    sparsity: float,
    seed_frac: float = 0.075,
    options: ISPOptions | None = None,
    lookahead_steps: int | None = None,
    denoisers: int | None = None,
    share: float = LOOKAHEAD_SHARE,
) -> ScaledHparams:
    """ISP's look-ahead steps C, denoisers N and rate s for a training set and budget.

    The rule: T = ``round(epochs * ceil(n_train / batch_size))`` steps, and R = the most prune
    rounds that fit in ISP's mask budget (:func:`isp_rounds`). The look-aheads may take
    ``A = floor(share * T / R)`` steps per round, so that **C x N x R <= 30% of T** (share
    0.3): the look-aheads never cost more than 30% of the fine-tune. Within that:

    * C = ``min(30, 2 passes over a look-ahead's data subset, max(1, A // 4))``;
    * N = ``min(4, A // C)`` (0 when A < 1: no look-ahead fits, ISP prunes by magnitude);
    * s = ``max(0.1, the constant rate that reaches the target in R rounds)``.

    At paper scale (QNLI, T = 31,250) this gives the paper's C = 30, N = 4; on a few hundred
    examples it gives a few steps and fewer look-aheads. A C or N the user fixes is kept and
    the other one is fitted to the bound (if both are fixed, nothing is checked).

    Args:
        n_train: training examples.
        epochs: the budget T in epochs.
        batch_size: examples per step.
        sparsity: the target sparsity.
        seed_frac: ISP's round length t (``Hparams.seed_frac``).
        options: ISP's options (``mask_budget_frac``, ``lookahead_data_frac``); default ones
            if None.
        lookahead_steps, denoisers: values the user fixed, or None.
        share: the bound on look-ahead steps as a share of T.

    Returns:
        The choice, with T, R and the look-ahead cost.

    >>> s = scaled_hparams(420, epochs=5, batch_size=16, sparsity=0.7)
    >>> (s.lookahead_steps, s.denoisers, s.rounds, s.lookahead_cost, s.budget)
    (5, 4, 2, 40, 135)
    """
    opts = options or ISPOptions()
    spe = max(1, math.ceil(n_train / batch_size))
    budget = max(1, round(epochs * spe))
    rounds = isp_rounds(budget, spe, seed_frac, opts.mask_budget_frac)
    allowance = math.floor(share * budget / rounds)
    subset = min(n_train, max(batch_size, round(opts.lookahead_data_frac * n_train)))
    c_cap = min(PAPER_LOOKAHEAD_STEPS, 2 * math.ceil(subset / batch_size))
    c, n = lookahead_steps, denoisers
    if c is None and n is None:
        c = min(c_cap, max(1, allowance // PAPER_DENOISERS))
        n = min(PAPER_DENOISERS, allowance // c)
    elif n is None:
        n = min(PAPER_DENOISERS, allowance // c) if c > 0 else PAPER_DENOISERS
    elif c is None:
        c = min(c_cap, allowance // n) if n > 0 else 1
    rate = PAPER_RATE
    if sparsity > 0:
        rate = max(PAPER_RATE, fitted_rate(0.0, sparsity, rounds))
    return ScaledHparams(lookahead_steps=c, denoisers=n, rate=rate, budget=budget, rounds=rounds,
                         lookahead_cost=rounds * n * c, bound=round(share * budget, 6))


