"""N:M semi-structured sparsity: in every group of M weights, exactly N are kept.

Groups. A group is M consecutive entries along a weight's *channel axis*, the axis that a
sparse kernel reduces over in its innermost loop:

* ``nn.Linear`` (out, in) and the projections of ``nn.MultiheadAttention``: M consecutive input
  weights of one output row (the layout of ``torch.sparse.to_sparse_semi_structured``);
* a convolution (out, in/groups, kh, kw) with more than one input channel per group: M
  consecutive input channels at one kernel position of one output channel (the reduction order
  (kh, kw, in) of a channels-last convolution run as an implicit GEMM, NVIDIA ASP's rule; for
  a 1x1 convolution this is the Linear rule);
* a depthwise convolution (C, 1, kh, kw), which reduces over one channel only: M consecutive
  channels at one kernel position.

A weight whose channel axis is not a multiple of M cannot be tiled: :meth:`NMPattern.check_fits`
refuses it in one line naming it. The pattern fixes the sparsity at 1 - N/M in every tensor.

Masks on the way to the pattern (the rounds of ISP, IMP and progressive pruning) keep *at least*
N per group (:func:`is_nm` with ``exact=False``), so that the pattern stays reachable by pruning
alone; the final mask keeps exactly N. :func:`project` maps any mask onto either.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from isp_lib.errors import UserError
from isp_lib.masks import (
    Mask,
    global_magnitude_prune,
    magnitude_prune_to,
    magnitudes,
    target_count,
)
from isp_lib.ranges import checked

#: The ``pattern`` option's value for unstructured sparsity.
UNSTRUCTURED = "none"

#: How far ``--sparsity`` may be from 1 - N/M (which has no finite decimal for some M).
_SPARSITY_TOLERANCE = 1e-4


@dataclass(frozen=True)
class NMPattern:
    """Keep ``n`` of every ``m`` weights of a group (see the module docstring).

    Attributes:
        n: weights kept per group (0 < n < m).
        m: group size.
    """

    n: int
    m: int

    def __str__(self) -> str:
        return f"{self.n}:{self.m}"

    @property
    def sparsity(self) -> float:
        """The share of pruned weights, 1 - N/M."""
        return 1.0 - self.n / self.m

    def check_sparsity(self, sparsity: float) -> None:
        """Refuse a target sparsity other than the pattern's (:class:`UserError`)."""
        if abs(sparsity - self.sparsity) > _SPARSITY_TOLERANCE:
            raise UserError(f"pattern {self} keeps {self.n} of every {self.m} weights, a sparsity "
                            f"of {self.sparsity:.4g}, not {sparsity:g}: pass --sparsity "
                            f"{self.sparsity:.4g}")

    def check_fits(self, params: Mapping[str, torch.Tensor]) -> None:
        """Refuse weights whose channel axis is not a multiple of ``m`` (:class:`UserError`)."""
        for name, p in params.items():
            axis = group_axis(p.shape)
            if p.shape[axis] % self.m:
                raise UserError(
                    f"pattern {self} cannot tile '{name}' {tuple(p.shape)}: its channel axis "
                    f"(dim {axis}) has {p.shape[axis]} entries, not a multiple of {self.m}: use "
                    "a pattern whose M divides it, or --set pattern=none")


def parse_pattern(text: str) -> NMPattern | None:
    """The pattern named by an option value.

    Args:
        text: ``"none"`` (unstructured) or ``"N:M"`` with whole numbers 0 < N < M.

    Returns:
        The :class:`NMPattern`, or None for ``"none"``.

    Raises:
        ValueError: saying why ``text`` is not a pattern.

    >>> parse_pattern("2:4"), parse_pattern("none")
    (NMPattern(n=2, m=4), None)
    """
    if text == UNSTRUCTURED:
        return None
    found = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", str(text))
    if found is None:
        raise ValueError("not of the form N:M")
    n, m = int(found[1]), int(found[2])
    if n < 1:
        raise ValueError("N must be at least 1")
    if n >= m:
        raise ValueError(f"N={n} is not below M={m}")
    return NMPattern(n, m)


def pattern_option() -> Any:
    """The ``pattern`` option of a magnitude-based method: ``none`` or ``N:M``."""
    return checked(parse_pattern, "none, or N:M with 0 < N < M (keep N of every M)",
                   UNSTRUCTURED, "2:4")


def pattern_of(opts: Any, params: Mapping[str, torch.Tensor] | None = None
               ) -> NMPattern | None:
    """The pattern a method's options ask for.

    Args:
        opts: a method's options (checked).
        params: the prunable weights the pattern must tile (:meth:`NMPattern.check_fits`).

    Returns:
        The :class:`NMPattern`, or None (unstructured, or a method without the option).
    """
    pattern = parse_pattern(getattr(opts, "pattern", UNSTRUCTURED))
    if pattern is not None and params is not None:
        pattern.check_fits(params)
    return pattern


def check_group(opts: Any, default: str) -> None:
    """Refuse a comparison group other than ``default`` together with an N:M pattern, whose
    groups are then the ones compared.

    Args:
        opts: a method's options with ``group`` and ``pattern``.
        default: the group that goes with a pattern (the method's default).

    Raises:
        UserError: one line naming the fix.
    """
    if pattern_of(opts) is not None and opts.group != default:
        raise UserError(f"group={opts.group} has no effect with pattern={opts.pattern} (the "
                        "N:M groups are compared): drop --set group")


