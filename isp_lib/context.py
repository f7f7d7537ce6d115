"""What a pruning method works with: the model, data, budget, mask, ledger and checkpoints.

Methods are written as plain loops that record how far they got in a typed state of their own
(a dataclass of JSON-ready fields, see :meth:`RunContext.resume`) and call
:meth:`RunContext.save` at safe points. On resume the runner restores the model, mask, ledger,
the method's state, the fine-tune selection, weight snapshots, the random state and the trainer
that was running, so a resumed run continues exactly where the interrupted one stopped.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from isp_lib.accel import PLAIN, Accel
from isp_lib.io import read_torch, write_torch
from isp_lib.masks import Mask
from isp_lib.profiles import Hparams
from isp_lib.scope import prunable_params
from isp_lib.seeds import stream_seed
from isp_lib.shared import SharedWork
from isp_lib.train import Collate, Ledger, Trainer, evaluate, predict, score, task_loss

S = TypeVar("S")


@dataclass
class Selection:
    """The validation selection of the running fine-tune (:meth:`RunContext.finetune`).

    Attributes:
        evals: ``[step, metric]`` per validation.
        best_val: the best metric so far (None before the first validation).
        best_step: the step of ``best_val``.
    """

    evals: list[list] = field(default_factory=list)
    best_val: float | None = None
    best_step: int | None = None


def random_state() -> dict[str, Any]:
    """The global random state: ``rng`` (CPU) and ``cuda_rng`` (None without CUDA)."""
    return {"rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_random_state(state: dict[str, Any]) -> None:
    """Restore a :func:`random_state` (its ``cuda_rng`` where CUDA is there to take it)."""
    torch.set_rng_state(state["rng"].cpu())
    if state["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda_rng"]])


def record(state: Any) -> dict:
    """A typed state's fields as JSON-ready values, the fields still None left out.

    >>> record(Selection(evals=[[2, 0.5]], best_val=0.5))
    {'evals': [[2, 0.5]], 'best_val': 0.5}
    """
    return {k: v for k, v in asdict(state).items() if v is not None}


@dataclass
class RunContext:
    """Everything a method needs; see the module docstring.

    Attributes:
        model: the network being pruned (on ``device``).
        family: scope family (``bert``, ``clip``, ``linear``).
        train_set, val_set: encoded training and validation examples.
        collate: batches examples.
        metric: validation metric name.
        hp: hyperparameters.
        sparsity: target share of pruned weights over the prunable scope.
        seed: run seed.
        device: where everything runs.
        bf16: bf16 autocast on CUDA.
        accel: how batches are fed and steps taken (:mod:`isp_lib.accel`; not part of what the
            run computes, so not of its config hash).
        ledger: training cost.
        mask: the current mask (dense at the start).
        method_state: the method's typed state (a dataclass, see :meth:`resume`; persisted).
        selection: the running fine-tune's validation selection (persisted).
        finetunes: the selections of finished fine-tunes, by name (see :meth:`close_finetune`;
            persisted).
        stash: named weight snapshots (persisted), e.g. ``"init"`` or ``"best"``.
        save_fn: writes a checkpoint payload; None disables checkpoints.
        artifact_dir: where large intermediate weights (soup ingredients, IMP tickets) are
            kept as files; None keeps them in ``stash`` (and so in the checkpoint).
        shared: work shared with the other runs of the out folder (:mod:`isp_lib.shared`);
            None shares nothing.
    """

    model: nn.Module
    family: str
    train_set: Dataset
    val_set: Dataset
    collate: Collate
    metric: str
    hp: Hparams
    sparsity: float
    seed: int
    device: torch.device
    bf16: bool = False
    accel: Accel = PLAIN
    ledger: Ledger = field(default_factory=Ledger)
    mask: Mask | None = None
    method_state: Any = None
    selection: Selection | None = None
    finetunes: dict[str, dict] = field(default_factory=dict)
    stash: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    save_fn: Callable[[dict], None] | None = None
    artifact_dir: Path | None = None
    shared: SharedWork | None = None
    _pending_trainer: dict | None = None
    _pending_state: dict | None = None

    def __post_init__(self) -> None:
        self.params = prunable_params(self.model, self.family)
        if self.mask is None:
            self.mask = Mask.ones_like(self.params)

    @property
    def progress(self) -> dict:
        """How far the run got, JSON-ready (the result record's ``progress``): the fields of the
        method's state that are set, ``finetunes`` if any, and the running selection's fields
        (``evals``, ``best_val``, ``best_step``)."""
        out = {} if self.method_state is None else record(self.method_state)
        if self.finetunes:
            out["finetunes"] = {k: dict(v) for k, v in self.finetunes.items()}
        if self.selection is not None:
            out.update(record(self.selection))
        return out

    def resume(self, cls: type[S]) -> S:
        """The method's typed state: the one in use, else the checkpoint's, else a fresh one.

        Args:
            cls: a dataclass whose fields are JSON-ready (numbers, strings, bools, None, lists
                and dicts of them); a subclass's state serves its base class too.

        Returns:
            The state; the method updates it in place and :meth:`save` persists it.
        """
        if not isinstance(self.method_state, cls):
            if self.method_state is not None:
                held = type(self.method_state).__name__
                raise TypeError(f"the run holds a {held}, not a {cls.__name__}")
            self.method_state = cls(**(self._pending_state or {}))
            self._pending_state = None
        return self.method_state

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps in one pass over the training split."""
        return max(1, math.ceil(len(self.train_set) / self.hp.batch_size))

    @property
    def budget(self) -> int:
        """T: optimizer steps of one full fine-tune (``hp.epochs`` epochs)."""
        return max(1, round(self.hp.epochs * self.steps_per_epoch))

    def make_trainer(
        self,
        key: str,
        *,
        total_steps: int | None = None,
        lr: float | None = None,
        weight_decay: float | None = None,
        model: nn.Module | None = None,
        indices: np.ndarray | None = None,
        constant_lr: bool = False,
        start_step: int = 0,
    ) -> Trainer:
        """A trainer on the current mask; restores its state if a checkpoint holds ``key``.

        Args:
            key: unique name of this trainer within the run (e.g. ``"main"``, ``"round-2"``);
                its batch stream is seeded by the run seed and this name (:mod:`isp_lib.seeds`).
            total_steps: schedule length (default: the budget T).
            lr, weight_decay: override the profile's values.
            model: train this module instead of ``self.model`` (look-ahead copies).
            indices: restrict to these training examples.
            constant_lr: no schedule (look-aheads).
            start_step: begin the schedule at this step (rewinding).

        Returns:
            The :class:`Trainer`, with ``trainer.key == key``.
        """
        total = self.budget if total_steps is None else total_steps
        trainer = Trainer(
            model or self.model, self.train_set, self.collate,
            lr=self.hp.lr if lr is None else lr,
            weight_decay=self.hp.weight_decay if weight_decay is None else weight_decay,
            batch_size=self.hp.batch_size, total_steps=total,
            warmup_steps=round(self.hp.warmup_frac * total),
            max_grad_norm=self.hp.max_grad_norm, seed=stream_seed(self.seed, f"batches:{key}"),
            ledger=self.ledger, device=self.device, indices=indices,
            constant_lr=constant_lr, bf16=self.bf16, key=key, accel=self.accel,
        )
        if start_step:
            trainer.skip_to(start_step)
        if self._pending_trainer is not None and self._pending_trainer["key"] == key:
            trainer.load_state_dict(self._pending_trainer["state"])
            self._pending_trainer = None
        trainer.set_mask(self.mask)
        return trainer

    def set_mask(self, mask: Mask, trainer: Trainer | None = None) -> None:
        """Adopt ``mask``: zero the pruned weights, and enforce it in ``trainer`` if given."""
        mask.check_fits(self.params)
        self.mask = mask
        mask.apply_(self.params)
        if trainer is not None:
            trainer.set_mask(mask)

    def snapshot(self, name: str) -> None:
        """Keep a copy of the current weights under ``name`` (persisted in checkpoints)."""
        self.stash[name] = self.state()

    def restore(self, name: str) -> None:
        """Load the weights kept under ``name`` into the model (the mask is re-applied)."""
        self.model.load_state_dict(self.stash[name])
        self.mask.apply_(self.params)

    def state(self) -> dict[str, torch.Tensor]:
        """A detached copy of the model's current weights (parameters and buffers)."""
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def put_artifact(self, name: str, state: dict[str, torch.Tensor]) -> None:
        """Keep a set of weights for later in the run (a file under ``artifact_dir``, if set).

        Write it before the checkpoint that records it as done, so a resume never misses it.
        """
        if self.artifact_dir is None:
            self.stash[f"artifact:{name}"] = state
        else:
            write_torch(self.artifact_dir / f"{name}.pt", {k: v.cpu() for k, v in state.items()})

    def get_artifact(self, name: str) -> dict[str, torch.Tensor]:
        """The weights kept by :meth:`put_artifact` under ``name`` (on ``device``)."""
        if self.artifact_dir is None:
            return self.stash[f"artifact:{name}"]
        return read_torch(self.artifact_dir / f"{name}.pt", self.device)

    def close_finetune(self, name: str) -> float:
        """Move the selection of the last :meth:`finetune` to :attr:`finetunes` under ``name``.

        Methods that fine-tune several models in one run (soups, Lottery Pools) call this after
        each one, so the next :meth:`finetune` starts a fresh validation selection.

        Returns:
            That fine-tune's best validation metric.
        """
        self.finetunes[name] = asdict(self.selection)
        best = self.selection.best_val
        self.selection = None
        self.stash.pop("best", None)
        return best

    def evaluate_state(self, state: dict[str, torch.Tensor]) -> float:
        """Load ``state`` into the model and return its validation metric."""
        self.model.load_state_dict(state)
        return self.evaluate_val()

    def val_scores(self, state: dict[str, torch.Tensor]) -> tuple[float, float]:
        """Load ``state`` into the model; its validation metric and mean validation loss."""
        self.model.load_state_dict(state)
        outputs, labels = predict(self.model, self.val_set, self.collate, self.device,
                                  bf16=self.bf16, accel=self.accel)
        loss = float(task_loss(torch.from_numpy(outputs), torch.from_numpy(labels)))
        return score(self.metric, outputs, labels), loss

    def evaluate_val(self) -> float:
        """The metric on the validation split."""
        return evaluate(self.model, self.val_set, self.collate, self.metric, self.device,
                        bf16=self.bf16, accel=self.accel)

    def train_until(self, trainer: Trainer, end_step: int, phase: str, desc: str) -> None:
        """Train until ``trainer.step_count == end_step``, checkpointing once per epoch."""
        while trainer.step_count < end_step:
            n = min(self.steps_per_epoch, end_step - trainer.step_count)
            trainer.train(n, phase, desc=desc, end=end_step)
            self.save(trainer)

    def finetune(self, trainer: Trainer, end_step: int, phase: str = "finetune") -> float:
        """Train until ``trainer.step_count == end_step``, keeping the best weights on validation.

        Validation runs ``hp.evals_per_epoch`` times per epoch and once at the end; a checkpoint
        is written after each evaluation. The best weights are loaded at the end.

        Returns:
            The best validation metric.
        """
        every = max(1, self.steps_per_epoch // max(1, self.hp.evals_per_epoch))
        if self.selection is None:
            self.selection = Selection()
        sel = self.selection
        while trainer.step_count < end_step or not sel.evals:
            n = min(every, end_step - trainer.step_count)
            if n > 0:
                trainer.train(n, phase, end=end_step)
            val = self.evaluate_val()
            sel.evals.append([trainer.step_count, val])
            if sel.best_val is None or val > sel.best_val:
                sel.best_val, sel.best_step = val, trainer.step_count
                self.snapshot("best")
            self.save(trainer)
        self.restore("best")
        return sel.best_val

    def save(self, trainer: Trainer | None = None) -> None:
        """Write a checkpoint (no-op without ``save_fn``)."""
        if self.save_fn is None:
            return
        payload = {
            "model": self.model.state_dict(),
            "mask": {n: m.cpu() for n, m in self.mask.items()},
            "ledger": self.ledger.to_dict(),
            "state": None if self.method_state is None else asdict(self.method_state),
            "selection": None if self.selection is None else asdict(self.selection),
            "finetunes": self.finetunes,
            "stash": self.stash,
            "trainer": None if trainer is None else {"key": trainer.key,
                                                     "state": trainer.state_dict()},
            **random_state(),
        }
        self.save_fn(payload)

    def load(self, payload: dict) -> None:
        """Restore a checkpoint written by :meth:`save`."""
        self.model.load_state_dict(payload["model"])
        self.mask = Mask({n: m.to(self.device) for n, m in payload["mask"].items()})
        self.mask.check_fits(self.params)
        self.ledger = Ledger.from_dict(payload["ledger"])
        self._pending_state = payload["state"]
        self.selection = None if payload["selection"] is None else Selection(**payload["selection"])
        self.finetunes = payload["finetunes"]
        self.stash = payload["stash"]
        self._pending_trainer = payload["trainer"]
        set_random_state(payload)
