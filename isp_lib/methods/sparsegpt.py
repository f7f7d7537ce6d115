"""SparseGPT: one-shot pruning by layer-wise reconstruction (Frantar & Alistarh, 2023,
"SparseGPT: Massive Language Models Can Be Accurately Pruned in One-Shot")."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from isp_lib.calibration import calibrate
from isp_lib.context import RunContext
from isp_lib.masks import Mask, target_count
from isp_lib.methods.base import Method
from isp_lib.methods.start import StartOptions, StartState, check_start, fine_tune_first, finish
from isp_lib.patterns import NMPattern, group_axis, pattern_of, pattern_option
from isp_lib.ranges import ranged


@dataclass(frozen=True)
class SparseGPTOptions(StartOptions):
    """Attributes:
    calib_examples: training examples of the calibration pass (all of them if fewer), drawn
        with the run seed; the paper uses 128 sequences.
    damp: dampening: ``damp`` x the mean of the Hessian's diagonal is added to its diagonal
        (the paper's 1%).
    blocksize: columns per block of the unstructured mask selection (the paper's 128).
    pattern: ``none`` or ``N:M`` (:mod:`isp_lib.patterns`): each group's mask is chosen when
        the reconstruction reaches the group's first column.
    finetune, start: see :class:`~isp_lib.methods.start.StartOptions`.
    """

    calib_examples: int = ranged(">= 1", 128)
    damp: float = ranged("> 0", 0.01)
    blocksize: int = ranged(">= 1", 128)
    pattern: str = pattern_option()


@dataclass
class SparseGPTState(StartState):
    """Attributes (besides those of :class:`~isp_lib.methods.start.StartState`):
    solve_flops: FLOPs of the Hessians and reconstructions (:func:`solve_flops`), not
        optimizer steps, so not in the ledger.
    """

    solve_flops: float = 0.0


def apportion(total: int, sizes: list[int]) -> list[int]:
    """Split ``total`` into whole parts proportional to ``sizes`` (largest remainders get the
    units left over, the earlier part on ties).

    >>> apportion(10, [3, 3, 4])
    [3, 3, 4]
    >>> apportion(5, [4, 4])
    [3, 2]
    """
    whole = sum(sizes)
    parts = [total * s // whole for s in sizes]
    remainders = [total * s % whole for s in sizes]
    for i in sorted(range(len(sizes)), key=lambda i: (-remainders[i], i))[:total - sum(parts)]:
        parts[i] += 1
    return parts


def solve_flops(groups: int, rows: int, cols: int, positions: int) -> float:
    """FLOPs of one layer's SparseGPT: per group, the Hessian (2 x positions x cols^2), the
    three Cholesky factorisations and inversions (about cols^3) and the updates of the remaining
    columns (2 x rows x cols^2 / 2 over all columns)."""
    return float(groups * (2 * positions * cols ** 2 + cols ** 3 + rows * cols ** 2))


def pattern_columns(shape: torch.Size) -> torch.Tensor:
    """The order in which to visit the columns of ``weight.reshape(out, -1)`` so that every N:M
    group along the input channels (:mod:`isp_lib.patterns`) takes consecutive columns: kernel
    position-major, input channel-minor; the identity for a Linear.

    >>> pattern_columns(torch.Size([1, 2, 1, 3])).tolist()
    [0, 3, 1, 4, 2, 5]
    """
    channels, taps = shape[1], shape[2:].numel()
    return torch.arange(channels * taps).view(channels, taps).T.reshape(-1)


def _drop_lowest(scores: torch.Tensor, count: int) -> torch.Tensor:
    """A keep mask of ``scores``' shape without the ``count`` lowest entries of each last-axis
    group (ties: the first)."""
    keep = torch.ones_like(scores, dtype=torch.bool)
    return keep.scatter_(-1, torch.argsort(scores, dim=-1, stable=True)[..., :count], False)


@torch.no_grad()
def sparsegpt_layer(weight: torch.Tensor, hessian: torch.Tensor, prune: int,
                    pattern: NMPattern | None, blocksize: int = 128, damp: float = 0.01
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Prune one layer by SparseGPT's approximate OBS reconstruction (Alg. 1 of the paper).

    The weight is viewed as ``(groups, rows, cols)`` (one group per convolution group); each
    group is its own problem min ||W X - W' X||, X its input. The dampened inverse Hessian's
    upper Cholesky factor U drives a left-to-right sweep over the columns: a column's pruned
    entries are zeroed and the error, scaled by U's row, is spread over the columns not yet
    visited, within a block of ``blocksize`` columns at once and onto the later blocks once per
    block (the paper's lazy batch updates). Masks are chosen on the updated weights by the OBS
    saliency w^2 / U_jj^2 (U_jj^2 is [H^-1]_jj over the columns not yet visited): unstructured,
    over each block (all rows and groups), the layer's count split over the blocks in
    proportion to their size; with a pattern, at each N:M group's first column (columns are
    visited in :func:`pattern_columns` order and blocks hold whole groups; a depthwise
    convolution's groups run across its channels, in one column). Inputs with a zero Hessian
    diagonal (dead) get weight 0, as in the paper's code. The arithmetic is float64 (the
    paper's code uses float32; here a run that allows TF32 cannot coarsen it).

    Args:
        weight: the layer's weight, ``(out, ...)``.
        hessian: ``(groups, cols, cols)``: sum of x x^T over the calibration positions.
        prune: entries to prune (unstructured; ignored with a pattern).
        pattern: an N:M pattern, or None.
        blocksize: columns per block (with a pattern along the columns, rounded up to a
            multiple of M).
        damp: dampening, a share of the mean diagonal of each group's Hessian.

    Returns:
        The new weight (pruned entries exactly 0) and its keep mask, both shaped like
        ``weight``.
    """
    groups, cols = hessian.shape[0], hessian.shape[-1]
    along_columns = pattern is not None and group_axis(weight.shape) == 1
    order = pattern_columns(weight.shape).to(hessian.device) if along_columns else \
        torch.arange(cols, device=hessian.device)
    w = weight.detach().double().reshape(groups, -1, cols)[:, :, order].clone()
    h = hessian.double()[:, order][:, :, order]
    diag = h.diagonal(0, -2, -1)
    dead = diag == 0
    diag[dead] = 1.0
    w.masked_fill_(dead[:, None, :], 0.0)
    diag += damp * diag.mean(-1, keepdim=True)
    hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)
    d = hinv.diagonal(0, -2, -1)
    keep = torch.ones_like(w, dtype=torch.bool)
    if along_columns:
        blocksize = -(-blocksize // pattern.m) * pattern.m
    starts = range(0, cols, blocksize)
    counts = apportion(prune, [min(blocksize, cols - b) for b in starts]) if pattern is None \
        else []
    for k, b in enumerate(starts):
        e = min(cols, b + blocksize)
        w1, hinv1 = w[:, :, b:e].clone(), hinv[:, b:e, b:e]
        err1 = torch.zeros_like(w1)
        keep1 = torch.ones_like(w1, dtype=torch.bool)
        if pattern is None:
            score = (w1 / d[:, None, b:e]) ** 2
            keep1.view(-1)[torch.argsort(score.reshape(-1), stable=True)[:counts[k]]] = False
        for i in range(e - b):
            if along_columns and i % pattern.m == 0:
                score = (w1[:, :, i:i + pattern.m] / d[:, None, b + i:b + i + pattern.m]) ** 2
                keep1[:, :, i:i + pattern.m] = _drop_lowest(score, pattern.m - pattern.n)
            elif pattern is not None and not along_columns:
                score = (w1[:, :, i] / d[:, None, b + i]) ** 2
                keep1[:, :, i] = _drop_lowest(score.reshape(-1, pattern.m),
                                              pattern.m - pattern.n).view_as(score)
            q = w1[:, :, i] * keep1[:, :, i]
            err1[:, :, i] = (w1[:, :, i] - q) / hinv1[:, None, i, i]
            w1[:, :, i:] -= err1[:, :, i, None] * hinv1[:, None, i, i:]
            w1[:, :, i] = q
        w[:, :, b:e], keep[:, :, b:e] = w1, keep1
        w[:, :, e:] -= err1 @ hinv[:, b:e, e:]
    back = torch.argsort(order)
    return (w[:, :, back].reshape(weight.shape).to(weight.dtype),
            keep[:, :, back].reshape(weight.shape))


class SparseGPT(Method):
    """SparseGPT at the pretrained weights: one calibration pass (:mod:`isp_lib.calibration`)
    visits the prunable layers in the order the forward reads them; each layer's Hessian comes
    from its input, which the layers already pruned and reconstructed have produced, and the
    layer is pruned and reconstructed (:func:`sparsegpt_layer`) before its output feeds the
    next, so the layers are processed in sequence as in the paper. Unstructured, every layer
    gets the same sparsity (its count apportioned from the exact global target); with a pattern
    exactly N of every M. Then the same fine-tune for T as one-shot, or none.

    Choices: the whole calibration set is one batch (text padding left out of the Hessians,
    which are accumulated in float64); a convolution is reconstructed on its unfolded input
    (im2col), one problem per convolution group (a depthwise convolution: one per channel, of
    kh x kw columns). Cost: ceil(examples / batch) calibration steps (phase ``calib``) + T (or
    0 without the fine-tune), + T before the prune with ``start=finetuned`` (phase ``dense``);
    the Hessian and reconstruction FLOPs are kept in the state's ``solve_flops``, not in the
    ledger.
    """

    name = "sparsegpt"
    summary = "SparseGPT (Frantar & Alistarh 2023): layer-wise OBS reconstruction, in sequence"
    Options = SparseGPTOptions

    def check_family(self, family: str, opts: SparseGPTOptions) -> None:
        check_start(self.name, family, opts)

    def run(self, ctx: RunContext, opts: SparseGPTOptions) -> None:
        state = ctx.resume(SparseGPTState)
        if not state.pruned:
            pattern = pattern_of(opts, ctx.params)
            if opts.start == "finetuned":
                fine_tune_first(ctx, state)
            names = list(ctx.params)
            prune = dict(zip(names, apportion(target_count(ctx.mask, ctx.sparsity),
                                              [ctx.params[n].numel() for n in names]),
                             strict=True))
            keep: dict[str, torch.Tensor] = {}

            def visit(name: str, chunks: Iterator[torch.Tensor]) -> None:
                h, positions = None, 0
                for x in chunks:
                    x = x.double()
                    h = x.mT @ x if h is None else h.baddbmm_(x.mT, x)
                    positions += x.shape[1]
                weight = ctx.params[name]
                new, keep[name] = sparsegpt_layer(weight, h, prune[name], pattern,
                                                  opts.blocksize, opts.damp)
                weight.copy_(new)
                state.solve_flops += solve_flops(len(h), len(weight) // len(h), h.shape[-1],
                                                 positions)

            calibrate(ctx, opts.calib_examples, visit)
            ctx.set_mask(Mask({n: keep[n] for n in names}))
            state.pruned = True
            ctx.save()
        finish(ctx, opts)