def group_axis(shape: torch.Size | tuple[int, ...]) -> int:
    """The channel axis along which a weight of ``shape`` is grouped: 1 (input channels), or 0
    where there is one input channel per group (depthwise convolutions)."""
    return 1 if len(shape) > 1 and shape[1] > 1 else 0


def to_groups(t: torch.Tensor, m: int) -> torch.Tensor:
    """The groups of ``t`` as rows: a ``(t.numel() // m, m)`` tensor (see the module docstring).

    >>> to_groups(torch.arange(8).view(2, 4), 2).tolist()
    [[0, 1], [2, 3], [4, 5], [6, 7]]
    """
    return t.movedim(group_axis(t.shape), -1).reshape(-1, m)


def from_groups(groups: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Inverse of :func:`to_groups` for a tensor of ``shape``."""
    axis = group_axis(shape)
    moved = [*shape[:axis], *shape[axis + 1:], shape[axis]]
    return groups.reshape(moved).movedim(-1, axis)


def is_nm(mask: Mask, pattern: NMPattern, exact: bool = True) -> bool:
    """Whether every group of every tensor keeps exactly ``pattern.n`` (``exact``), or at least
    that many (a mask on the way to the pattern)."""
    for m in mask.values():
        if m.shape[group_axis(m.shape)] % pattern.m:
            return False
        kept = to_groups(m, pattern.m).sum(-1)
        if bool((kept != pattern.n).any() if exact else (kept < pattern.n).any()):
            return False
    return True


@torch.no_grad()
def project(scores: Mapping[str, torch.Tensor], mask: Mask, prefer: Mask, pattern: NMPattern,
            exact: bool) -> Mask:
    """Project ``prefer`` onto the pattern within ``mask``, group by group.

    Within a group, the entries kept by ``mask`` are ranked: those ``prefer`` keeps first, then
    by ``scores`` (higher first; ties by position). ``exact`` keeps the first ``n`` of them;
    otherwise the group keeps what ``prefer`` keeps, topped up to ``n`` where that is fewer.

    Args:
        scores: name -> keep score (same shapes as ``mask``), e.g. the weights' magnitudes.
        mask: the current mask; it must keep at least ``n`` per group.
        prefer: the mask to project (e.g. ISP's union of look-ahead masks).
        pattern: the pattern.
        exact: keep exactly ``n`` per group (the final mask) or at least ``n``.

    Returns:
        A subset of ``mask``, valid for ``is_nm(..., exact=exact)``.
    """
    out = Mask()
    for name, m in mask.items():
        kept = to_groups(m, pattern.m)
        if bool((kept.sum(-1) < pattern.n).any()):
            raise ValueError(f"'{name}' already keeps fewer than {pattern.n} of some group")
        chosen = to_groups(prefer[name], pattern.m) & kept
        order = torch.argsort(to_groups(scores[name].float(), pattern.m), dim=-1,
                              descending=True, stable=True)
        for flag in (chosen, kept):  # lexicographic: kept, then chosen, then score
            rank = torch.argsort(flag.gather(-1, order).to(torch.int8), dim=-1,
                                 descending=True, stable=True)
            order = order.gather(-1, rank)
        count = torch.full_like(kept[:, 0], pattern.n, dtype=torch.int64)
        if not exact:
            count = count.clamp(min=chosen.sum(-1))
        position = torch.empty_like(order).scatter_(
            -1, order, torch.arange(pattern.m, device=order.device).expand_as(order))
        out[name] = from_groups(position < count[:, None], m.shape).contiguous()
    return out


def reached(mask: Mask, sparsity: float, pattern: NMPattern | None) -> bool:
    """Whether ``mask`` is final: at the exact ``sparsity``, or exactly on the ``pattern``."""
    return target_count(mask, sparsity) == 0 if pattern is None else is_nm(mask, pattern)


def magnitude_to(params: Mapping[str, torch.Tensor], mask: Mask, sparsity: float,
                 pattern: NMPattern | None) -> Mask:
    """Magnitude pruning straight to the target: global to the exact ``sparsity`` (one-shot), or
    the ``n`` largest |w| of every group.

    Args:
        params: name -> weight, for every name in ``mask``.
        mask: the current mask (at least ``n`` kept per group with a pattern).
        sparsity: the target (the pattern's own with a pattern).
        pattern: the pattern, or None for unstructured pruning.

    Returns:
        A subset of ``mask``.
    """
    if pattern is None:
        return magnitude_prune_to(params, mask, sparsity)
    return project(magnitudes(params, mask), mask, mask, pattern, exact=True)


def magnitude_step(params: Mapping[str, torch.Tensor], mask: Mask, rate: float,
                   pattern: NMPattern | None) -> Mask:
    """One round of iterative magnitude pruning: remove a share ``rate`` of the kept weights by
    global magnitude; with a pattern, groups left with fewer than ``n`` get their largest
    weights back up to ``n`` (:func:`project`, not exact).

    Args:
        params: name -> weight, for every name in ``mask``.
        mask: the current mask.
        rate: share of the kept weights to remove (before the top-up).
        pattern: the pattern, or None for unstructured pruning.

    Returns:
        A subset of ``mask``.
    """
    new = global_magnitude_prune(params, mask, rate)
    if pattern is None:
        return new
    return project(magnitudes(params, mask), mask, new, pattern, exact=False)
