"""What every chapter of the book shows: the scale of a result, seed summaries and a verdict.

Verdicts are computed from the records, never typed: a claim "A beats B by at least d points"
is *reproduced* when the mean difference over seeds is at least d and more than two standard
errors from zero the right way, *not reproduced* when it is more than two standard errors the
wrong way, and *inside the noise* otherwise (or *not testable* with a single seed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd


def scale_note(records: Sequence[dict]) -> str:
    """One line naming the scale of a set of result records.

    Args:
        records: result records (as written by ``isp run``).

    Returns:
        e.g. "profile cpu · minilm on drugreview · seeds 0, 1, 2 · 2 cores, cpu · torch 2.14.1".
    """
    if not records:
        return "no records"

    def values(get) -> str:
        return ", ".join(str(v) for v in sorted({get(r) for r in records}))

    hosts = values(lambda r: f"{r['host']['cores']} cores, {r['host']['device']}"
                   + (f" ({r['host']['device_name']})" if r["host"]["device"] != "cpu" else ""))
    return (f"profile {values(lambda r: r['config']['profile'])} · "
            f"{values(lambda r: r['model'])} on {values(lambda r: r['data'])} · "
            f"seeds {values(lambda r: r['seed'])} · {hosts} · "
            f"torch {values(lambda r: r['torch_version'].split('+')[0])}")


def seed_summary(df: pd.DataFrame, by: Sequence[str], value: str = "test_metric"
                 ) -> pd.DataFrame:
    """Mean, standard deviation (ddof 1; 0 for one seed) and seed count of ``value``.

    Args:
        df: a tidy frame (``isp_lib.records.tidy``).
        by: grouping columns, e.g. ``["method", "sparsity"]``.
        value: the column to summarise.

    Returns:
        One row per group with columns ``by + ["mean", "sd", "n"]``.
    """
    g = df.groupby(list(by), sort=True)[value]
    out = g.agg(mean="mean", sd="std", n="count").reset_index()
    out["sd"] = out["sd"].fillna(0.0)
    return out


def verdict(diffs: Sequence[float], at_least: float = 0.0) -> str:
    """The verdict on a claim "A - B >= at_least", from per-seed differences A - B.

    Args:
        diffs: one difference per seed (paired by seed where possible).
        at_least: the margin the claim states (0 for "A is at least as good as B").

    Returns:
        "reproduced", "not reproduced", "inside the noise" or "not testable (one seed)".
    """
    n = len(diffs)
    if n < 2:
        return "not testable (one seed)"
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    se = sd / math.sqrt(n)
    if mean >= at_least and mean > 2 * se:
        return "reproduced"
    if mean < at_least and mean < -2 * se:
        return "not reproduced"
    return "inside the noise"
