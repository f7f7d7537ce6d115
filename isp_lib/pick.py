"""What a practitioner should pick: per sparsity, the arms side by side on cost and accuracy.

Chapter 10 compares ISP with the one-shot methods practitioners use today (Wanda, Sun et al.
2023; SparseGPT, Frantar and Alistarh 2023), with and without a fine-tune, and at 2:4. The
pick is made the way a practitioner would make it without a test set: on **validation**
accuracy. :func:`recommend` names, per sparsity (a 2:4 pattern is its own row), the arm with
the best mean validation metric (the cheaper on a tie) and the cheapest arm within ``margin``
points of it on validation, and reports both arms' cost in units of T and mean test metric,
once, beside them, and how many of the best arm's runs predict a single class on the test
split (a health check, never a criterion: where every run does, no arm of that setting does
better than guessing the majority class). :func:`plot_cost_accuracy` draws every arm at its
mean cost and mean test metric, one panel per setting.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

from isp_lib.analysis import NO_RECORDS, Claim, against, tidy_costs, with_flops
from isp_lib.health import collapsed
from isp_lib.verdicts import claim_wording

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: The post-training setting of Wanda and SparseGPT: prune the dense fine-tuned model, train
#: nothing after (:mod:`isp_lib.methods.start`).
POST_TRAINING = "finetune=false start=finetuned"

#: The calibration-only methods of chapter 10: on the pretrained weights with the fine-tune
#: after, and in their post-training setting.
CALIBRATED = ("wanda", "sparsegpt", f"wanda ({POST_TRAINING})", f"sparsegpt ({POST_TRAINING})")

#: The arms at 2:4.
TWO_FOUR = tuple(f"{m} (pattern=2:4)" for m in ("isp", "oneshot", "wanda", "sparsegpt"))

#: Every arm of chapter 10 (ISP and one-shot unstructured come from the headline sweeps).
ARMS = ("isp", "oneshot", *CALIBRATED, *TWO_FOUR)

#: The panels of :func:`plot_cost_accuracy`, in order.
SETTINGS = ("50%", "70%", "90%", "2:4")

#: The methods of :func:`plot_cost_accuracy`, in the order of their colours.
FAMILIES = ("isp", "oneshot", *CALIBRATED)

#: How far apart :func:`plot_cost_accuracy` draws arms of equal cost: a share of the panel's
#: range of costs (at least 0.1 T).
SPREAD = 0.04

#: The columns of :func:`flops`.
FLOP_COLUMNS = ("density", "inference GFLOPs", "of dense")

#: The columns of :func:`recommend`.
COLUMNS = ("setting", "best on validation", "its cost (T)", "its test", "its one-class runs",
           "cheapest within margin", "cheapest's cost (T)", "cheapest's test", "arms", "seeds")


def claims(testbed: str = "", sparsities: Sequence[float] = (0.5, 0.7, 0.9)) -> list[Claim]:
    """Chapter 10's claims: ISP beats each calibrated arm at each sparsity; at 2:4, ISP beats
    one-shot, Wanda and SparseGPT, and is at least ISP unstructured at 50% within 1 point.

    Args:
        testbed: named at the end of each claim's wording (the chapter judges two), or "".
        sparsities: the unstructured sparsities.

    >>> len(claims()), claims()[-1][:4]
    (16, ('isp (pattern=2:4)', 'isp', 'at least', 1.0))
    >>> claims("MiniLM")[-1].wording
    'isp (pattern=2:4) is at least as good as isp within 1 points, on MiniLM'
    """
    out = [*against("isp", CALIBRATED, list(sparsities)),
           *against(TWO_FOUR[0], TWO_FOUR[1:], [0.5]),
           Claim(TWO_FOUR[0], "isp", "at least", 1.0, 0.5)]
    on = f", on {testbed}" if testbed else ""
    return [c._replace(wording=claim_wording(c.a, c.b, c.claim, c.margin) + on) for c in out]


def _setting(row: pd.Series) -> str:
    """"50%", or "2:4" for an arm with a pattern."""
    return "2:4" if "pattern=2:4" in str(row["settings"]) else f"{row['sparsity']:.0%}"


def arms(records: Sequence[dict]) -> pd.DataFrame:
    """Per setting (sparsity, or 2:4) and arm: mean validation and test metric, cost in T,
    seeds, and the runs that predict a single class on the test split.

    Args:
        records: result records (runs at sparsity 0 are left out).

    Returns:
        Indexed by ``setting`` and ``label``: ``val``, ``test``, ``cost (T)``, ``seeds``,
        ``one class`` (runs predicting one class, :func:`isp_lib.health.collapsed`).

    >>> rec = lambda m, s, v, t: {"method": m, "config": {"overrides": [], "profile": "cpu"},
    ...     "target_sparsity": s, "val_metric": v, "test_metric": t, "seed": 0,
    ...     "train_steps": 10, "budget_steps": 10, "ledger": {"phases": {}}}
    >>> arms([rec("isp", 0.5, 80.0, 79.0), rec("dense", 0.0, 90.0, 90.0)])["test"].to_dict()
    {('50%', 'isp'): 79.0}
    """
    df = tidy_costs(records)
    df = df.assign(one_class=[collapsed(r) for r in records]) if len(df) else df
    df = df[df["sparsity"] > 0] if len(df) else df
    if df.empty:
        return pd.DataFrame(columns=["val", "test", "cost (T)", "seeds", "one class"])
    df = df.assign(setting=df.apply(_setting, axis=1))
    g = df.groupby(["setting", "label"], sort=True)
    return g.agg(val=("val_metric", "mean"), test=("test_metric", "mean"),
                 **{"cost (T)": ("cost (T)", "mean")}, seeds=("seed", "nunique"),
                 **{"one class": ("one_class", "sum")})


def flops(records: Sequence[dict]) -> pd.DataFrame:
    """Per setting (sparsity, or 2:4) and arm: what the FLOPs model says a sparse kernel would
    save at inference, the only speed figure a CPU run can give (pruned weights are zeros in
    dense tensors here, and run as fast as the dense model).

    Args:
        records: result records (runs at sparsity 0 are left out; each model is built once).

    Returns:
        Indexed by ``setting`` and ``label``, means over seeds: ``density`` (kept share of the
        prunable weights), ``inference GFLOPs`` (one example's forward, the pruned products
        at their density, :func:`isp_lib.report.flops_table`) and ``of dense`` (its share of
        the dense forward's).
    """
    kept = [r for r in records if r["target_sparsity"] > 0]
    df = with_flops(kept)
    if df.empty:
        return pd.DataFrame(columns=list(FLOP_COLUMNS))
    df = df.assign(setting=df.apply(_setting, axis=1),
                   gflops=df["inference_flops"] / 1e9,
                   share=df["inference_flops"] / df["dense_inference_flops"])
    return df.groupby(["setting", "label"], sort=True).agg(
        density=("density", "mean"), **{"inference GFLOPs": ("gflops", "mean"),
                                        "of dense": ("share", "mean")})


def recommend(records: Sequence[dict], margin: float = 0.5) -> pd.DataFrame:
    """Per setting: the arm to pick on validation, and the cheapest one nearly as good.

    The means of a setting are taken over the seeds that every arm of it has (paired), so an
    arm with more seeds recorded than another is not judged on other draws; ``seeds`` says
    how many.

    Args:
        records: result records of several arms.
        margin: points of mean validation metric the cheaper pick may give up.

    Returns:
        One row per setting with :data:`COLUMNS`; empty without records.
    """
    table = arms(_common_seeds(records))
    if table.empty:
        return pd.DataFrame(columns=list(COLUMNS)).set_index("setting")
    rows = []
    for setting, group in table.groupby(level="setting", sort=False):
        group = group.droplevel("setting")
        best = group.sort_values(["val", "cost (T)"], ascending=[False, True]).index[0]
        near = group[group["val"] >= group.loc[best, "val"] - margin]
        cheap = near.sort_values(["cost (T)", "val"], ascending=[True, False]).index[0]
        rows.append([setting, best, group.loc[best, "cost (T)"], group.loc[best, "test"],
                     int(group.loc[best, "one class"]), cheap, group.loc[cheap, "cost (T)"],
                     group.loc[cheap, "test"],
                     len(group), int(group["seeds"].min())])
    return pd.DataFrame(rows, columns=list(COLUMNS)).set_index("setting")


def _common_seeds(records: Sequence[dict]) -> list[dict]:
    """The records of each setting's seeds that every arm of the setting has."""
    df = tidy_costs(records)
    if df.empty:
        return list(records)
    df = df.assign(setting=df.apply(_setting, axis=1), at=range(len(df)))
    keep: list[int] = []
    for _, group in df[df["sparsity"] > 0].groupby("setting"):
        shared = set.intersection(*(set(g["seed"]) for _, g in group.groupby("label")))
        keep += group.loc[group["seed"].isin(shared), "at"].tolist()
    return [records[i] for i in sorted(keep)]


def plot_cost_accuracy(records: Sequence[dict], axes: Sequence[Axes], title: str = "",
                       legend: bool = True) -> Sequence[Axes]:
    """One panel per setting of :data:`SETTINGS`: every arm at its mean cost (units of T) and
    mean test metric, the bars spanning the seeds' test metrics. The colour says the method,
    the same on every call; arms of equal cost (Wanda and SparseGPT count the same calibration
    pass) are spread a little sideways so that none hides another.

    Args:
        records: result records.
        axes: one per setting, in the order of :data:`SETTINGS`.
        title: the start of each panel's title (e.g. the testbed).
        legend: draw the methods' legend right of the last panel.

    Returns:
        The axes ("no records yet" written on a panel whose setting has none).
    """
    df = tidy_costs(records)
    df = df[df["sparsity"] > 0] if len(df) else df
    if len(df):
        df = df.assign(setting=df.apply(_setting, axis=1),
                       family=df["label"].str.replace(r" \(pattern=2:4\)", "", regex=True))
    for ax, setting in zip(axes, SETTINGS, strict=False):
        ax.set_title(f"{title} · {setting}" if title else setting, fontsize=10)
        panel = df[df["setting"] == setting] if len(df) else df
        if panel.empty:
            ax.text(0.5, 0.5, NO_RECORDS, ha="center", va="center", transform=ax.transAxes)
            continue
        means = panel.groupby("family")["cost (T)"].mean().round(3)
        step = SPREAD * max(means.max() - means.min(), 0.1)
        for family, g in panel.groupby("family", sort=True):
            twins = sorted(means.index[means == means[family]], key=_family_order)
            shift = (twins.index(family) - (len(twins) - 1) / 2) * step
            acc = g["test_metric"]
            ax.errorbar(g["cost (T)"].mean() + shift, acc.mean(), color=_colour(family),
                         yerr=[[acc.mean() - acc.min()], [acc.max() - acc.mean()]],
                         marker="o", linestyle="none", capsize=2, markersize=5)
        ax.set_xlabel("cost (units of T)")
        if ax is axes[0]:
            ax.set_ylabel(f"test {panel['metric_name'].iloc[0]} (%)")
        ax.xaxis.set_major_formatter("{x:.2f}")
        ax.margins(x=0.25)
        ax.grid(alpha=0.3)
    if legend and len(df):
        handles = [ax.plot([], [], color=_colour(f), marker="o", linestyle="none",
                           label=_short(f))[0] for f in FAMILIES]
        axes[-1].legend(handles=handles, fontsize=8, loc="upper left",
                        bbox_to_anchor=(1.02, 1.0))
    return axes


def _family_order(family: str) -> int:
    """A method's place in :data:`FAMILIES` (unknown ones last)."""
    return FAMILIES.index(family) if family in FAMILIES else len(FAMILIES)


def _colour(family: str) -> str:
    """A method's colour, the same in every panel and on every testbed."""
    return f"C{_family_order(family)}"


def _short(family: str) -> str:
    """A method's legend entry: the post-training setting said in words."""
    return family.replace(f" ({POST_TRAINING})", ", post-training")
