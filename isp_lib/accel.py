"""Keeping a GPU busy: how a run feeds and steps its model, apart from what it computes.

At the ``paper`` profile on CUDA (:data:`FAST_PROFILES`) a run takes the fast path
(:func:`plan`):

* batches come through a ``torch.utils.data.DataLoader`` into pinned memory, so the copy to the
  GPU overlaps the step before it (:func:`isp_lib.train.feed`). Text is tokenised once up
  front; CLIP's images are decoded once into uint8 tensors at their stored size and resized and
  normalised on the GPU by the model (:class:`isp_lib.models.clip.DevicePreprocess`). Building
  such a batch is an index and a stack, microseconds, so it stays in the main thread (worker
  processes would add more inter-process copying than they save); only data sets that decode
  every item when read (images of mixed sizes, on PIL) get :attr:`Accel.workers` processes;
* bf16 autocast by default (:func:`auto_bf16`; ``--no-bf16`` turns it off), TF32 matmuls
  (:func:`matmul_precision`) and fused AdamW;
* evaluation batches sized to the GPU's memory (:func:`eval_batch_size`);
* no host synchronisation per step: the trainer keeps its losses on the device and reads them
  once per :meth:`~isp_lib.train.Trainer.train` call (the ledger counts steps, not losses;
  validation, which selects weights, still reads its metric when it runs);
* ``--compile`` (any profile) runs the training forward through ``torch.compile``.

Everywhere else (the ``cpu`` and ``smoke`` profiles on any device, any profile on the CPU) the
plain path runs as before: batches built in the main thread in the same order, float32,
evaluation batch 64; a rerun of a committed ``cpu`` record on the CPU is bit-identical.

What enters the config hash (:func:`isp_lib.runs.resolved_config`): bf16 does, as before (it
changes the numbers well beyond rounding). The rest does not. The loader, pinned memory and the
per-call loss read change no number. TF32, fused AdamW, the device-side resize and the
evaluation batch change floating-point rounding; they follow from the profile and the device,
as the kernels a device runs do, and the hash names neither (a ``paper`` record is made on
CUDA, so always on this path). ``--compile`` computes the same function as eager mode, but
Inductor's fused kernels round differently, so a compiled run is not bit-identical to an eager
one either; it is left out of the hash for the same reason, and a record says whether it was
compiled (``accel``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch

#: Profiles whose runs take the fast path on CUDA. ``cpu`` and ``smoke`` keep the plain path
#: on every device: their committed records are computed as before.
FAST_PROFILES = ("paper",)
#: Evaluation examples per batch per 4 GiB of GPU memory, and the most per batch.
EVAL_PER_4GIB, EVAL_MAX = 64, 1024
#: The most DataLoader worker processes for data sets that decode each item when read.
MAX_WORKERS = 8


@dataclass(frozen=True)
class Accel:
    """How a run uses its device (see the module docstring); the defaults are the plain path.

    Attributes:
        loader: feed batches through a ``DataLoader`` (:func:`isp_lib.train.feed`).
        workers: worker processes of that loader, for data sets that decode each item when
            read (``decodes_per_item``); in-memory data sets use none.
        pin_memory: pin each batch, so that the copy to the GPU is asynchronous.
        device_images: CLIP reads images decoded once into uint8 and resizes them on the device
            (:attr:`isp_lib.models.ModelBundle.make_device_dataset`).
        eval_batch: evaluation batch size.
        fused_adamw: ``AdamW(fused=True)``.
        tf32: TF32 matmuls on CUDA (:func:`matmul_precision`).
        compile: run the training forward through ``torch.compile``.
    """

    loader: bool = False
    workers: int = 0
    pin_memory: bool = False
    device_images: bool = False
    eval_batch: int = 64
    fused_adamw: bool = False
    tf32: bool = False
    compile: bool = False



#: The plain path: what every run did before this module, and does off the fast path.
PLAIN = Accel()


def plan(profile: str, device: torch.device, compile: bool = False) -> Accel:
    """The path a run of ``profile`` on ``device`` takes.

    Args:
        profile: the run's profile name.
        device: where the run trains.
        compile: ``--compile``: run the training forward through ``torch.compile``.

    Returns:
        The fast path for :data:`FAST_PROFILES` on CUDA, else the plain path (with ``compile``
        as asked either way).

    >>> plan("paper", torch.device("cpu")) == PLAIN
    True
    """
    if profile not in FAST_PROFILES or device.type != "cuda":
        return Accel(compile=compile)
    return Accel(loader=True, workers=default_workers(), pin_memory=True, device_images=True,
                 eval_batch=eval_batch_size(device), fused_adamw=True, tf32=True,
                 compile=compile)


def default_workers() -> int:
    """Loader workers for per-item decoding: the cores this process may use but one, at most
    :data:`MAX_WORKERS`, at least one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(MAX_WORKERS, (cores or 1) - 1))


def eval_batch_size(device: torch.device) -> int:
    """Evaluation batch size on ``device``: 64 on the CPU; on CUDA :data:`EVAL_PER_4GIB` per
    4 GiB of the GPU's memory (no gradients are kept), between 64 and :data:`EVAL_MAX`.

    Args:
        device: the run's device.

    Returns:
        Examples per evaluation batch (e.g. 192 on a 15 GiB T4, 1024 on an 80 GiB H100).
    """
    if device.type != "cuda":
        return 64
    gib = torch.cuda.get_device_properties(device).total_memory / 2**30
    return EVAL_PER_4GIB * max(1, min(EVAL_MAX // EVAL_PER_4GIB, int(gib // 4)))


@contextlib.contextmanager
def matmul_precision(accel: Accel) -> Iterator[None]:
    """Allow TF32 float32 matmuls inside the block if ``accel.tf32`` (CUDA convolutions allow it
    by default); the previous setting comes back afterwards, so that later runs in the same
    process (a sweep's next cell) are unaffected."""
    if not accel.tf32:
        yield
        return
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before)


def auto_bf16(profile: str, device: str) -> bool:
    """Whether ``isp run`` / ``isp sweep`` use bf16 autocast when neither ``--bf16`` nor
    ``--no-bf16`` is given: as a chapter's ``BF16 = None`` (:func:`isp_lib.kit.resolve_bf16`),
    on at :data:`FAST_PROFILES` on a CUDA device with native bf16. ``--device cuda`` where no
    GPU is visible (a Slurm or Ray driver whose jobs run on GPU nodes) counts as native bf16.

    Args:
        profile: the profile name.
        device: ``auto``, ``cpu`` or ``cuda``.

    Returns:
        The run's ``bf16`` setting (part of the config hash).

    >>> auto_bf16("cpu", "cuda"), auto_bf16("paper", "cpu")
    (False, False)
    """
    from isp_lib.kit import resolve_bf16

    if profile not in FAST_PROFILES:
        return False
    if device == "cuda" and not torch.cuda.is_available():
        return True
    return resolve_bf16(None, profile, device)
