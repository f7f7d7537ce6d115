"""One experiment = one frozen :class:`RunConfig` = one run directory named by its hash.

A run directory holds ``config.json``, ``ckpt.pt`` while running, ``attempts.json`` (the wall
clock of each attempt), ``.lock`` (held while a process runs it), and at the end ``mask.pt``,
``model.safetensors`` (the final weights, unless the run was made without them) and
``result.json`` (written last, atomically). Beside the run directories, ``.shared/`` keeps work
that several runs would repeat (:mod:`isp_lib.shared`). A complete run is skipped only if its
``result.json`` has the config's hash, its ``mask.pt`` is the one the result describes and its
``model.safetensors`` has the size the result records; an
interrupted one resumes from its last checkpoint if the checkpoint carries the same hash;
anything else in the way is reported as corrupt, in one line. Nothing is ever unpickled.

The hash covers the *resolved* configuration (hyperparameters and method options after the
profile's defaults and the overrides, numbers normalised) and :data:`NUMERICS`, so a record is
reused only for the same computation.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from isp_lib.accel import PLAIN, matmul_precision, plan
from isp_lib.context import RunContext
from isp_lib.data import dataset_names, load_data
from isp_lib.errors import UserError
from isp_lib.io import (
    _atomic,
    load_mask,
    mask_digest,
    read_torch,
    save_mask,
    write_json,
    write_torch,
)
from isp_lib.methods import get_method
from isp_lib.methods.base import option_names, parse_options
from isp_lib.models import build_model, model_family
from isp_lib.predictions import confusion, encode_predictions, labels_sha256
from isp_lib.profiles import Hparams, get_profile
from isp_lib.ranges import resolved_fields
from isp_lib.shared import SHARED_DIR, SharedWork
from isp_lib.train import predict, score

RESULT_FIELDS = (
    "method", "model", "data", "target_sparsity", "actual_sparsity", "metric_name",
    "val_metric", "test_metric", "train_steps", "samples_seen", "wall_s", "seed",
    "config_hash", "resolved", "numerics", "mask_digest", "isp_lib_version", "git_commit",
    "torch_version", "host", "test_predictions", "test_labels_sha256",
)

#: Version of what a run computes for a given resolved configuration. Bump it with any change
#: that alters a run's numbers (random streams, a method's rule, a default of the code rather
#: than of a profile): it enters the config hash, so older records and run directories are
#: no longer reused. 2: random streams named by ``(seed, stream name)`` (isp_lib.seeds).
NUMERICS = 2

#: The final weights of a complete run, in its run directory (see :func:`save_weights`).
WEIGHTS_FILE = "model.safetensors"


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

    @cached_property
    def resolved(self) -> dict[str, Any]:
        """The resolved configuration: what the run computes from (see :func:`resolved_config`)."""
        return resolved_config(self)

    def config_hash(self) -> str:
        """First 12 hex digits of the SHA-256 of the canonical JSON of :attr:`resolved`."""
        blob = json.dumps(self.resolved, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def dir_name(self) -> str:
        """Run directory name: readable prefix plus the config hash."""
        return f"{self.method}_{self.model}_{self.data}_{self.config_hash()}"


def config_dict(cfg: RunConfig) -> dict[str, Any]:
    """The record's ``config``: the run as asked for (overrides as given), JSON-ready.

    >>> config_dict(make_config("oneshot", "minilm", "drugreview", 0.5, "smoke",
    ...                         overrides={"lr": "1e-3"}))["overrides"]
    [['lr', '1e-3']]
    """
    return json.loads(json.dumps(asdict(cfg)))


def make_config(
    method: str, model: str, data: str, sparsity: float, profile: str, seed: int = 0,
    overrides: dict[str, str] | None = None, model_source: str | None = None,
    data_source: str | None = None, bf16: bool = False,
) -> RunConfig:
    """Validate the arguments (raising :class:`UserError`) and freeze them into a config."""
    if isinstance(sparsity, bool) or not isinstance(sparsity, int | float) or \
            not 0.0 <= float(sparsity) < 1.0:
        raise UserError(f"sparsity {sparsity} is outside [0, 1): pass e.g. --sparsity 0.7")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UserError(f"seed {seed} is not a whole number >= 0: pass e.g. --seed 0")
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
    if profile.tiny and cfg.model_source is not None:
        raise UserError(f"--model-source has no effect with the {profile.name} profile (tiny "
                        "random-init models): drop it, or use --profile cpu or paper")
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
    options = parse_options(method.Options, {k: v for k, v in raw.items() if k in opt_keys})
    method.validate(cfg.sparsity, options)
    method.check_family(family, options)
    return Resolved(method, options, hparams, family)


def _canonical(value: Any) -> Any:
    """JSON-ready, with every number as a float (``2 == 2.0``, ``1e-3 == 0.001``)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    raise TypeError(f"cannot canonicalise {type(value).__name__}")


