"""Sweeps (a grid of runs, described by a small YAML file) and their result records (JSONL).

A sweep config is committed under ``results/``, next to the records it produces::

    name: minilm_headline      # its records: <this file's folder>/minilm_headline.jsonl
    profile: cpu
    model: minilm
    data: drugreview
    methods: [isp, imp, oneshot]
    sparsities: [0.7]
    seeds: [0, 1, 2]
    settings: {epochs: 3, isp: {denoisers: 0}}   # optional: as `isp run --set`; per method too
    out: runs/minilm           # optional: folder of the run directories (default runs/<name>)

The grid is every method x sparsity x seed. Where parts of it differ (dense at sparsity 0, a
setting varied), ``grid:`` lists blocks; a block sets any of ``methods``, ``sparsities``,
``seeds``, ``settings``, ``model`` and ``data`` and takes the rest from the top level
(settings are merged, the block's win)::

    grid:
      - {methods: [isp, imp, oneshot], sparsities: [0.7]}
      - {methods: [dense], sparsities: [0.0]}

``isp sweep CONFIG`` runs the grid and writes the records; chapters call :func:`load_or_run`.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import yaml
from tqdm import tqdm

from isp_lib.errors import UserError
from isp_lib.io import write_jsonl
from isp_lib.methods import METHODS
from isp_lib.runs import RunConfig, config_dict, current_commit, make_config, run

if TYPE_CHECKING:
    from isp_lib.executors.base import Executor

TOP_KEYS = ("name", "profile", "model", "data", "methods", "sparsities", "seeds", "settings",
            "out", "grid")
BLOCK_KEYS = ("model", "data", "methods", "sparsities", "seeds", "settings")
TIDY_COLUMNS = ("method", "model", "data", "profile", "sparsity", "actual_sparsity", "seed",
                "settings", "label", "metric_name", "val_metric", "test_metric", "train_steps",
                "samples_seen", "budget_steps", "wall_s", "config_hash", "git_commit")
_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_EXAMPLES = {"profile": "profile: cpu", "model": "model: minilm", "data": "data: drugreview",
             "methods": "methods: [isp, imp]", "sparsities": "sparsities: [0.7]",
             "seeds": "seeds: [0, 1, 2]"}


@dataclass(frozen=True)
class Sweep:
    """A validated sweep.

    Attributes:
        name: the sweep's name; its records file is ``<name>.jsonl``.
        cells: one frozen config per grid cell, sorted, without duplicates.
        out: parent folder of the cells' run directories.
        records: the JSONL file that holds the sweep's result records.
    """

    name: str
    cells: tuple[RunConfig, ...]
    out: Path
    records: Path


def load_sweep(config: str | Path | Mapping[str, Any], profile: str | None = None,
               results_dir: str | Path = "results", model: str | None = None,
               data: str | None = None, seeds: list[int] | None = None,
               bf16: bool = False) -> Sweep:
    """Read and validate a sweep config.

    Args:
        config: a YAML file (its records file goes next to it) or the same keys as a mapping.
        profile: run the grid under this profile instead of the config's (e.g. ``smoke``).
        results_dir: folder of the records file when ``config`` is a mapping.
        model: run every cell on this model instead of the config's (e.g. ``clip-vit-b32``).
        data: run every cell on this data set instead of the config's.
        seeds: keep only the cells of these seeds (e.g. two seeds for a smoke check).
        bf16: run every cell with bf16 autocast (part of the config hash: other cells than
            the config's, with records of their own).

    Returns:
        The :class:`Sweep`.

    Raises:
        UserError: one line that names the config, the problem and the fix.
    """
    if isinstance(config, Mapping):
        raw, where, folder = dict(config), "sweep config", Path(results_dir)
    else:
        path = Path(config)
        raw, where, folder = _read_yaml(path), str(path), path.parent
    for key, value in (("profile", profile), ("model", model), ("data", data)):
        if value is not None:
            raw[key] = value
            if key != "profile" and isinstance(raw.get("grid"), list):
                raw["grid"] = [{k: v for k, v in b.items() if k != key}
                               if isinstance(b, dict) else b for b in raw["grid"]]
    try:
        sweep = _parse(raw, folder)
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None
    if seeds is not None:
        sweep = replace(sweep, cells=tuple(c for c in sweep.cells if c.seed in set(seeds)))
    if bf16:
        sweep = replace(sweep, cells=tuple(replace(c, bf16=True) for c in sweep.cells))
    return sweep


def read_records(path: str | Path) -> list[dict]:
    """The result records of a JSONL file, in file order; ``[]`` if the file does not exist."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict) or "config_hash" not in record:
            raise UserError(f"{path} line {n} is not a result record: rewrite the file with "
                            "'isp sweep' on its config")
        records.append(record)
    return records


def check_records_writable(path: Path) -> None:
    """Refuse, before any cell runs, a records file that could not be written.

    Raises:
        UserError: one line, if the folder (or the file) is not writable.
    """
    path = Path(path).absolute()
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    if path.exists() and not path.is_file():
        raise UserError(f"cannot write the records file {path}: it is a folder; move it away")
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK) or \
            (path.exists() and not os.access(path, os.W_OK)):
        raise UserError(f"cannot write the records file {path}: make {folder} writable, or "
                        "copy the config to a folder you can write to")


