"""Properties of masks and the pruning rules."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from isp_lib.errors import UserError
from isp_lib.io import load_mask, save_mask
from isp_lib.masks import (
    Mask,
    cosine_similarity,
    global_magnitude_prune,
    iou,
    layerwise_magnitude_prune_to,
    magnitude_prune_to,
    prune_lowest,
    random_prune_to,
    rounds_to_reach,
)


def weights(seed: int = 0, shapes=((40, 30), (20, 50), (7,))) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {f"w{i}": torch.randn(*s, generator=g) for i, s in enumerate(shapes)}


def test_mask_refuses_non_bool():
    with pytest.raises(ValueError):
        Mask({"a": torch.ones(3)})


@pytest.mark.parametrize("amount", [0.0, 0.1, 0.5, 0.73, 1.0, 17, 0])
def test_global_prune_exact_count(amount):
    w = weights()
    m = Mask.ones_like(w)
    new = global_magnitude_prune(w, m, amount)
    total = m.num_total()
    expected = round(amount * total) if isinstance(amount, float) else amount
    assert total - new.num_kept() == expected


def test_fraction_is_of_remaining_and_masks_never_grow():
    w = weights()
    m = Mask.ones_like(w)
    prev = m
    for _ in range(5):
        kept = prev.num_kept()
        new = global_magnitude_prune(w, prev, 0.2)
        assert new.is_subset_of(prev)
        assert prev.num_kept() - new.num_kept() == round(0.2 * kept)
        prev = new


def test_clean_threshold_between_kept_and_pruned():
    w = weights(3)
    m = global_magnitude_prune(w, Mask.ones_like(w), 0.6)
    kept = torch.cat([w[n][m[n]].abs() for n in w])
    pruned = torch.cat([w[n][~m[n]].abs() for n in w])
    assert pruned.max() <= kept.min()


def test_equals_torch_global_unstructured():
    torch.manual_seed(0)
    layers = [nn.Linear(30, 20), nn.Linear(20, 40), nn.Linear(40, 10)]
    w = {f"l{i}": layer.weight.detach().clone() for i, layer in enumerate(layers)}
    ours = global_magnitude_prune(w, Mask.ones_like(w), 0.7)
    prune.global_unstructured([(layer, "weight") for layer in layers],
                              pruning_method=prune.L1Unstructured, amount=0.7)
    for i, layer in enumerate(layers):
        assert torch.equal(ours[f"l{i}"], layer.weight_mask.bool())


@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.73, 0.9, 0.99])
def test_layerwise_reaches_the_exact_target_with_every_tensor_at_its_share(sparsity):
    w = weights()
    m = layerwise_magnitude_prune_to(w, Mask.ones_like(w), sparsity)
    assert m.num_total() - m.num_kept() == round(sparsity * m.num_total())
    for n, t in w.items():
        pruned = int((~m[n]).sum())
        assert abs(pruned - sparsity * t.numel()) < 1
        # within each tensor, the pruned weights are its smallest
        if 0 < pruned < t.numel():
            assert t.abs()[~m[n]].max() <= t.abs()[m[n]].min()


def test_layerwise_keeps_what_was_pruned_and_spares_a_tensor_past_its_share():
    w = weights()
    start = Mask.ones_like(w)
    start["w0"] = w["w0"].abs() > 1.5  # about 87% pruned already
    m = layerwise_magnitude_prune_to(w, start, 0.5)
    assert m.is_subset_of(start)
    assert torch.equal(m["w0"], start["w0"])
    assert int((~m["w1"]).sum()) == 500


def test_prune_to_exact_target_and_subset():
    w = weights()
    m0 = global_magnitude_prune(w, Mask.ones_like(w), 0.3)
    m1 = magnitude_prune_to(w, m0, 0.8)
    assert m1.is_subset_of(m0)
    assert m1.num_total() - m1.num_kept() == round(0.8 * m1.num_total())


def test_ties_break_in_tensor_then_index_order():
    scores = {"a": torch.zeros(4), "b": torch.zeros(4)}
    m = prune_lowest(scores, Mask.ones_like(scores), 5)
    assert m["a"].tolist() == [False] * 4
    assert m["b"].tolist() == [False, True, True, True]


def test_prune_lowest_matches_sort_with_negative_scores():
    g = torch.Generator().manual_seed(1)
    s = {"a": torch.randn(500, generator=g) * 1e3, "b": torch.randn(300, generator=g) * 1e-3}
    m = prune_lowest(s, Mask.ones_like(s), 311)
    flat = torch.cat([s["a"], s["b"]])
    thresh = flat.sort().values[310]
    pruned = torch.cat([~m["a"], ~m["b"]])
    assert torch.equal(pruned, flat <= thresh)


def test_pruned_entries_do_not_compete():
    w = {"a": torch.tensor([0.1, 0.2, 5.0, 6.0])}
    m = Mask({"a": torch.tensor([False, False, True, True])})
    new = global_magnitude_prune(w, m, 1)
    assert new["a"].tolist() == [False, False, False, True]


def test_union_and_intersection():
    a = Mask({"x": torch.tensor([True, True, False, False])})
    b = Mask({"x": torch.tensor([True, False, True, False])})
    assert a.union(b)["x"].tolist() == [True, True, True, False]
    assert a.intersection(b)["x"].tolist() == [True, False, False, False]


def test_random_prune_exact_and_reproducible():
    w = weights()
    m = Mask.ones_like(w)
    r1 = random_prune_to(m, 0.6, torch.Generator().manual_seed(5))
    r2 = random_prune_to(m, 0.6, torch.Generator().manual_seed(5))
    assert all(torch.equal(r1[n], r2[n]) for n in r1)
    assert abs(r1.sparsity() - 0.6) < 1 / m.num_total()


def test_similarity_known_values():
    a = Mask({"x": torch.tensor([True, True, False, False])})
    b = Mask({"x": torch.tensor([True, False, True, False])})
    assert cosine_similarity(a, a) == pytest.approx(1.0)
    assert cosine_similarity(a, b) == pytest.approx(0.5)
    assert iou(a, b) == pytest.approx(1 / 3)
    assert iou(a, b, of="pruned") == pytest.approx(1 / 3)


def test_rounds_to_reach():
    assert rounds_to_reach(0.7, 0.1) == 12
    assert rounds_to_reach(0.5, 0.5) == 1
    assert rounds_to_reach(0.0, 0.2) == 0


def test_check_fits_names_the_problem():
    m = Mask({"a": torch.ones(3, dtype=torch.bool)})
    with pytest.raises(UserError, match="shape"):
        m.check_fits({"a": torch.zeros(4)})
    with pytest.raises(UserError, match="does not fit"):
        m.check_fits({"b": torch.zeros(3)})


def test_mask_file_round_trip(tmp_path):
    w = weights()
    m = global_magnitude_prune(w, Mask.ones_like(w), 0.45)
    save_mask(m, tmp_path / "mask.pt")
    back = load_mask(tmp_path / "mask.pt")
    assert all(torch.equal(back[n], m[n]) for n in m)
