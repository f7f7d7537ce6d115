"""Calibration passes of one-shot post-training pruning (Wanda, SparseGPT): what each prunable
weight reads.

A calibration pass forwards a set of training examples, drawn with the run's seed, through the
model once, in eval mode, without gradients, in float32 and as one batch. Every product that
reads a whole prunable weight is handed, before it runs, to a ``visit(name, chunks)`` callback
with the weight's input as ``(groups, positions, fan_in)`` chunks, ``fan_in`` in the order of
``weight.reshape(out, -1)``'s columns:

* a matrix product (``nn.Linear``, and the input and output projections of
  ``nn.MultiheadAttention``, whose fast path is switched off for the pass): one group, one
  position per row of the input; in a text batch the padding tokens (``attention_mask`` 0) are
  left out, where the input has one row per token of the batch in batch-first order (BERT);
* a 2-d convolution: its unfolded input (im2col), one position per output pixel and example,
  one group per convolution group (a depthwise convolution has one per channel).

A weight that no such product reads whole (a 1-d or 3-d convolution, a slice of a fused
weight) is refused in one line. The callback may rewrite the weight in place: the product then
reads the new values, so later layers see the outputs of the weights already rewritten (the
sequential layer-by-layer order of SparseGPT in a single pass).

Cost: the ledger counts the pass under the phase :data:`CALIB_PHASE`, one step per
``hp.batch_size`` examples forwarded. In units of T a forward thus counts as a training step
(an upper bound: a step costs about three forwards); :func:`isp_lib.flops.record_flops` counts
it as a forward.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812
from torch.utils._python_dispatch import TorchDispatchMode

from isp_lib.context import RunContext
from isp_lib.errors import UserError
from isp_lib.seeds import stream_rng
from isp_lib.train import move

#: The ledger phase of calibration forwards.
CALIB_PHASE = "calib"

#: The most unfolded-input entries a convolution hands over in one chunk.
_CHUNK_ENTRIES = 1 << 24

Visit = Callable[[str, Iterator[torch.Tensor]], None]

_aten = torch.ops.aten


def _linear_chunks(x: torch.Tensor, positions: torch.Tensor | None) -> Iterator[torch.Tensor]:
    """A matrix product's input rows (padding left out) as one ``(1, positions, fan_in)`` chunk."""
    if positions is not None and len(x) == len(positions):
        x = x[positions]
    yield x[None]


