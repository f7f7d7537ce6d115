"""Wanda (Sun et al. 2023): the scores by hand, the comparison groups, the calibration pass and
its cost."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from isp_lib.calibration import CALIB_PHASE, weight_inputs
from isp_lib.costs import plan_steps
from isp_lib.errors import UserError
from isp_lib.masks import Mask
from isp_lib.methods import get_method
from isp_lib.methods.wanda import WandaOptions, row_shares, wanda_mask, wanda_scores
from tests.conftest import TOY_HP, make_toy_ctx


def scores_of(model: nn.Module, params: dict[str, torch.Tensor], batch: dict
              ) -> dict[str, torch.Tensor]:
    """Wanda's scores from one calibration pass of ``batch``."""
    sums: dict[str, torch.Tensor] = {}

    def visit(name, chunks) -> None:
        sums[name] = sum(c.pow(2).sum(1) for c in chunks)

    weight_inputs(model, params, batch, visit)
    return wanda_scores(params, sums)


class Tokens(nn.Module):
    """A Linear over batch-first token states, with an attention mask (BERT's layout)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.fc(x).sum(1)


class Convs(nn.Module):
    """A dense 3x3 conv, then a depthwise one (one group per channel)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, padding=1)
        self.depthwise = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.depthwise(self.conv(x))


def test_scores_are_weight_magnitude_times_input_norm():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 4))
    x = torch.randn(10, 6)
    w = model[0].weight
    got = scores_of(model, {"0.weight": w}, {"input": x})["0.weight"]
    by_hand = torch.stack([torch.stack([w[i, j].abs() * x[:, j].norm() for j in range(6)])
                           for i in range(4)])
    torch.testing.assert_close(got, by_hand.detach())


def test_padding_tokens_are_left_out_of_the_norms():
    torch.manual_seed(0)
    model = Tokens()
    x = torch.randn(3, 5, 6)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    got = scores_of(model, {"fc.weight": model.fc.weight},
                    {"x": x, "attention_mask": mask})["fc.weight"]
    tokens = x[mask.bool()]
    torch.testing.assert_close(got, model.fc.weight.detach().abs() * tokens.norm(dim=0))


def test_conv_scores_use_the_unfolded_input_per_group():
    torch.manual_seed(0)
    model = Convs()
    x = torch.randn(2, 4, 6, 6)
    params = {"conv.weight": model.conv.weight, "depthwise.weight": model.depthwise.weight}
    got = scores_of(model, params, {"x": x})
    cols = F.unfold(x, 3, padding=1)  # (examples, in x 3 x 3, pixels)
    norms = cols.pow(2).sum((0, 2)).sqrt()
    torch.testing.assert_close(got["conv.weight"],
                               (model.conv.weight.abs().reshape(8, -1) * norms)
                               .reshape(8, 4, 3, 3).detach())
    hidden = model.conv(x).detach()
    cols = F.unfold(hidden, 3, padding=1, stride=2)  # channel c's taps feed channel c only
    norms = cols.pow(2).sum((0, 2)).sqrt().view(8, 9)
    torch.testing.assert_close(got["depthwise.weight"],
                               (model.depthwise.weight.abs().reshape(8, 9) * norms)
                               .reshape(8, 1, 3, 3).detach())


def test_multihead_attention_projections_are_both_read():
    mha = nn.MultiheadAttention(8, 2, batch_first=True).eval()

    class Attn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = mha

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.attn(x, x, x, need_weights=False)[0]

    x = torch.randn(2, 5, 8)
    params = {"attn.in_proj_weight": mha.in_proj_weight, "attn.out_proj.weight":
              mha.out_proj.weight}
    got = scores_of(Attn(), params, {"x": x})
    torch.testing.assert_close(got["attn.in_proj_weight"],
                               mha.in_proj_weight.detach().abs() * x.reshape(10, 8).norm(dim=0))
    assert got["attn.out_proj.weight"].shape == (8, 8)
    assert torch.backends.mha.get_fastpath_enabled()  # switched back on


def test_a_weight_no_product_reads_is_refused():
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    unused = nn.Parameter(torch.ones(3, 3))
    with pytest.raises(UserError, match="no matrix product or 2-d convolution read 'x'"):
        weight_inputs(model, {"0.weight": model[0].weight, "x": unused},
                      {"input": torch.ones(2, 4)}, lambda name, chunks: None)


def test_row_group_prunes_the_same_share_of_every_row():
    torch.manual_seed(0)
    scores = {"a": torch.rand(8, 16), "b": torch.rand(4, 16)}
    dense = Mask.ones_like(scores)
    half = wanda_mask(scores, dense, 0.5, WandaOptions())
    for n, s in scores.items():
        assert (half[n].sum(1) == 8).all()  # each row keeps its 8 highest scores
        assert (s[~half[n]].view(len(s), -1).max(1).values < s[half[n]].view(len(s), -1)
                .min(1).values).all()
    most = wanda_mask(scores, dense, 0.7, WandaOptions())
    pruned = torch.cat([(~most[n]).sum(1) for n in scores])
    assert pruned.sum() == round(0.7 * 192) and set(pruned.tolist()) <= {11, 12}
    flat = torch.cat([s.flatten() for s in scores.values()])
    glob = wanda_mask(scores, dense, 0.7, WandaOptions(group="global"))
    kept = torch.cat([glob[n].flatten() for n in scores])
    assert kept.sum() == 192 - round(0.7 * 192) and flat[~kept].max() < flat[kept].min()
    keep = torch.tensor([[True, False, True]])  # shares among the entries still kept
    assert row_shares(torch.tensor([[5.0, 1.0, 3.0]]), keep)[keep].tolist() == [1.0, 0.5]


def run_wanda(seed: int = 0, sparsity: float = 0.7, **opts):
    """Wanda on the toy task, and its options."""
    ctx, options = make_toy_ctx(sparsity=sparsity, seed=seed), WandaOptions(**opts)
    get_method("wanda").run(ctx, options)
    return ctx, options


def test_wanda_run_is_deterministic_and_counts_its_calibration_pass():
    a, opts = run_wanda(seed=3)
    b, _ = run_wanda(seed=3)
    assert all(torch.equal(a.mask[n], b.mask[n]) for n in a.mask)
    c, _ = run_wanda(seed=4)
    assert any(not torch.equal(a.mask[n], c.mask[n]) for n in a.mask)
    calib = a.ledger.phases[CALIB_PHASE]
    assert calib == {"steps": math.ceil(128 / TOY_HP.batch_size), "samples": 128}
    assert a.ledger.steps == calib["steps"] + a.budget
    assert plan_steps("wanda", len(a.train_set), TOY_HP, opts, 0.7, 3).steps == a.ledger.steps


def test_without_the_fine_tune_no_weight_changes_but_the_pruned_ones():
    ctx, opts = run_wanda(finetune=False, pattern="2:4", sparsity=0.5)
    before = make_toy_ctx(seed=0).params
    assert set(ctx.ledger.phases) == {CALIB_PHASE}
    for n, p in ctx.params.items():
        torch.testing.assert_close(p.detach(), before[n].detach() * ctx.mask[n])
    assert plan_steps("wanda", len(ctx.train_set), TOY_HP, opts, 0.5, 3).steps == \
        ctx.ledger.steps
    assert ctx.progress["best_val"] is not None  # still selected and reported on validation
