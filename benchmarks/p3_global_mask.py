"""P3: one global 70% magnitude mask over ViT-B/32's visual tower, ours vs torch.

Ours is ``isp_lib.masks.magnitude_prune_to`` from a dense mask; torch's is
``torch.nn.utils.prune.global_unstructured`` with ``L1Unstructured``, applied to one holder
module per prunable tensor that shares that tensor's storage (so the model itself stays as it
was). Both are timed in this process, interleaved A, B, A, B.

Peak memory is a per-process high-water mark, so each variant also runs once in a fresh
subprocess, which resets the mark (Linux ``/proc/self/clear_refs``) after building the model and
reports the growth of ``VmHWM`` during the call (on a GPU: ``torch.cuda.max_memory_allocated``).
glibc's malloc raises its mmap threshold as large blocks are freed and then keeps freed blocks in
its heap, so the peak RSS of a call depends on the allocator's history; these runs fix the
threshold at glibc's initial 128 KiB (``MALLOC_MMAP_THRESHOLD_``), so that freed memory goes
back to the system and the peak tracks the bytes in use. Ours also runs ``reps`` times with the
dynamic threshold, for the record. The masks of the two measured runs are compared.

Worker: ``python -m benchmarks.p3_global_mask --variant ours|torch [--quick] [--out MASK]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils import prune

from benchmarks.common import (
    ROOT,
    Outcome,
    Row,
    Settings,
    clock_name,
    interleave,
    paired_ratio,
    seconds,
    sync,
    times,
    yes_no,
)
from isp_lib.io import load_mask, save_mask
from isp_lib.masks import Mask, magnitude_prune_to
from isp_lib.scope import prunable_params

NAME = "P3"
SPARSITY = 0.7
SPEED_TARGET = 0.1  # ours / torch: at least 10x faster
MEMORY_TARGET = 1.0  # peak extra memory, in copies of the pruned weights
VARIANTS = ("ours", "torch")
MMAP_THRESHOLD = str(128 * 1024)
QUICK_TENSORS = 8  # --quick: the first two resblocks only


def weights(seed: int, quick: bool, device: torch.device) -> tuple[nn.Module, dict]:
    """An open_clip ViT-B-32 at random init (seeded) and its prunable scope.

    Args:
        seed: init seed.
        quick: keep only the first :data:`QUICK_TENSORS` tensors of the scope.
        device: where the model goes.

    Returns:
        The model (kept alive by the caller, as when pruning one's own model) and
        name -> weight (detached), in scope order.
    """
    import open_clip  # seconds to import: only P3 needs it

    torch.manual_seed(seed)
    model = open_clip.create_model("ViT-B-32", pretrained=None).to(device)
    scope = list(prunable_params(model, "clip").items())
    return model, {n: p.detach() for n, p in scope[:QUICK_TENSORS if quick else None]}


def prune_with(variant: str, w: dict[str, torch.Tensor]) -> Mask:
    """One global magnitude mask at :data:`SPARSITY` over ``w``, by ``"ours"`` or ``"torch"``."""
    if variant == "ours":
        return magnitude_prune_to(w, Mask.ones_like(w), SPARSITY)
    holders = []
    for p in w.values():
        holder = nn.Module()
        holder.weight = nn.Parameter(p, requires_grad=False)  # same storage
        holders.append((holder, "weight"))
    prune.global_unstructured(holders, pruning_method=prune.L1Unstructured, amount=SPARSITY)
    return Mask({n: h.weight_mask.bool() for n, (h, _) in zip(w, holders, strict=True)})


def _memory_now(key: str) -> int | None:
    """``VmRSS`` or ``VmHWM`` of this process in bytes (None without Linux ``/proc``)."""
    try:
        status = Path("/proc/self/status").read_text().split("\n")
    except OSError:
        return None
    return next(int(line.split()[1]) * 1024 for line in status if line.startswith(key + ":"))


def _worker(args: argparse.Namespace) -> dict:
    """Build the weights, prune once with ``args.variant``, report the peak memory growth."""
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    _model, w = weights(args.seed, args.quick, device)
    gc.collect()
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        try:  # "5" resets VmHWM to VmRSS (getrusage's maxrss also counts the parent's)
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            base = None
        else:
            base = _memory_now("VmRSS")
    mask = prune_with(args.variant, w)
    sync(device)
    if device.type == "cuda":
        extra = torch.cuda.max_memory_allocated(device) - base
    else:
        extra = None if base is None else _memory_now("VmHWM") - base
    if args.out:
        save_mask(mask, Path(args.out))
    numel = sum(p.numel() for p in w.values())
    return {"extra_bytes": extra, "numel": numel, "tensors": len(w), "kept": mask.num_kept()}


def _spawn(variant: str, s: Settings, fixed: bool, out: Path | None = None) -> dict:
    """Run one worker in a fresh interpreter (``fixed``: fixed mmap threshold); its report."""
    cmd = [sys.executable, "-m", "benchmarks.p3_global_mask", "--variant", variant,
           "--seed", str(s.seed), "--threads", str(s.threads), "--device", s.device.type]
    cmd += ["--quick"] * s.quick + (["--out", str(out)] if out else [])
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"}
    env["OMP_NUM_THREADS"] = str(s.threads)
    if fixed:
        env["MALLOC_MMAP_THRESHOLD_"] = MMAP_THRESHOLD
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"P3 worker '{variant}' failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(w: dict[str, torch.Tensor], ours: Mask, ref: Mask) -> dict:
    """Check that two masks are the same global L1 selection.

    Both must keep the same count, ours must split kept and pruned at one magnitude, and any
    entry they disagree on must sit exactly at that magnitude (a tie, which torch's ``topk``
    breaks in no documented order).

    Args:
        w: the weights.
        ours, ref: the masks.

    Returns:
        Kept counts, the threshold and how many entries differ.

    Raises:
        AssertionError: if the masks differ beyond ties.
    """
    mags = {n: t.abs().cpu() for n, t in w.items()}
    ours, ref = ours.to("cpu"), ref.to("cpu")
    threshold = max(float(mags[n][~m].max()) for n, m in ours.items() if (~m).any())
    lowest_kept = min(float(mags[n][m].min()) for n, m in ours.items() if m.any())
    differ = {n: ours[n] ^ ref[n] for n in ours}
    n_differ = sum(int(d.sum()) for d in differ.values())
    off_tie = sum(int((mags[n][d] != threshold).sum()) for n, d in differ.items())
    if ours.num_kept() != ref.num_kept() or threshold > lowest_kept or off_tie:
        raise AssertionError(
            f"masks differ: kept {ours.num_kept()} vs {ref.num_kept()}, {n_differ} entries "
            f"differ, {off_tie} of them off the threshold {threshold}")
    return {"kept": ours.num_kept(), "threshold": threshold, "differ": n_differ}


def run(s: Settings) -> Outcome:
    """Time both variants here, measure their memory in subprocesses, compare their masks.

    Args:
        s: the settings (``quick``: two resblocks instead of twelve).

    Returns:
        Rows for time, peak extra memory (fixed and dynamic mmap threshold), mask equality.
    """
    _model, w = weights(s.seed, s.quick, s.device)
    timings = interleave({v: (lambda v=v: prune_with(v, w)) for v in VARIANTS}, s.reps,
                         s.device, "P3 masks")
    secs = timings.main(s.device)
    with tempfile.TemporaryDirectory() as tmp:
        paths = {v: Path(tmp) / f"{v}.pt" for v in VARIANTS}
        fixed = {v: _spawn(v, s, True, paths[v]) for v in VARIANTS}
        masks = {v: load_mask(paths[v]) for v in VARIANTS}
    dynamic = [_spawn("ours", s, False) for _ in range(s.reps)]
    check = compare(w, masks["ours"], masks["torch"])

    med = {v: statistics.median(x) for v, x in secs.items()}
    speed = paired_ratio(secs["ours"], secs["torch"])
    numel = sum(p.numel() for p in w.values())
    rows = [Row("P3 global mask time", seconds(med["ours"]), seconds(med["torch"]), times(speed),
                f"<= {SPEED_TARGET:.3f}x", yes_no(speed <= SPEED_TARGET))]
    mem_target = f"ours <= {MEMORY_TARGET:.0f} copy"
    if fixed["ours"]["extra_bytes"] is None:
        rows.append(Row("P3 peak extra memory", "n/a (needs Linux /proc)", "n/a", "-",
                        mem_target, "n/a"))
    else:
        copies = {v: fixed[v]["extra_bytes"] / (4 * numel) for v in VARIANTS}
        dyn = [r["extra_bytes"] / (4 * numel) for r in dynamic]
        rows += [
            Row("P3 peak extra memory", f"{copies['ours']:.2f} copies",
                f"{copies['torch']:.2f} copies", times(copies["ours"] / copies["torch"]),
                mem_target, yes_no(copies["ours"] <= MEMORY_TARGET)),
            Row("P3 ours, dynamic mmap threshold", f"{statistics.median(dyn):.2f} copies",
                f"range {min(dyn):.2f}-{max(dyn):.2f}", "-", "-", "n/a"),
        ]
    differ = f"{check['differ']} differ, all ties" if check["differ"] else "identical"
    rows.append(Row("P3 same mask", f"{check['kept']:,} kept", f"{fixed['torch']['kept']:,} kept",
                    differ, "same up to ties", "yes"))
    details = {"weights": numel, "tensors": len(w), "sparsity": SPARSITY,
               "clock": clock_name(s.device), "seconds": secs, "wall_seconds": timings.wall,
               "memory_fixed_threshold": fixed, "memory_dynamic_threshold": dynamic,
               "mask_check": check, "copy_bytes": 4 * numel}
    return Outcome(rows, details)


def main() -> int:
    """Worker entry point: prints one JSON line."""
    parser = argparse.ArgumentParser(description="P3 worker: one pruning call")
    parser.add_argument("--variant", choices=VARIANTS, required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=None)
    print(json.dumps(_worker(parser.parse_args())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