def _conv_chunks(x: torch.Tensor, weight: torch.Tensor, stride: list[int], padding: list[int],
                 dilation: list[int], groups: int) -> Iterator[torch.Tensor]:
    """A 2-d convolution's unfolded input, a few examples at a time, as
    ``(groups, examples x output pixels, fan_in)`` chunks."""
    fan_in = weight[0].numel()
    per_example = fan_in * groups * math.prod(
        (size + 2 * p - d * (k - 1) - 1) // s + 1 for size, k, s, p, d in
        zip(x.shape[2:], weight.shape[2:], stride, padding, dilation, strict=True))
    step = max(1, _CHUNK_ENTRIES // max(1, per_example))
    for start in range(0, len(x), step):
        cols = F.unfold(x[start:start + step], weight.shape[2:], dilation, padding, stride)
        n, _, pixels = cols.shape
        yield cols.view(n, groups, fan_in, pixels).permute(1, 0, 3, 2).reshape(
            groups, n * pixels, fan_in)


class _WeightInputs(TorchDispatchMode):
    """Hands the input of every matrix product or convolution that reads a whole watched weight
    to ``visit``, once per weight, before the product runs."""

    def __init__(self, params: Mapping[str, torch.Tensor], visit: Visit,
                 positions: torch.Tensor | None) -> None:
        super().__init__()
        self.params = params
        self.names = {p.untyped_storage().data_ptr(): n for n, p in params.items()}
        self.visit = visit
        self.positions = positions
        self.seen: set[str] = set()

    def _name(self, t: object) -> str | None:
        """The watched weight ``t`` is, whole (or transposed), else None."""
        if not isinstance(t, torch.Tensor):
            return None
        name = self.names.get(t.untyped_storage().data_ptr())
        if name is None or name in self.seen:
            return None
        w = self.params[name]
        whole = t.data_ptr() == w.data_ptr() and t.numel() == w.numel()
        return name if whole else None

    def _chunks(self, func: torch._ops.OpOverload, args: tuple
                ) -> tuple[str, Iterator[torch.Tensor]] | None:
        packet = func._overloadpacket
        if packet is _aten.convolution:
            name = self._name(args[1])
            if name is None:
                return None
            if args[6] or args[1].dim() != 4:
                raise UserError(f"'{name}' is read by a {args[1].dim() - 2}-d or transposed "
                                "convolution: calibration handles Linear and Conv2d weights")
            return name, _conv_chunks(args[0], args[1], args[3], args[4], args[5], args[8])
        if packet not in (_aten.mm, _aten.addmm):
            return None
        a, b = args[-2:] if packet is _aten.mm else args[1:3]
        for weight, x in ((b, a), (a, b.t())):  # x @ w.t() (nn.Linear), or w @ x.t()
            name = self._name(weight)
            if name is not None:
                return name, _linear_chunks(x, self.positions)
        return None

    def __torch_dispatch__(self, func: torch._ops.OpOverload, types: object, args: tuple = (),
                           kwargs: dict | None = None) -> object:
        found = self._chunks(func, args)
        if found is not None:
            self.seen.add(found[0])
            self.visit(*found)
        return func(*args, **(kwargs or {}))


@torch.no_grad()
def weight_inputs(model: nn.Module, params: Mapping[str, torch.Tensor],
                  batch: Mapping[str, torch.Tensor], visit: Visit) -> None:
    """Forward ``batch`` through ``model``, handing each weight's input to ``visit``.

    Args:
        model: ``model(**inputs) -> logits``; run in eval mode (its mode is restored).
        params: name -> prunable weight of ``model``.
        batch: a collated batch on the model's device (``labels`` is ignored).
        visit: called once per weight, as ``visit(name, chunks)``, before the first product
            that reads it; see the module docstring.

    Raises:
        UserError: if no matrix product or 2-d convolution read some weight whole.
    """
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    mask = batch.get("attention_mask")
    positions = None if mask is None else mask.reshape(-1).bool()
    was_training, fast = model.training, torch.backends.mha.get_fastpath_enabled()
    watch = _WeightInputs(params, visit, positions)
    try:
        model.eval()
        torch.backends.mha.set_fastpath_enabled(False)
        with watch:
            model(**inputs)
    finally:
        model.train(was_training)
        torch.backends.mha.set_fastpath_enabled(fast)
    missing = [n for n in params if n not in watch.seen]
    if missing:
        raise UserError(f"no matrix product or 2-d convolution read '{missing[0]}' whole in the "
                        "calibration pass: wanda and sparsegpt handle nn.Linear, "
                        "nn.MultiheadAttention and nn.Conv2d weights")


def calibrate(ctx: RunContext, examples: int, visit: Visit) -> None:
    """One calibration pass of the run (:func:`weight_inputs`), counted in the ledger.

    Args:
        ctx: the run; its model, prunable weights, training split and seed.
        examples: training examples to forward (all of them if fewer), drawn without
            replacement from the stream ``subset:calib`` of the run seed.
        visit: see :func:`weight_inputs`.
    """
    batch, size = _calibration_batch(ctx, examples)
    weight_inputs(ctx.model, ctx.params, batch, visit)
    ctx.ledger.add(CALIB_PHASE, math.ceil(size / ctx.hp.batch_size), size)


def _calibration_batch(ctx: RunContext, examples: int) -> tuple[dict[str, torch.Tensor], int]:
    """The run's calibration examples as one batch on its device, and their number."""
    n = len(ctx.train_set)
    size = min(n, examples)
    indices = np.sort(stream_rng(ctx.seed, "subset:calib").choice(n, size=size, replace=False))
    return move(ctx.collate([ctx.train_set[int(i)] for i in indices]), ctx.device), size


@torch.no_grad()
def recalibrate_batchnorm(ctx: RunContext, examples: int) -> bool:
    """Re-estimate every BatchNorm's running mean and variance on the calibration examples,
    with the weights as they are now: after a post-training prune the statistics of the
    dense model no longer describe the pruned layers' outputs (the batch-norm tuning that
    Frantar et al., 2022, "Optimal Brain Compression", apply after pruning CNNs).

    The statistics are reset and set to those of one forward of the examples (one batch, the
    calibration pass's), in train mode for the BatchNorm layers only; nothing else changes.

    Args:
        ctx: the run; its model, training split and seed.
        examples: as for :func:`calibrate` (the same examples).

    Returns:
        Whether the model has a BatchNorm layer (only then is a pass made and counted).
    """
    norms = [m for m in ctx.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return False
    batch, size = _calibration_batch(ctx, examples)
    was_training, momenta = ctx.model.training, [m.momentum for m in norms]
    try:
        ctx.model.eval()
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average: after one batch, its statistics
            m.train()
        ctx.model(**{k: v for k, v in batch.items() if k != "labels"})
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        ctx.model.train(was_training)
    ctx.ledger.add(CALIB_PHASE, math.ceil(size / ctx.hp.batch_size), size)
    return True
