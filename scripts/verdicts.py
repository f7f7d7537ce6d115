"""Every verdict of the last built book, chapter by chapter, as one Markdown page.

Reads the executed chapters that ``scripts/build_book.py`` left in ``_build/src`` (papermill's
output notebooks) and collects the sentences that ``isp_lib.analysis.show_verdicts`` printed:
one line per claim, with our paired difference, its 95% interval, the seeds, the verdict and
the paper's number. Nothing is recomputed: the page says what the book says.

Usage: python scripts/verdicts.py [--book _build/src] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from toc import toc_files

ROOT = Path(__file__).resolve().parent.parent
#: The call whose Markdown output holds a chapter's verdict sentences.
MARKER = "show_verdicts("


def chapter_verdicts(notebook: Path) -> tuple[str, list[str]]:
    """The title and verdict sentences of one executed chapter.

    Args:
        notebook: an executed ``.ipynb`` (with outputs).

    Returns:
        The chapter's first Markdown heading and the ``- `` lines of the Markdown outputs of
        its cells that call :data:`MARKER`, in order.
    """
    cells = json.loads(notebook.read_text())["cells"]
    title = next((line.lstrip("# ").strip() for c in cells if c["cell_type"] == "markdown"
                  for line in "".join(c["source"]).splitlines() if line.startswith("# ")),
                 notebook.stem)
    lines: list[str] = []
    for cell in cells:
        if cell["cell_type"] != "code" or MARKER not in "".join(cell["source"]):
            continue
        for output in cell.get("outputs", []):
            text = "".join(output.get("data", {}).get("text/markdown", []))
            lines += [line for line in text.splitlines() if line.startswith("- ")]
    return title, lines


def page(book: Path) -> str:
    """The Markdown page of every chapter's verdicts, in the order of ``_toc.yml``.

    Args:
        book: the staged book folder with executed chapters (``_build/src``).

    Returns:
        The page; chapters without verdict sentences are left out.

    Raises:
        FileNotFoundError: if the book has not been built.
    """
    toc = book / "_toc.yml"
    if not toc.exists():
        raise FileNotFoundError(f"{toc} is missing: run `make book` first")
    parts = ["# Every verdict of the book", ""]
    for name in toc_files(toc):
        notebook = book / f"{name}.ipynb"
        if not notebook.exists():
            continue
        title, lines = chapter_verdicts(notebook)
        if lines:
            parts += [f"## {title}", "", *lines, ""]
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--book", type=Path, default=ROOT / "_build" / "src",
                        help="the built book's staged sources (default: _build/src)")
    parser.add_argument("--out", type=Path, default=None, help="write the page here")
    args = parser.parse_args()
    try:
        text = page(args.book)
    except FileNotFoundError as exc:
        print(f"verdicts: {exc}", file=sys.stderr)
        sys.exit(2)
    if args.out is None:
        print(text)
    else:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
