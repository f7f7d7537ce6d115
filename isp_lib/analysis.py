"""The chapters' analysis: records of sweeps into tables, traces, claim tables and verdicts.

A chapter loads its sweeps with :func:`load` (the committed records; at the ``smoke`` profile
the cells of seeds 0 and 1 are run), tabulates accuracy beside cost in units of T with
:func:`summary`, reads the methods' traces with :func:`isp_rounds`, :func:`imp_rounds`,
:func:`ims_weak` and :func:`soup_ingredients` (what the runs recorded, never re-derived), and
states its claims as data (:class:`Claim`) that :func:`claim_table` judges with
:func:`isp_lib.verdicts.compare_table` and :func:`show_verdicts` displays: the paper's number
beside our paired difference, its interval, the seeds and the verdict, a
:func:`~isp_lib.verdicts.plot_comparisons` figure and one sentence per claim.

Every function accepts an empty or partial set of records (a sweep still running): tables
come back empty, claims whose arms have no run read :data:`NO_RECORDS`, and :func:`show` and
:func:`show_verdicts` say "no records yet" instead of drawing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

from isp_lib import kit
from isp_lib import records as rec
from isp_lib.health import health_line
from isp_lib.report import scale_note
from isp_lib.verdicts import (
    SMOKE_VERDICT,
    TABLE_COLUMNS,
    Comparison,
    Sparsity,
    at_sparsity,
    compare_table,
    plot_comparisons,
    run_label,
    test_labels,
)

if TYPE_CHECKING:
    import torch
    from matplotlib.axes import Axes

    from isp_lib.masks import Mask

NO_RECORDS = "no records yet"
SMOKE_NOTE = ("Smoke profile: tiny models, seeds 0 and 1 — a check of the machinery; the "
              "tables and figures are shown, no verdict is drawn.")
SMOKE_SEEDS = (0, 1)


class Claim(NamedTuple):
    """One claim of a chapter, as data.

    Attributes:
        a, b: the two arms (``tidy``'s ``label``: the method with its settings).
        claim: ``"beats"``, ``"at least"`` or ``"matches"`` (:func:`isp_lib.verdicts.compare`).
        margin: the claim's margin in points.
        sparsity: both arms' target sparsity, or (A's, B's); None keeps every run.
        paper: the paper's A − B (a number, or text such as a range; None: not printed).
        wording: the claim as the paper words it (default: "A beats B" etc.).
    """

    a: str
    b: str
    claim: str = "beats"
    margin: float = 0.0
    sparsity: Sparsity = None
    paper: float | str | None = None
    wording: str | None = None


def load(configs: Sequence[str], profile: str, recompute: bool = False, device: str = "auto",
         model: str | None = None, data: str | None = None,
         results_dir: str | Path | None = None, bf16: bool | None = False) -> list[dict]:
    """The records of the sweeps ``results/<name>.yaml``, each run once; prints their status.

    At the ``smoke`` profile (or with ``recompute``) the missing cells are run, at ``smoke``
    only those of seeds 0 and 1; otherwise only the committed records are read (a sweep still
    running has recorded some of its cells). One line says how many cells are recorded and
    missing (with the ``isp sweep`` commands that add them), or that the smoke profile draws
    no verdict; then the scale of the runs, their provenance and their health
    (:func:`isp_lib.health.health_line`: runs that predict a single class).

    Args:
        configs: sweep names (files ``<results_dir>/<name>.yaml``).
        profile: the chapter's ``PROFILE``.
        recompute: ignore the committed records and run every cell.
        device: ``auto``, ``cpu`` or ``cuda``.
        model, data: run the grids on this model / data set instead of the configs'.
        results_dir: the folder of the sweep configs; None: the kit's committed sweeps
            (:func:`isp_lib.kit.results_dir`), found from any working directory.
        bf16: bf16 autocast for the cells (part of their config hash, so records made without
            it are other cells); None: automatic (:func:`isp_lib.kit.resolve_bf16`).

    Returns:
        The records, in config and cell order, without duplicates (a cell in two sweeps).
    """
    smoke = profile == "smoke"
    folder = kit.results_dir() if results_dir is None else Path(results_dir)
    use_bf16 = kit.resolve_bf16(bf16, profile, device)
    kwargs = {"profile": profile, "model": model, "data": data,
              "seeds": list(SMOKE_SEEDS) if smoke else None, "bf16": use_bf16}
    found: dict[str, dict] = {}
    missing: dict[str, int] = {}
    cells = 0
    for name in configs:
        path = folder / f"{name}.yaml"
        got = rec.load_or_run(path, recompute=recompute, device=device,
                              missing="run" if smoke or recompute else "skip", **kwargs)
        n_cells = len(rec.load_sweep(path, **kwargs).cells)
        n_missing = len(rec.missing_cells(path, got, **kwargs))
        found.update({r["config_hash"]: r for r in got})
        cells += n_cells
        missing[name] = n_missing
    out = list(found.values())
    print(status_line(missing, len(out), cells, smoke, folder))
    if use_bf16:
        print("bf16 autocast: on (it enters the config hash: records made without it are "
              "other cells).")
    print(f"Scale: {scale_note(out)}.")
    if out:
        print(f"Provenance: {provenance_line(out)}.")
        print(health_line(out))
    return out


def provenance_line(records: Sequence[dict]) -> str:
    """Which code made the records: commits (with counts), numerics version, torch.

    >>> provenance_line([{"git_commit": "abc1234def", "numerics": 2, "torch_version": "2.6"}])
    'commit abc1234 (1 record) · numerics 2 · torch 2.6'
    """
    prov = rec.provenance(list(records))
    commits = prov.groupby("git_commit", dropna=False)["records"].sum()
    parts = [", ".join(f"commit {str(c)[:7]}{'+dirty' if str(c).endswith('+dirty') else ''} "
                       f"({n} record{'s' if n != 1 else ''})" for c, n in commits.items()),
             "numerics " + ", ".join(str(v) for v in sorted(set(prov["numerics"].dropna()))),
             "torch " + ", ".join(sorted(set(prov["torch_version"])))]
    return " · ".join(parts)


def status_line(missing: dict[str, int], recorded: int, cells: int, smoke: bool,
                results_dir: str | Path | None = None) -> str:
    """The line :func:`load` prints.

    Args:
        missing: cells without a record, per sweep name.
        recorded: records found (a cell shared by two sweeps once).
        cells: cells of all sweeps together.
        smoke: the records are of the smoke profile.
        results_dir: the folder of the sweep configs, for the commands (shown relative to
            the working directory when inside it); None: :func:`isp_lib.kit.results_dir`.

    Returns:
        e.g. "3 of 10 cells recorded, 7 missing: isp sweep results/a.yaml adds them".

    >>> status_line({"a": 0}, 4, 4, False)
    'All 4 cells recorded (a).'
    >>> status_line({"a": 2, "b": 0}, 3, 5, False, "results")
    '3 of 5 cells recorded, 2 missing: `isp sweep results/a.yaml` adds them.'
    """
    if smoke:
        return f"{SMOKE_NOTE} ({recorded} cells)"
    lacking = sum(missing.values())
    if not lacking:
        return f"All {recorded} cells recorded ({', '.join(missing)})."
    folder = kit.results_dir() if results_dir is None else Path(results_dir)
    commands = ", ".join(f"`isp sweep {kit.display_path(folder / f'{n}.yaml')}`"
                         for n, m in missing.items() if m)
    return (f"{recorded} of {cells} cells recorded, {lacking} missing: {commands} "
            f"add{'s' if commands.count('`') == 2 else ''} them.")


def is_smoke(records: Iterable[dict]) -> bool:
    """Whether every record was run under the ``smoke`` profile (False for none)."""
    profiles = {r["config"]["profile"] for r in records}
    return profiles == {"smoke"}


def select(records: Iterable[dict], labels: Iterable[str]) -> list[dict]:
    """The records of some arms (``tidy``'s ``label``: the method with its settings).

    >>> r = {"method": "isp", "config": {"overrides": [["denoisers", "0"]]}}
    >>> len(select([r], ["isp (denoisers=0)"])), len(select([r], ["isp"]))
    (1, 0)
    """
    wanted = set(labels)
    return [r for r in records if run_label(r) in wanted]


def tidy_costs(records: Sequence[dict], hparams: Sequence[str] = ()) -> pd.DataFrame:
    """:func:`isp_lib.records.tidy` with the cost in units of T.

    Args:
        records: result records.
        hparams: hyperparameters of the runs to add as columns (e.g. ``denoisers``).

    Returns:
        One row per record: ``tidy``'s columns, ``cost (T)`` (``train_steps / budget_steps``),
        ``T: <phase>`` per ledger phase (0 where a run has no such phase) and ``hparams``.

    >>> r = {"method": "isp", "config": {"overrides": [], "profile": "cpu"},
    ...      "target_sparsity": 0.7, "train_steps": 12, "budget_steps": 10,
    ...      "ledger": {"phases": {"train": {"steps": 8}, "lookahead": {"steps": 4}}}}
    >>> tidy_costs([r])[["label", "cost (T)", "T: train", "T: lookahead"]].values.tolist()
    [['isp', 1.2, 0.8, 0.4]]
    """
    df = rec.tidy(list(records))
    df["cost (T)"] = df["train_steps"] / df["budget_steps"]
    phases = list(dict.fromkeys(p for r in records for p in r["ledger"]["phases"]))
    for p in phases:
        df[f"T: {p}"] = [r["ledger"]["phases"].get(p, {}).get("steps", 0) / r["budget_steps"]
                         for r in records]
    for h in hparams:
        df[h] = [r["hparams"][h] for r in records]
    return df


def with_flops(records: Sequence[dict]) -> pd.DataFrame:
    """:func:`tidy_costs` with each run's FLOPs (:func:`isp_lib.report.flops_table`).

    Args:
        records: result records (each model is built once to count its FLOPs).

    Returns:
        ``tidy_costs``' columns and ``density``, ``train_flops``, ``inference_flops``,
        ``dense_inference_flops``; empty without records.
    """
    from isp_lib.report import flops_table

    flops = ["density", "train_flops", "inference_flops", "dense_inference_flops"]
    if not records:
        return pd.DataFrame(columns=[*rec.TIDY_COLUMNS, "cost (T)", *flops])
    return tidy_costs(records).merge(flops_table(records)[["config_hash", *flops]],
                                     on="config_hash")


def summary(records: Sequence[dict], by: Sequence[str] = ("sparsity", "label")
            ) -> pd.DataFrame:
    """Test metric over seeds beside the cost in units of T, per arm.

    Args:
        records: result records.
        by: columns of :func:`tidy_costs` that name an arm, or hyperparameters of the runs.

    Returns:
        Indexed by ``by``: ``mean``, ``sd`` (NaN for one seed), ``seeds``, ``cost (T)`` and
        the mean ``T: <phase>`` columns; empty without records.
    """
    if not records:
        return pd.DataFrame(columns=["mean", "sd", "seeds", "cost (T)"])
    df = tidy_costs(records, [b for b in by if b not in rec.TIDY_COLUMNS])
    costs = [c for c in df.columns if c == "cost (T)" or c.startswith("T: ")]
    g = df.groupby(list(by), sort=True)
    out = g["test_metric"].agg(mean="mean", sd="std", seeds="count")
    return out.join(g[costs].mean())


def _trace_rows(records: Sequence[dict], method: str | None, key: str) -> list[dict]:
    return [{"label": run_label(r), "target": r["target_sparsity"], "seed": r["seed"],
             "step": k, **row}
            for r in records if method is None or r["method"] == method
            for k, row in enumerate(r["progress"].get(key) or [])]


def isp_rounds(records: Sequence[dict]) -> pd.DataFrame:
    """ISP's prune rounds, as the runs traced them.

    Args:
        records: result records (those of ISP are used).

    Returns:
        One row per ISP run and round: ``label``, ``target``, ``seed``, ``round``,
        ``main_steps``, ``rate``, ``own_sparsity``, ``union_sparsity``, ``sparsity``,
        ``adjusted``, ``look-aheads`` (masks in the union) and ``spared (points)`` (the
        main model's own mask's sparsity minus the union's, x 100).
    """
    rows = _trace_rows(records, "isp", "trace")
    cols = ["label", "target", "seed", "round", "main_steps", "rate", "own_sparsity",
            "union_sparsity", "sparsity", "adjusted", "look-aheads", "spared (points)"]
    if not rows:
        return pd.DataFrame(columns=cols)
    df = pd.DataFrame(rows)
    df["look-aheads"] = df["lookahead_sparsity"].map(len)
    df["spared (points)"] = 100 * (df["own_sparsity"] - df["union_sparsity"])
    return df.reindex(columns=cols)


def imp_rounds(records: Sequence[dict]) -> pd.DataFrame:
    """IMP's rounds against one-shot pruning of the pretrained weights, as traced.

    Args:
        records: result records (those of IMP with a per-round trace are used).

    Returns:
        One row per IMP run and round: ``label`` (the arm), ``target``, ``seed``, ``round``,
        ``sparsity`` and the cosine similarity (percent) of IMP's mask to the one-shot mask at
        that sparsity, of the kept (``cos_kept``) and of the pruned (``cos_pruned``) indicators.
    """
    rows = [r for r in _trace_rows(records, "imp", "trace") if "cos_kept" in r]
    cols = ["label", "target", "seed", "round", "sparsity", "cos_kept", "cos_pruned"]
    df = pd.DataFrame(rows, columns=cols)
    df[["cos_kept", "cos_pruned"]] = df[["cos_kept", "cos_pruned"]].astype(float) * 100
    return df


def ims_weak(records: Sequence[dict]) -> pd.DataFrame:
    """IMS's weak models, as the runs recorded them.

    Args:
        records: result records (those of IMS are used).

    Returns:
        One row per IMS run and weak model: ``seed``, ``weak model``, ``sparsity``, ``lr``,
        ``weight_decay``, the chosen coefficient ``alpha`` (0: left out), and the running
        soup's validation metric ``val`` and loss ``val_loss`` after merging it.
    """
    cols = ["seed", "weak model", "sparsity", "lr", "weight_decay", "alpha", "val",
            "val_loss"]
    rows = _trace_rows(records, "ims", "weak")
    return pd.DataFrame(rows).rename(columns={"step": "weak model"}).reindex(columns=cols)


def soup_ingredients(records: Sequence[dict]) -> pd.DataFrame:
    """The soups' ingredients, as the runs recorded them.

    Args:
        records: result records (those whose progress holds a ``soup`` are used).

    Returns:
        One row per soup run and ingredient: ``method``, ``seed``, ``ingredient``, ``lr``,
        ``weight_decay``, ``val`` (its validation metric) and ``in the soup``.
    """
    rows = []
    for r in records:
        p = r["progress"]
        if not p.get("soup"):
            continue
        for k, (val, hp) in enumerate(zip(p["ingredient_vals"], p["ingredient_hparams"],
                                          strict=True)):
            rows.append({"method": r["method"], "seed": r["seed"], "ingredient": k, **hp,
                         "val": val, "in the soup": k in p["soup"]["ingredients"]})
    return pd.DataFrame(rows, columns=["method", "seed", "ingredient", "lr", "weight_decay",
                                       "val", "in the soup"])


def paper_gap(paper: pd.DataFrame, a: str, b: str) -> float | str | None:
    """The paper's A − B on the rows of ``paper`` where both arms have a value.

    Args:
        paper: rows of :func:`isp_lib.paper.paper_numbers` (filter data sets and sparsities
            first); arms are named like ours: ``method`` with ``(setting)`` if any.
        a, b: the two arms.

    Returns:
        The difference where one data set has both arms; "lo … hi (n data sets)" for several;
        None for none.

    >>> p = pd.DataFrame({"dataset": ["x", "x", "y", "y"], "method": ["isp", "imp"] * 2,
    ...                   "setting": [""] * 4, "sparsity": [0.7] * 4,
    ...                   "metric": ["accuracy"] * 4, "value": [2.0, 1.0, 5.0, 1.5]})
    >>> paper_gap(p[p["dataset"] == "x"], "isp", "imp"), paper_gap(p, "isp", "imp")
    (1.0, '+1.00 … +3.50 (2 data sets)')
    """
    main = paper[~paper["metric"].str.endswith("_std")]
    arm = main["method"].where(main["setting"] == "", main["method"] + " (" + main["setting"]
                               + ")")
    wide = main.assign(arm=arm).pivot_table(index=["dataset", "sparsity"], columns="arm",
                                            values="value")
    if a not in wide or b not in wide:
        return None
    gap = (wide[a] - wide[b]).dropna()
    if len(gap) <= 1:
        return float(gap.iloc[0]) if len(gap) else None
    return f"{gap.min():+.2f} … {gap.max():+.2f} ({len(gap)} data sets)"


def against(a: str, others: Sequence[str], sparsities: Sequence[Sparsity],
            paper: pd.DataFrame | None = None, claim: str = "beats", margin: float = 0.0
            ) -> list[Claim]:
    """The claims "A <claim> each other arm" at each sparsity, with the paper's A − B.

    Args:
        a: the arm that claims, e.g. ``"isp"``.
        others: the arms it is compared with.
        sparsities: the sparsities (or (A's, B's) pairs) to compare at.
        paper: rows of :func:`isp_lib.paper.paper_numbers` for :func:`paper_gap`, filtered
            to A's sparsity per claim where they carry several; None: no paper number.
        claim, margin: as in :class:`Claim`.

    Returns:
        One :class:`Claim` per sparsity and other arm, in that order.

    >>> [c[:2] + c[4:6] for c in against("isp", ["imp"], [0.7, 0.9])]
    [('isp', 'imp', 0.7, None), ('isp', 'imp', 0.9, None)]
    """
    out = []
    for s in sparsities:
        at = s[0] if isinstance(s, tuple) else s
        rows = None if paper is None else paper[np.isclose(paper["sparsity"], at) |
                                                (paper["sparsity"] == 0.0)]
        out += [Claim(a, b, claim, margin, s, None if rows is None else paper_gap(rows, a, b))
                for b in others]
    return out


def plot_paper(paper: pd.DataFrame, x: str, ax: Axes, title: str = "") -> Axes:
    """The paper's values (crosses, one line per arm) against ``x``.

    Args:
        paper: rows of :func:`isp_lib.paper.paper_numbers` (``_std`` rows are left out).
        x: the column to plot against (e.g. ``sparsity``).
        ax: the axes.
        title: the axes' title.

    Returns:
        The axes.
    """
    main = paper[~paper["metric"].str.endswith("_std")]
    arm = main["method"].where(main["setting"] == "", main["method"] + " (" + main["setting"]
                               + ")")
    for name, group in main.assign(arm=arm).groupby("arm", sort=True):
        group = group.groupby(x)["value"].mean()
        ax.plot(group.index, group.to_numpy(), marker="X", ls="--", label=name)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(x)
    ax.set_ylabel("paper (%)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return ax


def _has_arm(records: Sequence[dict], label: str, sparsity: float | None) -> bool:
    return any(run_label(r) == label and (sparsity is None or math.isclose(
        r["target_sparsity"], sparsity, abs_tol=1e-9)) for r in records)


def _labels(records: Sequence[dict]) -> np.ndarray | None:
    if not records or any(r.get("test_predictions") is None for r in records):
        return None
    first = records[0]
    return test_labels(first["data"], first["config"]["profile"], records)


def claim_table(records: Sequence[dict], claims: Sequence[Sequence]) -> pd.DataFrame:
    """Judge a chapter's claims with :func:`isp_lib.verdicts.compare_table`.

    Test examples are resampled with the seeds where every record carries its predictions
    (the test labels are loaded once). A claim whose arm has no run yet gets a row with the
    verdict :data:`NO_RECORDS`; at the smoke profile every verdict reads
    :data:`~isp_lib.verdicts.SMOKE_VERDICT`.

    Args:
        records: result records of one data set.
        claims: :class:`Claim` or tuples of its fields.

    Returns:
        One row per claim: the columns of ``compare_table``, ``paper`` (the paper's A − B)
        and ``cost A (T)``, ``cost B (T)`` (mean over the compared runs).
    """
    claims = [Claim(*c) for c in claims]
    labels = _labels(records)
    costs = tidy_costs(records) if records else pd.DataFrame()
    rows = []
    for c in claims:
        sa, sb = c.sparsity if isinstance(c.sparsity, tuple) else (c.sparsity, c.sparsity)
        if _has_arm(records, c.a, sa) and _has_arm(records, c.b, sb):
            row = compare_table(records, [c[:5] + (c.wording,)], labels).iloc[0].to_dict()
        else:
            row = {**dict.fromkeys(TABLE_COLUMNS), "a": c.a, "b": c.b, "sparsity": c.sparsity,
                   "claim": c.claim, "margin": c.margin, "seeds": 0, "verdict": NO_RECORDS,
                   "wording": c.wording or f"{c.a} {c.claim} {c.b}"}
        for side, arm, s in (("A", c.a, sa), ("B", c.b, sb)):
            at = costs[costs["label"] == arm] if len(costs) else costs
            if s is not None and len(at):
                at = at[np.isclose(at["sparsity"].astype(float), s)]
            row[f"cost {side} (T)"] = at["cost (T)"].mean() if len(at) else float("nan")
        rows.append({**row, "paper": c.paper})
    return pd.DataFrame(rows, columns=[*TABLE_COLUMNS, "paper", "cost A (T)", "cost B (T)"])


def _fmt(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:+.2f}" if isinstance(value, float | int) else str(value)


def verdict_sentence(row: pd.Series | dict) -> str:
    """One Markdown line for a row of :func:`claim_table`: the claim, our paired difference
    with its interval and seeds, the verdict and the paper's number."""
    row = dict(row)
    if row["verdict"] == NO_RECORDS:
        return (f"- {row['wording']}{at_sparsity(row['sparsity'])}: *{NO_RECORDS}* "
                f"(paper: {_fmt(row['paper'])}).")
    text = Comparison(**{k: row[k] for k in TABLE_COLUMNS}).sentence()
    text = text.replace(f": {row['verdict']}", f": **{row['verdict']}**", 1)
    return f"- {text}; paper: {_fmt(row['paper'])}."


def verdict_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The compact view of a :func:`claim_table`: one row per claim, numbers rounded.

    Args:
        table: a :func:`claim_table`.

    Returns:
        Columns ``claim``, ``sparsity``, ``paper``, ``ours``, ``interval``, ``seeds``,
        ``verdict``, ``cost A (T)`` and ``cost B (T)``.
    """
    return pd.DataFrame({
        "claim": table["wording"], "sparsity": [at_sparsity(s).removeprefix(" at ")
                                                  for s in table["sparsity"]],
        "paper": table["paper"].map(_fmt), "ours": table["mean_diff"].map(_fmt),
        "interval": [f"[{lo:+.2f}, {hi:+.2f}]" if v != NO_RECORDS else "—"
                     for lo, hi, v in zip(table["ci_low"], table["ci_high"], table["verdict"],
                                          strict=True)],
        "seeds": table["seeds"], "verdict": table["verdict"],
        "cost A (T)": table["cost A (T)"].round(2), "cost B (T)": table["cost B (T)"].round(2)})


def show_verdicts(table: pd.DataFrame) -> None:
    """Display a :func:`claim_table`: the compact table, the paired differences beside it
    (:func:`~isp_lib.verdicts.plot_comparisons`) and one sentence per claim; "no records yet"
    where a claim has no runs, and the smoke note at the smoke profile."""
    import matplotlib.pyplot as plt
    from IPython.display import Markdown, display

    display(verdict_frame(table).style.hide(axis="index").format(precision=2, na_rep="—"))
    judged = table[table["verdict"] != NO_RECORDS]
    if len(judged):
        plot_comparisons(judged.reset_index(drop=True))
        plt.show()
    lines = [verdict_sentence(row) for _, row in table.iterrows()]
    if (table["verdict"] == SMOKE_VERDICT).any():
        lines.append(f"\n{SMOKE_NOTE}")
    display(Markdown("\n".join(lines) if lines else f"*{NO_RECORDS}.*"))


def show(frame: pd.DataFrame, digits: int = 2) -> object:
    """A table for display: rounded, or the note "no records yet" when it is empty."""
    from IPython.display import Markdown

    if frame.empty:
        return Markdown(f"*{NO_RECORDS}.*")
    return frame.round(digits)


def plot_metric(records: Sequence[dict], x: str, ax: Axes, hue: str = "label",
                title: str = "") -> Axes:
    """Test metric per run (dots) and its mean over seeds (lines) against ``x``.

    Args:
        records: result records.
        x: a column of :func:`tidy_costs` (e.g. ``sparsity``, ``cost (T)``) or a
            hyperparameter of the runs (e.g. ``denoisers``).
        ax: the axes.
        hue: the column that names a line.
        title: the axes' title.

    Returns:
        The axes (with "no records yet" written on it when there are none).
    """
    ax.set_title(title, fontsize=10)
    if not records:
        ax.text(0.5, 0.5, NO_RECORDS, ha="center", va="center", transform=ax.transAxes)
        return ax
    df = tidy_costs(records, [x] if x not in rec.TIDY_COLUMNS and x != "cost (T)" else [])
    for name, group in df.groupby(hue, sort=True):
        means = group.groupby(x)["test_metric"].mean()
        line, = ax.plot(means.index, means.to_numpy(), marker="o", label=str(name))
        ax.scatter(group[x], group["test_metric"], color=line.get_color(), alpha=0.35, s=18)
    ax.set_xlabel(x)
    ax.set_ylabel(f"test {df['metric_name'].iloc[0]} (%)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return ax


def spared_per_round(records: Sequence[dict]) -> pd.DataFrame:
    """Points of sparsity the look-ahead union spared per ISP round (rows) and arm (columns),
    averaged over seeds; empty without ISP records."""
    rounds = isp_rounds(records)
    if not len(rounds):
        return rounds
    return rounds.pivot_table(index="round", columns="label", values="spared (points)")


def layer_sparsity(mask: Mapping[str, torch.Tensor]) -> pd.DataFrame:
    """Sparsity of each tensor of a mask, by layer: the first integer part of a parameter's name
    is its layer (``encoder.layer.3.attention.self.query.weight`` is layer 3, tensor
    ``attention.self.query``); a name without one is layer -1 with its whole name as tensor.

    Args:
        mask: parameter name -> bool tensor (True = kept), e.g. :func:`isp_lib.io.load_mask`.

    Returns:
        One row per tensor: ``layer``, ``tensor``, ``sparsity`` (share pruned), ``size``.
    """
    rows = []
    for name, kept in mask.items():
        parts = name.removesuffix(".weight").split(".")
        at = next((i for i, part in enumerate(parts) if part.isdigit()), None)
        layer, tensor = (-1, ".".join(parts)) if at is None else (
            int(parts[at]), ".".join(parts[at + 1:]) or parts[at])
        rows.append({"layer": layer, "tensor": tensor,
                     "sparsity": 1 - kept.float().mean().item(), "size": kept.numel()})
    return pd.DataFrame(rows, columns=["layer", "tensor", "sparsity", "size"])


def layer_sparsity_by_mask(masks: Mapping[str, Mapping[str, torch.Tensor]]) -> pd.DataFrame:
    """Sparsity of each layer (its tensors together, as :func:`layer_sparsity` names layers),
    one column per mask.

    Args:
        masks: label -> mask (parameter name -> bool tensor, True = kept).

    Returns:
        Rows: layers in order; columns: the labels; values: share of the layer's weights pruned.
    """
    columns = {}
    for label, mask in masks.items():
        frame = layer_sparsity(mask)
        pruned = (frame["sparsity"] * frame["size"]).groupby(frame["layer"]).sum()
        columns[label] = pruned / frame.groupby("layer")["size"].sum()
    return pd.DataFrame(columns)


def mask_similarity(masks: Mapping[str, Mask]) -> pd.DataFrame:
    """Cosine similarity of the kept weights of every pair of masks (the paper's Fig. 3
    measure, :func:`isp_lib.masks.cosine_similarity`): 1 = the same weights kept.

    Args:
        masks: label -> mask, all over the same tensors.

    Returns:
        A symmetric frame, labels as index and columns.
    """
    from isp_lib.masks import cosine_similarity

    labels = list(masks)
    return pd.DataFrame([[cosine_similarity(masks[a], masks[b]) for b in labels]
                         for a in labels], index=labels, columns=labels)


def plot_layer_sparsity(per_layer: pd.DataFrame, overall: float, ax: Axes,
                        title: str = "") -> Axes:
    """Bars of :func:`layer_sparsity` per layer and tensor, with the mask's overall sparsity
    as a dashed line.

    Args:
        per_layer: :func:`layer_sparsity`'s frame.
        overall: the whole mask's sparsity (e.g. the record's ``actual_sparsity``).
        ax: where to draw.
        title: the panel's title.

    Returns:
        ``ax``.
    """
    import seaborn as sns

    sns.barplot(per_layer, x="layer", y="sparsity", hue="tensor", ax=ax)
    ax.axhline(overall, color="black", linestyle="--", linewidth=1)
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    return ax


def plot_setting(records: Sequence[dict], paper: pd.DataFrame, setting: str, paper_x: str,
                 log: bool = False) -> None:
    """Three panels for an ISP setting (Tables 5 and 7): the paper's accuracy per value, ours
    per value (runs and mean), and our training cost in units of T per value.

    Args:
        records: the ISP runs across the setting's values.
        paper: the paper's rows (``paper_numbers``) for the setting.
        setting: the hyperparameter varied (e.g. ``denoisers``, ``lookahead_steps``).
        paper_x: its column in ``paper`` (e.g. ``N``, ``C``).
        log: log-scale the x axes.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), layout="constrained")
    plot_paper(paper.assign(method="paper", setting=""), paper_x, axes[0], "paper")
    plot_metric(records, setting, axes[1], hue="method", title="ours")
    cost = summary(records, by=[setting])["cost (T)"]
    axes[2].plot(cost.index, cost.to_numpy(), marker="o", color="tab:orange")
    axes[2].set(xlabel=setting, ylabel="training cost (T)", title="ours: cost")
    for ax in axes if log else ():
        ax.set_xscale("log")
    plt.show()