def recorded_cells(sweep: Sweep, old: list[dict]) -> dict[str, dict]:
    """The records of ``old`` that answer a cell of ``sweep``: the cell's hash and resolved
    configuration, by hash. A sweep skips these cells: the record is what a run directory would
    give, and the run folder may be gone (another machine, a fresh clone)."""
    cells = {c.config_hash(): c for c in sweep.cells}
    return {r["config_hash"]: r for r in old if r["config_hash"] in cells
            and r.get("resolved") == cells[r["config_hash"]].resolved}


def merge_records(sweep: Sweep, fresh: Mapping[str, dict], old: list[dict]) -> list[dict]:
    """The records file of ``sweep``: per cell in cell order, the fresh record of this sweep
    if it has one, else the old record with the cell's hash; cells with neither are left out,
    and so are old records of no cell (another configuration or numerics version)."""
    by_hash = {**{r["config_hash"]: r for r in old}, **fresh}
    return [by_hash[c.config_hash()] for c in sweep.cells if c.config_hash() in by_hash]


def run_sweep(sweep: Sweep, device: str = "auto", progress: bool = False,
              write: bool = False, weights: bool = True,
              executor: Executor | None = None, compile: bool = False,
              skip_recorded: bool = True) -> list[dict]:
    """Run every cell of ``sweep``: cells recorded in ``sweep.records`` (see
    :func:`recorded_cells`) and complete runs are skipped, interrupted ones resumed.

    Args:
        sweep: the grid.
        device: ``auto``, ``cpu`` or ``cuda``.
        progress: show progress over the cells (a bar on a terminal, a line per cell in a log).
        write: rewrite ``sweep.records`` atomically after each cell (see :func:`merge_records`),
            so a sweep killed midway keeps every record it finished.
        weights: keep each run's final weights (``isp sweep --no-weights``: False).
        executor: run each cell as a job of this executor (:mod:`isp_lib.executors`: worker
            processes, Slurm, Ray) and write the records from the run directories as jobs
            end; None (``--executor local``) runs the cells here, one after another.
        compile: run each cell's training forward through ``torch.compile`` (``isp sweep
            --compile``; not part of the config hash, see :mod:`isp_lib.accel`).
        skip_recorded: skip the recorded cells (False: only complete run directories are
            skipped, e.g. to recompute a chapter).

    Returns:
        One result record per cell, in cell order, exactly as the run wrote it.
    """
    if executor is not None:
        from isp_lib.executors.sweep import run_cells

        return run_cells(sweep, executor, device=device, progress=progress, write=write,
                         weights=weights, compile=compile, skip_recorded=skip_recorded)
    if write:
        check_records_writable(sweep.records)
    old = read_records(sweep.records)
    recorded = recorded_cells(sweep, old) if skip_recorded else {}
    records: dict[str, dict] = {}
    bar = tqdm(sweep.cells, desc=sweep.name, unit="run", disable=not progress or None,
               file=sys.stderr)
    for n, cfg in enumerate(bar, 1):
        if cfg.config_hash() in recorded:
            records[cfg.config_hash()], state = recorded[cfg.config_hash()], "skipped (recorded)"
        else:
            result = run(cfg, sweep.out, device=device, weights=weights, compile=compile)
            state = "skipped (complete)" if result.pop("skipped", False) else "done"
            records[cfg.config_hash()] = result
            if write:
                write_jsonl(sweep.records, merge_records(sweep, records, old))
        if progress and not sys.stderr.isatty():
            print(f"{sweep.name}: cell {n}/{len(sweep.cells)} {cfg.dir_name()} {state}",
                  file=sys.stderr, flush=True)
    if write:  # also where every cell was recorded: the records of no cell go
        write_jsonl(sweep.records, merge_records(sweep, records, old))
    return [records[c.config_hash()] for c in sweep.cells]


