"""Execute every chapter of the book with papermill, then build it with Jupyter Book 1.

One executor: papermill runs each committed ``notebooks/*.ipynb`` (no outputs in git) with the
chosen profile into a staging copy of the book under ``_build/src``; Jupyter Book's own
execution is off. A cell error or timeout fails the build and names the notebook and cell.

Usage: python scripts/build_book.py [--profile cpu|smoke|paper] [--timeout SECONDS]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import papermill
from toc import toc_files

ROOT = Path(__file__).resolve().parent.parent
STAGE = ROOT / "_build" / "src"
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


def execute(chapter: str, profile: str, timeout: int) -> float:
    """Run one chapter with papermill into the staging folder; return its wall time."""
    src = ROOT / f"{chapter}.ipynb"
    dst = STAGE / f"{chapter}.ipynb"
    dst.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(src), str(dst), parameters={"PROFILE": profile}, cwd=str(ROOT),
            kernel_name="python3", execution_timeout=timeout, progress_bar=False,
        )
    except papermill.PapermillExecutionError as exc:
        sys.exit(f"build_book: {chapter}.ipynb failed in cell {exc.exec_count}: "
                 f"{exc.ename}: {exc.evalue}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu", choices=["smoke", "cpu", "paper"])
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    args = parser.parse_args()
    kernel_warnings()
    stage()
    for chapter in chapters():
        secs = execute(chapter, args.profile, args.timeout)
        print(f"executed {chapter} ({args.profile}) in {secs:.0f} s", flush=True)
    cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(STAGE),
           "--path-output", str(ROOT), "-W", "-n", "--keep-going"]
    if subprocess.run(cmd, cwd=ROOT).returncode != 0:
        sys.exit("build_book: jupyter-book build failed (warnings count as errors)")
    print(f"book: {ROOT / '_build' / 'html' / 'index.html'}")


if __name__ == "__main__":
    main()
