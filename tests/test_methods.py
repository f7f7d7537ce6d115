"""Properties of every method on a toy task (no downloads, seconds)."""

from __future__ import annotations

import dataclasses
import io

import pytest
import torch

from isp_lib.errors import UserError
from isp_lib.masks import Mask
from isp_lib.methods import METHODS, get_method
from isp_lib.methods.base import parse_options
from isp_lib.methods.denoise import Protocol, denoised_prune, merge_denoised
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


def test_oneshot_by_layer_prunes_every_tensor_to_the_target_by_its_own_magnitudes():
    start = make_toy_ctx(sparsity=0.7, seed=0)
    pretrained = {n: p.detach().clone() for n, p in start.params.items()}
    ctx = run_method("oneshot", sparsity=0.7, group="layer")
    for n, m in ctx.mask.items():
        assert abs(int((~m).sum()) - 0.7 * m.numel()) < 1
        assert pretrained[n].abs()[~m].max() <= pretrained[n].abs()[m].min()
    default = run_method("oneshot", sparsity=0.7)
    assert any(not torch.equal(ctx.mask[n], default.mask[n]) for n in ctx.mask)
    assert dataclasses.asdict(get_method("oneshot").Options())["group"] == "global"


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
    fixed = run_method("isp", sparsity=0.95, fit_rate=False, mask_budget_frac=0.6)
    fitted = run_method("isp", sparsity=0.95, mask_budget_frac=0.6)
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


SHAPES = {"a": (20, 15), "b": (40,), "c": (10, 8)}


