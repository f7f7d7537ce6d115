"""Health of a testbed, read from the records: collapses to one class and identical seeds.

A run that predicts a single class on the whole test split has collapsed (the record's
``test_confusion`` shows it); a cell whose seeds all give one identical test metric is
suspect (the seeds differ in data order and look-aheads, so their metrics should differ).
Chapters print :func:`health_line` under their status lines; :func:`health` is the table.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from isp_lib.predictions import predicted_classes
from isp_lib.verdicts import run_label

#: The fewest seeds of a cell for one shared test metric to count as suspect.
IDENTICAL_SEEDS = 3


def collapsed(record: dict) -> bool:
    """Whether a run predicts a single class on the whole test split (False without a
    ``test_confusion``, e.g. for regression).

    >>> collapsed({"test_confusion": [[0, 5], [0, 10]]}), collapsed({"test_confusion": None})
    (True, False)
    """
    conf = record.get("test_confusion")
    return bool(conf) and predicted_classes(conf) == 1


def health(records: Sequence[dict]) -> pd.DataFrame:
    """Per cell (data set, arm, sparsity): seeds, distinct test metrics and collapsed seeds.

    Args:
        records: result records (those without ``test_confusion``, e.g. regression, count
            as not collapsed).

    Returns:
        One row per cell: ``data``, ``label``, ``sparsity``, ``seeds``, ``distinct`` (distinct
        test metrics), ``collapsed`` (seeds predicting one class), ``majority`` (share of the
        test split in its largest class, in %), ``identical`` (``seeds >= IDENTICAL_SEEDS``
        and one distinct metric).

    >>> r = {"data": "d", "method": "oneshot", "target_sparsity": 0.9, "test_metric": 65.4,
    ...      "config": {"overrides": []}, "test_confusion": [[0, 5], [0, 10]]}
    >>> row = health([{**r, "seed": s} for s in range(3)]).iloc[0]
    >>> int(row["collapsed"]), bool(row["identical"])
    (3, True)
    """
    cols = ["data", "label", "sparsity", "seeds", "distinct", "collapsed", "majority",
            "identical"]
    rows = []
    for r in records:
        conf = r.get("test_confusion")
        counts = np.asarray(conf).sum(1) if conf else None
        rows.append({"data": r["data"], "label": run_label(r),
                     "sparsity": round(float(r["target_sparsity"]), 4),
                     "metric": round(float(r["test_metric"]), 9),
                     "collapsed": collapsed(r),
                     "majority": 100.0 * counts.max() / counts.sum() if conf else np.nan})
    if not rows:
        return pd.DataFrame(columns=cols)
    g = pd.DataFrame(rows).groupby(["data", "label", "sparsity"], sort=True)
    out = g.agg(seeds=("metric", "size"), distinct=("metric", "nunique"),
                collapsed=("collapsed", "sum"), majority=("majority", "first")).reset_index()
    out["identical"] = (out["seeds"] >= IDENTICAL_SEEDS) & (out["distinct"] == 1)
    return out[cols]


def health_line(records: Sequence[dict]) -> str:
    """One line: how many runs collapsed to one class, and which cells share one metric.

    >>> health_line([])
    'Health: no records.'
    """
    table = health(records)
    if table.empty:
        return "Health: no records."

    def cells(frame: pd.DataFrame, what: str) -> str:
        return ", ".join(f"{r.label} at {r.sparsity:g} ({r[what]} of {r.seeds})"
                         for _, r in frame.iterrows())

    collapsed = table[table["collapsed"] > 0]
    identical = table[table["identical"]]
    parts = [f"{int(table['collapsed'].sum())} of {int(table['seeds'].sum())} runs predict a "
             "single class" + (f": {cells(collapsed, 'collapsed')}" if len(collapsed) else ""),
             f"{len(identical)} cells of {IDENTICAL_SEEDS}+ seeds share one test metric"
             + (": " + ", ".join(f"{r.label} at {r.sparsity:g}" for _, r in identical.iterrows())
                if len(identical) else "")]
    return "Health: " + "; ".join(parts) + "."