def resolved_config(cfg: RunConfig) -> dict[str, Any]:
    """What a run computes from: registry names, the profile's data scale (caps, validation
    share, text length), sparsity, seed, the resolved hyperparameters and method options
    (defaults and overrides applied, numbers normalised; options added later left out at their
    default, see :func:`~isp_lib.ranges.added_later`), the sources, bf16 and
    :data:`NUMERICS`. The config hash is the hash of this; records keep it as ``resolved``.

    Raises:
        UserError: if the config does not resolve (see :func:`resolve`).
    """
    res = resolve(cfg)
    profile = get_profile(cfg.profile)
    scale = {k: getattr(profile, k) for k in ("tiny", "max_train", "max_test", "val_fraction",
                                               "max_val", "max_len")}
    return _canonical({
        "numerics": NUMERICS, "method": cfg.method, "model": cfg.model, "data": cfg.data,
        "profile": cfg.profile, "scale": scale, "sparsity": cfg.sparsity, "seed": cfg.seed,
        "hparams": asdict(res.hparams), "options": resolved_fields(res.options),
        "model_source": cfg.model_source, "data_source": cfg.data_source, "bf16": cfg.bf16,
    })


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA if available else CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda"):
        raise UserError(f"unknown device '{name}': use auto, cpu or cuda")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda but no CUDA device is visible: use --device cpu or auto")
    return torch.device(name)


