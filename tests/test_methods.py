"""Properties of every method on a toy task (no downloads, seconds)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from isp_lib.errors import UserError
from isp_lib.masks import Mask, global_magnitude_prune
from isp_lib.methods import METHODS, get_method
from isp_lib.methods import denoise as denoise_mod
from isp_lib.methods.base import parse_options
from isp_lib.methods.denoise import Protocol, denoised_prune
from isp_lib.methods.isp import ISPOptions, fitted_rate
from tests.conftest import make_toy_ctx


def run_method(name: str, sparsity: float = 0.7, seed: int = 0, **opts):
    ctx = make_toy_ctx(sparsity=sparsity, seed=seed)
    method = get_method(name)
    options = method.Options(**opts)
    method.validate(sparsity, options)
    method.run(ctx, options)
    return ctx


@pytest.mark.parametrize("name", [m for m, cls in METHODS.items() if cls.prunes])
def test_every_method_reaches_the_exact_target(name):
    ctx = run_method(name, sparsity=0.7)
    total = ctx.mask.num_total()
    assert total - ctx.mask.num_kept() == round(0.7 * total)
    for n, m in ctx.mask.items():
        assert torch.count_nonzero(ctx.params[n][~m]) == 0
    assert "best_val" in ctx.progress


def test_dense_needs_zero_sparsity():
    with pytest.raises(UserError, match="--sparsity 0"):
        get_method("dense").validate(0.5, get_method("dense").Options())
    ctx = run_method("dense", sparsity=0.0)
    assert ctx.mask.sparsity() == 0.0
    assert ctx.ledger.steps == ctx.budget


def test_ledgers_follow_each_methods_schedule():
    oneshot = run_method("oneshot")
    assert oneshot.ledger.steps == oneshot.budget
    imp = run_method("imp")
    rounds = 4  # 0.7 at rate 0.3: ceil(log 0.3 / log 0.7)
    assert imp.ledger.steps == (rounds + 1) * imp.budget
    isp = run_method("isp")
    assert isp.ledger.phases["train"]["steps"] + isp.ledger.phases["finetune"]["steps"] == \
        isp.budget
    n_rounds = len(isp.progress["trace"])
    assert isp.ledger.phases["lookahead"]["steps"] == \
        n_rounds * isp.hp.denoisers * isp.hp.lookahead_steps
    assert isp.ledger.steps < imp.ledger.steps


def test_lth_rewind_restarts_from_early_step():
    ctx = run_method("lth-rewind", rewind_frac=0.25)
    r = round(0.25 * ctx.budget)
    assert ctx.ledger.steps == 5 * ctx.budget - 4 * r


def test_same_seed_same_mask_and_weights():
    a, b = run_method("isp", seed=3), run_method("isp", seed=3)
    assert all(torch.equal(a.mask[n], b.mask[n]) for n in a.mask)
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters(),
                                                   strict=True))
    c = run_method("isp", seed=4)
    assert any(not torch.equal(a.mask[n], c.mask[n]) for n in a.mask)


def test_isp_rounds_grow_and_masks_shrink():
    ctx = run_method("isp")
    trace = ctx.progress["trace"]
    steps = [t["main_steps"] for t in trace]
    gaps = [b - a for a, b in zip([0, *steps], steps, strict=False)]
    assert gaps == sorted(gaps)
    sparsities = [t["sparsity"] for t in trace]
    assert sparsities == sorted(sparsities) and trace[-1]["adjusted"]


def test_isp_fit_rate_spreads_a_high_target_over_the_rounds():
    fixed = run_method("isp", sparsity=0.95)
    fitted = run_method("isp", sparsity=0.95, fit_rate=True)
    total = fitted.mask.num_total()
    assert total - fitted.mask.num_kept() == round(0.95 * total)
    assert all(t["rate"] == fixed.hp.rate for t in fixed.progress["trace"])
    rates = [t["rate"] for t in fitted.progress["trace"]]
    assert min(rates) >= fitted.hp.rate < max(rates)

    def last_jump(ctx):
        trace = ctx.progress["trace"]
        return trace[-1]["sparsity"] - (trace[-2]["sparsity"] if len(trace) > 1 else 0.0)

    assert last_jump(fitted) < last_jump(fixed)


@pytest.mark.parametrize("current,target,rounds", [(0.0, 0.9, 6), (0.3, 0.7, 2), (0.5, 0.9, 1)])
def test_fitted_rate_reaches_the_target_in_the_rounds(current, target, rounds):
    r = fitted_rate(current, target, rounds)
    assert 1 - (1 - current) * (1 - r) ** rounds == pytest.approx(target)
    assert fitted_rate(target, target, rounds) == 0.0


@pytest.fixture
def recorded_masks(monkeypatch):
    seen: list[Mask] = []
    real = denoise_mod.global_magnitude_prune

    def record(params, mask, amount):
        out = real(params, mask, amount)
        seen.append(out)
        return out

    monkeypatch.setattr(denoise_mod, "global_magnitude_prune", record)
    return seen


def test_denoised_union_keeps_a_weight_iff_some_mask_keeps_it(recorded_masks):
    ctx = make_toy_ctx(sparsity=0.95)
    trainer = ctx.make_trainer("main")
    trainer.train(3, "train")
    before = {k: v.clone() for k, v in ctx.model.state_dict().items()}
    opt_state = {k: v.clone() for k, v in trainer.optimizer.state_dict()["state"][0].items()
                 if torch.is_tensor(v)}
    scratch = make_toy_ctx().model
    protos = [Protocol(1e-2, 0.0, 0.2), Protocol(5e-3, 0.1, 0.2), Protocol(2e-2, 0.01, 0.2)]
    new, report = denoised_prune(ctx, scratch, protos, 0.2, 0, force_adjust=False,
                                 adjust_gap=0.05)
    assert not report.adjusted and len(recorded_masks) == 4
    expected = recorded_masks[0]
    for m in recorded_masks[1:]:
        expected = expected.union(m)
    assert all(torch.equal(new[n], expected[n]) for n in new)
    assert new.is_subset_of(ctx.mask)
    assert report.union_sparsity <= min(report.lookahead_sparsity + [report.own_sparsity])
    # The main model and its optimizer are untouched by the look-aheads.
    assert all(torch.equal(before[k], v) for k, v in ctx.model.state_dict().items())
    after = trainer.optimizer.state_dict()["state"][0]
    assert all(torch.equal(opt_state[k], after[k]) for k in opt_state)
    assert ctx.ledger.phases["lookahead"]["steps"] == 3 * ctx.hp.lookahead_steps


def test_no_denoisers_is_plain_magnitude_pruning():
    ctx = make_toy_ctx(sparsity=0.95)
    new, report = denoised_prune(ctx, None, [], 0.2, 0, force_adjust=False, adjust_gap=0.05)
    plain = global_magnitude_prune(ctx.params, ctx.mask, 0.2)
    assert all(torch.equal(new[n], plain[n]) for n in new)
    assert report.lookahead_sparsity == []


def test_adjustment_goes_to_the_exact_target_on_main_weights():
    ctx = make_toy_ctx(sparsity=0.25)
    new, report = denoised_prune(ctx, None, [], 0.22, 0, force_adjust=False, adjust_gap=0.05)
    assert report.adjusted
    assert new.num_total() - new.num_kept() == round(0.25 * new.num_total())


def test_isp_protocols_vary_as_the_paper_says_or_follow_the_official_code():
    ctx = make_toy_ctx()
    isp = get_method("isp")
    varied = isp.protocols(ctx, ISPOptions())
    assert len({(p.lr, p.weight_decay) for p in varied}) == ctx.hp.denoisers
    fixed = isp.protocols(ctx, ISPOptions(vary_protocol=False))
    assert {(p.lr, p.weight_decay) for p in fixed} == {(ctx.hp.lr, ctx.hp.weight_decay)}


def test_option_parsing_casts_and_refuses():
    opts = parse_options(ISPOptions, {"lookahead_lr_mults": "1,0.5", "vary_protocol": "false"})
    assert opts.lookahead_lr_mults == (1.0, 0.5) and opts.vary_protocol is False
    with pytest.raises(UserError, match="vary_protocol='maybe' is not valid: use true or false"):
        parse_options(ISPOptions, {"vary_protocol": "maybe"})
    with pytest.raises(UserError, match="use a number"):
        parse_options(ISPOptions, {"mask_budget_frac": "half"})
    with pytest.raises(UserError, match="use comma-separated numbers, e.g. 1,0.5"):
        parse_options(ISPOptions, {"lookahead_wds": "0.1,x"})
    with pytest.raises(UserError):
        get_method("nope")


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("name,stop_after", [
    ("isp", 2), ("imp", 3), ("imp", 6), ("progressive", 2), ("lth-rewind", 2), ("lth-rewind", 5),
    ("oneshot", 2), ("snip", 2), ("grasp", 3), ("earlybird", 3), ("earlybird", 7),
    ("lottery-pools", 15), ("lottery-pools", 19), ("lottery-pools", 24), ("greedy-soup", 8),
    ("greedy-soup", 41), ("uniform-soup", 12), ("ims", 3), ("ims", 8),
])
def test_resume_equals_uninterrupted(name, stop_after):
    method = get_method(name)
    opts = method.Options()
    sparsity = 0.7 if METHODS[name].prunes else 0.0
    full = make_toy_ctx(sparsity)
    method.run(full, opts)

    saved: list[dict] = []

    def save_then_die(payload):
        saved.append(_deepcopy(payload))
        if len(saved) == stop_after:
            raise Interrupt

    first = make_toy_ctx(sparsity)
    first.save_fn = save_then_die
    with pytest.raises(Interrupt):
        method.run(first, opts)
    resumed = make_toy_ctx(sparsity)
    resumed.load(saved[-1])
    method.run(resumed, opts)
    assert all(torch.equal(full.mask[n], resumed.mask[n]) for n in full.mask)
    for p, q in zip(full.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(p, q)
    assert resumed.ledger == full.ledger
    assert resumed.progress == full.progress


def _deepcopy(payload):
    import copy

    return copy.deepcopy(payload)


def test_options_are_frozen_dataclasses():
    for cls in METHODS.values():
        assert dataclasses.is_dataclass(cls.Options)


def test_imp_traces_its_masks_against_one_shot():
    ctx = run_method("imp")
    trace = ctx.progress["trace"]
    assert [t["round"] for t in trace] == [1, 2, 3, 4]
    sparsities = [t["sparsity"] for t in trace]
    assert sparsities == sorted(sparsities) and sparsities[-1] == ctx.mask.sparsity()
    assert all(0.0 <= t["cos_kept"] <= 1.0 and 0.0 <= t["cos_pruned"] <= 1.0 for t in trace)