def stale_records(sweep: Sweep, records: list[dict]) -> list[dict]:
    """Records of ``sweep``'s file whose hash is no cell's: made with another resolved
    configuration or numerics version (or for a cell the grid no longer has)."""
    hashes = {c.config_hash() for c in sweep.cells}
    return [r for r in records if r["config_hash"] not in hashes]


def load_or_run(config: str | Path | Mapping[str, Any], recompute: bool = False,
                device: str = "auto", profile: str | None = None,
                results_dir: str | Path = "results", model: str | None = None,
                data: str | None = None, reuse: str = "any-commit",
                missing: str = "run", seeds: list[int] | None = None,
                bf16: bool = False) -> list[dict]:
    """The records of a sweep's grid: committed ones where they exist, fresh runs otherwise.

    The committed records file is only read here; ``isp sweep`` writes it. A committed record
    is reused only if its hash is the cell's and its resolved configuration is the cell's; the
    others are re-run, and one line on stderr says how many.

    Args:
        config: a sweep config file or mapping (see :func:`load_sweep`).
        recompute: ignore the committed records and run every cell (complete run directories
            under the sweep's ``out`` are still reused).
        device: ``auto``, ``cpu`` or ``cuda``.
        profile: run the grid under this profile instead of the config's.
        results_dir: folder of the records file when ``config`` is a mapping.
        model: run the grid on this model instead of the config's.
        data: run the grid on this data set instead of the config's.
        seeds: keep only the cells of these seeds.
        bf16: run the grid with bf16 autocast (see :func:`load_sweep`).
        reuse: ``any-commit`` (default) reuses a record of the same resolved configuration
            made by any commit of the kit (:func:`provenance` lists them); ``same-commit``
            re-runs records made by another commit than the running one.
        missing: ``run`` (default) runs the cells without a matching record; ``skip`` leaves
            them out (a chapter that shows what is recorded while a sweep is still running
            says how many are missing, see :func:`missing_cells`).

    Returns:
        One record per cell, in cell order: the committed record whose ``config_hash`` matches
        the cell's, else the record of a run of that cell (with ``missing="skip"``, only the
        recorded cells).
    """
    if reuse not in ("any-commit", "same-commit"):
        raise UserError(f"reuse={reuse!r} is not valid: use 'any-commit' or 'same-commit'")
    if missing not in ("run", "skip"):
        raise UserError(f"missing={missing!r} is not valid: use 'run' or 'skip'")
    sweep = load_sweep(config, profile=profile, results_dir=results_dir, model=model, data=data,
                       seeds=seeds, bf16=bf16)
    committed: dict[str, dict] = {}
    if not recompute:
        on_file = read_records(sweep.records)
        wanted = {c.config_hash(): c for c in sweep.cells}
        head = current_commit()
        for r in on_file:
            cell = wanted.get(r["config_hash"])
            if cell is None or r.get("resolved") != cell.resolved:
                continue
            if reuse == "same-commit" and r.get("git_commit") != head:
                continue
            committed[r["config_hash"]] = r
        redo = sum(c.config_hash() not in committed for c in sweep.cells)
        if on_file and redo and missing == "run":
            unused = len(on_file) - len(committed)
            why = "another configuration, numerics version" + \
                (" or commit" if reuse == "same-commit" else "")
            print(f"{sweep.records}: {redo} of {len(sweep.cells)} cells have no matching record "
                  f"({unused} records on file are of {why}): running them", file=sys.stderr)
    todo = tuple(c for c in sweep.cells if c.config_hash() not in committed)
    fresh = [] if missing == "skip" else run_sweep(replace(sweep, cells=todo), device=device,
                                                   skip_recorded=False)
    found = {**committed, **{r["config_hash"]: r for r in fresh}}
    # a record answers every cell of its resolved configuration; it is labelled as the cell
    # asks for it (e.g. the paper's settings spelled out, where the record was made as defaults)
    return [{**found[c.config_hash()], "config": config_dict(c)} for c in sweep.cells
            if c.config_hash() in found]