def _weights(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {n: torch.randn(shape, generator=g) for n, shape in SHAPES.items()}


def _lookahead(main: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """Weights near ``main``, as after a few steps of training."""
    noise = _weights(seed)
    return {n: w + 0.3 * noise[n] for n, w in main.items()}


def _current_mask(seed: int, share: float = 0.3) -> Mask:
    """A mask with about ``share`` of the entries already pruned."""
    g = torch.Generator().manual_seed(1000 + seed)
    return Mask({n: torch.rand(shape, generator=g) >= share for n, shape in SHAPES.items()})


def _merge(main, looks, mask, rate=0.2, target=0.99, adjust_gap=0.0, force_adjust=False):
    return merge_denoised(main, looks, mask, rate, target, adjust_gap, force_adjust)


def _removed(new: Mask, old: Mask) -> dict[str, torch.Tensor]:
    return {n: old[n] & ~new[n] for n in old}


@pytest.mark.parametrize("seed", range(4))
def test_no_denoisers_is_plain_magnitude_pruning(seed):
    main, mask = _weights(seed), _current_mask(seed)
    new, report = _merge(main, [], mask)
    assert not report.adjusted and report.lookahead_sparsity == []
    removed = _removed(new, mask)
    n_removed = sum(int(r.sum()) for r in removed.values())
    assert n_removed == round(0.2 * mask.num_kept())
    # every removed weight is no larger than any weight that stays
    largest_removed = max(float(main[n][r].abs().max()) for n, r in removed.items() if r.any())
    smallest_kept = min(float(main[n][new[n]].abs().min()) for n in new if new[n].any())
    assert largest_removed <= smallest_kept
    assert report.own_sparsity == report.union_sparsity == report.sparsity == new.sparsity()


@pytest.mark.parametrize("seed", range(4))
def test_denoised_union_keeps_a_weight_iff_some_mask_keeps_it(seed):
    main, mask = _weights(seed), _current_mask(seed)
    looks = [_lookahead(main, 100 * seed + k) for k in range(1, 4)]
    new, report = _merge(main, looks, mask)
    assert not report.adjusted
    own_masks = [_merge(w, [], mask)[0] for w in [main, *looks]]
    for n in new:
        some_keeps = torch.stack([m[n] for m in own_masks]).any(0)
        assert torch.equal(new[n], some_keeps)
    assert new.is_subset_of(mask)
    assert report.own_sparsity == own_masks[0].sparsity()
    assert report.lookahead_sparsity == [m.sparsity() for m in own_masks[1:]]
    assert report.union_sparsity == new.sparsity() <= min(m.sparsity() for m in own_masks)


def test_look_aheads_are_read_one_at_a_time():
    """A lazy stream that reuses one buffer (as the look-ahead training does) gives the same
    mask as separate copies: each look-ahead is read before the next one is made."""
    main, mask = _weights(0), _current_mask(0)
    looks = [_weights(k) for k in range(1, 4)]
    buffer = {n: torch.empty(shape) for n, shape in SHAPES.items()}

    def stream():
        for w in looks:
            for n in buffer:
                buffer[n].copy_(w[n])
            yield buffer

    lazy, _ = _merge(main, stream(), mask)
    eager, _ = _merge(main, looks, mask)
    assert all(torch.equal(lazy[n], eager[n]) for n in mask)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("case", ["within the gap", "beyond the target", "forced"])
def test_adjustment_goes_to_the_exact_target_on_main_weights(seed, case):
    main, mask = _weights(seed), _current_mask(seed)
    looks = [_lookahead(main, 100 * seed + k) for k in (1, 2)]
    union, _ = _merge(main, looks, mask)
    u, now = union.sparsity(), mask.sparsity()
    target, adjust_gap, force_adjust = {"within the gap": (u + 0.03, 0.05, False),
                                        "beyond the target": ((now + u) / 2, 0.0, False),
                                        "forced": (0.9, 0.0, True)}[case]
    assert now < target
    new, report = _merge(main, looks, mask, target=target, adjust_gap=adjust_gap,
                         force_adjust=force_adjust)
    assert report.adjusted and report.union_sparsity == union.sparsity()
    assert new.num_total() - new.num_kept() == round(target * new.num_total())
    assert new.is_subset_of(mask)
    removed = _removed(new, mask)
    largest_removed = max(float(main[n][r].abs().max()) for n, r in removed.items() if r.any())
    smallest_kept = min(float(main[n][new[n]].abs().min()) for n in new if new[n].any())
    assert largest_removed <= smallest_kept  # by the main weights' magnitude only


def test_union_short_of_the_gap_is_not_adjusted():
    main, mask = _weights(0), _current_mask(0)
    union, report = _merge(main, [_lookahead(main, 1)], mask, target=0.9, adjust_gap=0.05)
    assert not report.adjusted and report.sparsity == union.sparsity() < 0.85


def test_denoised_prune_leaves_the_main_model_and_its_optimizer_untouched():
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
    assert not report.adjusted and len(report.lookahead_sparsity) == 3
    assert new.is_subset_of(ctx.mask)
    assert all(torch.equal(before[k], v) for k, v in ctx.model.state_dict().items())
    after = trainer.optimizer.state_dict()["state"][0]
    assert all(torch.equal(opt_state[k], after[k]) for k in opt_state)
    assert ctx.ledger.phases["lookahead"]["steps"] == 3 * ctx.hp.lookahead_steps


def test_isp_protocols_vary_as_the_paper_says_or_follow_the_official_code():
    ctx = make_toy_ctx()
    isp = get_method("isp")
    varied = isp.protocols(ctx, ISPOptions())
    assert len({(p.lr, p.weight_decay) for p in varied}) == ctx.hp.denoisers
    fixed = isp.protocols(ctx, ISPOptions(vary_protocol=False))
    assert {(p.lr, p.weight_decay) for p in fixed} == {(ctx.hp.lr, ctx.hp.weight_decay)}
    isp.run(ctx, ISPOptions())
    assert ctx.progress["lookaheads"] == [
        {"lr": p.lr, "weight_decay": p.weight_decay, "data_frac": p.data_frac} for p in varied]


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


def _through_disk(payload: dict) -> dict:
    """The checkpoint as a run directory returns it: saved, then loaded with weights_only."""
    buf = io.BytesIO()
    torch.save(payload, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_resume_equals_uninterrupted(name):
    """Killed right after each of its checkpoints in turn and resumed from it, a run ends with
    the mask, weights, ledger and progress of an uninterrupted one."""
    method = get_method(name)
    opts = method.Options()
    sparsity = 0.7 if METHODS[name].prunes else 0.0
    full = make_toy_ctx(sparsity)
    method.run(full, opts)

    def save_then_die(payload):
        saved.append(_through_disk(payload))
        raise Interrupt

    payload, kills = None, 0
    while True:
        resumed = make_toy_ctx(sparsity)
        if payload is not None:
            resumed.load(payload)
        saved: list[dict] = []
        resumed.save_fn = save_then_die
        try:
            method.run(resumed, opts)
            break
        except Interrupt:
            payload, kills = saved[-1], kills + 1
    assert kills >= 3
    assert all(torch.equal(full.mask[n], resumed.mask[n]) for n in full.mask)
    for p, q in zip(full.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(p, q)
    assert resumed.ledger == full.ledger
    assert resumed.progress == full.progress


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
