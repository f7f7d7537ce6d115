"""``--executor ray``: one Ray task per cell, with the CPUs and GPUs it asks for.

With ``--ray-address`` the driver joins a running cluster (``ray.init(address=...)``) and
passes the Hugging Face offline and cache variables it has to the tasks; without, it starts a
local cluster of this machine's cores and stops it at the end. A task whose worker dies is not
retried by Ray: the cell is reported, and rerunning the sweep resumes it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from isp_lib.executors.base import (
    CellJob,
    Executor,
    Outcomes,
    check_count,
    gpus_from,
    one_line,
    report_crash,
    run_cell,
)

#: Variables a remote cluster's tasks get from the driver (offline hub caches).
FORWARDED_ENV = ("HF_HOME", "HF_HUB_CACHE", "HF_DATASETS_CACHE", "HF_HUB_OFFLINE",
                 "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "TOKENIZERS_PARALLELISM")


def ray_cell(job: CellJob) -> str | None:
    """The Ray task: run the cell (see :func:`~isp_lib.executors.base.run_cell`).

    Returns:
        None, or the one-line reason the cell failed.
    """
    try:
        return run_cell(job)
    except Exception as exc:  # a bug: its traceback goes to the driver through Ray's log
        return report_crash(exc, None)


class Ray(Executor):
    """Ray tasks, on a running cluster or on a local one.

    Args:
        device: ``auto``, ``cpu`` or ``cuda``, resolved in each task.
        ray_address: the cluster to join (e.g. ``ray://head:10001`` or ``auto``); None starts
            a local cluster.
        gpus_per_job: GPUs per task (default 1 with ``--device cuda``, else 0).
        cpus_per_job: CPUs per task, also the task's torch threads.
        num_cpus: CPUs of the local cluster (default: this machine's cores).
    """

    name = "ray"
    options = ("ray_address", "gpus_per_job", "cpus_per_job", "num_cpus")

    def __init__(self, device: str, ray_address: str | None = None,
                 gpus_per_job: int | None = None, cpus_per_job: int = 1,
                 num_cpus: int | None = None) -> None:
        super().__init__(device, cpus_per_job)
        check_count("num_cpus", num_cpus, 1)
        self.gpus_per_job = gpus_from(device, gpus_per_job)
        self.address = ray_address
        self.num_cpus = num_cpus or os.cpu_count() or 1

    def describe(self) -> str:
        where = f"the Ray cluster at {self.address}" if self.address else \
            f"a local Ray cluster of {self.num_cpus} CPUs"
        return (f"{where}, one task per cell ({self.cpus_per_job} CPU, {self.gpus_per_job} GPU "
                "each)")

    def run(self, jobs: Sequence[CellJob], logs: Path | None) -> Outcomes:
        import ray

        started = not ray.is_initialized()
        if started and self.address:
            env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
            ray.init(address=self.address, logging_level=logging.WARNING,
                     runtime_env={"env_vars": env} if env else None)
        elif started:
            ray.init(num_cpus=self.num_cpus, include_dashboard=False,
                     logging_level=logging.WARNING)
        task = ray.remote(ray_cell).options(num_cpus=self.cpus_per_job,
                                             num_gpus=self.gpus_per_job, max_retries=0)
        pending = {task.remote(job): job for job in jobs}
        try:
            while pending:
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                job = pending.pop(ref)
                try:
                    reason = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    reason = one_line(exc.cause or exc)
                except ray.exceptions.RayError as exc:  # the worker or its node died
                    reason = f"its Ray task did not end ({one_line(exc)})"
                yield job, reason
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
            if started:
                ray.shutdown()
