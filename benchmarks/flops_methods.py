"""FLOPS: training FLOPs of each method's runs and inference FLOPs of its model (book, Fig. 1).

From the committed records (MiniLM-L6, drug reviews, ``cpu`` profile) and ``isp_lib.flops``:
the FLOPs of one training step of MiniLM-L6 on the records' batch of real reviews of 96 tokens
(almost every drug-review batch pads to 96) times each run's optimizer steps (look-aheads
included), and one forward per example with the prunable products scaled by the run's density.
Medians over seeds; the dense runs are the reference.
"""

from __future__ import annotations

import statistics
from collections import defaultdict

from benchmarks.common import (
    Outcome,
    Row,
    Settings,
    full_length,
    load_minilm,
    load_records,
    minilm_cpu,
    percent,
    times,
)
from isp_lib.flops import FlopProfile, count_flops, record_flops
from isp_lib.scope import prunable_params
from isp_lib.train import move

NAME = "FLOPS"
ORDER = ("dense", "oneshot", "imp", "isp")


def flops(x: float) -> str:
    """``2.1e12`` -> ``"2.10 TFLOP"``."""
    for scale, unit in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M")):
        if x >= scale:
            return f"{x / scale:.2f} {unit}FLOP"
    return f"{x:.0f} FLOP"


def run(s: Settings) -> Outcome:
    """Count FLOPs once per batch size and apply them to every record.

    Args:
        s: the settings (``seed`` and ``device``; nothing is timed).

    Returns:
        Two rows per method and sparsity (training, inference per example) against dense.
    """
    records = minilm_cpu(load_records())
    if not records:
        return Outcome([Row("FLOPS", "no records", "-", "-", "-", "n/a")])
    bundle, data, profile = load_minilm(s.seed)
    model = bundle.model.to(s.device)
    train_set = bundle.make_dataset(data.train)
    profiles: dict[int, FlopProfile] = {}
    groups: dict[tuple[str, float], list[dict[str, float]]] = defaultdict(list)
    for record in records:
        size = int(record["hparams"]["batch_size"])
        if size not in profiles:
            idx = full_length(train_set, profile.max_len, size)
            batch = move(bundle.collate([train_set[int(i)] for i in idx]), s.device)
            profiles[size] = count_flops(model, batch, prunable_params(model, "bert"))
        counted = record_flops(record, profiles[size])
        counted["inference"] /= size
        groups[(record["method"], float(record["target_sparsity"]))].append(counted)

    med = {key: {k: statistics.median(c[k] for c in cs) for k in ("train", "inference")}
           for key, cs in groups.items()}
    dense = next((v for (m, _), v in med.items() if m == "dense"), None)
    rows: list[Row] = []
    rank = {m: i for i, m in enumerate(ORDER)}
    for method, sp in sorted(med, key=lambda k: (k[1], rank.get(k[0], len(ORDER)), k[0])):
        n = len(groups[(method, sp)])
        for kind, label in (("train", "train"), ("inference", "infer/example")):
            ours = med[(method, sp)][kind]
            ref = dense[kind] if dense else None
            rows.append(Row(f"FLOPS {label} {method} @{percent(sp)}", f"{flops(ours)} (n={n})",
                            f"dense {flops(ref)}" if ref else "no dense record",
                            times(ours / ref) if ref else "-", "-", "n/a"))
    details = {"per_batch": {size: {"train_step": p.train_step, "forward": p.forward,
                                    "prunable_forward": sum(p.prunable_forward.values())}
                             for size, p in profiles.items()},
               "batch_tokens": profile.max_len,
               "median": {f"{m}@{sp}": v for (m, sp), v in med.items()}}
    return Outcome(rows, details)
