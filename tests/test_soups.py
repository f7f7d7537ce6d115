"""Weight averaging and interpolation, the model soups and Instant Model Soup (toy, seconds)."""

from __future__ import annotations

import pytest
import torch

from isp_lib.errors import UserError
from isp_lib.methods import get_method
from isp_lib.soups import average, best_interpolation, greedy_soup, interpolate
from tests.conftest import make_toy_ctx


def _state(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"w": torch.randn(5, 4, generator=g), "b": torch.randn(4, generator=g),
            "ids": torch.arange(4)}


def test_soup_of_identical_models_is_the_model():
    s = _state(0)
    soup = average([s, s, s])
    assert all(torch.equal(soup[k], s[k]) for k in s)
    assert soup["ids"].dtype == torch.int64


def test_average_is_the_entrywise_mean():
    a, b = _state(0), _state(1)
    assert torch.allclose(average([a, b])["w"], (a["w"] + b["w"]) / 2)


def test_interpolate_ends_and_keep_mask():
    a, b = _state(0), _state(1)
    assert all(torch.equal(interpolate(a, b, 0.0)[k], a[k]) for k in a)
    assert torch.allclose(interpolate(a, b, 1.0)["w"], b["w"])
    keep = {"w": torch.rand(5, 4) > 0.5}
    mixed = interpolate(a, b, 0.5, keep)["w"]
    assert torch.equal(mixed[~keep["w"]], a["w"][~keep["w"]])
    assert torch.allclose(mixed[keep["w"]], (a["w"][keep["w"]] + b["w"][keep["w"]]) / 2)


def _closeness(target):
    return lambda s: -float((s["w"] - target["w"]).norm())


@pytest.mark.parametrize("seed", range(5))
def test_best_interpolation_never_scores_below_base(seed):
    a, b, target = _state(seed), _state(seed + 10), _state(seed + 20)
    score = _closeness(target)
    alpha, val, state = best_interpolation(a, b, (0.25, 0.5, 1.0), score)
    assert val >= score(a) and val == score(state)
    assert alpha in (0.0, 0.25, 0.5, 1.0)


def test_best_interpolation_ties_go_to_base():
    a, b = _state(0), _state(1)
    alpha, _, state = best_interpolation(a, b, (0.5,), lambda s: 1.0)
    assert alpha == 0.0 and torch.equal(state["w"], a["w"])


@pytest.mark.parametrize("seed", range(5))
def test_greedy_soup_never_below_its_best_ingredient(seed):
    states = [_state(seed * 10 + i) for i in range(6)]
    score = _closeness(_state(seed + 99))
    vals = [score(s) for s in states]
    soup, chosen, val = greedy_soup(states, vals, score)
    assert val >= max(vals)
    assert chosen[0] == max(range(6), key=lambda i: vals[i])
    assert val == pytest.approx(score(soup))
    assert torch.allclose(soup["w"], average([states[i] for i in chosen])["w"])


def _run(name: str, **opts):
    ctx = make_toy_ctx(sparsity=0.0)
    method = get_method(name)
    options = method.Options(**opts)
    method.validate(0.0, options)
    method.run(ctx, options)
    return ctx


def test_soups_count_every_fine_tune_and_greedy_beats_its_ingredients():
    greedy = _run("greedy-soup", ingredients=3)
    assert greedy.ledger.phases == {"ingredient": {"steps": 3 * greedy.budget,
                                                   "samples": 3 * greedy.budget * 16}}
    note = greedy.progress["soup"]
    assert greedy.progress["best_val"] >= max(note["ingredient_vals"])
    assert greedy.progress["best_val"] == pytest.approx(greedy.evaluate_val())
    uniform = _run("uniform-soup", ingredients=3)
    assert uniform.progress["soup"]["ingredient_vals"] == note["ingredient_vals"]
    assert uniform.mask.sparsity() == 0.0
    opts = get_method("uniform-soup").Options()
    assert uniform.progress["ingredient_hparams"] == [
        {"lr": uniform.hp.lr * opts.lr_mults[k], "weight_decay": opts.wds[k]} for k in range(3)]


@pytest.mark.parametrize("name", ["uniform-soup", "greedy-soup", "ims"])
def test_dense_methods_refuse_a_sparsity(name):
    method = get_method(name)
    with pytest.raises(UserError, match="--sparsity 0"):
        method.validate(0.5, method.Options())


def test_ims_with_all_alphas_zero_returns_the_pretrained_weights():
    ctx = make_toy_ctx(sparsity=0.0)
    before = {k: v.clone() for k, v in ctx.model.state_dict().items()}
    method = get_method("ims")
    method.denoise(ctx, method.Options(alphas=(0.0,)))
    after = ctx.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert [w["alpha"] for w in ctx.progress["weak"]] == [0.0] * 4


def test_ims_ledger_and_trace():
    ctx = _run("ims", sparsities=(0.2, 0.5), weak_frac=0.25)
    weak = max(1, round(0.25 * ctx.budget))
    assert ctx.ledger.phases["weak"]["steps"] == 2 * weak
    assert ctx.ledger.phases["finetune"]["steps"] == ctx.budget
    assert [w["sparsity"] for w in ctx.progress["weak"]] == [0.2, 0.5]
    losses = [w["val_loss"] for w in ctx.progress["weak"]]
    assert losses == sorted(losses, reverse=True)  # alpha = 0 competes: loss never rises
    for k, w in enumerate(ctx.progress["weak"]):
        assert w["lr"] == ctx.hp.lr * (1.0, 2.0)[k] and w["weight_decay"] == (0.0, 0.01)[k]
        alphas, metrics, curve_losses = zip(*w["curve"], strict=True)
        assert alphas[0] == 0.0 and w["alpha"] in alphas
        assert w["val_loss"] == min(curve_losses)  # chosen by validation loss (the default)
        assert w["val"] == metrics[alphas.index(w["alpha"])]


def test_ims_can_select_by_the_metric_instead():
    ctx = _run("ims", sparsities=(0.2,), weak_frac=0.25, select_by="metric")
    (w,) = ctx.progress["weak"]
    _, metrics, _ = zip(*w["curve"], strict=True)
    assert w["val"] == max(metrics)


def test_ims_refuses_bad_options():
    method = get_method("ims")
    for bad in ({"sparsities": ()}, {"sparsities": (1.0,)}, {"alphas": (1.5,)},
                {"data_frac": 0.0}, {"select_by": "accuracy"}):
        with pytest.raises(UserError):
            method.validate(0.0, method.Options(**bad))
