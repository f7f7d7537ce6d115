"""P5: wall time of what CI runs: the test suite, then the book at the ``smoke`` profile.

Both run once (``--reps`` does not apply: together they take minutes), as subprocesses with
``OMP_NUM_THREADS`` set to the benchmark's thread count. Opt-in: ``--only P5`` or ``--ci``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from tqdm.auto import tqdm

from benchmarks.common import ROOT, Outcome, Row, Settings, seconds, yes_no

NAME = "P5"
TARGET_S = 1200.0
COMMANDS = {
    "pytest": [sys.executable, "-m", "pytest", "-q"],
    "book smoke": [sys.executable, "scripts/build_book.py", "--profile", "smoke"],
}


def run(s: Settings) -> Outcome:
    """Run each command once and time it.

    Args:
        s: the settings (only ``threads`` applies).

    Returns:
        One row per command and one for the total against the target.
    """
    env = {**os.environ, "OMP_NUM_THREADS": str(s.threads)}
    walls: dict[str, float] = {}
    codes: dict[str, int] = {}
    tails: dict[str, str] = {}
    for name, cmd in tqdm(COMMANDS.items(), desc="P5 CI", leave=False, disable=None):
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                              check=False)
        walls[name] = time.perf_counter() - start
        codes[name] = done.returncode
        tails[name] = (done.stdout + done.stderr)[-1500:]
    rows = [Row(f"P5 {name}", seconds(walls[name]), "-", "-", "exit 0",
                yes_no(codes[name] == 0)) for name in COMMANDS]
    total = sum(walls.values())
    ok = total <= TARGET_S and not any(codes.values())
    rows.append(Row("P5 CI total", seconds(total), f"{seconds(TARGET_S)} budget",
                    f"{total / TARGET_S:.3f}x", f"<= {TARGET_S:.0f} s, all pass", yes_no(ok)))
    return Outcome(rows, {"wall_s": walls, "exit_codes": codes, "output_tails": tails})
