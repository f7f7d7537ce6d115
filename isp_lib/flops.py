"""Theoretical FLOPs of training and of pruned inference, counted with ``FlopCounterMode``.

Counts follow ``torch.utils.flop_counter``'s formulas: matrix products, convolutions and
attention; elementwise ops, softmax, normalisation and the optimizer count zero.

* Training: masked training computes dense (pruned weights are zeros in dense tensors), so a
  run costs the FLOPs of one dense training step (forward, loss, backward) times its steps;
  a calibration step (ledger phase ``calib``: Wanda, SparseGPT) is one dense forward, and
  FLOPs a method records as ``solve_flops`` (SparseGPT's Hessians and reconstructions) add on.
* Inference of a pruned model: the FLOPs of the products against each prunable weight scale
  with that weight's density (what a sparse kernel computes); all other FLOPs (attention
  scores, embeddings, the head) stay.

>>> prof = count_flops(model, batch, prunable_params(model, "bert"))  # doctest: +SKIP
>>> record_flops(record, prof)                                        # doctest: +SKIP
{'train': ..., 'inference': ...}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import (
    FlopCounterMode,
    flop_registry,
    sdpa_backward_flop_count,
    sdpa_flop_count,
)

from isp_lib.calibration import CALIB_PHASE
from isp_lib.train import task_loss

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _cpu_sdpa(query: torch.Size, key: torch.Size, value: torch.Size, *_: object,
              out_val: object = None, **__: object) -> int:
    return sdpa_flop_count(query, key, value)


def _cpu_sdpa_backward(grad_out: torch.Size, query: torch.Size, key: torch.Size,
                       value: torch.Size, *_: object, out_val: object = None,
                       **__: object) -> int:
    return sdpa_backward_flop_count(grad_out, query, key, value)


# torch's registry lacks the CPU kernels of scaled_dot_product_attention (BERT's and ViT's
# attention on a CPU): the same formulas as for the CUDA kernels, on shapes.
_EXTRA = {
    getattr(torch.ops.aten, op): formula
    for op, formula in (("_scaled_dot_product_flash_attention_for_cpu", _cpu_sdpa),
                        ("_scaled_dot_product_flash_attention_for_cpu_backward",
                         _cpu_sdpa_backward))
    if hasattr(torch.ops.aten, op) and getattr(torch.ops.aten, op) not in flop_registry
}


@dataclass(frozen=True)
class FlopProfile:
    """FLOPs of one model on one batch.

    Attributes:
        train_step: one training step: forward, loss and backward (gradients of every
            trainable parameter).
        forward: one inference forward.
        prunable_forward: prunable weight name -> forward FLOPs of the products that read it.
        batch_size: examples in the batch.
    """

    train_step: int
    forward: int
    prunable_forward: dict[str, int] = field(default_factory=dict)
    batch_size: int = 1

    @property
    def rest_forward(self) -> int:
        """Forward FLOPs that do not involve a prunable weight."""
        return self.forward - sum(self.prunable_forward.values())

    def inference(self, density: float | Mapping[str, float]) -> float:
        """Forward FLOPs of the pruned model on the batch.

        Args:
            density: kept share of the prunable weights: one value for all, or one per name.

        Returns:
            ``sum(density[w] * prunable_forward[w]) + rest_forward``.
        """
        def kept(name: str) -> float:
            d = density if isinstance(density, int | float) else density[name]
            if not 0.0 <= d <= 1.0:
                raise ValueError(f"density {d} of '{name}' is outside [0, 1]")
            return d

        return sum(kept(n) * f for n, f in self.prunable_forward.items()) + self.rest_forward


class _WeightFlops(TorchDispatchMode):
    """Adds the FLOPs of every counted op that reads a given weight to that weight's name."""

    def __init__(self, weights: Mapping[str, torch.Tensor]) -> None:
        super().__init__()
        self.names = {w.untyped_storage().data_ptr(): n for n, w in weights.items()}
        self.flops = dict.fromkeys(weights, 0)

    def __torch_dispatch__(
        self, func: torch._ops.OpOverload, types: object, args: tuple = (),
        kwargs: dict | None = None,
    ) -> object:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:  # the attention kernels of _EXTRA read no weight
            for leaf in tree_leaves((args, kwargs)):
                name = (self.names.get(leaf.untyped_storage().data_ptr())
                        if isinstance(leaf, torch.Tensor) else None)
                if name is not None:
                    self.flops[name] += formula(*args, **kwargs, out_val=out)
                    break
        return out


def count_flops(
    model: nn.Module,
    batch: Mapping[str, torch.Tensor],
    prunable: Mapping[str, torch.Tensor],
    loss_fn: Loss = task_loss,
) -> FlopProfile:
    """Count the FLOPs of one training step and of one inference forward on ``batch``.

    The model's gradients, training mode and weights are left as they were.

    Args:
        model: ``model(**inputs) -> logits``.
        batch: inputs plus ``"labels"`` (the trainer's batch format), on the model's device.
        prunable: name -> prunable weight of ``model`` (e.g. ``scope.prunable_params``).
        loss_fn: ``loss_fn(logits, labels)``; the trainer's loss by default.

    Returns:
        The :class:`FlopProfile`.
    """
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    trainable = [p for p in model.parameters() if p.requires_grad]
    was_training = model.training
    try:
        model.train()
        with FlopCounterMode(display=False, custom_mapping=_EXTRA) as step:
            loss = loss_fn(model(**inputs), batch["labels"])
            torch.autograd.grad(loss, trainable, allow_unused=True)
        model.eval()
        with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=_EXTRA) as fwd:
            model(**inputs)
        with torch.no_grad(), _WeightFlops(prunable) as attributed:
            model(**inputs)
    finally:
        model.train(was_training)
    size = len(batch["labels"])
    return FlopProfile(step.get_total_flops(), fwd.get_total_flops(), attributed.flops, size)


def record_flops(record: Mapping, profile: FlopProfile) -> dict[str, float]:
    """Training and inference FLOPs of a result record (see ``isp_lib.runs``).

    Args:
        record: a result record: ``ledger.steps`` (or ``train_steps``) steps over every phase,
            of which the ``calib`` phase's are forwards only, ``progress.solve_flops`` if any,
            and ``actual_sparsity`` over the prunable scope.
        profile: :func:`count_flops` of the record's model on a batch of its training batch
            shape; one density for every prunable weight is exact when each prunable weight
            is applied to the same number of positions (BERT and ViT blocks).

    Returns:
        ``{"train": per-step FLOPs x training steps + forward FLOPs x calibration steps +
        solve FLOPs, "inference": pruned forward FLOPs per batch}``.
    """
    ledger = record.get("ledger")
    steps = ledger["steps"] if ledger else record["train_steps"]
    forwards = (ledger.get("phases") or {}).get(CALIB_PHASE, {}).get("steps", 0) if ledger else 0
    solve = float((record.get("progress") or {}).get("solve_flops", 0.0))
    train = profile.train_step * (steps - forwards) + profile.forward * forwards + solve
    density = 1.0 - float(record["actual_sparsity"])
    return {"train": float(train), "inference": profile.inference(density)}
