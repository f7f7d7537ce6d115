"""The driver of a sweep run by an executor: skip recorded and complete cells, start the others
as jobs, rewrite the records file from the run directories as jobs end, report the cells that
did not."""

from __future__ import annotations

import sys
import uuid
from contextlib import closing
from pathlib import Path

from isp_lib.errors import UserError
from isp_lib.executors.base import CellJob, Executor
from isp_lib.io import write_json, write_jsonl
from isp_lib.records import (
    Sweep,
    check_records_writable,
    merge_records,
    read_records,
    recorded_cells,
)
from isp_lib.runs import RunConfig, check_out, trusted_result


def run_cells(sweep: Sweep, executor: Executor, device: str = "auto", progress: bool = False,
              write: bool = False, weights: bool = True, compile: bool = False,
              skip_recorded: bool = True) -> list[dict]:
    """Run the cells of ``sweep`` as jobs of ``executor`` (see :mod:`isp_lib.executors`).

    Args:
        sweep: the grid.
        executor: where the jobs run.
        device: ``auto``, ``cpu`` or ``cuda``, resolved by each job.
        progress: print a line per cell as it ends (``name: cell n/total run dir state``).
        write: rewrite ``sweep.records`` atomically after each cell that ends (see
            :func:`~isp_lib.records.merge_records`).
        weights: keep each run's final weights.
        compile: run each cell's training forward through ``torch.compile``.
        skip_recorded: skip the cells recorded in ``sweep.records``
            (:func:`~isp_lib.records.recorded_cells`).

    Returns:
        One result record per cell, in cell order, as its run directory holds it.

    Raises:
        UserError: before any job, for an unusable records file or run folder or a corrupt
            run directory; at the end, one line naming the cells that did not finish (the
            records of the others are written).
    """
    if write:
        check_records_writable(sweep.records)
    old = read_records(sweep.records)
    recorded = recorded_cells(sweep, old) if skip_recorded else {}
    out = sweep.out.absolute()
    check_out(out)
    total, n = len(sweep.cells), 0
    records: dict[str, dict] = {}
    todo = []

    def note(cfg: RunConfig, state: str) -> None:
        nonlocal n
        n += 1
        if progress:
            print(f"{sweep.name}: cell {n}/{total} {cfg.dir_name()} {state}", file=sys.stderr,
                  flush=True)

    for cfg in sweep.cells:
        if cfg.config_hash() in recorded:
            records[cfg.config_hash()] = recorded[cfg.config_hash()]
            note(cfg, "skipped (recorded)")
            continue
        done = trusted_result(out / cfg.dir_name(), cfg)
        if done is None:
            todo.append(cfg)
        else:
            records[cfg.config_hash()] = done
            note(cfg, "skipped (complete)")
    if write:
        write_jsonl(sweep.records, merge_records(sweep, records, old))
    failed: list[str] = []
    if todo:
        marker = out / f".isp-sweep-{uuid.uuid4().hex[:12]}"
        write_json(marker, {"sweep": sweep.name, "cells": len(todo)})
        jobs = [CellJob.of(cfg, out, marker, device, weights, executor.cpus_per_job, compile)
                for cfg in todo]
        cells = {job.config_hash: cfg for job, cfg in zip(jobs, todo, strict=True)}
        if progress:
            print(f"{sweep.name}: {len(todo)} of {total} cells to run on "
                  f"{executor.describe()}", file=sys.stderr, flush=True)
        logs = out / executor.logs if executor.logs else None
        try:
            with closing(executor.run(jobs, logs)) as outcomes:
                for job, reason in outcomes:
                    cfg = cells[job.config_hash]
                    record = None
                    if reason is None:
                        reason, record = _record(out / job.name, cfg)
                    if record is not None:
                        records[job.config_hash] = record
                        if write:
                            write_jsonl(sweep.records, merge_records(sweep, records, old))
                    else:
                        failed.append(f"{job.name} ({reason})")
                    note(cfg, "done" if reason is None else f"failed: {reason}")
        finally:
            marker.unlink(missing_ok=True)
    if failed:
        them = "it" if len(failed) == 1 else "them"
        raise UserError(f"sweep {sweep.name}: {len(failed)} of {total} cells did not finish: "
                        f"{'; '.join(failed)}; rerun the same command to resume {them} "
                        "(complete cells are skipped, interrupted ones resume from their "
                        "checkpoints)")
    return [records[c.config_hash()] for c in sweep.cells]


def _record(run_dir: Path, cfg: RunConfig) -> tuple[str | None, dict | None]:
    """The record a finished job left in ``run_dir``, or why there is none."""
    try:
        record = trusted_result(run_dir, cfg)
    except UserError as exc:
        return str(exc), None
    if record is None:
        return (f"its job ended, but {run_dir}/result.json is not there: the run folder must "
                "be on a file system that the driver and every worker share"), None
    return None, record
