"""FLOP counts against hand counts on a small MLP (2*in*out FLOPs per example per Linear)."""

from __future__ import annotations

import pytest
import torch

from isp_lib.flops import FlopProfile, count_flops, record_flops
from isp_lib.scope import prunable_params
from tests.conftest import ToyNet, toy_collate

B = 5
LAYERS = {"fc1": (16, 64), "fc2": (64, 64), "classifier": (64, 3)}  # ToyNet: in, out


def linear(name: str) -> int:
    fan_in, fan_out = LAYERS[name]
    return 2 * B * fan_in * fan_out


@pytest.fixture
def setup() -> tuple[ToyNet, dict[str, torch.Tensor], FlopProfile]:
    torch.manual_seed(0)
    net = ToyNet()
    g = torch.Generator().manual_seed(1)
    batch = toy_collate([{"x": torch.randn(16, generator=g), "labels": torch.tensor(i % 3)}
                         for i in range(B)])
    return net, batch, count_flops(net, batch, prunable_params(net, "linear"))


def test_forward_and_step_match_hand_counts(setup) -> None:
    _, _, prof = setup
    forward = sum(linear(n) for n in LAYERS)
    assert prof.forward == forward
    assert prof.batch_size == B
    # Backward: a weight-gradient product per layer, an input-gradient product per layer but
    # the first (its input needs no gradient), each as costly as the forward product.
    assert prof.train_step == forward + forward + (forward - linear("fc1"))


def test_prunable_flops_are_attributed_per_weight(setup) -> None:
    _, _, prof = setup
    assert prof.prunable_forward == {"fc1.weight": linear("fc1"), "fc2.weight": linear("fc2")}
    assert prof.rest_forward == linear("classifier")


def test_inference_scales_only_the_prunable_products(setup) -> None:
    _, _, prof = setup
    prunable = linear("fc1") + linear("fc2")
    assert prof.inference(1.0) == prof.forward
    assert prof.inference(0.0) == prof.rest_forward
    assert prof.inference(0.3) == pytest.approx(0.3 * prunable + linear("classifier"))
    per_weight = {"fc1.weight": 0.5, "fc2.weight": 0.1}
    assert prof.inference(per_weight) == pytest.approx(
        0.5 * linear("fc1") + 0.1 * linear("fc2") + linear("classifier"))
    with pytest.raises(ValueError):
        prof.inference(1.5)


def test_counting_leaves_the_model_as_it_was(setup) -> None:
    net, batch, _ = setup
    net.eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    count_flops(net, batch, prunable_params(net, "linear"))
    assert not net.training
    assert all(p.grad is None for p in net.parameters())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_record_flops_from_ledger_steps_and_sparsity(setup) -> None:
    _, _, prof = setup
    rec = {"ledger": {"steps": 7}, "train_steps": 99, "actual_sparsity": 0.75}
    out = record_flops(rec, prof)
    assert out["train"] == 7 * prof.train_step
    assert out["inference"] == pytest.approx(prof.inference(0.25))
    zero = record_flops({"train_steps": 0, "actual_sparsity": 0.0}, prof)
    assert zero == {"train": 0.0, "inference": prof.forward}


class Attention(torch.nn.Module):
    """Self-attention of the input with itself, scaled: only the two attention products count."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.scale * x
        return torch.nn.functional.scaled_dot_product_attention(x, x, x).mean(dim=(1, 2))


def test_cpu_attention_kernel_is_counted() -> None:
    b, h, s, d = 2, 4, 8, 16
    batch = {"x": torch.randn(b, h, s, d), "labels": torch.zeros(b, d)}
    prof = count_flops(Attention(), batch, {}, loss_fn=torch.nn.functional.mse_loss)
    product = 2 * b * h * s * s * d
    assert prof.forward == 2 * product  # q @ k^T, then weights @ v
    # Backward (torch's formula): the scores again, then the gradients of v, scores, q and k.
    assert prof.train_step == prof.forward + 5 * product
    assert prof.prunable_forward == {}
