"""Chapter 10's pick table and cost-accuracy plot (isp_lib.pick) on small fake records."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from isp_lib import pick  # noqa: E402


def record(method: str, seed: int, val: float, test: float, steps: int, sparsity: float = 0.5,
           overrides: tuple = ()) -> dict:
    """A result record with the fields the pick reads."""
    return {"method": method, "model": "minilm", "data": "toy", "target_sparsity": sparsity,
            "actual_sparsity": sparsity, "seed": seed, "metric_name": "accuracy",
            "val_metric": val, "test_metric": test,
            "config": {"profile": "cpu", "overrides": [list(o) for o in overrides]},
            "config_hash": f"{method}{seed}{sparsity}{overrides}", "train_steps": steps,
            "budget_steps": 10, "samples_seen": 0, "wall_s": 1.0,
            "ledger": {"phases": {"train": {"steps": steps}}}}


NO_FT = (("finetune", "false"), ("start", "finetuned"))
TWO_FOUR = (("pattern", "2:4"),)


@pytest.fixture
def recs() -> list[dict]:
    out = []
    for seed in range(3):
        out += [record("isp", seed, 80.0 + seed, 70.0, 12),
                record("wanda", seed, 79.8 + seed, 90.0, 10),  # within 0.5 on val, cheaper
                record("wanda", seed, 60.0, 95.0, 1, overrides=NO_FT),  # best test: ignored
                record("isp", seed, 75.0, 74.0, 12, overrides=TWO_FOUR),
                record("oneshot", seed, 76.0, 73.0, 10, overrides=TWO_FOUR),
                record("dense", seed, 99.0, 99.0, 10, sparsity=0.0)]
    return out


def test_arms_split_2_4_from_unstructured_and_leave_dense_out(recs):
    table = pick.arms(recs)
    assert set(table.index.get_level_values("setting")) == {"50%", "2:4"}
    assert table.loc[("2:4", "isp (pattern=2:4)"), "seeds"] == 3
    assert table.loc[("50%", "isp"), "cost (T)"] == pytest.approx(1.2)


def test_recommend_picks_on_validation_never_on_test(recs):
    table = pick.recommend(recs, margin=0.5)
    assert table.loc["50%", "best on validation"] == "isp"
    assert table.loc["50%", "cheapest within margin"] == "wanda"  # 0.2 below isp on val
    assert table.loc["50%", "its test"] == pytest.approx(70.0)
    assert table.loc["2:4", "best on validation"] == "oneshot (pattern=2:4)"
    narrow = pick.recommend(recs, margin=0.1)
    assert narrow.loc["50%", "cheapest within margin"] == "isp"
    assert pick.recommend([]).empty


def test_recommend_compares_arms_on_the_seeds_they_share(recs):
    extra = [record("wanda", seed, 99.0, 99.0, 10) for seed in (3, 4)]  # isp has no seed 3, 4
    table = pick.recommend(recs + extra)
    assert table.loc["50%", "best on validation"] == "isp" and table.loc["50%", "seeds"] == 3
    assert table.loc["2:4", "seeds"] == 3  # other settings keep their seeds


def test_claims_cover_every_calibrated_arm_and_the_2_4_arms():
    claims = pick.claims()
    assert {(c.b, c.sparsity) for c in claims if c.a == "isp"} == {
        (b, s) for b in pick.CALIBRATED for s in (0.5, 0.7, 0.9)}
    assert {c.b for c in claims if c.a == "isp (pattern=2:4)"} == {
        "oneshot (pattern=2:4)", "wanda (pattern=2:4)", "sparsegpt (pattern=2:4)", "isp"}


def test_plot_draws_one_point_per_arm_in_its_settings_panel(recs):
    fig, axes = plt.subplots(1, len(pick.SETTINGS))
    pick.plot_cost_accuracy(recs, axes, title="t")
    assert [ax.get_title() for ax in axes] == [f"t · {s}" for s in pick.SETTINGS]
    by_setting = dict(zip(pick.SETTINGS, axes, strict=True))
    assert len(by_setting["50%"].containers) == 3  # isp, wanda, post-training wanda
    assert len(by_setting["2:4"].containers) == 2  # isp and oneshot at 2:4
    assert [t.get_text() for t in by_setting["70%"].texts] == ["no records yet"]
    legend = [t.get_text() for t in axes[-1].get_legend().get_texts()]
    assert "wanda, post-training" in legend and len(legend) == len(pick.FAMILIES)
    empty_fig, empty = plt.subplots(1, len(pick.SETTINGS))
    pick.plot_cost_accuracy([], empty)
    assert all([t.get_text() for t in ax.texts] == ["no records yet"] for ax in empty)
    plt.close(fig)
    plt.close(empty_fig)


def test_plot_keeps_one_colour_per_method_and_spreads_equal_costs(recs):
    recs = recs + [record("wanda", s, 70.0, 70.0, 12, overrides=TWO_FOUR) for s in range(3)]
    fig, axes = plt.subplots(1, len(pick.SETTINGS))
    pick.plot_cost_accuracy(recs, axes)
    two_four = dict(zip(pick.SETTINGS, axes, strict=True))["2:4"]
    points = {c.lines[0].get_color(): c.lines[0].get_xdata()[0] for c in two_four.containers}
    assert len(points) == 3  # isp, oneshot, wanda: three colours
    isp, wanda = points["C0"], points["C2"]  # both cost 1.2 T
    assert isp != wanda and abs(isp - wanda) < 0.05
    plt.close(fig)


def test_flops_per_arm_are_the_flop_models_means(recs, monkeypatch):
    import pandas as pd

    from isp_lib import report

    def fake(records):
        return pd.DataFrame([{"config_hash": r["config_hash"], "density": 0.5 + r["seed"] / 10,
                              "train_flops": 1.0, "inference_flops": 2e9 * (1 + r["seed"]),
                              "dense_inference_flops": 8e9} for r in records])

    monkeypatch.setattr(report, "flops_table", fake)
    table = pick.flops(recs)
    assert list(table.columns) == list(pick.FLOP_COLUMNS)
    assert set(table.index.get_level_values("setting")) == {"50%", "2:4"}  # dense left out
    row = table.loc[("2:4", "isp (pattern=2:4)")]
    assert row["density"] == pytest.approx(0.6)  # seeds 0-2
    assert row["inference GFLOPs"] == pytest.approx(4.0)
    assert row["of dense"] == pytest.approx(0.5)
    assert pick.flops([]).empty


def test_recommend_counts_the_best_arms_runs_that_predict_one_class(recs):
    for r in recs:
        guessing = r["method"] == "isp" and r["target_sparsity"] == 0.5 and not r["config"][
            "overrides"]
        r["test_confusion"] = [[0, 5], [0, 10]] if guessing else [[4, 1], [2, 8]]
    assert pick.arms(recs).loc[("50%", "isp"), "one class"] == 3
    assert pick.arms(recs).loc[("50%", "wanda"), "one class"] == 0
    table = pick.recommend(recs)
    assert table.loc["50%", "best on validation"] == "isp"
    assert table.loc["50%", "its one-class runs"] == 3  # reported, not used to choose
    assert table.loc["2:4", "its one-class runs"] == 0
    assert list(table.reset_index().columns) == list(pick.COLUMNS)
