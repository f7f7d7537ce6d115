"""Execute every chapter of the book with papermill, then build it with Jupyter Book 1.

One executor: papermill runs each committed ``notebooks/*.ipynb`` (no outputs in git) with the
chosen profile into a staging copy of the book under ``_build/src``; Jupyter Book's own
execution is off. A cell error or timeout fails the build and names the notebook and cell.

Each chapter's start and end (with its wall time) are printed as they happen, and between
them the progress lines of the runs it trains (``isp_lib.progress`` writes them to the kernel
process's stderr, which is this script's). A cell has no time limit at the ``cpu`` and
``paper`` profiles (a chapter may train for hours) and :data:`SMOKE_TIMEOUT_S` at ``smoke``;
``--timeout`` overrides both.

The kernels run in one temporary folder outside the repository, as on Colab, so a chapter
that depends on the working directory fails here; ``--cwd-repo`` runs them in the repository
root instead (smoke runs then stay in ``runs/`` for the next build).

Usage: python scripts/build_book.py [--profile cpu|smoke|paper] [--timeout SECONDS]
                                    [--cwd-repo]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import papermill
from toc import toc_files

from isp_lib.progress import duration

ROOT = Path(__file__).resolve().parent.parent
STAGE = ROOT / "_build" / "src"
#: Seconds a cell may run at the smoke profile (tiny models: a chapter takes minutes).
SMOKE_TIMEOUT_S = 1800
#: tqdm.auto (imported by transformers) warns once in a kernel without ipywidgets, then falls
#: back to text bars; the book needs no widgets, so its kernels ignore that one warning.
KERNEL_WARNINGS = "ignore:IProgress not found:Warning:tqdm.auto"


def kernel_warnings() -> None:
    """Add :data:`KERNEL_WARNINGS` to ``PYTHONWARNINGS``, which the papermill kernels inherit."""
    current = os.environ.get("PYTHONWARNINGS")
    os.environ["PYTHONWARNINGS"] = ",".join(w for w in (current, KERNEL_WARNINGS) if w)


def chapters() -> list[str]:
    """Notebook paths (without suffix) listed in ``_toc.yml``, in order."""
    return [f for f in toc_files(ROOT / "_toc.yml") if f.startswith("notebooks/")]


def stage() -> None:
    """Copy the book's sources (config, toc, Markdown pages) into the staging folder."""
    if STAGE.exists():
        shutil.rmtree(STAGE)
    STAGE.mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, STAGE / name)
    shutil.copytree(ROOT / "book", STAGE / "book")


def cell_timeout(profile: str, override: int | None = None) -> int | None:
    """Seconds a cell may run before the build fails.

    Args:
        profile: ``smoke``, ``cpu`` or ``paper``.
        override: ``--timeout``: seconds, or 0 for no limit; None: the profile's default.

    Returns:
        The limit, or None for none (``cpu`` and ``paper`` train for as long as they need;
        ``smoke`` gets :data:`SMOKE_TIMEOUT_S`).
    """
    if override is not None:
        return override or None
    return SMOKE_TIMEOUT_S if profile == "smoke" else None


def execute(chapter: str, profile: str, timeout: int | None, cwd: Path) -> float:
    """Run one chapter with papermill into the staging folder.

    Args:
        chapter: notebook path without suffix, relative to the repository.
        profile: the ``PROFILE`` parameter.
        timeout: seconds per cell, None for no limit.
        cwd: the kernel's working directory.

    Returns:
        The chapter's wall time in seconds.
    """
    src = ROOT / f"{chapter}.ipynb"
    dst = STAGE / f"{chapter}.ipynb"
    dst.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(src), str(dst), parameters={"PROFILE": profile}, cwd=str(cwd),
            kernel_name="python3", execution_timeout=timeout, progress_bar=False,
        )
    except papermill.PapermillExecutionError as exc:
        sys.exit(f"build_book: {chapter}.ipynb failed in cell {exc.exec_count} after "
                 f"{duration(time.perf_counter() - start)}: {exc.ename}: {exc.evalue}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu", choices=["smoke", "cpu", "paper"])
    parser.add_argument("--timeout", type=int, default=None,
                        help=f"seconds per cell, 0 for no limit (default: none at cpu and "
                             f"paper, {SMOKE_TIMEOUT_S} at smoke)")
    parser.add_argument("--cwd-repo", action="store_true",
                        help="run the chapters in the repository root instead of a temporary "
                             "folder outside it")
    args = parser.parse_args()
    if args.timeout is not None and args.timeout < 0:
        parser.error(f"--timeout {args.timeout}: pass seconds, or 0 for no limit")
    timeout = cell_timeout(args.profile, args.timeout)
    limit = "no cell timeout" if timeout is None else f"cell timeout {timeout} s"
    kernel_warnings()
    stage()
    todo = chapters()
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="isp-book-") as outside:
        cwd = ROOT if args.cwd_repo else Path(outside)
        print(f"kernels run in {cwd}", flush=True)
        for n, chapter in enumerate(todo, 1):
            print(f"[{n}/{len(todo)}] {chapter} ({args.profile}, {limit}): started", flush=True)
            secs = execute(chapter, args.profile, timeout, cwd)
            print(f"[{n}/{len(todo)}] {chapter}: done in {duration(secs)} "
                  f"({duration(time.perf_counter() - began)} so far)", flush=True)
    cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(STAGE),
           "--path-output", str(ROOT), "-W", "-n", "--keep-going"]
    if subprocess.run(cmd, cwd=ROOT).returncode != 0:
        sys.exit("build_book: jupyter-book build failed (warnings count as errors)")
    print(f"book: {ROOT / '_build' / 'html' / 'index.html'} "
          f"(built in {duration(time.perf_counter() - began)})", flush=True)


if __name__ == "__main__":
    main()
