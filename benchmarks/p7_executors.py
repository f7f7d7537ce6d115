"""P7: a smoke sweep of 8 cells through the executors, against the sequential sweep.

The same sweep (MiniLM's tokenizer on a tiny random BERT, the drug reviews; dense, one-shot,
random and ISP, seeds 0 and 1, :data:`EPOCHS` epochs each) runs as ``isp sweep --executor
local``, ``processes --workers 2`` and ``ray --cpus-per-job 1`` (a local Ray cluster of the
machine's cores), each in a fresh run folder, as subprocesses with one torch thread per process;
the executors alternate within each repetition and the table reports medians. The records must
be identical (what a cell computes: config hash, masks, metrics, predictions). Ray's start-up
cost is timed on its own (``ray.init`` and ``ray.shutdown`` of a two-CPU local cluster). Opt-in:
``--only P7``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from tqdm.auto import tqdm

from benchmarks.common import ROOT, Outcome, Row, Settings, seconds, yes_no
from isp_lib.records import read_records

NAME = "P7"
TARGET_RATIO = 0.6
#: What a cell computes: equal bits whichever executor ran it (as in tests/test_executors.py).
SAME = ("config_hash", "resolved", "mask_digest", "actual_sparsity", "val_metric",
        "test_metric", "train_steps", "samples_seen", "ledger", "test_predictions",
        "test_labels_sha256")
#: Epochs per cell: long enough (seconds per cell) that the workers' start-up (a fresh
#: interpreter importing torch and transformers, about 4 s here) is not all that is measured.
EPOCHS = 40
EXECUTORS = {"local": [], "processes": ["--workers", "2"], "ray": ["--cpus-per-job", "1"]}
RAY_START = ("import time, ray; t = time.perf_counter(); ray.init(num_cpus=2, "
             "include_dashboard=False, log_to_driver=False); ray.shutdown(); "
             "print(time.perf_counter() - t)")


def sweep_config(out: Path) -> dict:
    """The 8 smoke cells, runs under ``out``."""
    return {"name": "p7", "profile": "smoke", "model": "minilm", "data": "drugreview",
            "seeds": [0, 1], "settings": {"epochs": EPOCHS}, "out": str(out),
            "grid": [{"methods": ["dense"], "sparsities": [0.0]},
                     {"methods": ["oneshot", "random", "isp"], "sparsities": [0.5]}]}


def run_sweep(executor: str, root: Path, env: dict[str, str]) -> tuple[float, list[dict]]:
    """One sweep in a fresh folder under ``root``.

    Args:
        executor: a key of :data:`EXECUTORS`.
        root: an empty folder.
        env: the subprocess environment.

    Returns:
        Wall seconds of the ``isp sweep`` process and the records it wrote.

    Raises:
        RuntimeError: if the sweep fails (with the tail of its output).
    """
    config = root / "p7.yaml"
    config.write_text(yaml.safe_dump(sweep_config(root / "runs")))
    cmd = [sys.executable, "-m", "isp_lib.cli", "sweep", str(config), "--device", "cpu",
           "--executor", executor, *EXECUTORS[executor]]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"P7 {executor}: exit {done.returncode}: {done.stderr[-800:]}")
    return wall, read_records(config.with_suffix(".jsonl"))


def run(s: Settings) -> Outcome:
    """Time the sweep per executor (``s.reps`` repetitions, alternating) and Ray's start-up.

    Args:
        s: the settings (``reps`` and ``threads`` apply).

    Returns:
        One row per parallel executor (its median wall time against the local sweep's) and one
        for Ray's start-up.
    """
    env = {**os.environ, "OMP_NUM_THREADS": str(s.threads), "HF_HUB_OFFLINE": "1"}
    walls: dict[str, list[float]] = {name: [] for name in EXECUTORS}
    records: dict[str, list[dict]] = {}
    reps = range(max(1, s.reps))
    for _ in tqdm(reps, desc="P7 executors", leave=False, disable=None):
        for name in EXECUTORS:
            with tempfile.TemporaryDirectory(prefix=f"p7-{name}-") as folder:
                wall, got = run_sweep(name, Path(folder), env)
            walls[name].append(wall)
            records[name] = [{k: r[k] for k in SAME} for r in got]
    start = subprocess.run([sys.executable, "-c", RAY_START], cwd=ROOT, env=env,
                           capture_output=True, text=True, check=True)
    ray_start = float(start.stdout.strip().splitlines()[-1])
    local = statistics.median(walls["local"])
    rows = []
    for name in ("processes", "ray"):
        ours = statistics.median(walls[name])
        same = records[name] == records["local"] and len(records[name]) == 8
        rows.append(Row(f"P7 {name} (2 workers, 8 cells)", seconds(ours),
                        f"{seconds(local)} local", f"{ours / local:.3f}x",
                        f"<= {TARGET_RATIO}x, same records",
                        yes_no(ours / local <= TARGET_RATIO and same)))
    rows.append(Row("P7 ray start-up (2-CPU local cluster)", seconds(ray_start), "-", "-",
                    "stated", "-"))
    return Outcome(rows, {"wall_s": walls, "ray_start_s": ray_start,
                          "identical": {n: records[n] == records["local"] for n in records}})