def current_commit() -> str:
    """The kit's git commit (``+dirty`` if ``isp_lib`` has uncommitted changes), or unknown."""
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
    """Cores, torch threads, device and its name, and the CPU's vector instructions that
    torch's kernels use (``AVX2``, ``AVX512``, ...: float results may differ between them)."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    return {"cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "device": device.type, "device_name": name or platform.machine(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "hostname": platform.node()}


def _version() -> str:
    try:
        return metadata.version("isp-lib")
    except metadata.PackageNotFoundError:
        return "unknown"


def _read_json(path: Path) -> dict:
    try:
        obj = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(
            f"run directory {path.parent} is corrupt ({path.name}: {exc.__class__.__name__}): "
            "delete it and rerun"
        ) from None
    if not isinstance(obj, dict):
        raise UserError(f"run directory {path.parent} is corrupt ({path.name} is not a mapping): "
                        "delete it and rerun")
    return obj


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


def trusted_result(run_dir: Path, cfg: RunConfig) -> dict | None:
    """The result of a complete run of ``cfg`` in ``run_dir``, after checking it is that run's.

    Returns:
        The record, or None if the run is not complete.

    Raises:
        UserError: if ``result.json`` belongs to another configuration, or ``mask.pt`` is
            missing, unreadable or not the mask the result describes.
    """
    result = load_result(run_dir)
    if result is None:
        return None
    if result["config_hash"] != cfg.config_hash() or result["resolved"] != cfg.resolved:
        raise UserError(f"run directory {run_dir} holds the result of another configuration "
                        f"(hash {result['config_hash']}): delete it and rerun")
    mask = load_mask(Path(run_dir) / "mask.pt")
    if mask_digest(mask) != result["mask_digest"]:
        raise UserError(f"run directory {run_dir} is corrupt (mask.pt is not the mask that "
                        "result.json describes): delete it and rerun")
    if result.get("model_file"):
        weights = Path(run_dir) / str(result["model_file"])
        size = weights.stat().st_size if weights.is_file() else None
        if size != result.get("model_bytes"):
            raise UserError(f"run directory {run_dir} is corrupt ({weights.name} is "
                            f"{'missing' if size is None else 'not the file result.json records'}"
                            "): delete it and rerun")
    return result


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_weights(model: nn.Module, path: Path, config_hash: str) -> dict[str, Any]:
    """Write a model's state dict (parameters and buffers, on the CPU) as safetensors, atomically.

    Args:
        model: the final model; pruned entries are already exactly zero.
        path: the file (``<run dir>/model.safetensors``).
        config_hash: stored in the file's metadata.

    Returns:
        The record's ``model_file``, ``model_bytes`` and ``model_sha256``.
    """
    state = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
    _atomic(path, lambda tmp: save_file(state, tmp, metadata={"config_hash": config_hash}))
    return {"model_file": path.name, "model_bytes": path.stat().st_size,
            "model_sha256": file_sha256(path)}


def check_out(out: Path) -> list[Path]:
    """Check that run directories can be created under ``out``, creating nothing.

    Returns:
        The folders, from ``out`` upwards, that do not exist yet (a run creates them).

    Raises:
        UserError: one line, if ``out`` (or the folder it would be created in) is a file or
            not writable.
    """
    out = Path(out).absolute()
    missing = []
    here = out
    while not here.exists():
        missing.append(here)
        here = here.parent
    if not here.is_dir():
        raise UserError(f"--out {out}: {here} is a file: pass a folder for the run directories")
    if not os.access(here, os.W_OK | os.X_OK):
        raise UserError(f"--out {out}: {here} is not writable: pass a folder you can write to")
    return missing


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir/.lock`` (``fcntl.flock``) for the duration; a second holder is refused.

    A lock left by a killed process is free again (the kernel drops it with the process), so
    the next run takes it over.

    Raises:
        UserError: "already running (pid N)" if another process holds it.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / ".lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise UserError(f"run directory {run_dir} is already running (pid {holder}): wait "
                            "for it to finish, then run again to get its result") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


class AttemptClock:
    """The wall clock of a run over its attempts, kept in ``attempts.json``.

    Each attempt appends an entry ``{"start", "elapsed", "saved"}``; a heartbeat rewrites its
    ``elapsed`` every ``beat_s`` seconds, and each checkpoint sets ``saved`` to the elapsed time
    it covers. A killed attempt's entry so keeps its time up to the last heartbeat, and
    ``elapsed - saved`` is the work the next attempt had to redo.
    """

    def __init__(self, path: Path, beat_s: float = 5.0) -> None:
        self.path = path
        prior = _read_json_list(path)
        self.prior = [a for a in prior if isinstance(a, dict)]
        self.entry = {"start": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                      "elapsed": 0.0, "saved": 0.0}
        self.t0 = time.perf_counter()
        self.beat_s = beat_s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def elapsed(self) -> float:
        """Seconds since this attempt started."""
        return time.perf_counter() - self.t0

    def _write(self) -> None:
        with self._lock:
            self.entry["elapsed"] = self.elapsed()
            write_json(self.path, [*self.prior, self.entry])

    def _beat(self) -> None:
        while not self._stop.wait(self.beat_s):
            self._write()

    def start(self) -> None:
        """Record the attempt and start the heartbeat."""
        self._write()
        self._thread.start()

    def stop(self) -> None:
        """Stop the heartbeat and record the final elapsed time."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._write()

    def saved(self) -> None:
        """Note that a checkpoint now covers this attempt's work so far."""
        with self._lock:
            self.entry["saved"] = self.elapsed()
        self._write()

    def totals(self) -> dict[str, float | int]:
        """``wall_s`` (all attempts), ``wall_s_lost`` (redone work) and ``attempts``."""
        done = [*self.prior, {**self.entry, "elapsed": self.elapsed()}]
        return {"wall_s": sum(float(a.get("elapsed", 0.0)) for a in done),
                "wall_s_lost": sum(max(0.0, float(a.get("elapsed", 0.0))
                                       - float(a.get("saved", 0.0))) for a in self.prior),
                "attempts": len(done)}


