"""scripts/gpu_check.sh: bad input and a machine without a GPU get one line and exit status 2,
before anything is installed or written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "gpu_check.sh"


def run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(["bash", str(SCRIPT), "--out", str(tmp_path / "out"), *args],
                          capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("args,needle", [
    (["--bogus"], "unknown argument '--bogus'"),
    (["--reps"], "--reps needs a value"),
    (["--reps", "0"], "is not a positive integer"),
    (["--wheels", "/nowhere"], "make gpu-wheels"),
])
def test_bad_arguments_get_one_line(args, needle, tmp_path):
    done = run(args, tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and needle in done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: the check would run")
def test_no_gpu_is_refused_before_anything_is_written(tmp_path):
    done = run([], tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == f"gpu_check: {sys.executable} sees no CUDA GPU; run this " \
                                  "on a machine with one"
    assert not (tmp_path / "out").exists()
