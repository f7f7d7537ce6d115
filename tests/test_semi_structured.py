"""2:4 inference (isp_lib.semi_structured): which layers convert, the one-line refusals on a
CPU, a model the kit pruned to 2:4 is convertible, and (on an Ampere+ GPU only) the converted
model predicts as the dense masked one does within bf16 tolerance."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import isp_lib
from isp_lib.errors import UserError
from isp_lib.patterns import NMPattern, is_nm
from isp_lib.semi_structured import CONVERTIBLE, plan, to_semi_structured

transformers = pytest.importorskip("transformers")
datasets = pytest.importorskip("datasets")

TWO_FOUR = NMPattern(2, 4)
GPU_2_4 = torch.cuda.is_available() and torch.cuda.get_device_capability()[0] >= 8


def small_bert(hidden: int = 64) -> nn.Module:
    """A random BERT whose encoder linears meet the 2:4 kernels' minimum tile."""
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=100, hidden_size=hidden, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=2 * hidden,
                                     num_labels=3)
    return transformers.BertForSequenceClassification(config).eval()


def token_data(n: int, offset: int = 0):
    rows = [[2, 5 + (i + offset) % 7, 9 + (i + offset) % 3, 3] for i in range(n)]
    return datasets.Dataset.from_dict({"input_ids": rows,
                                       "label": [(i + offset) % 3 for i in range(n)]})


def encoder_linears(model: nn.Module) -> dict[str, nn.Linear]:
    return {name: m for name, m in model.named_modules()
            if isinstance(m, nn.Linear) and ".encoder." in f".{name}."}


@torch.no_grad()
def prune_2_4(model: nn.Module) -> None:
    """Zero the 2 smallest |w| of every group of 4 input weights of each encoder linear."""
    for layer in encoder_linears(model).values():
        w = layer.weight
        groups = w.view(w.shape[0], -1, 4)
        drop = groups.abs().argsort(-1)[..., :2]
        groups.scatter_(-1, drop, 0.0)


def test_plan_converts_2_4_encoder_linears_and_says_why_not_for_the_rest() -> None:
    model = small_bert()
    assert all(status.startswith("not 2:4") for name, status in plan(model).items()
               if name in encoder_linears(model))
    prune_2_4(model)
    statuses = plan(model)
    assert {n for n, s in statuses.items() if s == CONVERTIBLE} == set(encoder_linears(model))
    assert statuses["classifier"].startswith("shape (3, 64)")  # 3 rows: below the tile


def test_one_weight_too_many_in_one_group_keeps_the_layer_dense() -> None:
    model = small_bert()
    prune_2_4(model)
    layer = model.bert.encoder.layer[0].intermediate.dense
    with torch.no_grad():
        layer.weight.view(layer.weight.shape[0], -1, 4)[0, 0] = 1.0
    assert plan(model)["bert.encoder.layer.0.intermediate.dense"].startswith("not 2:4")


def test_linears_inside_multihead_attention_stay_dense() -> None:
    model = nn.Sequential(nn.MultiheadAttention(64, 2), nn.Linear(64, 64))
    statuses = plan(model)
    assert statuses["0.out_proj"].startswith("inside nn.MultiheadAttention")
    assert "1" in statuses


@pytest.mark.parametrize("make, message", [
    (lambda: small_bert(), r"2:4 kernels run only on CUDA GPUs .* model.to\('cuda'\)"),
    (lambda: nn.Sequential(), "the model has no parameters"),
])
def test_a_model_without_2_4_kernels_is_refused_in_one_line_and_left_alone(make, message
                                                                            ) -> None:
    model = make()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(UserError, match=message) as err:
        to_semi_structured(model)
    assert "\n" not in str(err.value)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_model_the_kit_prunes_to_2_4_is_convertible() -> None:
    """isp_lib.prune with ``pattern=2:4``: after the fine-tune, zeros stay zero, so every pruned
    encoder linear is still 2:4 and convertible."""
    model = small_bert()
    isp_lib.prune(model, token_data(32), token_data(12, offset=32), "oneshot", 0.5,
                  options={"pattern": "2:4"}, verbose=False,
                  hparams={"lr": 1e-3, "epochs": 1, "batch_size": 8})
    weights = {n: m.weight for n, m in encoder_linears(model).items()}
    assert is_nm({n: w != 0 for n, w in weights.items()}, TWO_FOUR, exact=False)
    statuses = plan(model)
    assert all(statuses[name] == CONVERTIBLE for name in weights)


@pytest.mark.skipif(not GPU_2_4, reason="needs a CUDA GPU of compute capability 8.0 or newer")
def test_on_the_gpu_the_converted_model_predicts_as_the_dense_masked_one() -> None:
    model = small_bert(hidden=256)
    prune_2_4(model)
    model = model.to("cuda", torch.bfloat16)
    ids = torch.randint(0, 100, (64, 32), device="cuda")
    with torch.no_grad():
        dense = model(input_ids=ids).logits.float()
        done = to_semi_structured(model)
        sparse = model(input_ids=ids).logits.float()
    assert set(done) == set(encoder_linears(model))
    assert torch.allclose(sparse, dense, atol=5e-2, rtol=5e-2)
    assert bool((sparse.argmax(-1) == dense.argmax(-1)).float().mean() >= 0.95)
