"""P1: ISP's cost and accuracy against IMP's, from the committed result records (no training).

Records: ``results/*.jsonl``, MiniLM-L6 on the drug reviews at the ``cpu`` profile. Per target
sparsity: cost ratios ISP / IMP of the medians over seeds (optimizer steps, samples seen, wall
seconds), and the difference of mean test accuracies (ISP - IMP, and one-shot - IMP).
"""

from __future__ import annotations

import math
import statistics

from benchmarks.common import (
    Outcome,
    Row,
    Settings,
    load_records,
    minilm_cpu,
    percent,
    seconds,
    times,
    yes_no,
)

NAME = "P1"
SPARSITIES = (0.7, 0.9)
COST_TARGET = 0.25
ACCURACY_TARGET = -0.5  # points, ISP - IMP
COSTS = {"steps": "train_steps", "samples": "samples_seen", "wall": "wall_s"}


def _at(records: list[dict], method: str, sparsity: float) -> list[dict]:
    return [r for r in records if r.get("method") == method
            and math.isclose(float(r.get("target_sparsity", -1.0)), sparsity)]


def _accuracy(records: list[dict]) -> str:
    return f"{statistics.mean(r['test_metric'] for r in records):.2f}% (n={len(records)})"


def _gap(ours: list[dict], imp: list[dict]) -> float:
    return (statistics.mean(r["test_metric"] for r in ours)
            - statistics.mean(r["test_metric"] for r in imp))


def run(s: Settings) -> Outcome:
    """Read the records and compare ISP with IMP per sparsity.

    Args:
        s: the settings (unused: nothing is measured here).

    Returns:
        Per sparsity, rows for steps, samples, wall time and accuracy, and one-shot's accuracy;
        a single "no records" row where ISP or IMP has none.
    """
    records = minilm_cpu(load_records())
    rows: list[Row] = []
    details: dict = {}
    for sp in SPARSITIES:
        isp, imp, oneshot = (_at(records, m, sp) for m in ("isp", "imp", "oneshot"))
        details[percent(sp)] = {m: sorted(r["seed"] for r in rs) for m, rs in
                                (("isp", isp), ("imp", imp), ("oneshot", oneshot))}
        if not isp or not imp:
            rows.append(Row(f"P1 @{percent(sp)}", f"no records (isp {len(isp)})",
                            f"no records (imp {len(imp)})", "-",
                            f"cost <= {COST_TARGET}x, acc >= IMP {ACCURACY_TARGET} pts", "n/a"))
            continue
        for label, key in COSTS.items():
            a = statistics.median(r[key] for r in isp)
            b = statistics.median(r[key] for r in imp)
            details[percent(sp)][label] = {"isp": a, "imp": b}
            show = seconds if label == "wall" else "{:g}".format
            rows.append(Row(f"P1 {label} @{percent(sp)}", f"{show(a)} (n={len(isp)})",
                            f"{show(b)} (n={len(imp)})", times(a / b), f"<= {COST_TARGET}x",
                            yes_no(a / b <= COST_TARGET)))
        gap = _gap(isp, imp)
        rows.append(Row(f"P1 test acc @{percent(sp)}", _accuracy(isp), _accuracy(imp),
                        f"{gap:+.2f} pts", f">= {ACCURACY_TARGET:+.1f} pts",
                        yes_no(gap >= ACCURACY_TARGET)))
        if oneshot:
            rows.append(Row(f"P1 one-shot acc @{percent(sp)}", _accuracy(oneshot),
                            _accuracy(imp), f"{_gap(oneshot, imp):+.2f} pts", "-", "n/a"))
        details[percent(sp)]["test_metric"] = {
            m: [r["test_metric"] for r in rs] for m, rs in
            (("isp", isp), ("imp", imp), ("oneshot", oneshot))}
    return Outcome(rows, details)
