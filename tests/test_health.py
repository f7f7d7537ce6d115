"""Testbed health: collapses to one class and cells whose seeds share one test metric."""

from __future__ import annotations

from isp_lib.health import health, health_line


def record(method: str, seed: int, metric: float, confusion: list[list[int]] | None,
           sparsity: float = 0.9) -> dict:
    return {"data": "drugreview", "method": method, "seed": seed, "target_sparsity": sparsity,
            "test_metric": metric, "config": {"overrides": []}, "test_confusion": confusion}


HEALTHY = [[5, 1], [2, 8]]
COLLAPSED = [[0, 6], [0, 10]]


def test_a_collapse_and_identical_seeds_are_flagged_per_cell():
    recs = ([record("oneshot", s, 62.5, COLLAPSED) for s in range(3)]
            + [record("isp", s, 80.0 + s, HEALTHY) for s in range(3)]
            + [record("dense", s, 81.25, HEALTHY, 0.0) for s in range(2)])
    t = health(recs).set_index("label")
    assert t.loc["oneshot", ["seeds", "distinct", "collapsed"]].tolist() == [3, 1, 3]
    assert t.loc["oneshot", "identical"] and t.loc["oneshot", "majority"] == 62.5
    assert t.loc["isp", ["distinct", "collapsed"]].tolist() == [3, 0]
    assert not t.loc["isp", "identical"]
    assert not t.loc["dense", "identical"]  # two seeds are too few to call it suspect
    line = health_line(recs)
    assert line == ("Health: 3 of 8 runs predict a single class: oneshot at 0.9 (3 of 3); "
                    "1 cells of 3+ seeds share one test metric: oneshot at 0.9.")


def test_records_without_confusion_count_as_not_collapsed():
    recs = [record("isp", s, 0.5 + s, None) for s in range(3)]
    assert health(recs)["collapsed"].tolist() == [0]
    assert health_line(recs).startswith("Health: 0 of 3 runs predict a single class; 0 cells")
