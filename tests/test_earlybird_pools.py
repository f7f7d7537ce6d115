"""Early-Bird's stopping rule and Lottery Pools' schedule (toy, seconds)."""

from __future__ import annotations

import math

import pytest
import torch

from isp_lib.masks import Mask
from isp_lib.methods import get_method
from isp_lib.methods.earlybird import first_draw, hamming_distance
from tests.conftest import make_toy_ctx


def _run(name: str, sparsity: float = 0.7, **opts):
    ctx = make_toy_ctx(sparsity=sparsity)
    method = get_method(name)
    options = method.Options(**opts)
    method.validate(sparsity, options)
    method.run(ctx, options)
    return ctx


@pytest.mark.parametrize("dists,window,expected", [
    ([0.5, 0.2, 0.05, 0.05, 0.05, 0.3], 3, 4),
    ([0.05, 0.5, 0.05, 0.05], 2, 3),
    ([0.05], 1, 0),
    ([0.05, 0.05], 3, None),
    ([0.2, 0.1, 0.1], 1, None),  # strictly below the threshold
])
def test_first_draw(dists, window, expected):
    assert first_draw(dists, window, threshold=0.1) == expected


def test_hamming_distance():
    a = Mask({"w": torch.tensor([True, False, True, True])})
    assert hamming_distance(a, a) == 0.0
    assert hamming_distance(a, Mask({"w": ~a["w"]})) == 1.0
    assert hamming_distance(a, Mask({"w": torch.tensor([True, True, True, True])})) == 0.25


def test_earlybird_draws_at_the_first_window_that_holds():
    ctx = _run("earlybird", window=2, threshold=0.2)
    dists = ctx.progress["distances"]
    assert ctx.progress["drawn_early"]
    assert first_draw(dists, 2, 0.2) == len(dists) - 1
    interval = math.ceil(0.2 * ctx.steps_per_epoch)
    assert ctx.progress["draw_step"] == interval * (len(dists) + 1)
    assert ctx.ledger.phases["train"]["steps"] == ctx.progress["draw_step"]
    assert ctx.ledger.phases["finetune"]["steps"] == ctx.budget


def test_earlybird_without_a_draw_uses_the_whole_budget():
    ctx = _run("earlybird", threshold=1e-12)
    assert not ctx.progress["drawn_early"]
    assert ctx.progress["draw_step"] == ctx.budget


def test_lottery_pools_cost_and_pool_order():
    ctx = _run("lottery-pools", pool_size=2)
    rounds = 4  # 0.7 at rate 0.3
    assert ctx.ledger.steps == (rounds + 2) * ctx.budget
    assert [t["round"] for t in ctx.progress["pool_trace"]] == [3, 2]
    assert set(ctx.progress["finetunes"]) == {"ticket"}


def test_lottery_pools_with_zero_alphas_keeps_imps_ticket():
    pools = _run("lottery-pools", alphas=(0.0,))
    imp = _run("imp")
    assert all(torch.equal(pools.mask[n], imp.mask[n]) for n in imp.mask)
    total = pools.mask.num_total()
    assert total - pools.mask.num_kept() == round(0.7 * total)