def _read_json_list(path: Path) -> list:
    if not path.exists():
        return []
    try:
        obj = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return obj if isinstance(obj, list) else []


def check_device(cfg: RunConfig, dev: torch.device) -> None:
    """Refuse settings that do nothing on ``dev`` (bf16 autocast off CUDA)."""
    if cfg.bf16 and dev.type != "cuda":
        raise UserError("--bf16 has no effect without CUDA (bf16 autocast runs on CUDA only): "
                        "drop --bf16, or use --device cuda on a GPU machine")


def test_predictions(outputs: np.ndarray, labels: np.ndarray, num_labels: int) -> dict:
    """The record's ``test_predictions``, ``test_labels_sha256`` and (classification)
    ``test_confusion`` (see :mod:`isp_lib.predictions`)."""
    if num_labels == 1:
        return {"test_predictions": encode_predictions(outputs.reshape(-1), regression=True),
                "test_labels_sha256": labels_sha256(labels)}
    pred = outputs.argmax(-1)
    return {"test_predictions": encode_predictions(pred), "test_labels_sha256":
            labels_sha256(labels), "test_confusion": confusion(pred, labels, num_labels)}


def _leftovers(run_dir: Path) -> list[str]:
    return sorted(p.name for p in run_dir.iterdir() if p.name not in (".lock",))


def run(cfg: RunConfig, out: Path, device: str = "auto", weights: bool = True,
        compile: bool = False) -> dict:
    """Run (or skip, or resume) the experiment ``cfg`` under ``out``.

    Args:
        cfg: the experiment.
        out: parent folder of run directories.
        device: ``auto``, ``cpu`` or ``cuda``.
        weights: keep the final weights as ``model.safetensors`` (False: mask and record
            only). Not part of the computation, so not of the config hash: a complete run is
            skipped whichever way it was made.
        compile: run the training forward through ``torch.compile``; not part of the config
            hash (see :mod:`isp_lib.accel`, which also says when a run takes the fast path).

    Returns:
        The result record (also in ``<run dir>/result.json``), with ``"skipped": True`` added
        if it was already complete.

    Raises:
        UserError: one line, before any training, for bad settings, an unusable ``out``, a run
            directory that another process is running or that holds something else.
            Folders created for a run that fails before it starts are removed again.
    """
    res = resolve(cfg)
    dev = resolve_device(device)
    check_device(cfg, dev)
    run_dir = Path(out) / cfg.dir_name()
    created = [run_dir.absolute()] if not run_dir.exists() else []
    created += check_out(out)
    try:
        with run_lock(run_dir):
            return _run_locked(cfg, res, dev, run_dir, weights, compile)
    except BaseException:
        if created and not (run_dir / "config.json").exists():  # leave nothing half-written
            (run_dir / ".lock").unlink(missing_ok=True)
            for folder in created:
                with suppress(OSError):
                    folder.rmdir()
        raise