def missing_cells(config: str | Path | Mapping[str, Any], records: list[dict], **kwargs: Any
                  ) -> list[RunConfig]:
    """The cells of a sweep that ``records`` lack (``kwargs`` as for :func:`load_sweep`)."""
    have = {r["config_hash"] for r in records}
    return [c for c in load_sweep(config, **kwargs).cells if c.config_hash() not in have]


def provenance(records: list[dict]) -> pd.DataFrame:
    """Which code made the records: one row per (commit, kit version, torch, device) with the
    number of records, so a chapter can show where its numbers come from."""
    rows = [{"git_commit": r.get("git_commit", "unknown"),
             "isp_lib_version": r.get("isp_lib_version", "unknown"),
             "numerics": r.get("numerics"), "torch_version": r.get("torch_version", "unknown"),
             "device": r.get("host", {}).get("device_name") or r.get("host", {}).get("device")}
            for r in records]
    cols = ["git_commit", "isp_lib_version", "numerics", "torch_version", "device"]
    frame = pd.DataFrame(rows, columns=cols)
    return frame.groupby(cols, dropna=False).size().rename("records").reset_index()


def tidy(records: list[dict]) -> pd.DataFrame:
    """One row per record with the columns of :data:`TIDY_COLUMNS`.

    ``sparsity`` is the target sparsity; ``settings`` the run's overrides as ``key=value``
    words (empty for none); ``label`` the method, followed by its settings in brackets if any
    (e.g. ``isp (fit_rate=true)``).
    """
    rows = []
    for r in records:
        settings = " ".join(f"{k}={v}" for k, v in r["config"]["overrides"])
        rows.append({**{k: r.get(k) for k in TIDY_COLUMNS}, "sparsity": r["target_sparsity"],
                     "profile": r["config"]["profile"], "settings": settings,
                     "label": f"{r['method']} ({settings})" if settings else r["method"]})
    return pd.DataFrame(rows, columns=list(TIDY_COLUMNS))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise UserError(f"cannot read sweep config {path} ({exc.strerror}): check the path") \
            from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UserError(f"{path}: YAML syntax error{where}: fix the file") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping with the keys {', '.join(TOP_KEYS)}")
    return raw


def _check_keys(raw: Mapping[str, Any], allowed: tuple[str, ...], what: str) -> None:
    unknown = sorted(str(k) for k in set(raw) - set(allowed))
    if unknown:
        raise UserError(f"unknown {what} {', '.join(unknown)}: use {', '.join(allowed)}")


