"""SNIP and GraSP scores against closed forms on linear least squares, and their masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from isp_lib.masks import Mask
from isp_lib.methods import get_method
from isp_lib.saliency import balanced_indices, grasp_scores, snip_scores
from tests.conftest import make_toy_ctx


class Regressor(nn.Module):
    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.fc = nn.Linear(w.shape[1], 1, bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


@pytest.fixture
def least_squares():
    g = torch.Generator().manual_seed(0)
    x, y, w = torch.randn(8, 5, generator=g), torch.randn(8, generator=g), torch.randn(1, 5,
                                                                                      generator=g)
    model = Regressor(w)
    grad = 2 / 8 * x.T @ (x @ w[0] - y)  # of mean((x w - y)^2)
    hess = 2 / 8 * x.T @ x
    return model, {"x": x, "labels": y}, w[0], grad, hess


def test_snip_is_abs_grad_times_weight(least_squares):
    model, batch, w, grad, _ = least_squares
    s = snip_scores(model, {"fc.weight": model.fc.weight}, [batch])["fc.weight"][0]
    assert torch.allclose(s, (grad * w).abs(), atol=1e-6)
    assert (s >= 0).all()


def test_grasp_is_minus_weight_times_hessian_gradient(least_squares):
    model, batch, w, grad, hess = least_squares
    s = grasp_scores(model, {"fc.weight": model.fc.weight}, [batch], temperature=1.0)
    expected = -w * (hess @ grad)
    assert torch.allclose(s["fc.weight"][0], expected, atol=1e-5)
    assert model.fc.weight.grad is None  # scoring leaves no gradients behind


@pytest.mark.parametrize("name", ["snip", "grasp"])
def test_mask_keeps_the_highest_keep_scores(name):
    ctx = make_toy_ctx(sparsity=0.6)
    method = get_method(name)
    opts = method.Options()
    scores = method.scores(ctx, opts, method.score_indices(ctx, opts))
    ctx2 = make_toy_ctx(sparsity=0.6)
    method.run(ctx2, opts)
    flat_scores = torch.cat([scores[n].flatten() for n in ctx2.mask])
    flat_kept = torch.cat([ctx2.mask[n].flatten() for n in ctx2.mask])
    assert flat_scores[flat_kept].min() >= flat_scores[~flat_kept].max()
    assert ctx2.ledger.phases["score"]["steps"] >= 1


def test_balanced_indices_take_per_class_of_each_class():
    ctx = make_toy_ctx()
    idx = balanced_indices(ctx.train_set, per_class=4, seed=0)
    labels = ctx.train_set.y[idx].numpy()
    assert sorted(np.unique(labels, return_counts=True)[1].tolist()) == [4, 4, 4]
    assert np.array_equal(idx, balanced_indices(ctx.train_set, per_class=4, seed=0))


def test_scores_cover_the_prunable_scope_only():
    ctx = make_toy_ctx()
    method = get_method("snip")
    scores = method.scores(ctx, method.Options(), np.arange(16))
    assert set(scores) == set(Mask.ones_like(ctx.params))
