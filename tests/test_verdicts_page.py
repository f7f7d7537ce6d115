"""scripts/verdicts.py: the page of every verdict of a built book."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
sys.path.insert(0, str(SCRIPTS))
import verdicts  # noqa: E402


def _cell(kind: str, source: str, markdown: str | None = None) -> dict:
    cell = {"cell_type": kind, "source": [source], "metadata": {}}
    if kind == "code":
        cell["outputs"] = [] if markdown is None else [
            {"output_type": "display_data", "metadata": {},
             "data": {"text/markdown": [markdown], "text/plain": ["<Markdown>"]}}]
    return cell


def _book(root: Path) -> Path:
    (root / "notebooks").mkdir(parents=True)
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n"
                                   "- file: notebooks/02_a\n- file: notebooks/03_b\n")
    cells = [_cell("markdown", "# Fig. 3: one-shot finds IMP's mask\n\ntext"),
             _cell("code", "analysis.show(summary)", "- not a verdict"),
             _cell("code", "analysis.show_verdicts(table)",
                   "- imp − oneshot at 70% = +1.00 points [+0.20, +1.80], 5 seeds: "
                   "**reproduced** (claim: imp beats oneshot); paper: +8.35.\n\nnote")]
    (root / "notebooks" / "02_a.ipynb").write_text(json.dumps({"cells": cells}))
    (root / "notebooks" / "03_b.ipynb").write_text(json.dumps(
        {"cells": [_cell("markdown", "# Table 2"), _cell("code", "x = 1")]}))
    return root


def test_page_holds_each_chapters_verdict_lines_only(tmp_path):
    text = verdicts.page(_book(tmp_path))
    assert "## Fig. 3: one-shot finds IMP's mask" in text
    assert "- imp − oneshot at 70% = +1.00 points" in text
    assert "not a verdict" not in text and "note" not in text
    assert "Table 2" not in text  # a chapter without verdicts is left out


def test_unbuilt_book_is_one_line_and_exit_2(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPTS / "verdicts.py"), "--book",
                           str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "make book" in done.stderr
