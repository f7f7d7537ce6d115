"""Binary pruning masks over a model's prunable tensors, and the pruning rules built on them.

A :class:`Mask` maps parameter names to ``bool`` tensors (True = kept) on the weights' device.
All pruning here removes a share of the weights that are *still kept*, so masks only shrink.

Selection is exact and deterministic: the ``k`` lowest scores among the kept entries are
removed; ties at the threshold go in parameter order, then flat-index order. It runs in two
passes over the tensors (a 65,536-bucket histogram of order-preserving integer keys, then an
exact sort of the few entries in the threshold bucket), without concatenating the scores.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping

import torch

from isp_lib.errors import UserError

_BUCKET_SHIFT = 16
_NUM_BUCKETS = 1 << (32 - _BUCKET_SHIFT)


class Mask(dict[str, torch.Tensor]):
    """A pruning mask: parameter name -> ``bool`` tensor (True = kept).

    Refuses non-boolean tensors. Use :meth:`ones_like` to start dense.
    """

    def __setitem__(self, name: str, value: torch.Tensor) -> None:
        if not isinstance(value, torch.Tensor) or value.dtype != torch.bool:
            raise ValueError(f"mask entry '{name}' must be a bool tensor")
        super().__setitem__(name, value)

    def __init__(self, entries: Mapping[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        for name, value in (entries or {}).items():
            self[name] = value

    @classmethod
    def ones_like(cls, params: Mapping[str, torch.Tensor]) -> Mask:
        """A dense mask (nothing pruned) with the shapes and devices of ``params``."""
        return cls({n: torch.ones_like(p, dtype=torch.bool) for n, p in params.items()})

    def num_total(self) -> int:
        """Number of entries over all tensors."""
        return sum(m.numel() for m in self.values())

    def num_kept(self) -> int:
        """Number of kept (True) entries over all tensors."""
        return int(sum(int(m.sum()) for m in self.values()))

    def sparsity(self) -> float:
        """Share of pruned entries over all tensors (0.0 = dense)."""
        total = self.num_total()
        return 0.0 if total == 0 else 1.0 - self.num_kept() / total

    def union(self, other: Mask) -> Mask:
        """Kept where either mask keeps (the paper's mask union, Alg. 2)."""
        self._check_same_keys(other)
        return Mask({n: m | other[n] for n, m in self.items()})

    def intersection(self, other: Mask) -> Mask:
        """Kept where both masks keep."""
        self._check_same_keys(other)
        return Mask({n: m & other[n] for n, m in self.items()})

    def is_subset_of(self, other: Mask) -> bool:
        """True if every entry kept here is kept in ``other``."""
        self._check_same_keys(other)
        return all(not bool((m & ~other[n]).any()) for n, m in self.items())

    def to(self, device: torch.device | str) -> Mask:
        """A copy on ``device``."""
        return Mask({n: m.to(device) for n, m in self.items()})

    def clone(self) -> Mask:
        """A deep copy."""
        return Mask({n: m.clone() for n, m in self.items()})

    @torch.no_grad()
    def apply_(self, params: Mapping[str, torch.Tensor]) -> None:
        """Zero the pruned entries of ``params`` in place."""
        for name, m in self.items():
            params[name].mul_(m)

    def check_fits(self, params: Mapping[str, torch.Tensor]) -> None:
        """Raise :class:`UserError` unless names and shapes match ``params`` exactly."""
        if set(self) != set(params):
            missing = sorted(set(params) - set(self))[:3]
            extra = sorted(set(self) - set(params))[:3]
            raise UserError(
                f"mask does not fit the model (missing {missing}, unexpected {extra}): "
                "build the mask from this model's prunable scope"
            )
        for name, m in self.items():
            if m.shape != params[name].shape:
                raise UserError(
                    f"mask entry '{name}' has shape {tuple(m.shape)} but the weight has "
                    f"{tuple(params[name].shape)}: build the mask from this model"
                )

    def _check_same_keys(self, other: Mask) -> None:
        if set(self) != set(other):
            raise ValueError("masks cover different tensors")


def _order_keys(scores: torch.Tensor) -> torch.Tensor:
    """Map float scores to int32 keys with the same order (IEEE-754 bit trick)."""
    bits = scores.detach().float().contiguous().view(torch.int32)
    return (bits >> 31).bitwise_and_(0x7FFFFFFF).bitwise_xor_(bits)


def _buckets(keys: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    """Bucket id per entry from its order key (0 for pruned entries, 1.. by increasing key)."""
    b = (keys >> _BUCKET_SHIFT).add_(_NUM_BUCKETS // 2 + 1)
    return b.masked_fill_(~kept, 0)


@torch.no_grad()
def prune_lowest(scores: Mapping[str, torch.Tensor], mask: Mask, k: int) -> Mask:
    """Remove the ``k`` kept entries with the lowest scores, globally over all tensors.

    Args:
        scores: name -> score tensor (same shapes as the mask; any float dtype).
        mask: the current mask; only its kept entries compete.
        k: how many kept entries to remove (0 <= k <= kept).

    Returns:
        A new mask, a subset of ``mask`` with exactly ``k`` fewer kept entries.
    """
    kept_total = mask.num_kept()
    if not 0 <= k <= kept_total:
        raise ValueError(f"cannot prune {k} of {kept_total} kept entries")
    if k == 0:
        return mask.clone()
    names = list(mask)
    # The result is allocated before any temporary, so that the temporaries, freed one tensor
    # at a time, do not leave holes under long-lived blocks in the allocator's heap.
    new = Mask({n: torch.empty_like(mask[n]) for n in names})
    counts = torch.zeros(_NUM_BUCKETS + 1, dtype=torch.int64)
    for n in names:
        counts += torch.bincount(_buckets(_order_keys(scores[n]), mask[n]).flatten(),
                                 minlength=_NUM_BUCKETS + 1).cpu()
    counts[0] = 0
    cum = counts.cumsum(0)
    bucket = int(torch.searchsorted(cum, torch.tensor(k)).item())
    below = int(cum[bucket - 1]) if bucket > 0 else 0
    # Entries in the threshold bucket: sort exactly, ties by tensor order then flat index.
    cand_keys, cand_where = [], []
    for i, n in enumerate(names):
        keys = _order_keys(scores[n])
        b = _buckets(keys, mask[n])
        torch.gt(b, bucket, out=new[n])  # pruned entries are in bucket 0 < bucket: stay pruned
        idx = (b.flatten() == bucket).nonzero().squeeze(1)
        if idx.numel():
            cand_keys.append(keys.flatten()[idx])
            cand_where.append(torch.stack([torch.full_like(idx, i), idx], 1))
    keys = torch.cat(cand_keys)
    where = torch.cat(cand_where)
    order = torch.sort(keys, stable=True).indices
    keep_from = k - below
    survivors = where[order[keep_from:]]
    for i, n in enumerate(names):
        flat = survivors[survivors[:, 0] == i, 1]
        if flat.numel():
            new[n].view(-1)[flat] = True
    return new


def _count(amount: float | int, kept: int) -> int:
    """Entries to prune: a fraction of the kept ones (float) or a count (int)."""
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        raise ValueError("amount must be a float fraction or an int count")
    if isinstance(amount, float):
        if not 0.0 <= amount <= 1.0:
            raise ValueError(f"fraction {amount} is outside [0, 1]")
        return int(round(amount * kept))
    if not 0 <= amount <= kept:
        raise ValueError(f"count {amount} is outside [0, {kept}]")
    return amount


class _Magnitudes(Mapping[str, torch.Tensor]):
    """|w| per named tensor, computed on each access rather than held for all tensors at once."""

    def __init__(self, params: Mapping[str, torch.Tensor], names: Iterable[str]) -> None:
        self._params = params
        self._names = list(names)

    def __getitem__(self, name: str) -> torch.Tensor:
        if name not in self._names:
            raise KeyError(name)
        return self._params[name].detach().abs()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def magnitudes(
    params: Mapping[str, torch.Tensor], names: Iterable[str]
) -> Mapping[str, torch.Tensor]:
    """|w| per named tensor (the L1 magnitude score of magnitude pruning).

    Args:
        params: name -> weight tensor.
        names: the names to score.

    Returns:
        A read-only mapping that computes ``|w|`` of one tensor when it is read, so that
        :func:`prune_lowest`, which reads one tensor at a time, never holds a copy of all the
        weights (on ViT-B/32's visual tower that copy is 340 MB).
    """
    return _Magnitudes(params, names)


def global_magnitude_prune(
    params: Mapping[str, torch.Tensor], mask: Mask, amount: float | int
) -> Mask:
    """Global magnitude pruning (Han et al. 2015; used by IMP, ISP and one-shot).

    Args:
        params: name -> weight tensor, for every name in ``mask``.
        mask: current mask; pruned entries stay pruned.
        amount: fraction of the *kept* entries to remove (float), or a count (int).

    Returns:
        A new mask with the lowest-|w| kept entries removed across all tensors.
    """
    return prune_lowest(magnitudes(params, mask), mask, _count(amount, mask.num_kept()))


def layerwise_magnitude_prune_to(
    params: Mapping[str, torch.Tensor], mask: Mask, sparsity: float
) -> Mask:
    """Per-tensor magnitude pruning to an exact overall ``sparsity``: every tensor ends at
    that sparsity within one entry (the remainders of ``sparsity x size`` go to the tensors
    with the largest fractions, ties in the mask's order), pruned by its own |w| (Han et al. 2015's
    layer-wise variant; the paper and the kit's one-shot prune globally).

    Args:
        params: name -> weight tensor, for every name in ``mask``.
        mask: the current mask; pruned entries stay pruned.
        sparsity: target share of pruned entries, in [0, 1).

    Returns:
        A subset of ``mask``. Its overall sparsity is exact when no tensor starts beyond its
        share (a dense start always); a tensor that does loses nothing more.
    """
    total = mask.num_total()
    share = {n: sparsity * m.numel() for n, m in mask.items()}
    pruned = {n: int(s) for n, s in share.items()}
    left = int(round(sparsity * total)) - sum(pruned.values())
    for n in sorted(share, key=lambda n: pruned[n] - share[n])[:max(0, left)]:
        pruned[n] += 1
    new = Mask()
    for n, m in mask.items():
        single = Mask({n: m})
        k = max(0, pruned[n] - (m.numel() - single.num_kept()))
        new.update(prune_lowest(magnitudes({n: params[n]}, single), single, k))
    return new


def target_count(mask: Mask, sparsity: float) -> int:
    """How many more entries must go for ``mask`` to reach ``sparsity`` exactly.

    Args:
        mask: the current mask.
        sparsity: target share of pruned entries, in [0, 1).

    Returns:
        A count >= 0 (0 if the mask is already at or beyond the target).
    """
    total = mask.num_total()
    want_pruned = int(round(sparsity * total))
    return max(0, want_pruned - (total - mask.num_kept()))


def magnitude_prune_to(params: Mapping[str, torch.Tensor], mask: Mask, sparsity: float) -> Mask:
    """Global magnitude pruning straight to an exact overall ``sparsity`` (one-shot)."""
    return global_magnitude_prune(params, mask, target_count(mask, sparsity))


def random_prune_to(mask: Mask, sparsity: float, generator: torch.Generator) -> Mask:
    """Prune uniformly at random among kept entries down to an exact ``sparsity``.

    Args:
        mask: current mask.
        sparsity: target overall sparsity.
        generator: CPU torch generator (makes the mask reproducible).

    Returns:
        A new mask.
    """
    scores = {
        n: torch.rand(m.shape, generator=generator).to(m.device) for n, m in mask.items()
    }
    return prune_lowest(scores, mask, target_count(mask, sparsity))


def rounds_to_reach(sparsity: float, rate: float) -> int:
    """Number of prune calls at ``rate`` (share of remaining) needed to reach ``sparsity``."""
    if sparsity <= 0.0:
        return 0
    return max(1, math.ceil(math.log(1.0 - sparsity) / math.log(1.0 - rate) - 1e-9))


def cosine_similarity(a: Mask, b: Mask, of: str = "kept") -> float:
    """Cosine similarity of two binary masks flattened over all tensors (paper Fig. 3).

    Args:
        a, b: masks over the same tensors.
        of: ``"kept"`` compares the kept indicator vectors, ``"pruned"`` the pruned ones.

    Returns:
        |a AND b| / sqrt(|a| |b|) of the chosen indicators (1.0 if both are empty).
    """
    a._check_same_keys(b)
    flip = of == "pruned"
    inter = na = nb = 0
    for n in a:
        x, y = (a[n], b[n]) if not flip else (~a[n], ~b[n])
        inter += int((x & y).sum())
        na += int(x.sum())
        nb += int(y.sum())
    return 1.0 if na == nb == 0 else (inter / math.sqrt(na * nb) if na and nb else 0.0)


def iou(a: Mask, b: Mask, of: str = "kept") -> float:
    """Intersection over union of two binary masks (kept or pruned indicators)."""
    a._check_same_keys(b)
    inter = uni = 0
    for n in a:
        x, y = (a[n], b[n]) if of == "kept" else (~a[n], ~b[n])
        inter += int((x & y).sum())
        uni += int((x | y).sum())
    return 1.0 if uni == 0 else inter / uni
