"""``python -m benchmarks``: run the figures, print one table, write ``benchmarks/last.json``.

Usage: python -m benchmarks [--only P2,P3] [--reps N] [--quick] [--ci] [--device cpu]
                            [--seed 0] [--threads 1]
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import datetime, timezone
from typing import NoReturn

# Offline before anything imports huggingface_hub (through transformers).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from benchmarks.common import ROOT, Row, Settings  # noqa: E402
from isp_lib.errors import UserError  # noqa: E402
from isp_lib.io import write_json  # noqa: E402
from isp_lib.runs import current_commit, host_info, resolve_device  # noqa: E402

# Figure name -> module under benchmarks/ (imported only when it runs).
FIGURES = {
    "P1": "p1_frontier",
    "P2": "p2_masked_step",
    "P3": "p3_global_mask",
    "P4": "p4_denoise_overhead",
    "P5": "p5_ci",
    "P7": "p7_executors",
    "P8": "p8_clip_pipeline",
    "P10": "p10_semi_structured",
    "FLOPS": "flops_methods",
}
OPT_IN = ("P5", "P7")
COLUMNS = ("figure", "ours", "reference", "ratio", "target", "met")
OUT = ROOT / "benchmarks" / "last.json"


class _Parser(argparse.ArgumentParser):
    """Bad input is one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        print(f"bench: error: {message}", file=sys.stderr)
        sys.exit(2)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Read the command line.

    Args:
        argv: arguments (None: ``sys.argv[1:]``).

    Returns:
        The parsed arguments.
    """
    p = _Parser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    p.add_argument("--only", default=None,
                   help=f"comma-separated figures from {', '.join(FIGURES)}")
    p.add_argument("--reps", type=int, default=None,
                   help="repetitions per timing, medians reported (default 3, 2 with --quick)")
    p.add_argument("--quick", action="store_true", help="smaller sizes, for a fast check")
    p.add_argument("--ci", action="store_true", help="also run P5 (the CI wall time)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    p.add_argument("--seed", type=int, default=0, help="seed of every model and draw")
    p.add_argument("--threads", type=int, default=1,
                   help="torch intra-op threads, here and in subprocesses (default 1)")
    return p.parse_args(argv)


def select(args: argparse.Namespace) -> list[str]:
    """The figures to run, in table order; raises :class:`UserError` on an unknown name."""
    if args.only is None:
        return [f for f in FIGURES if f not in OPT_IN or args.ci]
    names = [n.strip().upper() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        raise UserError(f"unknown figure '{','.join(unknown)}' "
                        f"(use one of {', '.join(FIGURES)})")
    if not names:
        raise UserError(f"--only names no figure (use one of {', '.join(FIGURES)})")
    return [f for f in FIGURES if f in names]


def changed_files() -> list[str]:
    """Files of the library and the benchmarks that differ from the recorded commit."""
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "isp_lib",
                              "benchmarks", "results"], capture_output=True, text=True,
                             timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return ["unknown"]
    return [line[3:] for line in out.splitlines() if not line.endswith("last.json")]


def table(rows: list[Row]) -> str:
    """The rows as a Markdown table with aligned columns."""
    cells = [list(COLUMNS)] + [[getattr(r, c) for c in COLUMNS] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = ["| " + " | ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)) + " |"
             for line in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen figures; print the table; write :data:`OUT`. Returns the exit status."""
    args = parse_args(argv)
    try:
        figures = select(args)
        if args.reps is not None and args.reps < 1:
            raise UserError(f"--reps {args.reps} is below 1: pass e.g. --reps 3")
        if args.threads < 1:
            raise UserError(f"--threads {args.threads} is below 1: pass e.g. --threads 1")
        device = resolve_device(args.device)
    except UserError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    reps = args.reps if args.reps is not None else (2 if args.quick else 3)
    settings = Settings(reps=reps, quick=args.quick, device=device, seed=args.seed,
                        threads=args.threads)
    commit, changed = current_commit(), changed_files()
    rows: list[Row] = []
    results: dict[str, dict] = {}
    start = time.perf_counter()
    for name in figures:
        module = importlib.import_module(f"benchmarks.{FIGURES[name]}")
        torch.manual_seed(args.seed)
        t0 = time.perf_counter()
        outcome = module.run(settings)
        results[name] = {"wall_s": time.perf_counter() - t0, "details": outcome.details}
        rows += outcome.rows
    print(table(rows))
    write_json(OUT, {
        "rows": [asdict(r) for r in rows],
        "figures": results,
        "provenance": {
            "git_commit": commit, "changed_files": changed, "host": host_info(device),
            "seed": args.seed,
            "reps": reps, "quick": args.quick, "argv": sys.argv[1:] if argv is None else argv,
            "torch_version": torch.__version__, "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "wall_s": time.perf_counter() - start,
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
