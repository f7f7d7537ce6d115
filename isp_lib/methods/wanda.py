"""Wanda: pruning by weights and activations (Sun et al., 2023, "A Simple and Effective Pruning
Approach for Large Language Models")."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import torch

from isp_lib.calibration import calibrate
from isp_lib.context import RunContext
from isp_lib.masks import Mask, prune_lowest, target_count
from isp_lib.methods.base import Method
from isp_lib.methods.start import StartOptions, StartState, check_start, fine_tune_first, finish
from isp_lib.patterns import check_group, pattern_of, pattern_option, project
from isp_lib.ranges import one_of, ranged


@dataclass(frozen=True)
class WandaOptions(StartOptions):
    """Attributes:
    calib_examples: training examples of the calibration pass (all of them if fewer), drawn
        with the run seed; the paper uses 128 sequences.
    group: the comparison group: ``row`` (each output row loses the same share, the paper's
        choice) or ``global`` (all prunable weights compete).
    pattern: ``none`` or ``N:M``: keep the N highest-scored weights of every group
        (:mod:`isp_lib.patterns`), which is then the comparison group (``group=global`` is
        refused with it).
    finetune, start: see :class:`~isp_lib.methods.start.StartOptions`.
    """

    calib_examples: int = ranged(">= 1", 128)
    group: str = one_of(("row", "global"), "row")
    pattern: str = pattern_option()


def wanda_scores(weights: Mapping[str, torch.Tensor], sq_sums: Mapping[str, torch.Tensor]
                 ) -> dict[str, torch.Tensor]:
    """Wanda's score |W_ij| * ||X_j||_2 (higher = keep).

    Args:
        weights: name -> weight of shape ``(out, ...)``, ``fan_in`` entries per row.
        sq_sums: name -> ``(groups, fan_in)`` sums of each input feature's squares over the
            calibration positions (one group for a Linear, one per convolution group).

    Returns:
        name -> score tensor shaped like the weight.
    """
    out = {}
    for name, w in weights.items():
        norms = sq_sums[name].float().sqrt()
        rows = w.detach().abs().float().reshape(len(norms), -1, norms.shape[-1])
        out[name] = (rows * norms[:, None, :]).reshape(w.shape)
    return out


def row_shares(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each kept entry's rank within its row of ``scores.reshape(out, -1)`` among the row's kept
    entries, as a share of them: ``(rank + 1) / kept``, the lowest score first.

    Pruning the lowest shares over all rows (:func:`~isp_lib.masks.prune_lowest`) then removes
    the same share of every row, give or take one weight (ties in parameter order), to an exact
    total.

    >>> row_shares(torch.tensor([[3., 1., 2., 4.]]), torch.ones(1, 4, dtype=torch.bool))
    tensor([[0.7500, 0.2500, 0.5000, 1.0000]])
    """
    s = scores.reshape(len(scores), -1).float()
    keep = mask.reshape(len(mask), -1)
    order = torch.argsort(s.masked_fill(~keep, float("inf")), dim=-1, stable=True)
    rank = torch.empty_like(order).scatter_(
        -1, order, torch.arange(s.shape[-1], device=s.device).expand_as(order))
    kept = keep.sum(-1, keepdim=True).clamp(min=1)
    return ((rank + 1) / kept).reshape(scores.shape)


def wanda_mask(scores: Mapping[str, torch.Tensor], mask: Mask, sparsity: float,
               opts: WandaOptions) -> Mask:
    """The mask Wanda keeps: per N:M group, per output row, or globally.

    Args:
        scores: name -> keep score (:func:`wanda_scores`).
        mask: the current mask.
        sparsity: the target over the scope.
        opts: the comparison group and pattern.

    Returns:
        A subset of ``mask`` at the exact target (on the pattern with one).
    """
    pattern = pattern_of(opts)
    if pattern is not None:
        return project(scores, mask, mask, pattern, exact=True)
    if opts.group == "row":
        scores = {n: row_shares(s, mask[n]) for n, s in scores.items()}
    return prune_lowest(scores, mask, target_count(mask, sparsity))


class Wanda(Method):
    """Wanda at the pretrained weights: one calibration pass (:mod:`isp_lib.calibration`) gives
    each input feature's norm ||X_j||_2 over the calibration positions, and the weights with the
    lowest |W_ij| * ||X_j|| go, compared within each output row (or globally, or per N:M
    group). No weight is updated. Then the same fine-tune for T as one-shot, or none.

    Choices: the norms come from one pass of the dense model (the paper's "single forward
    pass"; its code's block-by-block variant, with pruned blocks feeding the next, is not
    implemented); a convolution's row is one output channel's (in, kh, kw) weights and its
    inputs are its unfolded input (im2col). Cost: ceil(examples / batch) calibration steps
    (phase ``calib``) + T (or 0 without the fine-tune), + T before the prune with
    ``start=finetuned`` (phase ``dense``).
    """

    name = "wanda"
    summary = "Wanda (Sun et al. 2023): prune the lowest |weight| x input norm, per output row"
    Options = WandaOptions

    def check(self, sparsity: float, opts: WandaOptions) -> None:
        check_group(opts, "row")

    def check_family(self, family: str, opts: WandaOptions) -> None:
        check_start(self.name, family, opts)

    def run(self, ctx: RunContext, opts: WandaOptions) -> None:
        state = ctx.resume(StartState)
        if not state.pruned:
            pattern_of(opts, ctx.params)  # refuse weights the pattern cannot tile, before the pass
            if opts.start == "finetuned":
                fine_tune_first(ctx, state)
            sums: dict[str, torch.Tensor] = {}

            def visit(name: str, chunks: Iterator[torch.Tensor]) -> None:
                sums[name] = sum(c.float().pow(2).sum(1) for c in chunks)

            calibrate(ctx, opts.calib_examples, visit)
            scores = wanda_scores(ctx.params, sums)
            ctx.set_mask(wanda_mask(scores, ctx.mask, ctx.sparsity, opts))
            state.pruned = True
            ctx.save()
        finish(ctx, opts)
