"""Paired verdicts (isp_lib.verdicts) on synthetic predictions: no model runs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from isp_lib.predictions import encode_predictions, labels_sha256
from isp_lib.report import compare, compare_table, plot_comparisons
from isp_lib.report import test_labels as load_test_labels
from isp_lib.verdicts import (
    COLLAPSED_VERDICT,
    SMOKE_VERDICT,
    TABLE_COLUMNS,
    Comparison,
    run_label,
)


def record(method: str, seed: int, pred: np.ndarray, gold: np.ndarray,
           metric: str = "accuracy", sparsity: float = 0.7, overrides: tuple = ()) -> dict:
    """A result record with the fields compare reads."""
    return {"method": method, "model": "minilm", "data": "toy", "target_sparsity": sparsity,
            "seed": seed, "metric_name": metric,
            "test_metric": 100.0 * float(np.mean(pred == gold)),
            "config": {"profile": "cpu", "overrides": [list(o) for o in overrides]},
            "test_predictions": encode_predictions(pred, regression=metric == "pearson"),
            "test_labels_sha256": labels_sha256(gold)}


def noisy(rng: np.random.Generator, gold: np.ndarray, acc: float, seeds: int) -> np.ndarray:
    """Binary predictions, one row per seed, each right with probability ``acc``."""
    right = rng.random((seeds, gold.size)) < acc
    return np.where(right, gold, 1 - gold)


def arms(rng: np.random.Generator, n: int, acc_a: float, acc_b: float, seeds: int = 5
         ) -> tuple[list[dict], np.ndarray]:
    gold = rng.integers(0, 2, n)
    pa, pb = noisy(rng, gold, acc_a, seeds), noisy(rng, gold, acc_b, seeds)
    recs = [record("isp", s, pa[s], gold) for s in range(seeds)]
    return recs + [record("oneshot", s, pb[s], gold) for s in range(seeds)], gold


def test_a_real_one_point_gain_over_five_seeds_is_reproduced():
    recs, gold = arms(np.random.default_rng(1), 10_000, 0.81, 0.80)
    c = compare(recs, "isp", "oneshot", claim="beats", labels=gold)
    assert c.verdict == "reproduced" and c.seeds == 5 and c.resampled == "seeds and test examples"
    assert 0 < c.ci_low < c.mean_diff < c.ci_high and c.mean_diff == pytest.approx(1.0, abs=0.5)
    expected = np.mean([r["test_metric"] for r in recs[:5]]) - \
        np.mean([r["test_metric"] for r in recs[5:]])
    assert c.mean_diff == pytest.approx(expected)
    assert c.detectable == pytest.approx((c.ci_high - c.ci_low) / 2 * (1.96 + 0.8416) / 1.96,
                                         rel=1e-3)
    assert compare(recs, "isp", "oneshot", labels=gold) == c  # seeded: the same interval


def test_no_difference_is_inconclusive_about_95_percent_of_the_time():
    rng = np.random.default_rng(2)
    verdicts = []
    for rep in range(40):
        recs, gold = arms(rng, 2000, 0.8, 0.8)
        verdicts.append(compare(recs, "isp", "oneshot", labels=gold, resamples=200,
                                seed=rep).verdict)
    assert verdicts.count("inconclusive") / len(verdicts) >= 0.85


def test_identical_runs_give_a_zero_width_interval():
    recs, gold = arms(np.random.default_rng(3), 1000, 0.8, 0.8)
    twins = recs[:5] + [{**r, "method": "oneshot"} for r in recs[:5]]
    beats = compare(twins, "isp", "oneshot", labels=gold)
    assert (beats.mean_diff, beats.ci_low, beats.ci_high) == (0.0, 0.0, 0.0)
    assert beats.verdict == "inconclusive" and beats.detectable == 0.0
    assert compare(twins, "isp", "oneshot", "at least", labels=gold).verdict == "inconclusive"
    assert compare(twins, "isp", "oneshot", "matches", 0.5, labels=gold).verdict == "reproduced"
    assert compare(twins, "isp", "oneshot", "at least", 0.5, labels=gold).verdict == "reproduced"


def test_a_real_one_point_loss_contradicts_beats():
    recs, gold = arms(np.random.default_rng(4), 10_000, 0.79, 0.80)
    c = compare(recs, "isp", "oneshot", labels=gold)
    assert c.verdict == "contradicted" and c.ci_high < 0
    assert compare(recs, "isp", "oneshot", "at least", labels=gold).verdict == "contradicted"
    assert compare(recs, "isp", "oneshot", "at least", 3.0, labels=gold).verdict == "reproduced"


def test_refuses_other_test_sets_unshared_seeds_and_bad_arguments():
    recs, gold = arms(np.random.default_rng(5), 500, 0.8, 0.8)
    other = [{**r, "test_labels_sha256": "0" * 16} if r["method"] == "oneshot" else r
             for r in recs]
    with pytest.raises(ValueError, match="different test sets"):
        compare(other, "isp", "oneshot", labels=gold)
    with pytest.raises(ValueError, match="different test sets"):
        compare(other, "isp", "oneshot")
    shifted = [{**r, "seed": r["seed"] + 10} if r["method"] == "oneshot" else r for r in recs]
    with pytest.raises(ValueError, match="share no seed"):
        compare(shifted, "isp", "oneshot", labels=gold)
    with pytest.raises(ValueError, match="not the test set"):
        compare(recs, "isp", "oneshot", labels=1 - gold)
    with pytest.raises(ValueError, match="several runs of seed 0"):
        compare(recs + recs[:1], "isp", "oneshot", labels=gold)
    with pytest.raises(ValueError, match="no run of 'imp'"):
        compare(recs, "imp", "oneshot", labels=gold)
    with pytest.raises(ValueError, match="claim 'wins'"):
        compare(recs, "isp", "oneshot", "wins")
    with pytest.raises(ValueError, match="> 0 for 'matches'"):
        compare(recs, "isp", "oneshot", "matches")
    old = [{k: v for k, v in r.items() if k != "test_predictions"} for r in recs]
    with pytest.raises(ValueError, match="no test predictions"):
        compare(old, "isp", "oneshot", labels=gold)
    assert compare(old, "isp", "oneshot").resampled == "seeds"


def test_arms_are_labels_with_settings_and_sparsities():
    rng = np.random.default_rng(6)
    gold = rng.integers(0, 2, 800)
    p = noisy(rng, gold, 0.8, 4)
    recs = [record("isp", 0, p[0], gold), record("isp", 0, p[1], gold, sparsity=0.9),
            record("isp", 0, p[2], gold, overrides=(("fit_rate", "true"),)),
            record("dense", 0, p[3], gold, sparsity=0.0)]
    assert [run_label(r) for r in recs] == ["isp", "isp", "isp (fit_rate=true)", "dense"]
    c = compare(recs, "isp (fit_rate=true)", "isp", labels=gold, sparsity=0.7)
    assert c.mean_diff == pytest.approx(recs[2]["test_metric"] - recs[0]["test_metric"])
    assert c.sparsity == 0.7 and c.seeds == 1 and c.verdict == "inconclusive"  # one seed
    d = compare(recs, "isp", "dense", "matches", 1.0, labels=gold, sparsity=(0.9, 0.0))
    assert d.sparsity == (0.9, 0.0)
    assert d.mean_diff == pytest.approx(recs[1]["test_metric"] - recs[3]["test_metric"])


def test_run_label_is_tidys_label():
    from isp_lib.records import tidy

    rng = np.random.default_rng(7)
    gold = rng.integers(0, 2, 10)
    recs = [record("isp", 0, gold, gold), record("isp", 0, gold, gold,
                                                  overrides=(("a", "1"), ("b", "x")))]
    assert tidy(recs)["label"].tolist() == [run_label(r) for r in recs]


def test_matthews_and_pearson_are_recomputed_on_each_resample():
    from isp_lib.train import score

    rng = np.random.default_rng(8)
    gold = rng.integers(0, 2, 3000)
    p = noisy(rng, gold, 0.85, 6)
    recs = [{**record("isp" if s < 3 else "oneshot", s % 3, p[s], gold, "matthews"),
             "test_metric": score("matthews", np.eye(2)[p[s]], gold)} for s in range(6)]
    c = compare(recs, "isp", "oneshot", labels=gold, resamples=500)
    paired = [recs[s]["test_metric"] - recs[s + 3]["test_metric"] for s in range(3)]
    assert c.mean_diff == pytest.approx(np.mean(paired)) and c.metric == "matthews"
    assert c.ci_low < c.mean_diff < c.ci_high

    y = rng.normal(size=400).astype(np.float32)
    noise = rng.normal(size=(6, 400)).astype(np.float32)
    preds = [y + (0.3 if s < 3 else 1.0) * noise[s] for s in range(6)]
    recs = [{**record("isp" if s < 3 else "oneshot", s % 3, preds[s], y, "pearson"),
             "test_metric": score("pearson", preds[s][:, None], y)} for s in range(6)]
    c = compare(recs, "isp", "oneshot", labels=y, resamples=500)
    paired = [recs[s]["test_metric"] - recs[s + 3]["test_metric"] for s in range(3)]
    assert c.mean_diff == pytest.approx(np.mean(paired), abs=0.05)  # float16 predictions
    assert c.verdict == "reproduced" and c.ci_low > 10


def test_without_labels_only_seeds_are_resampled():
    recs, gold = arms(np.random.default_rng(9), 2000, 0.9, 0.8)
    c = compare(recs, "isp", "oneshot")
    assert c.resampled == "seeds" and c.verdict == "reproduced"
    assert "(seeds resampled only)" in str(c)
    one = compare([r for r in recs if r["seed"] == 0], "isp", "oneshot")
    assert (one.ci_low, one.ci_high) == (one.mean_diff, one.mean_diff)
    assert one.verdict == "inconclusive"


def test_sentence():
    c = Comparison(a="isp", b="oneshot", sparsity=0.7, claim="beats", margin=0.0,
                   mean_diff=1.123, ci_low=0.4, ci_high=1.849, seeds=5, verdict="reproduced",
                   detectable=1.0, wording="ISP beats one-shot",
                   metric="accuracy", resampled="seeds and test examples", level=0.95)
    assert str(c) == ("isp − oneshot at 70% = +1.12 points [+0.40, +1.85], 5 seeds: reproduced "
                      "(claim: ISP beats one-shot)")
    assert dataclasses.replace(c, verdict="inconclusive").sentence().endswith(
        "inconclusive, could detect 1.00 (claim: ISP beats one-shot)")


def test_compare_table_has_one_row_per_claim():
    recs, gold = arms(np.random.default_rng(10), 2000, 0.85, 0.8)
    claims = [("isp", "oneshot", "beats", 0.0),
              ("isp", "oneshot", "matches", 1.0, 0.7, "ISP matches one-shot"),
              {"a": "oneshot", "b": "isp", "claim": "at least", "margin": 0.5}]
    t = compare_table(recs, claims, gold, resamples=300)
    assert isinstance(t, pd.DataFrame) and len(t) == 3
    assert list(t.columns) == list(TABLE_COLUMNS)
    assert {"a", "b", "sparsity", "claim", "mean_diff", "ci_low", "ci_high", "seeds",
            "verdict", "detectable"} <= set(t.columns)
    assert t["verdict"].tolist() == ["reproduced", "contradicted", "contradicted"]
    assert t.loc[1, "wording"] == "ISP matches one-shot" and (t["seeds"] == 5).all()
    assert t.loc[0, "mean_diff"] == pytest.approx(-t.loc[2, "mean_diff"])
    with pytest.raises(ValueError, match="expected"):
        compare_table(recs, [("isp", "oneshot")], gold)


def test_plot_comparisons_draws_one_row_per_claim():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs, gold = arms(np.random.default_rng(11), 1000, 0.85, 0.8)
    t = compare_table(recs, [("isp", "oneshot", "beats", 1.0),
                             ("isp", "oneshot", "matches", 2.0)], gold, resamples=100)
    ax = plot_comparisons(t)
    assert [tick.get_text() for tick in ax.get_yticklabels()] == [
        "isp beats oneshot by more than 1 points (70%)",
        "isp matches oneshot within 2 points (70%)"]
    assert "95%" in ax.get_xlabel()
    plt.close(ax.figure)


def test_test_labels_loads_the_split_and_checks_the_records():
    labels = load_test_labels("drugreview", "smoke")
    assert labels.dtype == np.int64 and labels.size > 0
    good = {"data": "drugreview", "config": {"data_source": None},
            "test_labels_sha256": labels_sha256(labels)}
    assert np.array_equal(load_test_labels("drugreview", "smoke", [good]), labels)
    with pytest.raises(ValueError, match="pass the runs' profile"):
        load_test_labels("drugreview", "smoke", [{**good, "test_labels_sha256": "0" * 16}])


def test_smoke_runs_get_no_verdict_but_the_same_interval():
    recs, gold = arms(np.random.default_rng(1), 2000, 0.85, 0.80)
    smoke = [{**r, "config": {**r["config"], "profile": "smoke"}} for r in recs]
    real, check = (compare(x, "isp", "oneshot", labels=gold) for x in (recs, smoke))
    assert real.verdict == "reproduced" and check.verdict == SMOKE_VERDICT
    assert (check.mean_diff, check.ci_low, check.ci_high) == \
        (real.mean_diff, real.ci_low, real.ci_high)
    assert "smoke: machinery check, no verdict" in check.sentence()
    words = ("reproduced", "contradicted", "inconclusive", "inside the noise")
    assert not any(w in check.sentence() for w in words)
    import matplotlib.pyplot as plt

    table = compare_table(smoke, [("isp", "oneshot", "beats", 0.0)], gold)
    plt.close(plot_comparisons(table).figure)  # the smoke verdict has a colour


def test_two_collapsed_arms_give_no_evidence_one_collapsed_arm_a_verdict():
    gold = np.random.default_rng(5).integers(0, 2, 1000)
    one_class = np.ones_like(gold)
    confusion = [[0, int((gold == 0).sum())], [0, int((gold == 1).sum())]]
    collapsed = [{**record(m, s, one_class, gold), "test_confusion": confusion}
                 for m in ("isp", "oneshot") for s in range(5)]
    both = compare(collapsed, "isp", "oneshot", "at least", 0.5, labels=gold)
    assert both.verdict == COLLAPSED_VERDICT and (both.ci_low, both.ci_high) == (0.0, 0.0)
    healthy = [{**record("oneshot", s, gold, gold), "test_confusion": [[1, 0], [0, 1]]}
               for s in range(5)]
    one = compare(collapsed[:5] + healthy, "isp", "oneshot", "at least", 0.5, labels=gold)
    assert one.verdict == "contradicted"
