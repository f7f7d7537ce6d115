"""Instant Model Soup (Jaiswal et al., ICML 2023, Alg. 3)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from isp_lib.context import RunContext
from isp_lib.masks import Mask, magnitude_prune_to
from isp_lib.methods.base import Method
from isp_lib.ranges import one_of, ranged
from isp_lib.seeds import stream_rng
from isp_lib.soups import best_interpolation


@dataclass(frozen=True)
class IMSOptions:
    """Attributes:
    sparsities: one weak subnetwork per entry (K = len), magnitude-pruned from the pretrained
        weights to that sparsity.
    weak_frac: each weak training runs ``round(weak_frac * T)`` steps (the paper's ~100
        iterations are about a tenth of its budgets).
    data_frac: share of the training split each weak training draws at random.
    lr_mults: weak model k uses the learning rate ``hp.lr * lr_mults[k % len]``.
    wds: weak model k uses weight decay ``wds[k % len]``.
    alphas: interpolation coefficients tried per weak model (0 always competes too).
    merge_pruned: also interpolate the pruned (zero) entries of a weak model; by default a
        pruned entry carries no update and keeps the running soup's value.
    select_by: ``loss`` picks each coefficient by the lowest mean validation loss (a kit
        choice: validation accuracy is nearly flat across coefficients before the fine-tune,
        so it picks almost arbitrarily); ``metric`` picks by the validation metric, as the
        paper's greedy soups do.
    """

    sparsities: tuple[float, ...] = ranged("[0, 1)", (0.1, 0.2, 0.3, 0.4))
    weak_frac: float = ranged("> 0", 0.1)
    data_frac: float = ranged("(0, 1]", 0.5)
    lr_mults: tuple[float, ...] = ranged("> 0", (1.0, 2.0, 0.5, 1.5))
    wds: tuple[float, ...] = ranged(">= 0", (0.0, 0.01, 0.1, 0.001))
    alphas: tuple[float, ...] = ranged("[0, 1]", (0.1, 0.2, 0.3, 0.4, 0.5))
    merge_pruned: bool = False
    select_by: str = one_of(("loss", "metric"), "loss")


@dataclass
class IMSState:
    """Attributes:
    weak: per weak model merged: its sparsity, learning rate, weight decay, the chosen
        coefficient, the soup's validation metric and loss, and ``curve``, every candidate
        coefficient's ``[alpha, metric, loss]``.
    denoised: the soup is done (the fine-tune may have begun).
    """

    weak: list[dict] = field(default_factory=list)
    denoised: bool = False


class IMS(Method):
    """Instant Model Soup: denoise the pretrained weights with cheap sparse trainings, then
    fine-tune the dense model once.

    For each of K sparsities, the pretrained weights are magnitude-pruned, the subnetwork is
    weakly trained (its own learning rate, weight decay and random data subset; all
    parameters train, the mask is kept), and merged into the running weights (which start as
    the pretrained ones) by linear interpolation, its coefficient chosen on validation from
    ``alphas`` and 0 (so validation can never get worse). The denoised dense model is then
    fine-tuned for T with validation selection. Cost: K x weak steps + T (ledger phases
    ``weak`` and ``finetune``).
    """

    name = "ims"
    summary = "Instant Model Soup (Alg. 3): merge cheap sparse trainings, then fine-tune densely"
    Options = IMSOptions
    prunes = False

    def denoise(self, ctx: RunContext, opts: IMSOptions) -> None:
        """Alg. 3 up to the fine-tune: leaves the denoised weights in ``ctx.model``."""
        weak = ctx.resume(IMSState).weak
        if "init" not in ctx.stash:
            ctx.snapshot("init")
            ctx.snapshot("soup")
            ctx.save()
        steps = max(1, round(opts.weak_frac * ctx.budget))
        n_train = len(ctx.train_set)
        size = min(n_train, max(ctx.hp.batch_size, round(opts.data_frac * n_train)))
        for k in range(len(weak), len(opts.sparsities)):
            ctx.restore("init")
            mask = magnitude_prune_to(ctx.params, Mask.ones_like(ctx.params), opts.sparsities[k])
            subset = np.sort(stream_rng(ctx.seed, f"subset:weak-{k}").choice(
                n_train, size=size, replace=False))
            lr = ctx.hp.lr * opts.lr_mults[k % len(opts.lr_mults)]
            wd = opts.wds[k % len(opts.wds)]
            trainer = ctx.make_trainer(f"weak-{k}", total_steps=steps, indices=subset, lr=lr,
                                       weight_decay=wd)
            trainer.set_mask(mask)
            trainer.train(steps, "weak", desc=f"ims weak {k + 1}/{len(opts.sparsities)}")
            keep = None if opts.merge_pruned else mask
            curve: list[list[float]] = []

            def select(state: dict, curve: list = curve) -> float:
                metric, loss = ctx.val_scores(state)
                curve.append([metric, loss])
                return -loss if opts.select_by == "loss" else metric

            alpha, _, soup = best_interpolation(ctx.stash["soup"], ctx.state(), opts.alphas,
                                                select, keep)
            grid = sorted({0.0, *opts.alphas})
            metric, loss = curve[grid.index(alpha)]
            ctx.stash["soup"] = soup
            weak.append({"sparsity": opts.sparsities[k], "lr": lr, "weight_decay": wd,
                         "alpha": alpha, "val": metric, "val_loss": loss,
                         "curve": [[a, *c] for a, c in zip(grid, curve, strict=True)]})
            ctx.save()
        ctx.model.load_state_dict(ctx.stash["soup"])

    def run(self, ctx: RunContext, opts: IMSOptions) -> None:
        state = ctx.resume(IMSState)
        if not state.denoised:
            self.denoise(ctx, opts)
            state.denoised = True
            ctx.stash.pop("soup")
            ctx.save()
        ctx.finetune(ctx.make_trainer("final"), ctx.budget)
