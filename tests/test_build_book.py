"""scripts/build_book.py: the per-cell timeout each profile gets."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("papermill", reason="the book extra is not installed")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import build_book  # noqa: E402


@pytest.mark.parametrize("profile,override,expected", [
    ("cpu", None, None),  # a cpu chapter trains for as long as it needs
    ("paper", None, None),
    ("smoke", None, build_book.SMOKE_TIMEOUT_S),
    ("cpu", 600, 600),  # --timeout wins
    ("smoke", 60, 60),
    ("smoke", 0, None),  # --timeout 0: no limit
])
def test_cell_timeout_per_profile(profile, override, expected):
    assert build_book.cell_timeout(profile, override) == expected


def test_smoke_timeout_is_generous():
    assert build_book.SMOKE_TIMEOUT_S >= 600
