"""Where a sweep's cells run: ``isp sweep CONFIG --executor NAME``; the registry of executors.

``local`` (the default) runs the cells one after another in the ``isp sweep`` process
(:func:`isp_lib.records.run_sweep` as it always did). The others run each cell as a job of its
own, one cell on one device through :func:`isp_lib.runs.run`:

* ``processes``: N worker processes on this machine (``--workers``; one per GPU);
* ``submitit``: a Slurm job array (``pip install -e '.[slurm]'``);
* ``ray``: one Ray task per cell, on a running cluster or a local one (``pip install -e '.[ray]'``).

Every job writes its run directory under the sweep's ``out``, which must be on a file system
that the driver and every worker share (each job checks that it sees a marker file the driver
wrote there, and fails in one line if not); the driver rewrites the records file from the run
directories (each ``result.json`` read with the same trust checks as a skipped run) as the
jobs end, so the records are the same bits whichever executor ran the cells. Complete cells
are skipped before any job starts; an interrupted cell resumes from its checkpoint on whatever
worker runs it next, under its run directory's lock.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from isp_lib.errors import UserError
from isp_lib.executors.base import Executor
from isp_lib.executors.processes import Processes
from isp_lib.executors.ray_tasks import Ray
from isp_lib.executors.slurm import Submitit

EXECUTORS: dict[str, type[Executor]] = {cls.name: cls for cls in (Processes, Submitit, Ray)}

#: Packages of the executors that need one, with the extra that installs it.
PACKAGES = {"submitit": ("submitit", "slurm"), "ray": ("ray", "ray")}

#: The settings of ``isp sweep`` that pick and size the executor: option -> (flag, type, help).
FLAGS: dict[str, tuple[str, type, str]] = {
    "workers": ("--workers", int, "processes: worker processes at once (default: one per GPU "
                                  "where there are several, else one per core)"),
    "cpus_per_job": ("--cpus-per-job", int, "processes, submitit, ray: CPUs (and torch "
                                            "threads) of each job (default 1)"),
    "gpus_per_job": ("--gpus-per-job", int, "submitit, ray: GPUs of each job (default 1 with "
                                            "--device cuda, else 0)"),
    "slurm_partition": ("--slurm-partition", str, "submitit: the Slurm partition"),
    "timeout_min": ("--timeout-min", int, "submitit: each job's time limit in minutes "
                                          "(default 240; a job that reaches it is requeued "
                                          "and resumes from its checkpoint)"),
    "array_parallelism": ("--array-parallelism", int, "submitit: most jobs running at once"),
    "ray_address": ("--ray-address", str, "ray: the cluster to join (default: start a local "
                                          "one on this machine's cores)"),
}


def make_executor(name: str, device: str = "auto", **options: Any) -> Executor | None:
    """The executor ``name`` with ``options``, checked before any work.

    Args:
        name: ``local``, or a name of :data:`EXECUTORS`.
        device: ``auto``, ``cpu`` or ``cuda``: what the jobs will be given, checked here (on
            this machine for local and processes; by name and against the GPUs asked for, for
            submitit and ray, whose jobs resolve it where they run).
        **options: the executor's settings (see each class), only those given.

    Returns:
        None for ``local`` (:func:`isp_lib.records.run_sweep` runs the cells itself), else
        the executor.

    Raises:
        UserError: one line, for an unknown executor, a setting it does not take, a bad
            value, a device it cannot use, or its package not installed.
    """
    if name != "local" and name not in EXECUTORS:
        raise UserError(f"unknown executor '{name}': use local, {', '.join(EXECUTORS)}")
    allowed = EXECUTORS[name].options if name in EXECUTORS else ()
    for key in options:
        if key not in allowed:
            users = [n for n, cls in EXECUTORS.items() if key in cls.options]
            flag = FLAGS[key][0] if key in FLAGS else key
            raise UserError(f"{flag} applies to --executor {' or '.join(users)}, "
                            f"not {name}" if users else f"unknown executor setting {key}")
    if name == "local":
        from isp_lib.runs import resolve_device

        resolve_device(device)
        return None
    if name in PACKAGES:
        package, extra = PACKAGES[name]
        try:
            importlib.import_module(package)
        except ImportError:
            raise UserError(f"--executor {name} needs the {package} package, which is not "
                            f"installed: pip install -e '.[{extra}]'") from None
    return EXECUTORS[name](device, **options)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--executor`` and the settings of :data:`FLAGS` to ``isp sweep``'s parser, and
    how every job uses its device (``--no-bf16``, ``--compile``: :mod:`isp_lib.accel`)."""
    from isp_lib.accel_flags import add_arguments as add_accel_arguments

    parser.add_argument("--executor", default="local",
                        help="where the cells run: local (default: one after another here), "
                             "processes, submitit (Slurm) or ray; every job must see the "
                             "sweep's out folder (a shared file system)")
    for key, (flag, kind, text) in FLAGS.items():
        parser.add_argument(flag, dest=key, type=kind, default=None, help=text,
                            metavar="N" if kind is int else key.split("_")[-1].upper())
    add_accel_arguments(parser)


def from_args(args: argparse.Namespace) -> Executor | None:
    """The executor that ``isp sweep``'s arguments ask for (see :func:`make_executor`)."""
    given = {key: getattr(args, key) for key in FLAGS if getattr(args, key) is not None}
    return make_executor(args.executor, args.device, **given)
