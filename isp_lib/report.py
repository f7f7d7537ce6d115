"""What every chapter of the book shows: the scale of a result, seed summaries and a verdict.

Verdicts are computed from the records, never typed: a claim "A beats B by at least d points"
is *reproduced* when the mean difference over seeds is at least d and more than two standard
errors from zero the right way, *not reproduced* when it is more than two standard errors the
wrong way, and *inside the noise* otherwise (or *not testable* with a single seed).

Paired verdicts from the records' per-example test predictions (a bootstrap over seeds and test
examples): :func:`compare`, :func:`compare_table`, :func:`plot_comparisons` and
:func:`test_labels`, from :mod:`isp_lib.verdicts`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from isp_lib.verdicts import Comparison as Comparison
from isp_lib.verdicts import compare as compare
from isp_lib.verdicts import compare_table as compare_table
from isp_lib.verdicts import plot_comparisons as plot_comparisons
from isp_lib.verdicts import test_labels as test_labels

if TYPE_CHECKING:
    from isp_lib.flops import FlopProfile


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


def flat_verdict(values: Sequence[float], seed_values: Sequence[float]) -> str:
    """The verdict on a claim "this setting does not matter", e.g. ISP's look-ahead length.

    Each value (one run or mean per setting) is compared with the prediction band of one more
    seed at the reference setting: mean ± 2 sd sqrt(1 + 1/n) of ``seed_values`` (n seeds).

    Args:
        values: the metric at each setting.
        seed_values: the metric over seeds at the reference setting.

    Returns:
        "reproduced" if every value lies inside the band, "not reproduced" if one lies
        outside, "not testable (one seed)" with fewer than two seeds or values.

    >>> flat_verdict([70.0, 71.0, 69.5], [70.0, 71.0, 69.0])
    'reproduced'
    >>> flat_verdict([70.0, 75.0], [70.0, 71.0, 69.0])
    'not reproduced'
    """
    n = len(seed_values)
    if n < 2 or len(values) < 2:
        return "not testable (one seed)"
    mean = sum(seed_values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in seed_values) / (n - 1))
    half = 2 * sd * math.sqrt(1 + 1 / n)
    return "reproduced" if all(abs(v - mean) <= half for v in values) else "not reproduced"


def paired_diffs(df: pd.DataFrame, column: str, a: str, b: str, value: str = "test_metric",
                 on: str = "seed") -> pd.Series:
    """Per-seed differences A - B of ``value`` between two groups of a tidy frame.

    Args:
        df: a tidy frame (``isp_lib.records.tidy``), one row per run.
        column: the column that names the groups, e.g. ``"method"`` or ``"settings"``.
        a, b: the two values of ``column`` to compare.
        value: the column to compare.
        on: the pairing column; only values present in both groups are kept.

    Returns:
        ``A - B`` indexed by ``on`` (sorted), for :func:`verdict`.

    Raises:
        ValueError: a group holds two rows with the same ``on`` value.

    >>> df = pd.DataFrame({"method": ["x", "x", "y"], "seed": [0, 1, 0],
    ...                    "test_metric": [3.0, 4.0, 1.0]})
    >>> paired_diffs(df, "method", "x", "y").tolist()
    [2.0]
    """
    sides = []
    for name in (a, b):
        side = df.loc[df[column] == name, [on, value]]
        if side[on].duplicated().any():
            raise ValueError(f"{column}={name} has several rows per {on}: select one setting")
        sides.append(side.set_index(on)[value])
    both = sides[0].index.intersection(sides[1].index).sort_values()
    out = sides[0].loc[both] - sides[1].loc[both]
    return out.rename(f"{a} - {b}")


def majority_baseline(data: str, profile: str, source: str | None = None) -> float:
    """Test accuracy (percent) of always predicting the most frequent training class.

    The floor every classifier of a chapter has to clear: on a small, skewed test split a
    collapsed model scores exactly this.

    Args:
        data: data set name, e.g. ``"drugreview"``.
        profile: profile name; its caps shape the splits as in a run.
        source: the data override of the runs (``config.data_source``), if any.

    Returns:
        The accuracy in percent.
    """
    from isp_lib.data import load_data
    from isp_lib.profiles import get_profile

    raw = load_data(data, get_profile(profile), source=source)
    values, counts = np.unique(np.asarray(raw.train.labels), return_counts=True)
    return 100.0 * float(np.mean(np.asarray(raw.test.labels) == values[np.argmax(counts)]))


def flop_profile(model: str, data: str, profile: str, batch_size: int | None = None,
                 model_source: str | None = None, data_source: str | None = None
                 ) -> FlopProfile:
    """FLOPs of one training step and of one forward of a model, as a run builds it.

    The batch is the ``batch_size`` longest training examples (text: padded to the longest of
    them, which is the profile's truncation length on any real data), so the per-step count
    is what a full-length batch costs: an upper bound on the average step.

    Args:
        model, data, profile: registry names, as in ``isp run``.
        batch_size: examples per step; the profile's for the model's family by default.
        model_source, data_source: the runs' overrides (``config``), if any.

    Returns:
        The :class:`~isp_lib.flops.FlopProfile` (``isp_lib.flops.count_flops``).
    """
    import torch

    from isp_lib.data import load_data
    from isp_lib.flops import count_flops
    from isp_lib.models import build_model
    from isp_lib.profiles import get_profile
    from isp_lib.scope import prunable_params

    prof = get_profile(profile)
    raw = load_data(data, prof, source=data_source)
    torch.manual_seed(0)  # the new head's init; FLOPs do not depend on it
    bundle = build_model(model, raw, prof, source=model_source)
    size = batch_size or prof.hparams_for(bundle.family).batch_size
    train = bundle.make_dataset(raw.train)
    order = list(range(len(train)))
    if "input_ids" in train[0]:
        order.sort(key=lambda i: -len(train[i]["input_ids"]))
    batch = bundle.collate([train[i] for i in order[:size]])
    return count_flops(bundle.model, batch, prunable_params(bundle.model, bundle.family))


def flops_table(records: Sequence[dict]) -> pd.DataFrame:
    """Training and inference FLOPs of each result record (``isp_lib.flops.record_flops``).

    One :func:`flop_profile` is counted per model, data set, profile, sources and batch size
    among the records, and shared by their records.

    Args:
        records: result records (as written by ``isp run``).

    Returns:
        One row per record: ``config_hash``, ``method``, ``sparsity`` (target), ``seed``,
        ``train_steps``, ``budget_steps``, ``density`` (kept share of the prunable scope),
        ``step_flops`` (one training step), ``train_flops`` (the whole run),
        ``inference_flops`` and ``dense_inference_flops`` (one example's forward, pruned and
        dense).
    """
    from isp_lib.flops import record_flops

    profiles: dict[tuple, FlopProfile] = {}
    rows = []
    for r in records:
        cfg = r["config"]
        key = (r["model"], r["data"], cfg["profile"], r["hparams"]["batch_size"],
               cfg.get("model_source"), cfg.get("data_source"))
        if key not in profiles:
            profiles[key] = flop_profile(*key)
        prof = profiles[key]
        counted = record_flops(r, prof)
        rows.append({"config_hash": r["config_hash"], "method": r["method"],
                     "sparsity": r["target_sparsity"], "seed": r["seed"],
                     "train_steps": r["train_steps"], "budget_steps": r["budget_steps"],
                     "density": 1.0 - float(r["actual_sparsity"]),
                     "step_flops": float(prof.train_step), "train_flops": counted["train"],
                     "inference_flops": counted["inference"] / prof.batch_size,
                     "dense_inference_flops": prof.forward / prof.batch_size})
    return pd.DataFrame(rows)
