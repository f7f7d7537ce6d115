"""What a run will cost in optimizer steps, counted before it runs, as its ledger will count them.

Each method's count follows its own schedule (the ``Cost:`` line of its docstring): one budget
T for the single-pass methods, R + 1 fine-tunes for IMP (R from
:func:`~isp_lib.masks.rounds_to_reach`), T plus at most R x N x C look-ahead steps for ISP (R
from :func:`~isp_lib.scaled.isp_rounds`), and so on. T and the steps per epoch are
:class:`~isp_lib.context.RunContext`'s own, computed on the training-set size alone.
Evaluation passes are not optimizer steps and are not counted; scoring passes (SNIP, GraSP)
and calibration passes (Wanda, SparseGPT) are, as the ledger counts them.

>>> from isp_lib.profiles import get_profile
>>> hp = get_profile("cpu").hparams_for("bert")
>>> plan_steps("imp", 420, hp, None, sparsity=0.7, labels=3).cost   # 6 rounds at s = 0.2, + 1
7.0
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from isp_lib.context import RunContext
from isp_lib.masks import rounds_to_reach
from isp_lib.models.registry import BATCHNORM
from isp_lib.profiles import Hparams
from isp_lib.scaled import isp_rounds


class RunSize:
    """A stand-in for a :class:`~isp_lib.context.RunContext` that knows only the training-set
    size and the hyperparameters: ``steps_per_epoch`` and ``budget`` (T) are the context's own
    properties, so an estimate follows the runner's definition of T.

    Args:
        n_train: training examples (after the profile's caps and the validation carve).
        hp: the run's hyperparameters.
        family: the model family, if known (:data:`~isp_lib.models.registry.BATCHNORM`).
    """

    steps_per_epoch = RunContext.steps_per_epoch
    budget = RunContext.budget

    def __init__(self, n_train: int, hp: Hparams, family: str | None = None) -> None:
        self.train_set = range(n_train)
        self.hp = hp
        self.family = family


@dataclass(frozen=True)
class Plan:
    """The optimizer steps a run will take.

    Attributes:
        steps: steps over every phase (what the record's ``train_steps`` will say).
        budget: T, the steps of one fine-tune (the record's ``budget_steps``).
        bound: True where ``steps`` is an upper bound (ISP may reach its target in fewer
            rounds, EarlyBird may draw its ticket before T), False where it is exact.
        note: empty, or why the count is a guess (a method without a cost rule here).
    """

    steps: int
    budget: int
    bound: bool = False
    note: str = ""

    @property
    def cost(self) -> float:
        """``steps`` in units of T."""
        return self.steps / self.budget


Rule = Callable[[RunSize, Any, float, int], tuple[int, bool]]


def _score_steps(n_train: int, examples: int, batch_size: int) -> int:
    """Batches of a scoring pass over ``examples`` training examples (at most all of them)."""
    return math.ceil(min(n_train, examples) / batch_size)


def _grasp(size: RunSize, opts: Any, sparsity: float, labels: int) -> tuple[int, bool]:
    """Two passes (gradient, Hessian-vector product) over a class-balanced batch: ``per_class``
    examples of each class (10 x ``per_class`` for regression); exact when every class has
    ``per_class`` training examples."""
    examples = opts.per_class * (labels if labels > 1 else 10)
    return size.budget + 2 * _score_steps(len(size.train_set), examples, size.hp.batch_size), False


def _calibrated(size: RunSize, opts: Any, sparsity: float, labels: int) -> tuple[int, bool]:
    """One calibration pass (forwards, counted as steps), the dense fine-tune before it with
    ``start=finetuned``, and the fine-tune after it, or without it a second pass for a model
    with BatchNorm layers (:func:`~isp_lib.calibration.recalibrate_batchnorm`)."""
    calib = _score_steps(len(size.train_set), opts.calib_examples, size.hp.batch_size)
    first = size.budget if opts.start == "finetuned" else 0
    after = size.budget if opts.finetune else calib if size.family in BATCHNORM else 0
    return first + calib + after, False


def _isp(size: RunSize, opts: Any, sparsity: float, labels: int) -> tuple[int, bool]:
    """T plus N x C look-ahead steps per prune round, for at most the rounds that fit in the
    mask budget; exact without look-aheads."""
    lookahead = size.hp.denoisers * size.hp.lookahead_steps
    if sparsity <= 0.0 or lookahead == 0:
        return size.budget, False
    rounds = isp_rounds(size.budget, size.steps_per_epoch, size.hp.seed_frac,
                        opts.mask_budget_frac)
    return size.budget + rounds * lookahead, True


def _imp_rounds(size: RunSize, sparsity: float) -> int:
    return rounds_to_reach(sparsity, size.hp.rate)


def _one_budget(size: RunSize, opts: Any, sparsity: float, labels: int) -> tuple[int, bool]:
    return size.budget, False


#: Method name -> rule giving ``(steps, bound)``; a method missing here is counted as one T.
RULES: dict[str, Rule] = {
    "dense": _one_budget,
    "random": _one_budget,
    "oneshot": _one_budget,
    "progressive": _one_budget,  # its prune events fall inside the one budget T
    "snip": lambda s, o, sp, n: (
        s.budget + _score_steps(len(s.train_set), o.batches * s.hp.batch_size, s.hp.batch_size),
        False),
    "grasp": _grasp,
    "wanda": _calibrated,
    "sparsegpt": _calibrated,
    "earlybird": lambda s, o, sp, n: (2 * s.budget, True),  # a search of at most T, then T
    "imp": lambda s, o, sp, n: ((_imp_rounds(s, sp) + 1) * s.budget, False),
    "lth-rewind": lambda s, o, sp, n: (
        (_imp_rounds(s, sp) + 1) * s.budget
        - _imp_rounds(s, sp) * max(1, round(o.rewind_frac * s.budget)), False),
    "lottery-pools": lambda s, o, sp, n: ((_imp_rounds(s, sp) + 2) * s.budget, False),
    "isp": _isp,
    "ims": lambda s, o, sp, n: (
        s.budget + len(o.sparsities) * max(1, round(o.weak_frac * s.budget)), False),
    "uniform-soup": lambda s, o, sp, n: (o.ingredients * s.budget, False),
    "greedy-soup": lambda s, o, sp, n: (o.ingredients * s.budget, False),
}


def plan_steps(method: str, n_train: int, hp: Hparams, options: Any, sparsity: float,
               labels: int, family: str | None = None) -> Plan:
    """The optimizer steps of one run, before it runs.

    Args:
        method: registry name.
        n_train: training examples of the run (after caps and the validation carve).
        hp: the run's resolved hyperparameters.
        options: the run's resolved method options (``isp_lib.runs.resolve``).
        sparsity: the target sparsity.
        labels: the classifier's outputs (1 for regression); GraSP's scoring batch has
            ``per_class`` examples of each class.
        family: the model family (``isp_lib.runs.resolve``), where a cost depends on it.

    Returns:
        The :class:`Plan`; a method without a rule in :data:`RULES` is counted as one T,
        with a note that says so.
    """
    size = RunSize(n_train, hp, family)
    rule = RULES.get(method)
    if rule is None:
        return Plan(size.budget, size.budget, bound=False,
                    note=f"no cost rule for '{method}' in isp_lib.costs: counted as one T")
    steps, bound = rule(size, options, sparsity, labels)
    return Plan(steps, size.budget, bound)
