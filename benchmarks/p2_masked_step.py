"""P2: what keeping a 70% mask costs per training step of MiniLM-L6.

Copies of the same model train side by side on the same 16 real drug reviews of 96 tokens:
ours (``Trainer.set_mask``: gradients of pruned entries zeroed, weights re-zeroed after the
step), dense (the same trainer, no mask) and ``torch.nn.utils.prune.custom_from_mask`` (the
weight recomputed as ``weight_orig * weight_mask`` before every forward). Ours and dense run
once more with ``AdamW(fused=True)``: on a CPU the default AdamW's ``sqrt`` of its second
moment is several times slower on zeros, which a mask makes plentiful.
"""

from __future__ import annotations

import copy
import functools
from unittest import mock

import numpy as np
import torch
from torch.nn.utils import prune

from benchmarks.common import (
    Outcome,
    Row,
    Settings,
    clock_name,
    full_length,
    interleave,
    load_minilm,
    paired_ratio,
    seconds,
    times,
    yes_no,
)
from isp_lib.masks import Mask, magnitude_prune_to
from isp_lib.scope import prunable_params
from isp_lib.train import Ledger, Trainer

NAME = "P2"
SPARSITY = 0.7
TARGET = 1.03


def run(s: Settings) -> Outcome:
    """Time one optimizer step per variant, interleaved, and check the masks held.

    Args:
        s: the settings (``quick``: a batch of 4 reviews, one step per repetition).

    Returns:
        Rows ours vs dense (the target) and ours vs torch's pruning reparametrisation.
    """
    bundle, data, profile = load_minilm(s.seed)
    hp = profile.hparams_for("bert")
    batch = 4 if s.quick else hp.batch_size
    steps = 1 if s.quick else 2
    train_set = bundle.make_dataset(data.train)
    indices = full_length(train_set, profile.max_len, batch)
    base = bundle.model.to(s.device)
    scope = prunable_params(base, "bert")
    mask = magnitude_prune_to(scope, Mask.ones_like(scope), SPARSITY)
    names = ("ours", "dense", "torch prune", "ours fused", "dense fused")
    models = {name: copy.deepcopy(base) for name in names}
    for name in scope:
        module = models["torch prune"].get_submodule(name.rpartition(".")[0])
        prune.custom_from_mask(module, "weight", mask[name])

    def trainer(name: str) -> Trainer:
        adamw = torch.optim.AdamW
        if name.endswith("fused"):
            adamw = functools.partial(adamw, fused=True)
        with mock.patch.object(torch.optim, "AdamW", adamw):
            return Trainer(models[name], train_set, bundle.collate, lr=hp.lr,
                           weight_decay=hp.weight_decay, batch_size=batch, total_steps=1,
                           warmup_steps=0, max_grad_norm=hp.max_grad_norm, seed=s.seed,
                           ledger=Ledger(), device=s.device, indices=indices, constant_lr=True)

    trainers = {name: trainer(name) for name in names}
    for name in ("ours", "ours fused"):
        trainers[name].set_mask(mask)
    calls = {name: functools.partial(t.train, steps, "bench") for name, t in trainers.items()}
    for call in calls.values():
        call()  # warm-up: AdamW's state, the allocator
    timings = interleave(calls, s.reps, s.device, "P2 steps")
    per_step = {name: [x / steps for x in xs] for name, xs in timings.main(s.device).items()}

    for name in ("ours", "ours fused"):
        params = dict(models[name].named_parameters())
        leaked = sum(int(params[n][~m].count_nonzero()) for n, m in mask.items())
        if leaked:
            raise AssertionError(f"{leaked} pruned weights became nonzero under set_mask")

    med = {name: float(np.median(xs)) for name, xs in per_step.items()}
    vs_dense = paired_ratio(per_step["ours"], per_step["dense"])
    vs_torch = paired_ratio(per_step["ours"], per_step["torch prune"])
    vs_dense_fused = paired_ratio(per_step["ours fused"], per_step["dense fused"])
    rows = [
        Row("P2 masked step vs dense", seconds(med["ours"]), seconds(med["dense"]),
            times(vs_dense), f"<= {TARGET:.2f}x", yes_no(vs_dense <= TARGET)),
        Row("P2 masked step vs torch prune", seconds(med["ours"]), seconds(med["torch prune"]),
            times(vs_torch), "-", "n/a"),
        Row("P2 same, AdamW(fused=True)", seconds(med["ours fused"]),
            seconds(med["dense fused"]), times(vs_dense_fused), "-", "n/a"),
    ]
    details = {
        "data": f"{batch} real drug reviews of {profile.max_len} tokens (train split)",
        "batch": [batch, profile.max_len], "steps_per_rep": steps, "sparsity": SPARSITY,
        "clock": clock_name(s.device), "seconds_per_step": per_step,
        "wall_seconds_per_step": {k: [x / steps for x in v] for k, v in timings.wall.items()},
        "ratio_vs_dense": vs_dense, "ratio_vs_torch": vs_torch, "ratio_fused": vs_dense_fused,
        "torch_vs_dense": paired_ratio(per_step["torch prune"], per_step["dense"]),
    }
    return Outcome(rows, details)