def _parse(raw: dict[str, Any], folder: Path) -> Sweep:
    _check_keys(raw, TOP_KEYS, "key(s)")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise UserError("'name' must be a file name without a folder, e.g. name: minilm_headline")
    out = raw.get("out", f"runs/{name}")
    if not isinstance(out, str) or not out:
        raise UserError(f"'out' must be a folder, e.g. out: runs/{name}")
    blocks = raw.get("grid", [{}])
    if not isinstance(blocks, list) or not blocks or \
            not all(isinstance(b, dict) for b in blocks):
        raise UserError("'grid' must be a list of blocks, e.g. "
                        "grid: [{methods: [dense], sparsities: [0.0]}]")
    cells: dict[str, RunConfig] = {}
    for i, block in enumerate(blocks, 1):
        label = f"grid block {i}: " if "grid" in raw else ""
        try:
            _check_keys(block, BLOCK_KEYS, "key(s)")
            merged = {**raw, **block,
                      "settings": _merge_settings(raw.get("settings"), block.get("settings"))}
            for cfg in _cells(merged):
                cells.setdefault(cfg.config_hash(), cfg)
        except UserError as exc:
            raise UserError(f"{label}{exc}") from None
    # seed-major: a sweep stopped part-way holds its first seeds of every cell, ready to pair
    order = sorted(cells.values(), key=lambda c: (c.seed, c.method, c.model, c.data, c.sparsity,
                                                  c.overrides, c.config_hash()))
    return Sweep(name=name, cells=tuple(order), out=Path(out), records=folder / f"{name}.jsonl")


def _cells(spec: dict[str, Any]) -> list[RunConfig]:
    for key in ("profile", "model", "data"):
        if not isinstance(spec.get(key), str):
            raise UserError(f"'{key}' must be a name, e.g. {_EXAMPLES[key]}")
    methods = _list(spec, "methods", lambda v: isinstance(v, str))
    sparsities = _list(spec, "sparsities",
                       lambda v: isinstance(v, int | float) and not isinstance(v, bool))
    seeds = _list(spec, "seeds", lambda v: isinstance(v, int) and not isinstance(v, bool))
    settings = spec["settings"]
    return [make_config(m, spec["model"], spec["data"], s, spec["profile"], seed,
                        _settings_for(settings, m))
            for m in methods for s in sparsities for seed in seeds]


def _list(spec: dict[str, Any], key: str, ok: Any) -> list:
    value = spec.get(key)
    if not isinstance(value, list) or not value or not all(ok(v) for v in value):
        raise UserError(f"'{key}' must be a non-empty list, e.g. {_EXAMPLES[key]}")
    return value


def _merge_settings(*sources: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for source in sources:
        if source is None:
            continue
        if not isinstance(source, dict):
            raise UserError("'settings' must be a mapping, e.g. "
                            "settings: {epochs: 3, isp: {denoisers: 0}}")
        for key, value in source.items():
            if isinstance(value, dict) and key not in METHODS:
                raise UserError(f"settings: '{key}' is not a method; per-method settings go "
                                f"under one of {', '.join(METHODS)}")
            if key in METHODS and not isinstance(value, dict):
                raise UserError(f"settings for method '{key}' must be a mapping, e.g. "
                                f"{key}: {{epochs: 3}}")
            out[key] = {**out.get(key, {}), **value} if key in METHODS else value
    return out


def _settings_for(settings: dict[str, Any], method: str) -> dict[str, str]:
    flat = {k: v for k, v in settings.items() if k not in METHODS}
    flat.update(settings.get(method, {}))
    return {str(k): _setting_text(str(k), v) for k, v in flat.items()}


def _setting_text(key: str, value: Any) -> str:
    """A YAML value written as ``isp run --set KEY=VALUE`` would give it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    if isinstance(value, list) and value and \
            all(isinstance(v, int | float | str) and not isinstance(v, bool) for v in value):
        return ",".join(str(v) for v in value)
    raise UserError(f"setting {key} must be a number, a string, true/false or a list of "
                    f"numbers, e.g. {key}: 3")
