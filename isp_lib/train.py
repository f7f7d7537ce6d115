"""A budgeted trainer: AdamW, linear warmup/decay, clipping, masks kept exact, a cost ledger.

Pruned weights stay exactly zero without a dense re-multiply in the forward pass: after each
backward the gradients of pruned entries are zeroed (so clipping sees the sparse model's
gradient norm), and after each optimizer step the pruned entries are zeroed again (AdamW's
moments from before a prune, and nothing else, could move them).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from isp_lib.accel import PLAIN, Accel
from isp_lib.masks import Mask
from isp_lib.progress import PROGRESS

Collate = Callable[[list[dict[str, torch.Tensor]]], dict[str, torch.Tensor]]


@dataclass
class Ledger:
    """Training cost counted in optimizer steps and samples seen, per phase.

    Attributes:
        steps: optimizer steps over all phases (main training and look-aheads alike).
        samples: training examples seen over all phases.
        phases: phase name -> {"steps": ..., "samples": ...}.
    """

    steps: int = 0
    samples: int = 0
    phases: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, phase: str, steps: int, samples: int) -> None:
        """Record ``steps`` optimizer steps over ``samples`` examples under ``phase``."""
        self.steps += steps
        self.samples += samples
        entry = self.phases.setdefault(phase, {"steps": 0, "samples": 0})
        entry["steps"] += steps
        entry["samples"] += samples

    def to_dict(self) -> dict:
        """A JSON-ready copy."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> Ledger:
        """Inverse of :meth:`to_dict`."""
        return cls(steps=d["steps"], samples=d["samples"],
                   phases={k: dict(v) for k, v in d["phases"].items()})


class BatchStream:
    """Deterministic, resumable stream of index batches: shuffled epochs over ``indices``.

    Args:
        indices: example indices to draw from (a subset for look-aheads, all for training).
        batch_size: indices per batch; batches run on across epoch ends, so every batch is full.
        seed: seed of the private generator.
    """

    def __init__(self, indices: np.ndarray | list[int], batch_size: int, seed: int) -> None:
        self.indices = torch.as_tensor(np.asarray(indices), dtype=torch.int64)
        self.batch_size = batch_size
        self.gen = torch.Generator().manual_seed(seed)
        self.perm = torch.empty(0, dtype=torch.int64)
        self.pos = 0

    def next(self) -> list[int]:
        """The next batch of example indices."""
        out: list[torch.Tensor] = []
        need = self.batch_size
        while need:
            if self.pos >= len(self.perm):
                self.perm = self.indices[torch.randperm(len(self.indices), generator=self.gen)]
                self.pos = 0
            take = self.perm[self.pos:self.pos + need]
            self.pos += len(take)
            need -= len(take)
            out.append(take)
        return torch.cat(out).tolist()

    def state_dict(self) -> dict:
        """Everything needed to continue the stream exactly."""
        return {"gen": self.gen.get_state(), "perm": self.perm.clone(), "pos": self.pos}

    def load_state_dict(self, state: Mapping) -> None:
        """Restore a :meth:`state_dict`."""
        self.gen.set_state(state["gen"])
        self.perm = state["perm"].clone()
        self.pos = int(state["pos"])


