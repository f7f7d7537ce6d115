"""One experiment = one frozen :class:`RunConfig` = one run directory named by its hash.

A run directory holds ``config.json``, ``ckpt.pt`` while running, and at the end ``mask.pt``
and ``result.json`` (written last, atomically). A complete run is skipped; an interrupted one
resumes from its last checkpoint; anything else in the way is reported as corrupt.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from isp_lib.context import RunContext
from isp_lib.data import dataset_names, load_data
from isp_lib.errors import UserError
from isp_lib.io import save_mask, write_json, write_torch
from isp_lib.methods import get_method
from isp_lib.methods.base import option_names, parse_options
from isp_lib.models import build_model, model_family
from isp_lib.profiles import Hparams, get_profile
from isp_lib.train import evaluate

RESULT_FIELDS = (
    "method", "model", "data", "target_sparsity", "actual_sparsity", "metric_name",
    "val_metric", "test_metric", "train_steps", "samples_seen", "wall_s", "seed",
    "config_hash", "isp_lib_version", "git_commit", "torch_version", "host",
)


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines an experiment (and so its hash).

    Attributes:
        method, model, data, profile: registry names.
        sparsity: target share of pruned weights over the prunable scope, in [0, 1).
        seed: run seed (model head init, data order, look-ahead subsets).
        overrides: sorted ``(key, value)`` strings: profile hyperparameters and method options.
        model_source: checkpoint override (hub id, local folder or file); None = default.
        data_source: data override (local folder of parquet files / IDX files); None = default.
        bf16: bf16 autocast on CUDA.
    """

    method: str
    model: str
    data: str
    sparsity: float
    profile: str
    seed: int = 0
    overrides: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    model_source: str | None = None
    data_source: str | None = None
    bf16: bool = False

    def config_hash(self) -> str:
        """First 12 hex digits of the SHA-256 of the canonical JSON of the config."""
        blob = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def dir_name(self) -> str:
        """Run directory name: readable prefix plus the config hash."""
        return f"{self.method}_{self.model}_{self.data}_{self.config_hash()}"


def make_config(
    method: str, model: str, data: str, sparsity: float, profile: str, seed: int = 0,
    overrides: dict[str, str] | None = None, model_source: str | None = None,
    data_source: str | None = None, bf16: bool = False,
) -> RunConfig:
    """Validate the arguments (raising :class:`UserError`) and freeze them into a config."""
    if not isinstance(sparsity, int | float) or not 0.0 <= float(sparsity) < 1.0:
        raise UserError(f"sparsity {sparsity} is outside [0, 1): pass e.g. --sparsity 0.7")
    cfg = RunConfig(
        method=method, model=model, data=data, sparsity=float(sparsity), profile=profile,
        seed=int(seed), overrides=tuple(sorted((k, str(v)) for k, v in (overrides or {}).items())),
        model_source=model_source, data_source=data_source, bf16=bf16,
    )
    resolve(cfg)
    return cfg


@dataclass
class Resolved:
    """A config's registry entries, looked up and checked."""

    method: Any
    options: Any
    hparams: Hparams
    family: str


def resolve(cfg: RunConfig) -> Resolved:
    """Look up method, profile, model family and options; raise :class:`UserError` on any."""
    method = get_method(cfg.method)
    profile = get_profile(cfg.profile)
    family = model_family(cfg.model)
    if cfg.data not in dataset_names():
        raise UserError(f"unknown data '{cfg.data}': use one of {', '.join(dataset_names())}")
    hp_keys = set(Hparams.__dataclass_fields__)
    opt_keys = set(option_names(method.Options))
    raw = dict(cfg.overrides)
    unknown = sorted(set(raw) - hp_keys - opt_keys)
    if unknown:
        raise UserError(
            f"unknown setting(s) {', '.join(unknown)} for method '{cfg.method}': use "
            f"hyperparameters ({', '.join(sorted(hp_keys))}) or options "
            f"({', '.join(sorted(opt_keys)) or 'none'})"
        )
    hparams = profile.hparams_for(family, {k: v for k, v in raw.items() if k in hp_keys})
    if not 0.0 < hparams.rate < 1.0:
        raise UserError(f"rate {hparams.rate} is outside (0, 1): pass e.g. --set rate=0.1")
    options = parse_options(method.Options, {k: v for k, v in raw.items() if k in opt_keys})
    method.validate(cfg.sparsity, options)
    return Resolved(method, options, hparams, family)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA if available else CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda"):
        raise UserError(f"unknown device '{name}': use auto, cpu or cuda")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda but no CUDA device is visible: use --device cpu or auto")
    return torch.device(name)


