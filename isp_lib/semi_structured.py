"""Run a 2:4-pruned model on the GPU's sparse tensor cores (``to_sparse_semi_structured``).

A model pruned with ``--set pattern=2:4`` keeps 2 of every 4 consecutive input weights of each
row of its linear layers (:mod:`isp_lib.patterns`). NVIDIA GPUs from Ampere on (compute
capability 8.0) multiply such a matrix about twice as fast as a dense one, through
``torch.sparse.to_sparse_semi_structured``. This module converts the ``nn.Linear`` layers whose
weights allow it and says, for every other layer, why not. Nothing here changes what the model
computes beyond the rounding of fp16/bf16 matrix products.

On a CPU nothing is faster: unstructured and 2:4 masks save no time there, only the FLOPs
counted by :mod:`isp_lib.flops`.

Which layers: ``nn.Linear`` modules (as in BERT, and the MLPs of open_clip's ViT) whose weight
has at most 2 non-zeros in every group of 4 consecutive input weights of a row, and whose shape
meets PyTorch's minimum tile (rows a multiple of 32, columns of 64 in fp16/bf16). Linear
layers inside ``nn.MultiheadAttention`` stay dense: its fused inference path reads the weights
directly, which a semi-structured tensor does not support.
"""

from __future__ import annotations

import torch
from torch import nn

from isp_lib.errors import UserError

#: The dtypes whose 2:4 kernels PyTorch ships for floating-point inference.
DTYPES = (torch.float16, torch.bfloat16)

#: PyTorch's minimum tile of a semi-structured fp16/bf16 weight: (rows, columns).
MIN_TILE = (32, 64)

#: Kept weights per group, and the group's size.
N, M = 2, 4

#: The status :func:`plan` gives a layer that :func:`to_semi_structured` converts.
CONVERTIBLE = "2:4"


def _inside_attention(model: nn.Module) -> set[str]:
    """Names of the modules that live inside an ``nn.MultiheadAttention``."""
    inside: set[str] = set()
    for name, module in model.named_modules():
        if isinstance(module, nn.MultiheadAttention):
            inside.update(f"{name}.{sub}" if name else sub
                          for sub, _ in module.named_modules() if sub)
    return inside


def _why_not(weight: torch.Tensor) -> str | None:
    """Why a linear weight cannot be 2:4 semi-structured, or None if it can."""
    rows, cols = weight.shape
    if rows % MIN_TILE[0] or cols % MIN_TILE[1]:
        return (f"shape ({rows}, {cols}): rows must be a multiple of {MIN_TILE[0]} and columns "
                f"of {MIN_TILE[1]}")
    kept = (weight.detach() != 0).reshape(rows, cols // M, M).sum(-1)
    if bool((kept > N).any()):
        share = float((kept > N).float().mean())
        return f"not 2:4 ({share:.1%} of its groups of 4 keep more than 2 weights)"
    return None


def plan(model: nn.Module) -> dict[str, str]:
    """What :func:`to_semi_structured` would do with each linear layer of ``model``.

    Args:
        model: any module (on any device).

    Returns:
        Linear module name -> :data:`CONVERTIBLE`, or the reason it stays dense.

    >>> layer = nn.Linear(64, 32, bias=False)
    >>> plan(nn.Sequential(layer))
    {'0': 'not 2:4 (100.0% of its groups of 4 keep more than 2 weights)'}
    >>> with torch.no_grad():
    ...     layer.weight.view(32, 16, 4)[..., 2:] = 0
    >>> plan(nn.Sequential(layer))
    {'0': '2:4'}
    """
    inside = _inside_attention(model)
    out: dict[str, str] = {}
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear):
            continue
        if name in inside:
            out[name] = "inside nn.MultiheadAttention (its fused path needs dense weights)"
        else:
            out[name] = _why_not(module.weight) or CONVERTIBLE
    return out


def _check_runnable(model: nn.Module) -> None:
    """Refuse, in one line, a model whose device or dtype has no 2:4 kernel."""
    weight = next((p for p in model.parameters()), None)
    if weight is None:
        raise UserError("the model has no parameters: nothing to convert")
    if weight.device.type != "cuda":
        raise UserError(f"2:4 kernels run only on CUDA GPUs of compute capability 8.0 or newer, "
                        f"and the model is on {weight.device.type}: move it with "
                        "model.to('cuda') (on a CPU a 2:4 mask saves no time; keep the dense "
                        "masked model)")
    major, _minor = torch.cuda.get_device_capability(weight.device)
    if major < 8:
        raise UserError(f"2:4 kernels need compute capability 8.0 or newer (Ampere on); "
                        f"{torch.cuda.get_device_name(weight.device)} has {major}.{_minor}: "
                        "keep the dense masked model")
    if weight.dtype not in DTYPES:
        raise UserError(f"2:4 kernels run in float16 or bfloat16, and the model is "
                        f"{weight.dtype}: cast it first, e.g. model.to(torch.bfloat16)")


@torch.no_grad()
def to_semi_structured(model: nn.Module) -> list[str]:
    """Convert, in place, every linear layer :func:`plan` calls convertible.

    The weights become ``torch.sparse.to_sparse_semi_structured`` tensors (frozen: this is for
    inference), so ``model(x)`` multiplies them on the sparse tensor cores. Put the model in
    ``eval()`` mode, in float16 or bfloat16, on the GPU first.

    Args:
        model: a model pruned to 2:4 (e.g. with ``--set pattern=2:4``), on a CUDA GPU of compute
            capability 8.0 or newer, in float16 or bfloat16.

    Returns:
        The names of the converted layers (empty if none qualifies: see :func:`plan`).

    Raises:
        UserError: one line, before anything changes, if the device or dtype has no 2:4
            kernel.
    """
    from torch.sparse import to_sparse_semi_structured

    _check_runnable(model)
    done = [name for name, status in plan(model).items() if status == CONVERTIBLE]
    modules = dict(model.named_modules())
    for name in done:
        layer = modules[name]
        layer.weight = nn.Parameter(to_sparse_semi_structured(layer.weight.detach()),
                                    requires_grad=False)
    return done