def linear_schedule(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """LR multiplier: linear warmup to 1, then linear decay to 0 at ``total_steps``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return factor


def task_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for classification, mean squared error for regression (1 output)."""
    if logits.shape[-1] == 1:
        return F.mse_loss(logits.squeeze(-1).float(), labels.float())
    return F.cross_entropy(logits.float(), labels)


def move(batch: Mapping[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Put every tensor of a batch on ``device``."""
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def feed(dataset: Dataset, collate: Collate, index_batches: Iterable[list[int]],
         device: torch.device, accel: Accel = PLAIN) -> Iterator[dict[str, torch.Tensor]]:
    """The batches of ``index_batches``, in order, on ``device``.

    Args:
        dataset: the examples.
        collate: batches a list of examples.
        index_batches: example indices per batch; read lazily (a loader's workers read a few
            batches ahead), so a stream drawn from here stays in step with the batches used.
        device: where the batches go.
        accel: the plain path builds each batch in this thread when it is asked for; with
            ``accel.loader`` a ``DataLoader`` builds them, in ``accel.workers`` processes if the
            data set decodes each item when read (``decodes_per_item``), pinned if
            ``accel.pin_memory`` (see :mod:`isp_lib.accel`).

    Yields:
        The collated batches, on ``device``.
    """
    if not accel.loader:
        for indices in index_batches:
            yield move(collate([dataset[i] for i in indices]), device)
        return
    workers = accel.workers if getattr(dataset, "decodes_per_item", False) else 0
    # A generator of its own: the loader's worker seed draws nothing from torch's global random
    # state (dropout's), so a run draws the same random numbers as on the plain path.
    loader = DataLoader(dataset, batch_sampler=index_batches, collate_fn=collate,
                        num_workers=workers, pin_memory=accel.pin_memory,
                        generator=torch.Generator().manual_seed(0))
    for batch in loader:
        yield move(batch, device)


def autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when asked for; a no-op otherwise."""
    if bf16 and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


class Trainer:
    """Trains ``model`` for a counted number of AdamW steps under a linear schedule.

    Args:
        model: the network (already on ``device``).
        dataset: training examples (dicts of tensors with ``"labels"``).
        collate: batches a list of examples.
        lr: peak learning rate.
        weight_decay: decoupled weight decay (AdamW).
        batch_size: examples per step.
        total_steps: length of the linear schedule (its end is where the LR reaches zero).
        warmup_steps: linear warmup length.
        max_grad_norm: clip norm; 0 disables clipping.
        seed: seed of the batch stream.
        ledger: where steps and samples are counted.
        device: where the model lives.
        indices: restrict training to these example indices (default: all).
        constant_lr: keep ``lr`` fixed (look-aheads) instead of the linear schedule.
        bf16: bf16 autocast on CUDA.
        key: the trainer's name within a run (checkpoints restore the trainer of that name).
        accel: how batches are fed and steps taken (:mod:`isp_lib.accel`; default: the plain
            path).
    """

    def __init__(
        self,
        model: nn.Module,
        dataset: Dataset,
        collate: Collate,
        *,
        lr: float,
        weight_decay: float,
        batch_size: int,
        total_steps: int,
        warmup_steps: int,
        max_grad_norm: float,
        seed: int,
        ledger: Ledger,
        device: torch.device,
        indices: np.ndarray | None = None,
        constant_lr: bool = False,
        bf16: bool = False,
        key: str = "main",
        accel: Accel = PLAIN,
    ) -> None:
        self.key = key
        self.accel = accel
        self.model = model
        self.dataset = dataset
        self.collate = collate
        self.batch_size = batch_size
        self.total_steps = total_steps
        self.max_grad_norm = max_grad_norm
        self.ledger = ledger
        self.device = device
        self.bf16 = bf16
        self.step_count = 0
        self.mask: Mask | None = None
        self._masked: list[tuple[torch.Tensor, torch.Tensor]] = []
        params = [p for p in model.parameters() if p.requires_grad]
        fused = {"fused": True} if accel.fused_adamw else {}
        self.optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, **fused)
        # torch.compile wraps the call only: parameter names and the module itself are unchanged
        self.forward: Callable[..., torch.Tensor] = torch.compile(model) if accel.compile \
            else model
        factor = (lambda _s: 1.0) if constant_lr else linear_schedule(total_steps, warmup_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)
        idx = np.arange(len(dataset)) if indices is None else indices
        self.stream = BatchStream(idx, batch_size, seed)

    def set_mask(self, mask: Mask | None) -> None:
        """Enforce ``mask`` from now on and zero the pruned weights right away.

        Also clears AdamW's moments at pruned entries, so that nothing pushes them back.
        """
        self.mask = mask
        self._masked = []
        if mask is None:
            return
        params = dict(self.model.named_parameters())
        mask.check_fits({n: params[n] for n in mask if n in params})
        with torch.no_grad():
            for name, m in mask.items():
                p = params[name]
                p.mul_(m)
                for buf in self.optimizer.state.get(p, {}).values():
                    if torch.is_tensor(buf) and buf.shape == p.shape:
                        buf.mul_(m)
                self._masked.append((p, m))

    def skip_to(self, step: int) -> None:
        """Start the schedule at ``step`` (rewinding continues a schedule mid-way)."""
        self.scheduler.last_epoch = step
        for group, base, f in zip(self.optimizer.param_groups, self.scheduler.base_lrs,
                                  self.scheduler.lr_lambdas, strict=True):
            group["lr"] = base * f(step)
        self.step_count = step

    def current_lr(self) -> float:
        """The learning rate the next step will use."""
        return self.optimizer.param_groups[0]["lr"]

    def train(self, steps: int, phase: str, desc: str | None = None,
              end: int | None = None) -> float:
        """Run ``steps`` optimizer steps and count them in the ledger under ``phase``.

        Progress (a bar on a terminal, a line every 30 s in a log) is reported by
        :data:`isp_lib.progress.PROGRESS`.

        Args:
            steps: number of optimizer steps.
            phase: ledger phase name (e.g. ``"train"``, ``"lookahead"``).
            desc: progress label (default ``phase``).
            end: the step count these steps work towards, for the progress report only
                (default: this call's last step).

        Returns:
            Mean training loss over these steps (nan if ``steps`` is 0). The losses stay on the
            device until the last step (no host synchronisation per step), then are copied
            once and summed in order as Python floats.
        """
        self.model.train()
        batches = feed(self.dataset, self.collate, (self.stream.next() for _ in range(steps)),
                       self.device, self.accel)
        losses = [self._step(next(batches))
                  for _ in PROGRESS.steps(steps, desc or phase, start=self.step_count, total=end)]
        self.ledger.add(phase, steps, steps * self.batch_size)
        if not losses:
            return math.nan
        total = 0.0
        for loss in torch.stack(losses).tolist():
            total += loss
        return total / steps

    def _step(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """One optimizer step on ``batch`` (on the device); returns the loss, not synchronised."""
        labels = batch.pop("labels")
        with autocast(self.device, self.bf16):
            logits = self.forward(**batch)
        loss = task_loss(logits, labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            for p, m in self._masked:
                if p.grad is not None:
                    p.grad.mul_(m)
        if self.max_grad_norm > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        with torch.no_grad():
            for p, m in self._masked:
                p.mul_(m)
        self.step_count += 1
        return loss.detach()

    def state_dict(self) -> dict:
        """Optimizer, schedule, stream and step count (not the model's weights)."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "stream": self.stream.state_dict(),
            "step_count": self.step_count,
        }

    def load_state_dict(self, state: Mapping) -> None:
        """Restore a :meth:`state_dict` (call :meth:`set_mask` afterwards if masked)."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.stream.load_state_dict(state["stream"])
        self.step_count = int(state["step_count"])


def _matthews(pred: np.ndarray, gold: np.ndarray) -> float:
    classes = np.union1d(pred, gold)
    conf = np.array([[np.sum((gold == a) & (pred == b)) for b in classes] for a in classes],
                    dtype=np.float64)
    t, p, c, s = conf.sum(1), conf.sum(0), np.trace(conf), conf.sum()
    denom = math.sqrt((s * s - (p * p).sum()) * (s * s - (t * t).sum()))
    return 0.0 if denom == 0 else float((c * s - (t * p).sum()) / denom)


def score(metric: str, outputs: np.ndarray, labels: np.ndarray) -> float:
    """Compute ``metric`` (accuracy, matthews, pearson) from logits and labels, in percent."""
    if metric == "pearson":
        pred = outputs.reshape(-1)
        if pred.std() == 0 or labels.std() == 0:
            return 0.0
        return float(np.corrcoef(pred, labels)[0, 1] * 100)
    pred = outputs.argmax(-1)
    if metric == "matthews":
        return _matthews(pred, labels) * 100
    return float((pred == labels).mean() * 100)


@torch.no_grad()
def predict(
    model: nn.Module,
    dataset: Dataset,
    collate: Collate,
    device: torch.device,
    batch_size: int | None = None,
    bf16: bool = False,
    accel: Accel = PLAIN,
) -> tuple[np.ndarray, np.ndarray]:
    """The model's outputs (logits, or one value for regression) and the labels, in order.

    Args:
        model: the network.
        dataset: examples with ``"labels"``.
        collate: batches examples.
        device: where the model lives.
        batch_size: evaluation batch size (default ``accel.eval_batch``: 64 on the plain path).
        bf16: bf16 autocast on CUDA.
        accel: how batches are fed (:func:`feed`).

    Returns:
        ``(outputs, labels)`` as float32 / label arrays, one row per example (copied from the
        device once, at the end).
    """
    size = accel.eval_batch if batch_size is None else batch_size
    n = len(dataset)
    was_training = model.training
    model.eval()
    outs, golds = [], []
    for batch in feed(dataset, collate, (list(range(s, min(s + size, n))) for s in
                                         range(0, n, size)), device, accel):
        golds.append(batch.pop("labels"))
        with autocast(device, bf16):
            outs.append(model(**batch).float())
    model.train(was_training)
    return torch.cat(outs).cpu().numpy(), torch.cat(golds).cpu().numpy()


def evaluate(
    model: nn.Module,
    dataset: Dataset,
    collate: Collate,
    metric: str,
    device: torch.device,
    batch_size: int | None = None,
    bf16: bool = False,
    accel: Accel = PLAIN,
) -> float:
    """Score ``model`` on ``dataset`` in eval mode (see :func:`predict` for the arguments).

    Returns:
        The metric in percent.
    """
    return score(metric, *predict(model, dataset, collate, device, batch_size, bf16, accel))
