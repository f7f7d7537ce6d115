"""N:M patterns: the groups, the projection, every mask of every patterned method, the config
hashes they leave alone, and the command line's refusals."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from isp_lib.cli import main
from isp_lib.data.vision import FASHION_MNIST_DIR
from isp_lib.errors import UserError
from isp_lib.io import load_mask
from isp_lib.masks import Mask
from isp_lib.methods import METHODS, get_method
from isp_lib.methods.denoise import merge_denoised
from isp_lib.patterns import (
    NMPattern,
    from_groups,
    is_nm,
    magnitude_step,
    magnitude_to,
    parse_pattern,
    project,
    to_groups,
)
from isp_lib.runs import make_config
from tests.conftest import make_toy_ctx

TWO_FOUR = NMPattern(2, 4)
#: Every method with a ``pattern`` option.
PATTERNED = sorted(n for n, cls in METHODS.items()
                   if "pattern" in cls.Options.__dataclass_fields__)


def test_the_patterned_methods_are_the_magnitude_and_calibrated_ones():
    expected = ["earlybird", "imp", "isp", "lottery-pools", "lth-rewind", "oneshot",
                "progressive", "sparsegpt", "wanda"]
    assert expected == PATTERNED


def test_parse_pattern():
    assert parse_pattern("2:4") == TWO_FOUR and parse_pattern(" 4 : 8 ") == NMPattern(4, 8)
    assert parse_pattern("none") is None
    for bad, why in (("3:2", "N=3 is not below M=2"), ("4:4", "not below"), ("0:4", "at least 1"),
                     ("abc", "N:M"), ("2:4:8", "N:M"), ("", "N:M")):
        with pytest.raises(ValueError, match=why):
            parse_pattern(bad)
    assert TWO_FOUR.sparsity == 0.5 and str(TWO_FOUR) == "2:4"


def test_groups_run_along_the_channel_axis():
    linear = torch.arange(2 * 8).view(2, 8)
    assert to_groups(linear, 4).tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11],
                                             [12, 13, 14, 15]]
    conv = torch.arange(2 * 4 * 3 * 3).view(2, 4, 3, 3)  # input channels at one kernel position
    assert to_groups(conv, 4)[0].tolist() == conv[0, :, 0, 0].tolist()
    depthwise = torch.arange(8 * 1 * 3 * 3).view(8, 1, 3, 3)  # channels at one kernel position
    assert to_groups(depthwise, 4)[0].tolist() == depthwise[:4, 0, 0, 0].tolist()
    for t in (linear, conv, depthwise):
        assert torch.equal(from_groups(to_groups(t, 4), t.shape), t)


def test_a_weight_the_pattern_cannot_tile_is_refused_by_name():
    with pytest.raises(UserError, match=r"cannot tile 'w' \(4, 6\).*dim 1.*6 entries"):
        TWO_FOUR.check_fits({"w": torch.zeros(4, 6)})
    with pytest.raises(UserError, match="pass --sparsity 0.5"):
        TWO_FOUR.check_sparsity(0.7)


def test_projection_keeps_the_top_n_of_the_preferred_then_of_the_rest():
    scores = {"w": torch.tensor([[4.0, 3.0, 2.0, 1.0, 1.0, 2.0, 3.0, 4.0]])}
    mask = Mask({"w": torch.ones(1, 8, dtype=torch.bool)})
    prefer = Mask({"w": torch.tensor([[False, False, False, True, True, True, True, False]])})
    exact = project(scores, mask, prefer, TWO_FOUR, exact=True)["w"]
    # group 1 prefers only its 4th weight: topped up by the largest other one; group 2 prefers
    # three: exact keeps the two largest of them, at-least keeps all three
    assert exact.tolist() == [[True, False, False, True, False, True, True, False]]
    floor = project(scores, mask, prefer, TWO_FOUR, exact=False)["w"]
    assert floor.tolist() == [[True, False, False, True, True, True, True, False]]
    with pytest.raises(ValueError, match="fewer than 2"):
        project(scores, Mask({"w": ~prefer["w"] & (torch.arange(8) < 2)}), prefer, TWO_FOUR,
                exact=True)


def test_magnitude_pruning_onto_the_pattern():
    torch.manual_seed(0)
    params = {"a": torch.randn(8, 16), "b": torch.randn(4, 8, 1, 1), "c": torch.randn(8, 1, 3, 3)}
    dense = Mask.ones_like(params)
    mask = magnitude_to(params, dense, 0.5, TWO_FOUR)
    assert is_nm(mask, TWO_FOUR) and mask.sparsity() == 0.5
    for n, p in params.items():  # the kept ones are the two largest |w| of each group
        top_two = to_groups(p.abs(), 4).sort(-1).values[:, 2:]
        assert torch.equal(to_groups(p.abs() * mask[n], 4).sort(-1).values[:, 2:], top_two)
    step = dense
    for _ in range(4):  # rounds of 30% never take a group below 2, and never grow back
        new = magnitude_step(params, step, 0.3, TWO_FOUR)
        assert is_nm(new, TWO_FOUR, exact=False) and new.is_subset_of(step)
        step = new
    assert magnitude_to(params, step, 0.5, TWO_FOUR).is_subset_of(step)


def test_the_denoised_union_is_projected_back_onto_the_pattern():
    torch.manual_seed(1)
    main_w = {"w": torch.randn(8, 16)}
    looks = [{"w": main_w["w"] + 0.5 * torch.randn(8, 16)} for _ in range(3)]
    mask = Mask.ones_like(main_w)
    new, report = merge_denoised(main_w, looks, mask, 0.6, 0.5, 0.05, False, TWO_FOUR)
    assert is_nm(new, TWO_FOUR, exact=False) and not report.adjusted
    raw, _ = merge_denoised(main_w, looks, mask, 0.6, 0.5, 0.05, False)
    groups_raw, groups_new = to_groups(raw["w"], 4), to_groups(new["w"], 4)
    full = groups_raw.sum(-1) >= 2  # the union keeps these groups as they are
    assert torch.equal(groups_new[full], groups_raw[full])
    assert bool((groups_new & ~groups_raw).any())  # and tops the others up
    final, report = merge_denoised(main_w, looks, mask, 0.6, 0.5, 0.05, True, TWO_FOUR)
    assert report.adjusted and is_nm(final, TWO_FOUR) and final.is_subset_of(new)


def _masks_of(name: str, **opts) -> tuple[list[Mask], object]:
    """Every mask a toy run of ``name`` with ``pattern=2:4`` sets or checkpoints."""
    ctx = make_toy_ctx(sparsity=0.5)
    seen: list[Mask] = []
    set_mask = ctx.set_mask

    def recording(mask: Mask, trainer=None) -> None:
        seen.append(mask)
        set_mask(mask, trainer)

    def save(payload: dict) -> None:
        seen.append(Mask(payload["mask"]))
        if "prev_mask" in payload["stash"]:  # EarlyBird's draws
            seen.append(Mask(payload["stash"]["prev_mask"]))

    ctx.set_mask, ctx.save_fn = recording, save
    method = get_method(name)
    options = method.Options(pattern="2:4", **opts)
    method.validate(0.5, options)
    method.run(ctx, options)
    return seen, ctx


@pytest.mark.parametrize("name", PATTERNED)
def test_every_mask_of_a_patterned_run_is_on_the_pattern(name):
    opts = {"fit_rate": False, "mask_budget_frac": 1.0} if name == "isp" else {}
    seen, ctx = _masks_of(name, **opts)
    pruned = [m for m in seen if m.sparsity() > 0]
    assert pruned and all(is_nm(m, TWO_FOUR, exact=False) for m in seen)
    assert is_nm(ctx.mask, TWO_FOUR) and ctx.mask.sparsity() == 0.5
    for n, m in ctx.mask.items():
        assert torch.count_nonzero(ctx.params[n][~m]) == 0
    if name == "isp":  # several rounds, each one's mask at least 2 of 4, the last exactly
        trace = ctx.progress["trace"]
        assert len(trace) >= 2 and trace[-1]["adjusted"] and not trace[0]["adjusted"]


def test_the_pattern_option_leaves_the_existing_cells_alone():
    """Added later, ``pattern`` at its default is no part of an existing method's config hash
    (results/*.jsonl are keyed by them); set, it makes another cell."""
    for name in ("oneshot", "imp", "isp", "progressive", "earlybird", "lth-rewind",
                 "lottery-pools"):
        cfg = make_config(name, "minilm", "drugreview", 0.5, "cpu")
        assert "pattern" not in cfg.resolved["options"]
        same = make_config(name, "minilm", "drugreview", 0.5, "cpu", overrides={"pattern": "none"})
        assert same.config_hash() == cfg.config_hash()
        other = make_config(name, "minilm", "drugreview", 0.5, "cpu", overrides={"pattern": "2:4"})
        assert other.resolved["options"]["pattern"] == "2:4"
        assert other.config_hash() != cfg.config_hash()
    assert make_config("isp", "minilm", "drugreview", 0.7, "cpu").config_hash() == "3f1fe1daa624"
    new = make_config("wanda", "minilm", "drugreview", 0.5, "cpu")
    assert new.resolved["options"]["pattern"] == "none"  # a new method: an ordinary option


def _cli(args: list[str], capsys) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("method", "sparsity", "settings", "message"), [
    ("oneshot", "0.5", "pattern=3:2", r"option pattern='3:2' is not valid \(N=3 is not below "
                                      r"M=2\): use none, or N:M with 0 < N < M \(keep N of "
                                      r"every M\), e.g. --set pattern=2:4$"),
    ("wanda", "0.5", "pattern=abc", r"option pattern='abc' is not valid \(not of the form N:M\)"),
    ("wanda", "0.5", "calib_examples=0", r"option calib_examples=0 is out of range"),
    ("sparsegpt", "0.5", "damp=0", r"option damp=0.0 is out of range"),
    ("isp", "0.7", "pattern=2:4", r"pattern 2:4 keeps 2 of every 4 weights.*--sparsity 0.5"),
    ("snip", "0.5", "pattern=2:4", r"unknown setting\(s\) pattern for method 'snip'"),
    ("random", "0.5", "pattern=2:4", r"unknown setting\(s\) pattern for method 'random'"),
    ("wanda", "0.5", "group=column", r"option group='column' is not valid: use one of row"),
    ("wanda", "0.5", "pattern=2:4 group=global", r"group=global has no effect with pattern=2:4"),
    ("oneshot", "0.5", "pattern=2:4 group=layer", r"group=layer has no effect with pattern=2:4"),
    ("oneshot", "0.5", "group=row", r"option group='row' is not valid: use one of global"),
    ("wanda", "0.5", "finetune=false", r"wanda with finetune=false would prune a bert model "
                                       r"whose classification head is untrained: add --set "
                                       r"start=finetuned"),
    ("sparsegpt", "0.5", "start=dense", r"option start='dense' is not valid: use one of "
                                        r"pretrained, finetuned"),
])
def test_bad_settings_exit_2_with_one_line(method, sparsity, settings, message, tmp_path,
                                           capsys):
    sets = [arg for setting in settings.split() for arg in ("--set", setting)]
    code, err = _cli(["run", "--method", method, "--model", "minilm", "--data", "drugreview",
                      "--sparsity", sparsity, "--profile", "smoke", *sets,
                      "--out", str(tmp_path), "--device", "cpu"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("isp: error: ")
    assert re.search(message, err), err


def test_a_model_the_pattern_cannot_tile_exits_2(tmp_path, capsys):
    code, err = _cli(["run", "--method", "oneshot", "--model", "minilm", "--data", "drugreview",
                      "--sparsity", "0.6667", "--profile", "smoke", "--set", "pattern=1:3",
                      "--out", str(tmp_path), "--device", "cpu"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "pattern 1:3 cannot tile 'encoder.encoder.layer.0.attention.self.query.weight'" in err


@pytest.mark.parametrize(("model", "data"), [("minilm", "drugreview"),
                                             ("clip-vit-b32", "fashion-mnist"),
                                             ("effnet-lite0", "fashion-mnist")])
@pytest.mark.parametrize("method", ["wanda", "sparsegpt", "isp"])
def test_every_family_runs_with_2_4_at_smoke_scale(method, model, data, tmp_path, capsys):
    if data == "fashion-mnist" and not Path(FASHION_MNIST_DIR).is_dir():
        pytest.skip("Fashion-MNIST not installed (make assets)")
    code = main(["run", "--method", method, "--model", model, "--data", data, "--sparsity",
                 "0.5", "--profile", "smoke", "--set", "pattern=2:4", "--out", str(tmp_path),
                 "--device", "cpu", "--no-weights", "--json"])
    assert code == 0, capsys.readouterr().err
    (run_dir,) = tmp_path.iterdir()
    assert is_nm(load_mask(run_dir / "mask.pt"), TWO_FOUR)
    result = json.loads(capsys.readouterr().out)
    assert result["actual_sparsity"] == 0.5
    if method != "isp":
        assert result["ledger"]["phases"]["calib"]["steps"] > 0
