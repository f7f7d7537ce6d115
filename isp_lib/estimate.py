"""What a sweep will cost before it runs: ``isp sweep CONFIG --estimate``.

Per cell: its optimizer steps (:func:`isp_lib.costs.plan_steps`, on the training-set size of
``train_sizes.yaml`` after the profile's caps), times the FLOPs of one training step
(:func:`isp_lib.flops.count_flops` on the architecture built on the meta device: shapes only,
no weights, no data, nothing downloaded), gives its training FLOPs, as
:func:`isp_lib.flops.record_flops` counts a finished run's; divided by a reference GPU's
training throughput (``throughput.yaml``: peak bf16 FLOP/s times an assumed utilisation, none
measured here), its GPU-hours. Everything is an estimate, not a measurement.

>>> est = estimate_sweep(load_sweep("results/paper_table2_cifar10.yaml"))  # doctest: +SKIP
>>> print(render(est))                                                     # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import textwrap
from collections import Counter
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import yaml
from torch.utils._python_dispatch import TorchDispatchMode

from isp_lib.costs import Plan, plan_steps
from isp_lib.errors import UserError
from isp_lib.profiles import get_profile

if TYPE_CHECKING:
    from isp_lib.records import Sweep
    from isp_lib.runs import RunConfig

#: Printed with every estimate.
NOT_MEASURED = "estimate, not measured"


@dataclass(frozen=True)
class Throughput:
    """One reference GPU's assumed training throughput for one model.

    Attributes:
        gpu: the key of ``throughput.yaml`` (``--gpu``).
        name: the GPU's full name.
        peak_tflops: its peak dense bf16 TFLOP/s (the vendor's datasheet).
        mfu: the share of the peak a training step of the model reaches.
        measured: whether ``mfu`` was measured (False: assumed).
        source: where ``mfu`` comes from.
    """

    gpu: str
    name: str
    peak_tflops: float
    mfu: float
    measured: bool
    source: str

    @property
    def flops_per_s(self) -> float:
        """Achieved training FLOP/s: ``peak x mfu``."""
        return self.peak_tflops * 1e12 * self.mfu

    def hours(self, flops: float) -> float:
        """GPU-hours of ``flops`` training FLOPs at :attr:`flops_per_s`."""
        return flops / self.flops_per_s / 3600


def _package_yaml(name: str) -> dict[str, Any]:
    with resources.files("isp_lib").joinpath(name).open() as f:
        return yaml.safe_load(f)


@cache
def train_sizes() -> dict[str, dict[str, Any]]:
    """``train_sizes.yaml``: data set -> ``{"train", "labels", "source"}``."""
    return _package_yaml("train_sizes.yaml")


@cache
def gpu_table() -> dict[str, Any]:
    """``throughput.yaml``: ``{"default": key, "gpus": {key: {...}}}``."""
    return _package_yaml("throughput.yaml")


def reference_gpu(key: str | None = None) -> str:
    """The ``--gpu`` key, checked; None gives the table's default.

    Raises:
        UserError: one line naming the known keys, for an unknown one.
    """
    table = gpu_table()
    key = table["default"] if key is None else key.lower()
    if key not in table["gpus"]:
        known = " or ".join(f"--gpu {k}" for k in table["gpus"])
        raise UserError(f"unknown reference GPU '{key}': use {known} "
                        "(isp_lib/throughput.yaml lists them)")
    return key


def throughput(gpu: str, model: str) -> Throughput:
    """The throughput entry of ``model`` on ``gpu`` (the ``other`` entry if it has none).

    Args:
        gpu: a key accepted by :func:`reference_gpu`.
        model: a model registry name.

    Returns:
        The :class:`Throughput`.
    """
    entry = gpu_table()["gpus"][reference_gpu(gpu)]
    figures = entry["models"].get(model, entry["models"]["other"])
    return Throughput(gpu=gpu, name=entry["name"], peak_tflops=float(entry["peak_bf16_tflops"]),
                      mfu=float(figures["mfu"]), measured=bool(figures["measured"]),
                      source=str(figures["source"]))


def data_size(data: str, profile: str) -> tuple[int, int]:
    """Training examples of a run and its classifier's outputs, without loading the data.

    The published training-split size (``train_sizes.yaml``) capped at the profile's
    ``max_train``, less the validation split carved off it (``isp_lib.data.split.carve_val``).

    Args:
        data, profile: registry names.

    Returns:
        ``(n_train, labels)``; ``labels`` is 1 for regression.

    Raises:
        UserError: for a data set without an entry in ``train_sizes.yaml``.
    """
    from isp_lib.data.split import carve_val

    entry = train_sizes().get(data)
    if entry is None:
        raise UserError(f"no training-split size for data set '{data}': add it to "
                        "isp_lib/train_sizes.yaml")
    prof = get_profile(profile)
    capped = entry["train"] if prof.max_train is None else min(entry["train"], prof.max_train)
    train_rows, _ = carve_val(capped, prof.val_fraction, prof.max_val, 0)
    return len(train_rows), int(entry["labels"])


class _OnMeta(TorchDispatchMode):
    """Keeps a model built under ``torch.device("meta")`` there, and answers its data-dependent
    checks as a full-length batch does: ``.item()`` of a meta tensor (transformers asks whether
    the attention mask is all ones) gives 1, and a copy to another device (open_clip moves a new
    model to the CPU) stays on the meta device."""

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        first = args[0] if args else None
        if isinstance(first, torch.Tensor) and first.is_meta:
            if func is torch.ops.aten._local_scalar_dense.default:
                return True if first.dtype == torch.bool else 1
            if func is torch.ops.aten._to_copy.default and kwargs.get("device") is not None:
                kwargs = {**kwargs, "device": torch.device("meta")}
        return func(*args, **kwargs)


@cache
def _count(model: str, kind: str, profile: str, batch_size: int, labels: int) -> int:
    """FLOPs of one training step of ``model`` with ``labels`` outputs on a full-length batch."""
    from isp_lib.data.base import RawData, Split
    from isp_lib.flops import count_flops
    from isp_lib.models import build_model

    prof = get_profile(profile)
    empty = Split(inputs=[], labels=np.zeros(0, dtype=np.int64))
    stub = RawData(name="estimate", kind=kind, train=empty, val=empty, test=empty,
                   class_names=[f"class {i}" for i in range(labels)], metric="accuracy",
                   num_labels=labels)
    quiet = logging.root.manager.disable
    logging.disable(logging.WARNING)  # open_clip warns that no weights were loaded: none are
    try:
        with torch.device("meta"), _OnMeta():
            bundle = build_model(model, stub, prof, pretrained=False)
    finally:
        logging.disable(quiet)
    # one example longer than any truncation (text) or any size the transform resizes from
    example = " ".join(["word"] * 4 * prof.max_len) if kind == "text" else \
        np.zeros((8, 8, 3), dtype=np.uint8)
    item = bundle.make_dataset(Split(inputs=[example], labels=np.zeros(1, dtype=np.int64)))[0]
    batch = {k: v.to("meta") for k, v in bundle.collate([item] * batch_size).items()}
    with _OnMeta():
        return count_flops(bundle.model, batch, {}).train_step


def step_flops(model: str, data: str, profile: str, batch_size: int) -> int:
    """FLOPs of one training step (forward, loss, backward) of a run, as ``count_flops`` counts
    them, on a batch of ``batch_size`` full-length examples (text at the profile's ``max_len``):
    the per-step count of :func:`isp_lib.report.flop_profile`, without weights or data.

    The architecture is built twice, with 2 and with 3 outputs, and the count is extended
    linearly to the data set's outputs (the head's FLOPs are linear in them), so that CLIP's
    zero-shot head is not built from the text tower once per class.

    Args:
        model, data, profile: registry names.
        batch_size: examples per step.

    Returns:
        The FLOPs.
    """
    from isp_lib.data import get_spec

    kind = get_spec(data).kind
    labels = data_size(data, profile)[1]
    two, three = (_count(model, kind, profile, batch_size, n) for n in (2, 3))
    return two + (labels - 2) * (three - two)


def _label(method: str, overrides: tuple[tuple[str, str], ...]) -> str:
    settings = " ".join(f"{k}={v}" for k, v in overrides)
    return f"{method} ({settings})" if settings else method


def _scale(cfg: RunConfig, batch_size: int, n_train: int, budget: int, gpu: str
           ) -> dict[str, Any]:
    """The estimate's line for one model, data set, profile and batch size."""
    tp = throughput(gpu, cfg.model)
    step = step_flops(cfg.model, cfg.data, cfg.profile, batch_size)
    return {"model": cfg.model, "data": cfg.data, "profile": cfg.profile,
            "batch_size": batch_size, "n_train": n_train, "budget_steps": budget,
            "step_flops": step, "mfu": tp.mfu, "achieved_tflops": tp.flops_per_s / 1e12,
            "samples_per_s": tp.flops_per_s / step * batch_size, "measured": tp.measured,
            "source": tp.source}


def _row(cfg: RunConfig, plan: Plan) -> dict[str, Any]:
    """An empty table row for the cells of ``cfg``'s model, data, method, settings, sparsity."""
    return {"model": cfg.model, "data": cfg.data, "method": cfg.method,
            "label": _label(cfg.method, cfg.overrides), "settings": dict(cfg.overrides),
            "sparsity": cfg.sparsity, "cells": 0, "recorded": 0, "complete": 0,
            "steps_per_cell": plan.steps, "budget_steps": plan.budget, "cost_T": plan.cost,
            "bound": plan.bound, "train_flops": 0.0, "gpu_hours": 0.0}


def estimate_sweep(sweep: Sweep, gpu: str | None = None) -> dict[str, Any]:
    """The cost of every cell of a sweep, before anything runs.

    Args:
        sweep: the sweep (``isp_lib.records.load_sweep``).
        gpu: the reference GPU (``throughput.yaml`` key); None for the table's default.

    Returns:
        A JSON-ready dict: ``sweep``, ``records``, ``out``, ``estimate`` (:data:`NOT_MEASURED`),
        ``gpu`` (key, name, peak, whether it is the default), ``scales`` (per model, data,
        profile and batch size: ``n_train``, ``budget_steps``, ``step_flops`` and the
        throughput assumed), ``rows`` (per model, data, method with its settings, and sparsity,
        in the registry's method order: ``cells``, ``recorded``, ``complete``,
        ``steps_per_cell``, ``budget_steps``, ``cost_T``, ``bound``, ``train_flops``,
        ``gpu_hours``), ``total``, ``left`` (the cells without a complete run) and ``notes``.
    """
    from isp_lib.methods import METHODS
    from isp_lib.methods.soup_ingredients import SoupIngredients
    from isp_lib.records import read_records
    from isp_lib.runs import resolve

    key = reference_gpu(gpu)
    recorded = {r["config_hash"] for r in read_records(sweep.records)}
    scales: dict[tuple, dict[str, Any]] = {}
    rows: dict[tuple, dict[str, Any]] = {}
    left = {"cells": 0, "train_flops": 0.0, "gpu_hours": 0.0}
    notes: set[str] = set()
    for cfg in sweep.cells:
        res = resolve(cfg)
        hp = res.hparams
        n_train, labels = data_size(cfg.data, cfg.profile)
        plan = plan_steps(cfg.method, n_train, hp, res.options, cfg.sparsity, labels, res.family)
        scale_key = (cfg.model, cfg.data, cfg.profile, hp.batch_size)
        if scale_key not in scales:
            scales[scale_key] = _scale(cfg, hp.batch_size, n_train, plan.budget, key)
        flops = float(scales[scale_key]["step_flops"]) * plan.steps
        hours = throughput(key, cfg.model).hours(flops)
        complete = (sweep.out / cfg.dir_name() / "result.json").exists()
        row = rows.setdefault((cfg.model, cfg.data, _label(cfg.method, cfg.overrides),
                               cfg.sparsity), _row(cfg, plan))
        for tally in [row] if complete else [row, left]:
            tally["cells"] += 1
            tally["train_flops"] += flops
            tally["gpu_hours"] += hours
        row["recorded"] += cfg.config_hash() in recorded
        row["complete"] += complete
        if plan.note:
            notes.add(plan.note)
    soups = Counter(json.dumps({k: v for k, v in c.resolved.items()
                                if k not in ("method", "options")}, sort_keys=True)
                    for c in sweep.cells if issubclass(METHODS[c.method], SoupIngredients))
    if any(n > 1 for n in soups.values()):
        notes.add("soups of one seed and settings share their ingredients (isp_lib.shared): "
                  "steps and cost count each soup's N fine-tunes, but only the first soup to "
                  "run trains them, so the others' FLOPs and GPU-hours are mostly not spent")
    if any(r["bound"] for r in rows.values()):
        notes.add("<= marks an upper bound: ISP's look-ahead rounds (it may reach its target "
                  "in fewer), EarlyBird's search (it may draw its ticket before T)")
    float32 = sum(not c.bf16 for c in sweep.cells)
    if float32:
        notes.add(f"{float32} of {len(sweep.cells)} cells run without bf16 autocast (the smoke "
                  "and cpu profiles, or --no-bf16): float32 on a GPU is several times slower "
                  "than these bf16 figures")
    order = {name: i for i, name in enumerate(METHODS)}  # the registry's order: the paper's rows
    table = sorted(rows.values(), key=lambda r: (r["model"], r["data"],
                                                 order.get(r["method"], len(order)), r["label"],
                                                 r["sparsity"]))
    total = {k: sum(r[k] for r in table)
             for k in ("cells", "recorded", "complete", "train_flops", "gpu_hours")}
    entry = gpu_table()["gpus"][key]
    return {
        "sweep": sweep.name, "records": str(sweep.records), "out": str(sweep.out),
        "estimate": NOT_MEASURED,
        "gpu": {"key": key, "name": entry["name"], "peak_bf16_tflops": entry["peak_bf16_tflops"],
                "peak_source": entry["peak_source"], "default": key == gpu_table()["default"]},
        "scales": list(scales.values()), "rows": table, "total": total, "left": left,
        "notes": sorted(notes),
    }


def _flop(x: float) -> str:
    """FLOPs in PFLOP, with as many decimals as a small figure needs."""
    p = x / 1e15
    return f"{p:,.1f}" if p >= 0.1 or p == 0 else f"{p:.2g}"


def _hours(h: float) -> str:
    return f"{h:,.2f}" if h >= 0.01 or h == 0 else f"{h:.2g}"


def render(est: dict[str, Any]) -> str:
    """The estimate as people read it: a head, one line per model scale, a table per model,
    data, method and sparsity, a total line, a line for the cells left to run, and notes.

    Args:
        est: :func:`estimate_sweep`'s result.

    Returns:
        The text, without a trailing newline.
    """
    gpu, total, left = est["gpu"], est["total"], est["left"]
    default = ", the default" if gpu["default"] else ""
    prose = [
        f"sweep {est['sweep']}: {total['cells']} cells, {total['recorded']} recorded in "
        f"{est['records']}, {total['complete']} complete under {est['out']}",
        f"{NOT_MEASURED}: GPU-hours on one {gpu['name']} at bf16 (--gpu {gpu['key']}{default})",
    ]
    for s in est["scales"]:
        state = "measured" if s["measured"] else "assumed, not measured"
        prose.append(
            f"{s['model']} / {s['data']} ({s['profile']} profile): {s['n_train']:,} training "
            f"examples, T = {s['budget_steps']:,} steps of {s['batch_size']}, "
            f"{s['step_flops'] / 1e12:,.3g} TFLOP per step, at {s['achieved_tflops']:,.0f} "
            f"TFLOP/s = MFU {s['mfu']:g} x {gpu['peak_bf16_tflops']:,} TFLOP/s peak ({state}): "
            f"~{s['samples_per_s']:,.0f} samples/s")
    lines = [textwrap.fill(p, width=100, subsequent_indent="  ") for p in prose]
    several = len({(r["model"], r["data"]) for r in est["rows"]}) > 1
    head = (["model", "data"] if several else []) + ["method", "sparsity", "cells", "steps/cell",
                                                     "T/cell", "train PFLOP", "GPU-hours"]
    body = [([r["model"], r["data"]] if several else [])
            + [r["label"], f"{r['sparsity']:g}", str(r["cells"]),
               ("<=" if r["bound"] else "") + f"{r['steps_per_cell']:,}",
               f"{r['cost_T']:.2f}", _flop(r["train_flops"]), _hours(r["gpu_hours"])]
            for r in est["rows"]]
    pad = [""] * (len(head) - 6)
    body.append(["total", *pad, str(total["cells"]), "", "", _flop(total["train_flops"]),
                 _hours(total["gpu_hours"])])
    body.append(["left to run", *pad, str(left["cells"]), "", "", _flop(left["train_flops"]),
                 _hours(left["gpu_hours"])])
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    text_cols = 3 if several else 1
    for row in [head, *body]:
        lines.append("  ".join(cell.ljust(w) if i < text_cols else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
                     .rstrip())
    notes = [f"note: {n}" for n in est["notes"]] + [
        "FLOPs: torch's flop counter (isp_lib.flops.count_flops) on one full-length training "
        "step of the architecture (no weights), times the optimizer steps; evaluation and data "
        "loading are not counted; throughput from isp_lib/throughput.yaml"]
    lines.extend(textwrap.fill(n, width=100, subsequent_indent="  ") for n in notes)
    return "\n".join(lines)
