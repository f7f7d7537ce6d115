"""What every executor shares: the job of one cell, the function a worker runs, the interface.

A job carries the cell's fields (not a pickled :class:`~isp_lib.runs.RunConfig`): the worker
rebuilds the config and refuses to run it unless it resolves to the driver's config hash, so a
worker with another version of the kit cannot write a run directory under the driver's name.
"""

from __future__ import annotations

import os
import platform
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from isp_lib.errors import UserError

if TYPE_CHECKING:
    from isp_lib.runs import RunConfig

#: What :meth:`Executor.run` yields: each job as it ends, with None (done) or why it failed.
Outcomes = Iterator[tuple["CellJob", str | None]]


@dataclass(frozen=True)
class CellJob:
    """One cell of a sweep, as a worker gets it.

    Attributes:
        cell: the fields of the cell's :class:`~isp_lib.runs.RunConfig`.
        config_hash: the hash the driver computed for it.
        name: the run directory's name (under ``out``).
        out: absolute folder of the run directories, on the shared file system.
        marker: a file the driver wrote under ``out`` for this sweep; a worker that does not
            see it does not see the driver's run folder.
        device: ``auto``, ``cpu`` or ``cuda``, resolved on the worker.
        weights: keep the run's final weights.
        threads: torch threads of the job.
        compile: run the training forward through ``torch.compile`` (not in the config hash).
    """

    cell: dict[str, Any]
    config_hash: str
    name: str
    out: str
    marker: str
    device: str
    weights: bool
    threads: int
    compile: bool = False

    @classmethod
    def of(cls, cfg: RunConfig, out: Path, marker: Path, device: str, weights: bool,
           threads: int, compile: bool = False) -> CellJob:
        """The job of the cell ``cfg``."""
        return cls(cell=asdict(cfg), config_hash=cfg.config_hash(), name=cfg.dir_name(),
                   out=str(out), marker=str(marker), device=device, weights=weights,
                   threads=threads, compile=compile)


def one_line(exc: BaseException) -> str:
    """An exception as one line: a :class:`UserError`'s message, else ``Type: message``
    (the last line of a message that spans several, e.g. a remote traceback)."""
    text = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def run_cell(job: CellJob) -> str | None:
    """Run one cell where this function is called (a worker process, a Slurm job, a Ray task).

    Checks that this worker sees the driver's run folder (shared file system) and resolves the
    cell to the driver's hash, then runs it with :func:`isp_lib.runs.run` (a complete run is
    skipped, an interrupted one resumed from its checkpoint, under the run directory's lock).

    Args:
        job: the cell.

    Returns:
        None once the run directory holds the cell's result, else the one-line error of a
        :class:`UserError` (anything else is raised, with its traceback, into the job's log).
    """
    import torch

    from isp_lib.runs import RunConfig, run

    torch.set_num_threads(job.threads)
    try:
        if not Path(job.marker).is_file():
            raise UserError(f"worker {platform.node()} cannot see the run folder {job.out} (the "
                            f"sweep's marker {Path(job.marker).name} is not there): run "
                            "directories must be on a file system that every worker shares")
        cfg = RunConfig(**{**job.cell, "overrides": tuple(map(tuple, job.cell["overrides"]))})
        if cfg.config_hash() != job.config_hash:
            raise UserError(f"worker {platform.node()} resolves cell {job.name} to hash "
                            f"{cfg.config_hash()}: install the driver's version of the kit on "
                            "every worker")
        run(cfg, Path(job.out), device=job.device, weights=job.weights, compile=job.compile)
    except UserError as exc:
        return str(exc)
    return None


def report_crash(exc: BaseException, log: Path | None) -> str:
    """Print ``exc``'s traceback (into the job's log) and return its one line for the driver."""
    traceback.print_exception(exc)
    where = f" (traceback in {log})" if log is not None else ""
    return one_line(exc) + where


class Executor:
    """Runs cell jobs somewhere and reports each one as it ends.

    Subclasses set ``name`` and ``options`` (the settings their ``__init__`` takes besides the
    device) and implement :meth:`run`; their ``__init__`` checks the device and the settings
    and raises :class:`UserError` before any work.

    Attributes:
        logs: a folder name under the sweep's ``out`` for the jobs' logs, or None.
        cpus_per_job: CPUs (and torch threads) of each job.
    """

    name: ClassVar[str]
    options: ClassVar[tuple[str, ...]] = ()
    logs: ClassVar[str | None] = None

    def __init__(self, device: str, cpus_per_job: int = 1) -> None:
        if device not in ("auto", "cpu", "cuda"):
            raise UserError(f"unknown device '{device}': use auto, cpu or cuda")
        check_count("--cpus-per-job", cpus_per_job, 1)
        self.cpus_per_job = cpus_per_job

    def describe(self) -> str:
        """Where the jobs run, for the sweep's first progress line (e.g. ``2 worker processes``)."""
        raise NotImplementedError

    def run(self, jobs: Sequence[CellJob], logs: Path | None) -> Outcomes:
        """Run ``jobs``; yield each with None (done) or a one-line reason (failed) as it ends.

        Args:
            jobs: the cells to run, in the order to start them.
            logs: the folder for the jobs' logs (``<out>/<logs>``), or None.

        Yields:
            ``(job, None)`` or ``(job, reason)``, in the order the jobs end. Closing the
            generator early stops the jobs still running.
        """
        raise NotImplementedError


def check_count(flag: str, value: int | None, least: int) -> None:
    """Refuse a whole-number setting below ``least`` (None: not given).

    Raises:
        UserError: one line naming the flag.
    """
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < least):
        raise UserError(f"{flag} {value}: use a whole number >= {least}")


def visible_gpus(count: int) -> list[str]:
    """The ids to put in ``CUDA_VISIBLE_DEVICES`` for each of ``count`` visible GPUs (those
    already listed in ``CUDA_VISIBLE_DEVICES`` if it is set)."""
    listed = [g.strip() for g in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if g.strip()]
    return listed[:count] if len(listed) >= count else [str(i) for i in range(count)]


def gpus_from(device: str, gpus_per_job: int | None) -> int:
    """GPUs per job: ``gpus_per_job``, by default 1 with ``--device cuda`` and 0 otherwise.

    Raises:
        UserError: for a device the jobs cannot use with that many GPUs.
    """
    check_count("--gpus-per-job", gpus_per_job, 0)
    if gpus_per_job is None:
        return 1 if device == "cuda" else 0
    if device == "cuda" and gpus_per_job == 0:
        raise UserError("--device cuda with --gpus-per-job 0: give each job a GPU "
                        "(--gpus-per-job 1) or use --device cpu")
    if device == "cpu" and gpus_per_job > 0:
        raise UserError(f"--device cpu with --gpus-per-job {gpus_per_job}: the jobs would not "
                        "use their GPUs; drop --gpus-per-job or use --device cuda")
    return gpus_per_job
