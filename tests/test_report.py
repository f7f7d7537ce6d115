"""The chapters' summaries and verdicts."""

from __future__ import annotations

import pandas as pd
import pytest

from isp_lib.report import scale_note, seed_summary, verdict


@pytest.mark.parametrize("diffs,at_least,expected", [
    ([1.0, 1.2, 0.9], 0.0, "reproduced"),
    ([1.0, 1.2, 0.9], 2.0, "inside the noise"),
    ([-1.0, -1.2, -0.9], 0.0, "not reproduced"),
    ([2.0, -2.0, 0.1], 0.0, "inside the noise"),
    ([3.0], 0.0, "not testable (one seed)"),
])
def test_verdict(diffs, at_least, expected):
    assert verdict(diffs, at_least) == expected


def test_seed_summary_and_scale_note():
    df = pd.DataFrame({"method": ["a", "a", "b"], "test_metric": [1.0, 3.0, 5.0]})
    s = seed_summary(df, ["method"]).set_index("method")
    assert s.loc["a", "mean"] == 2.0 and s.loc["a", "n"] == 2 and s.loc["b", "sd"] == 0.0
    rec = {"config": {"profile": "cpu"}, "model": "minilm", "data": "drugreview", "seed": 1,
           "host": {"cores": 2, "device": "cpu", "device_name": "x86_64"},
           "torch_version": "2.14.1+cu130"}
    note = scale_note([rec, {**rec, "seed": 0}])
    assert note == ("profile cpu · minilm on drugreview · seeds 0, 1 · 2 cores, cpu · "
                    "torch 2.14.1")
    assert scale_note([]) == "no records"
