"""The chapters' analysis (isp_lib.analysis) on small fake records: no model runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from isp_lib import analysis
from isp_lib.predictions import encode_predictions, labels_sha256
from isp_lib.verdicts import SMOKE_VERDICT

GOLD = np.random.default_rng(0).integers(0, 2, 400)


def record(method: str, seed: int, acc: float, sparsity: float = 0.7, profile: str = "cpu",
           overrides: tuple = (), progress: dict | None = None, steps: int = 10) -> dict:
    """A result record with the fields the analysis reads."""
    right = np.random.default_rng(seed * 7 + len(method)).random(GOLD.size) < acc
    pred = np.where(right, GOLD, 1 - GOLD)
    return {"method": method, "model": "minilm", "data": "toy", "target_sparsity": sparsity,
            "actual_sparsity": sparsity, "seed": seed, "metric_name": "accuracy",
            "test_metric": 100.0 * float(np.mean(pred == GOLD)), "val_metric": 50.0,
            "config": {"profile": profile, "overrides": [list(o) for o in overrides]},
            "config_hash": f"{method}{seed}{sparsity}{overrides}", "train_steps": steps,
            "budget_steps": 10, "samples_seen": 0, "wall_s": 1.0,
            "ledger": {"phases": {"train": {"steps": steps}}},
            "progress": progress or {}, "test_predictions": encode_predictions(pred),
            "test_labels_sha256": labels_sha256(GOLD)}


@pytest.fixture
def recs() -> list[dict]:
    return [record("isp", s, 0.9, steps=12) for s in range(3)] + \
        [record("imp", s, 0.7, steps=70) for s in range(3)]


def test_summary_puts_cost_in_units_of_t_beside_accuracy(recs):
    s = analysis.summary(recs)
    assert s.loc[(0.7, "imp"), "cost (T)"] == pytest.approx(7.0)
    assert s.loc[(0.7, "isp"), "T: train"] == pytest.approx(1.2)
    assert s.loc[(0.7, "isp"), "seeds"] == 3 and s.loc[(0.7, "isp"), "mean"] > 85
    assert analysis.summary([]).empty
    assert str(analysis.show(analysis.summary([])).data).startswith("*no records yet")


def test_claim_table_judges_claims_and_keeps_missing_arms(recs, monkeypatch):
    monkeypatch.setattr(analysis, "test_labels", lambda *a: GOLD)
    table = analysis.claim_table(recs, [
        analysis.Claim("isp", "imp", "beats", 0.0, 0.7, 1.5),
        ("isp", "random", "beats", 0.0, 0.7, None)])
    assert list(table["verdict"]) == ["reproduced", analysis.NO_RECORDS]
    assert table.loc[0, "resampled"] == "seeds and test examples"
    assert table.loc[0, "cost A (T)"] == pytest.approx(1.2)
    assert table.loc[0, "cost B (T)"] == pytest.approx(7.0)
    view = analysis.verdict_frame(table)
    assert list(view["paper"]) == ["+1.50", "—"] and view.loc[1, "interval"] == "—"
    first, missing = (analysis.verdict_sentence(r) for _, r in table.iterrows())
    assert "**reproduced**" in first and first.endswith("paper: +1.50.")
    assert "no records yet" in missing
    assert list(analysis.claim_table([], [("isp", "imp")])["verdict"]) == [analysis.NO_RECORDS]


def test_smoke_records_get_tables_but_no_verdict_words(recs, monkeypatch, capsys):
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.setattr(analysis, "test_labels", lambda *a: GOLD)
    smoke = [{**r, "config": {**r["config"], "profile": "smoke"}} for r in recs]
    assert analysis.is_smoke(smoke) and not analysis.is_smoke(recs)
    table = analysis.claim_table(smoke, [("isp", "imp", "beats", 0.0, 0.7)])
    assert list(table["verdict"]) == [SMOKE_VERDICT]
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda x: shown.append(x))
    analysis.show_verdicts(table)
    text = shown[-1].data
    assert "smoke" in text
    for word in ("reproduced", "contradicted", "inconclusive", "inside the noise"):
        assert word not in text


def test_status_line_names_the_missing_sweeps():
    line = analysis.status_line({"a": 3, "b": 0, "c": 1}, 6, 10, smoke=False, results_dir="results")
    assert line.startswith("6 of 10 cells recorded, 4 missing")
    assert "`isp sweep results/a.yaml`, `isp sweep results/c.yaml` add them" in line
    assert analysis.status_line({"a": 5}, 2, 2, smoke=True).startswith(analysis.SMOKE_NOTE)


def test_traces_are_read_from_the_records():
    isp = record("isp", 0, 0.9, progress={"trace": [
        {"round": 1, "main_steps": 3, "rate": 0.2, "own_sparsity": 0.2, "union_sparsity": 0.15,
         "lookahead_sparsity": [0.2, 0.21], "adjusted": False, "sparsity": 0.15}]})
    imp = record("imp", 0, 0.8, progress={"trace": [
        {"round": 1, "sparsity": 0.2, "cos_kept": 0.99, "cos_pruned": 0.9}]})
    ims = record("ims", 0, 0.8, 0.0, progress={"weak": [
        {"sparsity": 0.5, "lr": 1e-3, "weight_decay": 0.0, "alpha": 0.4, "val": 60.0,
         "val_loss": 0.9, "curve": []}]})
    soup = record("greedy-soup", 0, 0.8, 0.0, progress={
        "ingredient_vals": [60.0, 40.0], "soup": {"ingredients": [0]},
        "ingredient_hparams": [{"lr": 1e-3, "weight_decay": 0.0},
                               {"lr": 5e-4, "weight_decay": 0.1}]})
    everything = [isp, imp, ims, soup]
    rounds = analysis.isp_rounds(everything)
    assert rounds.loc[0, "look-aheads"] == 2
    assert rounds.loc[0, "spared (points)"] == pytest.approx(5.0)
    assert analysis.spared_per_round(everything).loc[1].iloc[0] == pytest.approx(5.0)
    assert analysis.spared_per_round([]).empty
    assert analysis.imp_rounds(everything).loc[0, "cos_pruned"] == pytest.approx(90.0)
    assert analysis.ims_weak(everything).loc[0, "alpha"] == 0.4
    ing = analysis.soup_ingredients(everything)
    assert list(ing["lr"]) == [1e-3, 5e-4] and list(ing["in the soup"]) == [True, False]
    for frame in (analysis.isp_rounds([]), analysis.imp_rounds([]), analysis.ims_weak([]),
                  analysis.soup_ingredients([])):
        assert frame.empty


def test_paper_gap_names_arms_like_ours():
    paper = pd.DataFrame({"dataset": ["x", "x"], "method": ["isp", "isp"],
                          "setting": ["", "denoisers=0"], "sparsity": [0.8, 0.8],
                          "metric": ["accuracy"] * 2, "value": [71.0, 70.0]})
    assert analysis.paper_gap(paper, "isp", "isp (denoisers=0)") == pytest.approx(1.0)
    assert analysis.paper_gap(paper, "isp", "imp") is None


def test_plot_metric_without_records_says_so():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    analysis.plot_metric([], "sparsity", ax)
    assert ax.texts[0].get_text() == analysis.NO_RECORDS
    plt.close(fig)


def test_layer_sparsity_reads_layer_and_tensor_from_the_name():
    import torch

    kept = torch.zeros(10, dtype=torch.bool)
    kept[:3] = True
    mask = {"bert.encoder.layer.3.attention.self.query.weight": kept,
            "features.12.weight": torch.ones(4, dtype=torch.bool),
            "classifier.weight": torch.zeros(2, 2, dtype=torch.bool)}
    frame = analysis.layer_sparsity(mask)
    assert list(frame["layer"]) == [3, 12, -1]
    assert list(frame["tensor"]) == ["attention.self.query", "12", "classifier"]
    assert list(frame["sparsity"]) == pytest.approx([0.7, 0.0, 1.0])
    assert list(frame["size"]) == [10, 4, 4]
    assert analysis.layer_sparsity({}).empty


def test_plot_layer_sparsity_draws_the_overall_line():
    import matplotlib.pyplot as plt
    import torch

    frame = analysis.layer_sparsity({"enc.layer.0.a.weight": torch.tensor([True, False]),
                                     "enc.layer.1.a.weight": torch.tensor([False, False])})
    fig, ax = plt.subplots()
    analysis.plot_layer_sparsity(frame, 0.75, ax, "t")
    assert ax.get_title() == "t" and ax.lines[-1].get_ydata()[0] == 0.75
    assert [p.get_height() for p in ax.patches if p.get_height()] == pytest.approx([0.5, 1.0])
    plt.close(fig)
