"""Properties of the trainer, the ledger, the batch stream and the metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from isp_lib.masks import Mask, global_magnitude_prune
from isp_lib.train import BatchStream, Ledger, linear_schedule, score


def test_pruned_weights_stay_zero_through_adamw_training(toy_ctx):
    ctx = toy_ctx
    trainer = ctx.make_trainer("main")
    trainer.train(5, "train")  # moments build up before the prune
    mask = global_magnitude_prune(ctx.params, ctx.mask, 0.6)
    ctx.set_mask(mask, trainer)
    trainer.train(10, "train")
    for name, m in mask.items():
        assert torch.count_nonzero(ctx.params[name][~m]) == 0
        assert torch.count_nonzero(ctx.params[name][m]) == int(m.sum())


def test_gradients_of_pruned_weights_are_not_counted_in_clipping(toy_ctx):
    ctx = toy_ctx
    trainer = ctx.make_trainer("main")
    ctx.set_mask(global_magnitude_prune(ctx.params, ctx.mask, 0.9), trainer)
    trainer.train(1, "train")
    for name, m in ctx.mask.items():
        grad = ctx.params[name].grad
        assert torch.count_nonzero(grad[~m]) == 0


def test_ledger_counts_steps_and_samples(toy_ctx):
    ctx = toy_ctx
    trainer = ctx.make_trainer("main")
    trainer.train(4, "train")
    trainer.train(2, "lookahead")
    assert ctx.ledger.steps == 6
    assert ctx.ledger.samples == 6 * ctx.hp.batch_size
    assert ctx.ledger.phases["lookahead"] == {"steps": 2, "samples": 2 * ctx.hp.batch_size}
    assert Ledger.from_dict(ctx.ledger.to_dict()) == ctx.ledger


def test_batch_stream_is_deterministic_and_resumable():
    a = BatchStream(np.arange(10), 4, seed=3)
    first = [a.next() for _ in range(3)]
    state = a.state_dict()
    rest = [a.next() for _ in range(4)]
    b = BatchStream(np.arange(10), 4, seed=3)
    assert [b.next() for _ in range(3)] == first
    c = BatchStream(np.arange(10), 4, seed=99)
    c.load_state_dict(state)
    assert [c.next() for _ in range(4)] == rest


def test_every_example_once_per_epoch():
    s = BatchStream(np.arange(12), 4, seed=0)
    seen = sorted(i for _ in range(3) for i in s.next())
    assert seen == list(range(12))


def test_linear_schedule_warms_up_and_decays_to_zero():
    f = linear_schedule(100, 10)
    assert f(0) < f(5) < f(9) <= 1.0
    assert f(10) == pytest.approx(1.0)
    assert f(100) == 0.0
    assert f(55) == pytest.approx(0.5)


def test_metrics_known_values():
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0], [0.0, 2.0]])
    assert score("accuracy", logits, np.array([0, 1, 1, 1])) == pytest.approx(75.0)
    assert score("matthews", logits, np.array([0, 1, 0, 1])) == pytest.approx(100.0)
    assert score("matthews", logits, np.array([1, 0, 1, 0])) == pytest.approx(-100.0)
    assert score("pearson", np.array([[1.0], [2.0], [3.0]]), np.array([2.0, 4.0, 6.0])) == \
        pytest.approx(100.0)


def test_set_mask_rejects_mask_of_another_model(toy_ctx):
    from isp_lib.errors import UserError

    trainer = toy_ctx.make_trainer("main")
    with pytest.raises(UserError):
        trainer.set_mask(Mask({"nope": torch.ones(2, dtype=torch.bool)}))


def test_skip_to_continues_the_schedule_mid_way(toy_ctx):
    full = toy_ctx.make_trainer("a", total_steps=20)
    full.train(6, "train")
    late = toy_ctx.make_trainer("b", total_steps=20, start_step=6)
    assert late.step_count == 6
    assert late.current_lr() == pytest.approx(full.current_lr())