def _git_commit() -> str:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--", "."],
                               capture_output=True, text=True, timeout=10).stdout
        return out + ("+dirty" if dirty.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def host_info(device: torch.device) -> dict[str, Any]:
    """Cores, torch threads, device and its name."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    return {"cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "device": device.type, "device_name": name or platform.machine(),
            "hostname": platform.node()}


def _version() -> str:
    try:
        return metadata.version("isp-lib")
    except metadata.PackageNotFoundError:
        return "unknown"


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(
            f"run directory {path.parent} is corrupt ({path.name}: {exc.__class__.__name__}): "
            "delete it and rerun"
        ) from None


def load_result(run_dir: Path) -> dict | None:
    """The result record of a complete run, or None if the run is not complete."""
    path = Path(run_dir) / "result.json"
    if not path.exists():
        return None
    result = _read_json(path)
    missing = [k for k in RESULT_FIELDS if k not in result]
    if missing:
        raise UserError(f"run directory {run_dir} is corrupt (result.json lacks {missing[0]}): "
                        "delete it and rerun")
    return result


def run(cfg: RunConfig, out: Path, device: str = "auto") -> dict:
    """Run (or skip, or resume) the experiment ``cfg`` under ``out``.

    Args:
        cfg: the experiment.
        out: parent folder of run directories.
        device: ``auto``, ``cpu`` or ``cuda``.

    Returns:
        The result record (also in ``<run dir>/result.json``), with ``"skipped": True`` added
        if it was already complete.
    """
    res = resolve(cfg)
    dev = resolve_device(device)
    run_dir = Path(out) / cfg.dir_name()
    done = load_result(run_dir)
    if done is not None:
        return {**done, "skipped": True}
    config_path, ckpt_path = run_dir / "config.json", run_dir / "ckpt.pt"
    if run_dir.exists():
        if config_path.exists() and _read_json(config_path).get("config_hash") != \
                cfg.config_hash():
            raise UserError(f"run directory {run_dir} holds another config: delete it and rerun")
        if not config_path.exists() and any(run_dir.iterdir()):
            raise UserError(f"run directory {run_dir} is corrupt (no config.json): "
                            "delete it and rerun")

    profile = get_profile(cfg.profile)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    data = load_data(cfg.data, profile, source=cfg.data_source)
    bundle = build_model(cfg.model, data, profile, source=cfg.model_source)
    model = bundle.model.to(dev)
    train_set, val_set = bundle.make_dataset(data.train), bundle.make_dataset(data.val)
    test_set = bundle.make_dataset(data.test)

    write_json(config_path, {**asdict(cfg), "config_hash": cfg.config_hash()})
    commit = _git_commit()  # the code that runs, read before it runs
    start = time.perf_counter()
    ctx = RunContext(model=model, family=res.family, train_set=train_set, val_set=val_set,
                     collate=bundle.collate, metric=data.metric, hp=res.hparams,
                     sparsity=cfg.sparsity, seed=cfg.seed, device=dev, bf16=cfg.bf16)

    def save(payload: dict) -> None:
        payload["progress"]["wall_s"] = wall_before + time.perf_counter() - start
        write_torch(ckpt_path, payload)

    ctx.save_fn = save
    ctx.artifact_dir = run_dir / "artifacts"
    if ckpt_path.exists():
        try:
            payload = torch.load(ckpt_path, map_location=dev, weights_only=False)
            ctx.load(payload)
        except UserError:
            raise
        except Exception as exc:
            raise UserError(f"run directory {run_dir} is corrupt (ckpt.pt: "
                            f"{exc.__class__.__name__}): delete it and rerun") from None
    wall_before = float(ctx.progress.get("wall_s", 0.0))

    res.method.run(ctx, res.options)
    test_metric = evaluate(model, test_set, bundle.collate, data.metric, dev, bf16=cfg.bf16)
    result = {
        "method": cfg.method, "model": cfg.model, "data": cfg.data, "profile": cfg.profile,
        "target_sparsity": cfg.sparsity, "actual_sparsity": ctx.mask.sparsity(),
        "metric_name": data.metric, "val_metric": ctx.progress.get("best_val"),
        "test_metric": test_metric, "train_steps": ctx.ledger.steps,
        "samples_seen": ctx.ledger.samples, "ledger": ctx.ledger.to_dict(),
        "budget_steps": ctx.budget, "wall_s": wall_before + time.perf_counter() - start,
        "seed": cfg.seed, "config": asdict(cfg), "config_hash": cfg.config_hash(),
        "hparams": asdict(res.hparams), "options": asdict(res.options),
        "progress": {k: v for k, v in ctx.progress.items() if k != "wall_s"},
        "isp_lib_version": _version(), "git_commit": commit,
        "torch_version": torch.__version__, "host": host_info(dev),
        "sizes": {"train": len(train_set), "val": len(val_set), "test": len(test_set)},
    }
    save_mask(ctx.mask, run_dir / "mask.pt")
    write_json(run_dir / "result.json", result)
    ckpt_path.unlink(missing_ok=True)
    shutil.rmtree(ctx.artifact_dir, ignore_errors=True)
    return result
