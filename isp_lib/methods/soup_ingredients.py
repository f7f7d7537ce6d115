"""The ingredients of a model soup: N dense fine-tunes under a grid of hyperparameters."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from isp_lib.context import RunContext
from isp_lib.methods.base import Method
from isp_lib.ranges import ranged


@dataclass(frozen=True)
class SoupOptions:
    """Attributes:
    ingredients: number of fine-tuned models N (the paper's soups use 8).
    lr_mults: ingredient k uses the learning rate ``hp.lr * lr_mults[k % len]``.
    wds: ingredient k uses weight decay ``wds[k % len]``.
    """

    ingredients: int = ranged(">= 1", 8)
    lr_mults: tuple[float, ...] = ranged("> 0", (1.0, 0.5, 2.0, 0.75, 1.5, 0.3, 1.25, 0.6))
    wds: tuple[float, ...] = ranged(">= 0", (0.0, 0.01, 0.1, 0.001))


@dataclass
class SoupState:
    """Attributes:
    ingredient_vals: best validation metric of each finished ingredient, in order.
    ingredient_hparams: learning rate and weight decay of each finished ingredient, in order.
    soup: how the soup was made (set at the end).
    best_val: the soup's validation metric (the run's validation score; set at the end).
    """

    ingredient_vals: list[float] = field(default_factory=list)
    ingredient_hparams: list[dict] = field(default_factory=list)
    soup: dict | None = None
    best_val: float | None = None


class SoupIngredients(Method):
    """Base of the model soups (Wortsman et al., ICML 2022): fine-tunes N dense models from the
    same pretrained weights, each for the full budget T with its own learning rate, weight
    decay and data order, keeping each one's best-on-validation weights. The ledger counts all
    N fine-tunes (N x T steps). Subclasses merge them in :meth:`merge`.
    """

    Options = SoupOptions
    prunes = False

    def ingredients(self, ctx: RunContext, opts: SoupOptions
                    ) -> tuple[list[dict[str, torch.Tensor]], list[float]]:
        """Train (or, on resume, finish) the N ingredients.

        Returns:
            Their best weights and their best validation scores.
        """
        state = ctx.resume(SoupState)
        vals = state.ingredient_vals
        if "init" not in ctx.stash:
            ctx.snapshot("init")
            ctx.save()
        for k in range(len(vals), opts.ingredients):
            lr = ctx.hp.lr * opts.lr_mults[k % len(opts.lr_mults)]
            wd = opts.wds[k % len(opts.wds)]
            trainer = ctx.make_trainer(f"ingredient-{k}", lr=lr, weight_decay=wd)
            ctx.finetune(trainer, ctx.budget, phase="ingredient")
            ctx.put_artifact(f"ingredient-{k}", ctx.state())
            vals.append(ctx.close_finetune(f"ingredient-{k}"))
            state.ingredient_hparams.append({"lr": lr, "weight_decay": wd})
            ctx.restore("init")
            ctx.save()
        return [ctx.get_artifact(f"ingredient-{k}") for k in range(opts.ingredients)], vals

    def merge(self, ctx: RunContext, states: list[dict[str, torch.Tensor]], vals: list[float]
              ) -> tuple[dict[str, torch.Tensor], dict]:
        """The soup's weights and a JSON-ready note of how it was made."""
        raise NotImplementedError

    def run(self, ctx: RunContext, opts: SoupOptions) -> None:
        state = ctx.resume(SoupState)
        states, vals = self.ingredients(ctx, opts)
        weights, state.soup = self.merge(ctx, states, vals)
        state.best_val = ctx.evaluate_state(weights)
