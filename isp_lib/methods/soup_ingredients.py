"""The ingredients of a model soup: N dense fine-tunes under a grid of hyperparameters."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from isp_lib.context import RunContext, random_state, set_random_state
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
    shared_ingredients: the ingredients taken from another run of the out folder
        (:mod:`isp_lib.shared`) instead of trained.
    soup: how the soup was made (set at the end).
    best_val: the soup's validation metric (the run's validation score; set at the end).
    """

    ingredient_vals: list[float] = field(default_factory=list)
    ingredient_hparams: list[dict] = field(default_factory=list)
    shared_ingredients: list[int] = field(default_factory=list)
    soup: dict | None = None
    best_val: float | None = None


class SoupIngredients(Method):
    """Base of the model soups (Wortsman et al., ICML 2022): fine-tunes N dense models from the
    same pretrained weights, each for the full budget T with its own learning rate, weight
    decay and data order, keeping each one's best-on-validation weights. The ledger counts all
    N fine-tunes (N x T steps), trained or taken from another run. Subclasses merge them in
    :meth:`merge`.
    """

    Options = SoupOptions
    prunes = False

    def ingredients(self, ctx: RunContext, opts: SoupOptions
                    ) -> tuple[list[dict[str, torch.Tensor]], list[float]]:
        """Train (or, on resume, finish) the N ingredients, taking those that another run of
        the out folder already trained the same way (:mod:`isp_lib.shared`).

        Returns:
            Their best weights and their best validation scores.
        """
        state = ctx.resume(SoupState)
        vals = state.ingredient_vals
        if "init" not in ctx.stash:
            ctx.snapshot("init")
            ctx.save()
        for k in range(len(vals), opts.ingredients):
            hparams = {"lr": ctx.hp.lr * opts.lr_mults[k % len(opts.lr_mults)],
                       "weight_decay": opts.wds[k % len(opts.wds)]}
            name = f"ingredient-{k}"
            key = None if ctx.shared is None else ctx.shared.key(
                "soup-ingredient", index=k, hparams=[*state.ingredient_hparams, hparams])
            # an ingredient half-trained before an interruption is finished, not swapped
            entry = None if key is None or ctx.selection is not None else \
                ctx.shared.load(key, ctx.device)
            if entry is None:
                entry = self._train(ctx, name, hparams)
                if key is not None:
                    ctx.shared.save(key, entry)
            else:
                ctx.ledger.add("ingredient", entry["steps"], entry["samples"])
                ctx.finetunes[name] = entry["selection"]
                set_random_state(entry)
                state.shared_ingredients.append(k)
            ctx.put_artifact(name, entry["weights"])
            vals.append(entry["selection"]["best_val"])
            state.ingredient_hparams.append(hparams)
            ctx.restore("init")
            ctx.save()
        return [ctx.get_artifact(f"ingredient-{k}") for k in range(opts.ingredients)], vals

    @staticmethod
    def _train(ctx: RunContext, name: str, hparams: dict[str, float]) -> dict:
        """Fine-tune one ingredient for T (or finish it, on resume); what a shared entry holds
        of it."""
        trainer = ctx.make_trainer(name, lr=hparams["lr"], weight_decay=hparams["weight_decay"])
        ctx.finetune(trainer, ctx.budget, phase="ingredient")
        weights = ctx.state()
        ctx.close_finetune(name)
        return {"weights": weights, "selection": ctx.finetunes[name],
                "steps": trainer.step_count, "samples": trainer.step_count * trainer.batch_size,
                **random_state()}

    def merge(self, ctx: RunContext, states: list[dict[str, torch.Tensor]], vals: list[float]
              ) -> tuple[dict[str, torch.Tensor], dict]:
        """The soup's weights and a JSON-ready note of how it was made."""
        raise NotImplementedError

    def run(self, ctx: RunContext, opts: SoupOptions) -> None:
        state = ctx.resume(SoupState)
        states, vals = self.ingredients(ctx, opts)
        weights, state.soup = self.merge(ctx, states, vals)
        state.best_val = ctx.evaluate_state(weights)
