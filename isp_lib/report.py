"""What every chapter of the book shows: the scale of a result, FLOPs, and paired verdicts.

Verdicts are computed from the records, never typed: paired verdicts from the records'
per-example test predictions (a bootstrap over seeds and test examples) by :func:`compare`,
:func:`compare_table`, :func:`plot_comparisons` and :func:`test_labels`, from
:mod:`isp_lib.verdicts`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

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
