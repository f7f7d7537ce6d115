"""``--executor submitit``: one Slurm job per cell, submitted as one job array by ``submitit``.

Jobs' logs (and submitit's pickles) go to ``<out>/_submitit/<job id>/``. A job that is
preempted, or reaches ``--timeout-min`` (up to 3 times), is requeued by submitit and resumes
from its checkpoint. The driver (``isp sweep``, on the login node) waits for the array and
writes the records as jobs end; stopping it cancels the jobs still queued or running.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from isp_lib.errors import UserError
from isp_lib.executors.base import (
    CellJob,
    Executor,
    Outcomes,
    check_count,
    gpus_from,
    report_crash,
    run_cell,
)


class SlurmCell:
    """The callable submitit pickles into each job: runs the cell, and is requeued as it is
    (same job) when Slurm signals a timeout or a preemption."""

    def __call__(self, job: CellJob) -> str | None:
        """Run the cell (see :func:`~isp_lib.executors.base.run_cell`).

        Returns:
            None, or the one-line reason the cell failed.
        """
        try:
            return run_cell(job)
        except Exception as exc:  # a bug: its traceback goes to the job's log
            return report_crash(exc, None)

    def checkpoint(self, job: CellJob) -> Any:
        """The submission to requeue: the same cell, which resumes from its ``ckpt.pt``."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, job)


class Submitit(Executor):
    """A Slurm job array through ``submitit``.

    Args:
        device: ``auto``, ``cpu`` or ``cuda``, resolved in each job.
        slurm_partition: the partition (default: the cluster's default).
        gpus_per_job: GPUs per job (default 1 with ``--device cuda``, else 0).
        cpus_per_job: CPUs per job (``cpus_per_task``), also the job's torch threads.
        timeout_min: each job's time limit, in minutes.
        array_parallelism: most jobs of the array running at once (default: Slurm's).
        cluster: ``slurm``, or ``local`` (submitit's local executor: the same jobs as
            processes on this machine, all at once; for tests and trials).
    """

    name = "submitit"
    options = ("slurm_partition", "gpus_per_job", "cpus_per_job", "timeout_min",
               "array_parallelism", "cluster")
    logs = "_submitit"

    def __init__(self, device: str, slurm_partition: str | None = None,
                 gpus_per_job: int | None = None, cpus_per_job: int = 1,
                 timeout_min: int = 240, array_parallelism: int | None = None,
                 cluster: str = "slurm") -> None:
        super().__init__(device, cpus_per_job)
        check_count("--timeout-min", timeout_min, 1)
        check_count("--array-parallelism", array_parallelism, 1)
        self.gpus_per_job = gpus_from(device, gpus_per_job)
        if cluster not in ("slurm", "local"):
            raise UserError(f"cluster {cluster!r}: use 'slurm' or 'local'")
        if cluster == "slurm" and shutil.which("sbatch") is None:
            raise UserError("--executor submitit submits to Slurm, but sbatch is not on this "
                            "machine's PATH: run isp sweep on the cluster's login node, or use "
                            "--executor processes")
        self.partition = slurm_partition
        self.timeout_min = timeout_min
        self.array_parallelism = array_parallelism
        self.cluster = cluster

    def describe(self) -> str:
        where = "this machine (submitit local)" if self.cluster == "local" else \
            f"Slurm partition {self.partition}" if self.partition else "Slurm"
        return (f"{where}, one job per cell ({self.cpus_per_job} CPU, {self.gpus_per_job} GPU "
                f"each, {self.timeout_min} min)")

    def run(self, jobs: Sequence[CellJob], logs: Path | None) -> Outcomes:
        import submitit

        assert logs is not None
        executor = submitit.AutoExecutor(folder=logs / "%j", cluster=self.cluster)
        params: dict[str, Any] = {"name": "isp-sweep", "timeout_min": self.timeout_min,
                                  "nodes": 1, "tasks_per_node": 1,
                                  "cpus_per_task": self.cpus_per_job,
                                  "gpus_per_node": self.gpus_per_job}
        if self.partition is not None:
            params["slurm_partition"] = self.partition
        if self.array_parallelism is not None:
            params["slurm_array_parallelism"] = self.array_parallelism
        executor.update_parameters(**params)
        submitted = executor.map_array(SlurmCell(), list(jobs))
        cells = dict(zip((s.job_id for s in submitted), jobs, strict=True))
        ended: set[str] = set()
        poll_s = 0.5 if self.cluster == "local" else 10.0
        try:
            for sub in submitit.helpers.as_completed(submitted, poll_frequency=poll_s):
                ended.add(sub.job_id)
                try:
                    reason = sub.result()
                except Exception:  # killed, timed out for good, cancelled, node failure
                    reason = (f"its job {sub.job_id} ended without a result (state {sub.state}; "
                              f"log: {sub.paths.stderr})")
                yield cells[sub.job_id], reason
        finally:
            for sub in submitted:
                if sub.job_id not in ended:
                    sub.cancel(check=False)

