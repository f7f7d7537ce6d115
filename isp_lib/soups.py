"""Weight averaging and interpolation: the building blocks of model soups, IMS and Lottery Pools.

All functions work on state dicts (name -> tensor) of one architecture. Only floating-point
entries are averaged or interpolated; integer buffers (e.g. position ids) are taken from the
first state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import torch

State = Mapping[str, torch.Tensor]


def average(states: Sequence[State]) -> dict[str, torch.Tensor]:
    """The uniform soup: the entry-wise mean of ``states`` (Wortsman et al. 2022).

    Args:
        states: one or more state dicts of the same architecture.

    Returns:
        A new state dict.
    """
    if not states:
        raise ValueError("average needs at least one state")
    out = {}
    for k, v in states[0].items():
        if v.is_floating_point():
            acc = v.detach().to(torch.float64).clone()
            for s in states[1:]:
                acc += s[k].to(torch.float64)
            out[k] = (acc / len(states)).to(v.dtype)
        else:
            out[k] = v.detach().clone()
    return out


def interpolate(base: State, other: State, alpha: float,
                keep: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """``(1 - alpha) * base + alpha * other`` entry-wise (Ilharco et al. 2022).

    Args:
        base, other: state dicts of the same architecture.
        alpha: weight of ``other``; 0 returns a copy of ``base``.
        keep: optional name -> bool tensor; where it is False, ``other`` is treated as equal to
            ``base`` (a pruned entry of a sparse model carries no update).

    Returns:
        A new state dict.
    """
    out = {}
    for k, v in base.items():
        if not v.is_floating_point() or alpha == 0.0:
            out[k] = v.detach().clone()
            continue
        o = other[k]
        if keep is not None and k in keep:
            o = torch.where(keep[k], o, v)
        out[k] = torch.lerp(v.detach(), o.to(v.dtype), alpha)
    return out


def best_interpolation(
    base: State,
    other: State,
    alphas: Iterable[float],
    score: Callable[[State], float],
    keep: Mapping[str, torch.Tensor] | None = None,
) -> tuple[float, float, dict[str, torch.Tensor]]:
    """Pick the interpolation coefficient with the best validation score.

    ``alpha = 0`` (``base`` itself) always competes, so the result never scores below ``base``;
    ties go to the smaller alpha.

    Args:
        base, other: state dicts.
        alphas: candidate coefficients in [0, 1].
        score: validation metric of a state (higher is better).
        keep: see :func:`interpolate`.

    Returns:
        (best alpha, its score, the interpolated state).
    """
    grid = sorted({0.0, *(float(a) for a in alphas)})
    if grid[0] < 0.0 or grid[-1] > 1.0:
        raise ValueError("interpolation coefficients must lie in [0, 1]")
    best: tuple[float, float, dict[str, torch.Tensor]] | None = None
    for a in grid:
        state = interpolate(base, other, a, keep)
        val = score(state)
        if best is None or val > best[1]:
            best = (a, val, state)
    assert best is not None
    return best


def greedy_soup(
    states: Sequence[State], vals: Sequence[float], score: Callable[[State], float]
) -> tuple[dict[str, torch.Tensor], list[int], float]:
    """The greedy soup (Wortsman et al. 2022, recipe 1).

    Ingredients are tried in decreasing order of their own validation score; one joins the soup
    only if the uniform average of the soup with it scores at least as well on validation as
    the soup without it. The soup so never scores below its best ingredient.

    Args:
        states: ingredient state dicts.
        vals: each ingredient's own validation score.
        score: validation metric of a state.

    Returns:
        (the soup's state, indices of the ingredients in it, its validation score).
    """
    if len(states) != len(vals) or not states:
        raise ValueError("greedy_soup needs one validation score per ingredient")
    order = sorted(range(len(states)), key=lambda i: (-vals[i], i))
    chosen = [order[0]]
    soup, best = average([states[order[0]]]), float(vals[order[0]])
    for i in order[1:]:
        trial = average([states[j] for j in chosen + [i]])
        val = score(trial)
        if val >= best:
            chosen.append(i)
            soup, best = trial, val
    return soup, chosen, best