def _run_locked(cfg: RunConfig, res: Resolved, dev: torch.device, run_dir: Path,
                weights: bool, compile: bool) -> dict:
    done = trusted_result(run_dir, cfg)
    if done is not None:  # labelled as asked (same resolved configuration, other overrides)
        return {**done, "config": config_dict(cfg), "skipped": True}
    config_path, ckpt_path = run_dir / "config.json", run_dir / "ckpt.pt"
    if config_path.exists() and _read_json(config_path).get("config_hash") != cfg.config_hash():
        raise UserError(f"run directory {run_dir} holds another config: delete it and rerun")
    if not config_path.exists() and _leftovers(run_dir):
        raise UserError(f"run directory {run_dir} is corrupt (no config.json): "
                        "delete it and rerun")
    payload = None
    if ckpt_path.exists():
        payload = read_torch(ckpt_path)
        if not isinstance(payload, dict) or payload.get("config_hash") != cfg.config_hash():
            raise UserError(f"run directory {run_dir} is corrupt (ckpt.pt belongs to another "
                            "config): delete it and rerun")

    profile = get_profile(cfg.profile)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    data = load_data(cfg.data, profile, source=cfg.data_source)
    bundle = build_model(cfg.model, data, profile, source=cfg.model_source)
    model = bundle.model.to(dev)
    accel = plan(cfg.profile, dev, compile)
    make_dataset = bundle.make_device_dataset if accel.device_images and \
        bundle.make_device_dataset is not None else bundle.make_dataset
    train_set, val_set = make_dataset(data.train), make_dataset(data.val)
    test_set = make_dataset(data.test)

    write_json(config_path, {**asdict(cfg), "config_hash": cfg.config_hash(),
                             "resolved": cfg.resolved})
    commit = current_commit()  # the code that runs, read before it runs
    ctx = RunContext(model=model, family=res.family, train_set=train_set, val_set=val_set,
                     collate=bundle.collate, metric=data.metric, hp=res.hparams,
                     sparsity=cfg.sparsity, seed=cfg.seed, device=dev, bf16=cfg.bf16,
                     accel=accel)
    clock = AttemptClock(run_dir / "attempts.json")

    def save(state: dict) -> None:
        write_torch(ckpt_path, {**state, "config_hash": cfg.config_hash()})
        clock.saved()

    ctx.save_fn = save
    ctx.artifact_dir = run_dir / "artifacts"
    ctx.shared = SharedWork(run_dir.parent / SHARED_DIR, {
        **{k: v for k, v in cfg.resolved.items() if k not in ("method", "options")},
        "device": dev.type, "accel": asdict(accel)})
    if payload is not None:
        try:
            ctx.load(payload)
        except UserError:
            raise
        except Exception as exc:
            raise UserError(f"run directory {run_dir} is corrupt (ckpt.pt: "
                            f"{exc.__class__.__name__}): delete it and rerun") from None
        payload = None
    clock.start()
    try:
        with matmul_precision(accel):
            res.method.run(ctx, res.options)
            outputs, labels = predict(model, test_set, bundle.collate, dev, bf16=cfg.bf16,
                                      accel=accel)
    finally:
        clock.stop()
    test_metric = score(data.metric, outputs, labels)
    if not math.isfinite(test_metric):
        raise UserError(f"run {run_dir.name} ended with a non-finite test metric: check lr")
    result = {
        "method": cfg.method, "model": cfg.model, "data": cfg.data, "profile": cfg.profile,
        "target_sparsity": cfg.sparsity, "actual_sparsity": ctx.mask.sparsity(),
        "metric_name": data.metric, "val_metric": ctx.progress.get("best_val"),
        "test_metric": test_metric, "train_steps": ctx.ledger.steps,
        "samples_seen": ctx.ledger.samples, "ledger": ctx.ledger.to_dict(),
        "budget_steps": ctx.budget, **clock.totals(),
        "seed": cfg.seed, "config": config_dict(cfg), "config_hash": cfg.config_hash(),
        "resolved": cfg.resolved, "numerics": NUMERICS, "mask_digest": mask_digest(ctx.mask),
        "hparams": asdict(res.hparams), "options": asdict(res.options),
        "progress": ctx.progress,
        "isp_lib_version": _version(), "git_commit": commit,
        "torch_version": torch.__version__, "host": host_info(dev),
        "sizes": {"train": len(train_set), "val": len(val_set), "test": len(test_set)},
        **test_predictions(outputs, labels, data.num_labels),
        **({} if accel == PLAIN else {"accel": asdict(accel)}),
    }
    save_mask(ctx.mask, run_dir / "mask.pt")
    if weights:
        result.update(save_weights(model, run_dir / WEIGHTS_FILE, cfg.config_hash()))
    write_json(run_dir / "result.json", result)
    ckpt_path.unlink(missing_ok=True)
    shutil.rmtree(ctx.artifact_dir, ignore_errors=True)
    return result
