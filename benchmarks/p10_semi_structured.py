"""P10: inference with 2:4 linear layers (``to_sparse_semi_structured``) against dense.

BERT-base (sequences of 128 tokens) and CLIP ViT-B/32's image tower (224 px), both at random
init, each linear layer of the prunable scope cut to 2:4 by magnitude, bf16, eval mode. On a
CUDA GPU of compute capability 8.0 or newer: forward throughput at batch 64 and 256, the dense
masked model against the same model after :func:`isp_lib.to_semi_structured`, timed
interleaved, plus the largest logit difference between the two. Anywhere else there is no 2:4
kernel, so nothing is timed: the rows say so, and give the FLOPs model's figure (the share of
a forward pass's FLOPs left when the convertible layers do half their multiply-adds).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.common import Outcome, Row, Settings, interleave, paired_ratio, times, yes_no
from isp_lib.semi_structured import CONVERTIBLE, plan, to_semi_structured

NAME = "P10"
BATCHES = (64, 256)
SEQ = 128


def _bert() -> tuple[nn.Module, Callable[[int], dict]]:
    """BERT-base at random init, and a batch of token ids of a given size."""
    from transformers import BertConfig, BertModel

    model = BertModel(BertConfig(), add_pooling_layer=False)
    return model, lambda n: {"input_ids": torch.randint(0, 30522, (n, SEQ))}


def _vit() -> tuple[nn.Module, Callable[[int], dict]]:
    """CLIP ViT-B/32's image tower at random init, and a batch of images of a given size."""
    import open_clip

    model = open_clip.create_model("ViT-B-32", pretrained=None).visual
    return model, lambda n: {"x": torch.randn(n, 3, 224, 224)}


MODELS = {"BERT-base": _bert, "ViT-B/32": _vit}


@torch.no_grad()
def _prune_2_4(model: nn.Module) -> None:
    """Zero the 2 smallest |w| of every group of 4 input weights of each linear whose shape
    the kernels take (what ``--set pattern=2:4`` leaves after training)."""
    for layer in model.modules():
        if isinstance(layer, nn.Linear) and layer.weight.shape[1] % 4 == 0:
            groups = layer.weight.view(layer.weight.shape[0], -1, 4)
            groups.scatter_(-1, groups.abs().argsort(-1)[..., :2], 0.0)


def _flop_share(model: nn.Module, batch: dict, convertible: list[str]) -> float:
    """Share of a forward pass's FLOPs left when the convertible linears halve theirs
    (attention on its math path, whose matrix products the counter sees)."""
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(**batch)
    total = counter.get_total_flops()
    per_module = counter.get_flop_counts()  # keyed "<root class>.<module name>"
    root = type(model).__name__
    linear = sum(sum(per_module.get(f"{root}.{name}", {}).values()) for name in convertible)
    return (total - linear / 2) / total


def _gpu_rows(s: Settings, label: str, model: nn.Module, make: Callable[[int], dict]
              ) -> tuple[list[Row], dict]:
    """Throughput, dense against 2:4 timed interleaved, per batch size; and the largest
    difference between their outputs."""
    dense = model.to(s.device, torch.bfloat16).eval()
    sparse = copy.deepcopy(dense)
    converted = to_semi_structured(sparse)
    batches = {n: {k: v.to(s.device, torch.bfloat16) if v.is_floating_point() else
                   v.to(s.device) for k, v in make(n).items()} for n in BATCHES}
    calls = {f"{kind} {n}": _forward(net, batches[n])
             for n in BATCHES for kind, net in (("dense", dense), ("2:4", sparse))}
    for call in calls.values():
        call()  # warm-up
    wall = interleave(calls, s.reps, s.device, f"P10 {label}").wall
    with torch.no_grad():
        worst = max(float((_output(sparse(**b)) - _output(dense(**b))).abs().max())
                    for b in batches.values())
    rows, details = [], {"converted_layers": len(converted), "max_output_diff": worst}
    for n in BATCHES:
        speedup = paired_ratio(wall[f"dense {n}"], wall[f"2:4 {n}"])
        rate = {kind: n / float(np.median(wall[f"{kind} {n}"])) for kind in ("dense", "2:4")}
        rows.append(Row(f"P10 {label} batch {n}, 2:4 vs dense", f"{rate['2:4']:,.0f} ex/s",
                        f"{rate['dense']:,.0f} ex/s", times(speedup), "> 1x",
                        yes_no(speedup > 1)))
        details[f"batch {n}"] = {"dense_s": wall[f"dense {n}"], "sparse_s": wall[f"2:4 {n}"]}
    rows.append(Row(f"P10 {label} same outputs", f"max diff {worst:.3f}", "-", "-",
                    "bf16 tolerance", "n/a"))
    return rows, details


def _forward(model: nn.Module, batch: dict) -> Callable[[], object]:
    def call() -> object:
        with torch.no_grad():
            return model(**batch)
    return call


def _output(out: object) -> torch.Tensor:
    """The tensor a forward pass returns (BERT: the last hidden state)."""
    tensor = getattr(out, "last_hidden_state", out)
    assert isinstance(tensor, torch.Tensor)
    return tensor.float()


def run(s: Settings) -> Outcome:
    """Time dense against 2:4 on a GPU that has the kernels; elsewhere, the FLOPs model only.

    Args:
        s: the settings (``device``: a CUDA GPU of compute capability 8.0 or newer measures).

    Returns:
        Per model: on the GPU, a row per batch size and a logit check; elsewhere, a row with
        the FLOPs model's share and "not measured".
    """
    gpu = s.device.type == "cuda" and torch.cuda.get_device_capability(s.device)[0] >= 8
    rows: list[Row] = []
    details: dict = {}
    for label, build in MODELS.items():
        torch.manual_seed(s.seed)
        model, make = build()
        _prune_2_4(model)
        convertible = [n for n, status in plan(model).items() if status == CONVERTIBLE]
        share = _flop_share(model.eval(), make(1), convertible)
        details[label] = {"convertible_layers": len(convertible), "flop_share_2_4": share}
        rows.append(Row(f"P10 {label} FLOPs model, 2:4 vs dense", f"{share:.3f} of the FLOPs",
                        "-", "-", "-", "n/a"))
        if gpu:
            more, timing = _gpu_rows(s, label, model, make)
            rows += more
            details[label].update(timing)
        else:
            rows.append(Row(f"P10 {label} inference, 2:4 vs dense",
                            f"not measured: no 2:4 kernel on {s.device.type}", "-", "-",
                            "> 1x", "n/a"))
    return Outcome(rows, details)
