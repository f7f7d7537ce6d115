"""Dense fine-tuning: the reference row of the paper's tables (no pruning)."""

from __future__ import annotations

from isp_lib.context import RunContext
from isp_lib.methods.base import Method, NoOptions


class Dense(Method):
    """Fine-tune the full model for the budget T; best weights on validation."""

    name = "dense"
    summary = "no pruning: fine-tune the dense model (needs --sparsity 0)"
    prunes = False

    def run(self, ctx: RunContext, opts: NoOptions) -> None:
        trainer = ctx.make_trainer("final")
        ctx.finetune(trainer, ctx.budget)
