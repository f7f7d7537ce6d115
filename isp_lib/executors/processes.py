"""``--executor processes``: N worker processes on this machine, one cell at a time each.

Each worker takes the next cell when it is done with one. Workers on the CPU are forked from a
fork server that :class:`Processes` starts as it is made (it ends with the driver): a fresh
interpreter that imports :data:`PRELOAD` once, while the driver reads the sweep, and never
touches CUDA, so that no worker pays the seconds of importing torch and transformers. Workers
that use GPUs are started with ``spawn`` (a fresh interpreter: no CUDA state or threads
inherited); with several GPUs, worker ``i`` sees only GPU ``i % n_gpus``
(``CUDA_VISIBLE_DEVICES``, set before it imports torch). A worker's output goes to
``<out>/_processes/<run dir>.log``, one file per cell. A worker that dies in the middle of a
cell (killed, out of memory) fails that cell only: the driver notices at once, starts a new
worker for the cells still waiting, and reports the lost cell at the end.
"""

from __future__ import annotations

import atexit
import multiprocessing as mp
import os
import signal
import sys
from collections import deque
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from multiprocessing import forkserver
from multiprocessing.connection import Connection, wait
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from pathlib import Path

from isp_lib.executors.base import (
    CellJob,
    Executor,
    Outcomes,
    check_count,
    report_crash,
    run_cell,
    visible_gpus,
)

#: What the fork server of CPU workers imports before forking them: what every cell needs, and
#: the BERT family's ``transformers`` (seconds to import; most CPU sweeps are of that family).
PRELOAD = ["isp_lib.executors.processes", "isp_lib.runs", "isp_lib.models.bert"]

if getattr(sys.modules.get("__main__"), "main", None) is forkserver.main:
    # Preloaded by the fork server: end it without the interpreter's teardown (seconds with
    # torch and transformers loaded, after the driver has exited, while the server still holds
    # the driver's stdout and stderr). Its workers end with os._exit already.
    atexit.register(os._exit, 0)


def _serve(conn: Connection, gpu: str | None, logs: str) -> None:
    """A worker: run the jobs that arrive on ``conn`` until None, answering each with its
    outcome (None or a one-line reason)."""
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    while (job := conn.recv()) is not None:
        log = Path(logs) / f"{job.name}.log"
        sys.stdout.flush()
        sys.stderr.flush()
        with open(log, "a") as f:
            os.dup2(f.fileno(), 1)
            os.dup2(f.fileno(), 2)
        try:
            reason = run_cell(job)
        except Exception as exc:  # a bug: its traceback goes to the cell's log
            reason = report_crash(exc, log)
        sys.stdout.flush()
        sys.stderr.flush()
        conn.send(reason)


@dataclass
class _Worker:
    slot: int
    process: BaseProcess
    conn: Connection
    job: CellJob | None = None


class Processes(Executor):
    """Worker processes on this machine.

    Args:
        device: ``auto``, ``cpu`` or ``cuda`` (checked on this machine).
        workers: how many at once (default: one per GPU where there are several and the
            device is not ``cpu``, else one per ``cpus_per_job`` cores).
        cpus_per_job: torch threads of each worker.
    """

    name = "processes"
    options = ("workers", "cpus_per_job")
    logs = "_processes"

    def __init__(self, device: str, workers: int | None = None, cpus_per_job: int = 1) -> None:
        check_count("--workers", workers, 1)
        super().__init__(device, cpus_per_job)
        gpus = _cuda_devices(device)
        self.gpus = visible_gpus(gpus) if gpus > 1 else []
        self.workers = workers or len(self.gpus) or max(1, (os.cpu_count() or 1) // cpus_per_job)
        self.context = _fork_server() if gpus == 0 else mp.get_context("spawn")

    def describe(self) -> str:
        pinned = f", one GPU each of {len(self.gpus)}" if self.gpus else ""
        return f"{self.workers} worker processes{pinned}"

    def run(self, jobs: Sequence[CellJob], logs: Path | None) -> Outcomes:
        assert logs is not None
        logs.mkdir(parents=True, exist_ok=True)
        todo = deque(jobs)
        busy: dict[Connection, _Worker] = {}

        def start(slot: int) -> None:
            ours, theirs = self.context.Pipe()
            gpu = self.gpus[slot % len(self.gpus)] if self.gpus else None
            process = self.context.Process(target=_serve, args=(theirs, gpu, str(logs)),
                                           name=f"isp-worker-{slot}")
            process.start()
            theirs.close()  # so that our end sees EOF if the worker dies
            give(_Worker(slot, process, ours))

        def give(worker: _Worker) -> None:
            worker.job = todo.popleft() if todo else None
            worker.conn.send(worker.job)
            if worker.job is None:
                worker.process.join()
                worker.conn.close()
            else:
                busy[worker.conn] = worker

        try:
            for slot in range(min(self.workers, len(todo))):
                start(slot)
            while busy:
                for conn in wait(list(busy)):
                    worker = busy.pop(conn)  # type: ignore[arg-type]
                    job = worker.job
                    assert job is not None
                    try:
                        reason = conn.recv()
                    except EOFError:  # the worker died in the middle of the cell
                        worker.process.join()
                        conn.close()
                        yield job, _death(worker.process.exitcode)
                        if todo:
                            start(worker.slot)
                        continue
                    yield job, reason
                    give(worker)
        finally:
            for worker in busy.values():
                worker.process.terminate()
            for worker in busy.values():
                worker.process.join(10)
                if worker.process.is_alive():
                    worker.process.kill()
                with suppress(OSError):
                    worker.conn.close()


def _cuda_devices(device: str) -> int:
    """How many GPUs the workers of ``device`` use (checked here): 0 where it resolves to the CPU
    (``cpu`` without importing torch, so that the fork server imports it alongside the driver)."""
    if device == "cpu":
        return 0
    import torch

    from isp_lib.runs import resolve_device

    return torch.cuda.device_count() if resolve_device(device).type == "cuda" else 0


def _fork_server() -> BaseContext:
    """The ``forkserver`` context, its server started now with :data:`PRELOAD` (an earlier
    fork server of this process is reused as it is)."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    forkserver.ensure_running()
    return ctx


def _death(code: int | None) -> str:
    """Why a worker ended, from its exit code."""
    if code is not None and code < 0:
        with suppress(ValueError):
            return f"its worker was killed by {signal.Signals(-code).name}"
    return f"its worker exited with status {code}"
