"""Paired notebooks: each .py (py:percent) and its .ipynb hold the same cells, without outputs."""

from __future__ import annotations

import ast
from pathlib import Path

import jupytext
import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.py"))


def cells(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


@pytest.mark.parametrize("py", NOTEBOOKS, ids=lambda p: p.name)
def test_pair_in_sync_and_without_outputs(py):
    ipynb = py.with_suffix(".ipynb")
    assert ipynb.exists(), f"{py.name} has no paired .ipynb: run jupytext --sync {py}"
    committed = nbformat.read(ipynb, as_version=4)
    assert cells(jupytext.read(py)) == cells(committed), f"run jupytext --sync {py}"
    for cell in committed.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, \
                f"{ipynb.name} holds outputs: clear them before committing"
    assert committed.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("py", NOTEBOOKS, ids=lambda p: p.name)
def test_has_parameters_cell_and_defines_no_algorithms(py):
    nb = jupytext.read(py)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters' (papermill)"
    assert "PROFILE" in tagged[0].source
    for c in nb.cells:
        if c.cell_type == "code":
            tree = ast.parse(c.source)
            defs = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)]
            assert not defs, "notebooks import the library and define no functions or classes"


def code_lines(source: str) -> int:
    return sum(1 for line in source.splitlines()
               if line.strip() and not line.strip().startswith("#"))


def test_notebook_code_stays_short():
    """Narrative in Markdown, analysis in the library: code cells of about 10 lines at most,
    all chapters' code together under 550 lines (non-blank, non-comment)."""
    total = 0
    for py in NOTEBOOKS:
        for cell in jupytext.read(py).cells:
            if cell.cell_type == "code":
                n = code_lines(cell.source)
                assert n <= 10, f"{py.name}: a code cell of {n} lines; move its work to isp_lib"
                total += n
    assert total < 550, f"notebooks hold {total} code lines (budget 550)"
