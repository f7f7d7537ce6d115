"""scripts/compare_masks.py and the analysis functions behind it: masks of finished runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from isp_lib import analysis
from isp_lib.io import save_mask
from isp_lib.masks import Mask

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
sys.path.insert(0, str(SCRIPTS))
import compare_masks  # noqa: E402


def mask(kept_a: list[bool], kept_b: list[bool]) -> Mask:
    return Mask({"enc.layer.0.w.weight": torch.tensor(kept_a),
                 "enc.layer.1.w.weight": torch.tensor(kept_b)})


def run_dir(root: Path, name: str, m: Mask, method: str, seed: int) -> Path:
    folder = root / name
    folder.mkdir()
    save_mask(m, folder / "mask.pt")
    record = {"method": method, "seed": seed, "target_sparsity": 0.5,
              "config": {"overrides": [["rate", "0.7"]] if method == "imp" else []}}
    (folder / "result.json").write_text(json.dumps(record))
    return folder


def test_similarity_is_symmetric_and_one_on_the_diagonal():
    a = mask([True, True, False, False], [True, False])
    b = mask([True, False, True, False], [True, False])
    sim = analysis.mask_similarity({"a": a, "b": b})
    assert list(sim.index) == list(sim.columns) == ["a", "b"]
    assert sim.loc["a", "a"] == sim.loc["b", "b"] == 1.0
    assert sim.loc["a", "b"] == sim.loc["b", "a"] == pytest.approx(2 / 3)  # 2 shared of 3 kept


def test_layer_sparsity_by_mask_weighs_tensors_by_size():
    m = Mask({"enc.layer.0.a.weight": torch.tensor([True, False, False, False]),
              "enc.layer.0.b.weight": torch.tensor([True, True]),
              "enc.layer.1.a.weight": torch.tensor([False, False])})
    frame = analysis.layer_sparsity_by_mask({"x": m, "y": Mask.ones_like(m)})
    assert list(frame.index) == [0, 1] and list(frame.columns) == ["x", "y"]
    assert frame.loc[0, "x"] == pytest.approx(0.5) and frame.loc[1, "x"] == 1.0
    assert (frame["y"] == 0).all()


def test_script_labels_runs_and_prints_both_tables(tmp_path, capsys):
    one = run_dir(tmp_path, "r1", mask([True, True, False, False], [True, False]), "imp", 0)
    two = run_dir(tmp_path, "r2", mask([True, False, True, False], [True, False]), "isp", 1)
    assert compare_masks.main([str(one), str(two)]) == 0
    out = capsys.readouterr().out
    assert "[1] imp (rate=0.7) at 50%, seed 0" in out and "[2] isp at 50%, seed 1" in out
    assert "0.6667" in out and "sparsity per layer" in out


@pytest.mark.parametrize("case", ["no mask", "other weights", "one run"])
def test_script_refuses_bad_input_in_one_line(tmp_path, capsys, case):
    one = run_dir(tmp_path, "r1", mask([True, False], [True, False]), "isp", 0)
    if case == "no mask":
        args = [str(one), str(tmp_path)]
    elif case == "other weights":
        other = run_dir(tmp_path, "r2", Mask({"x.weight": torch.tensor([True])}), "isp", 1)
        args = [str(one), str(other)]
    else:
        args = [str(one)]
    assert compare_masks.main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
