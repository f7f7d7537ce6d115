"""Where a calibration-only method (Wanda, SparseGPT) starts pruning: the weights it is given,
or those weights fine-tuned densely on the task first.

Wanda (Sun et al., 2023) and SparseGPT (Frantar and Alistarh, 2023) prune a model that already
does its task, and train nothing after: their post-training setting. The kit's models for
``isp run`` start from a pretrained checkpoint with a new, untrained classification head (BERT,
MiniLM, the CNN stand-in; CLIP's zero-shot head is the exception), so their post-training
setting is ``--set start=finetuned finetune=false``: fine-tune the dense model for T, exactly as
the ``dense`` method does (same trainer, same batches, the best weights on validation), then
calibrate and prune it. Pruning the pretrained weights without any fine-tune would score a head
that never saw a label, and is refused for those models (:func:`check_start`).

The dense fine-tune depends on no sparsity or method option, so the runs of one out folder
share it (:mod:`isp_lib.shared`): Wanda and SparseGPT at every sparsity of a seed take the
first one's. The ledger counts it for every run (phase ``dense``), taken or trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from isp_lib.calibration import recalibrate_batchnorm
from isp_lib.context import RunContext, random_state, set_random_state
from isp_lib.errors import UserError
from isp_lib.methods.base import PruneState
from isp_lib.models.registry import HEAD_UNTRAINED
from isp_lib.ranges import added_later, one_of

#: The values of the ``start`` option.
STARTS = ("pretrained", "finetuned")

#: The ledger phase (and the ``finetunes`` entry) of the dense fine-tune before pruning.
DENSE_PHASE = "dense"


@dataclass(frozen=True)
class StartOptions:
    """Attributes:
    finetune: fine-tune the pruned model for the budget T, as one-shot does; ``false``: no
        training after the prune (the method's own setting, with ``start=finetuned``); a
        model with BatchNorm layers then has their statistics re-estimated on the
        calibration examples (:func:`~isp_lib.calibration.recalibrate_batchnorm`).
    start: what is pruned: ``pretrained`` (the starting weights) or ``finetuned`` (those
        weights fine-tuned densely for T first, as the ``dense`` method does; shared by the
        runs of an out folder). ``finetune=false`` with ``pretrained`` is refused for models
        whose head is untrained. Added after the first records: left out of the config hash
        while ``pretrained``.
    """

    finetune: bool = True
    start: str = added_later(one_of(STARTS, "pretrained"))


@dataclass
class StartState(PruneState):
    """Resume state of a calibration-only method.

    Attributes:
        pruned: the mask is set (the fine-tune may have begun).
        started: with ``start=finetuned``, the dense fine-tune is done.
        shared_start: it was taken from another run of the out folder, not trained.
    """

    started: bool = False
    shared_start: bool = False


def check_start(method: str, family: str, opts: Any) -> None:
    """Refuse pruning without any training a model whose head is untrained.

    Args:
        method: the method's name, for the message.
        family: the model family (:data:`isp_lib.models.registry.HEAD_UNTRAINED` lists those
            whose head the kit initialises at random).
        opts: the method's options (``start`` and ``finetune``).

    Raises:
        UserError: for ``finetune=false`` with ``start=pretrained`` on such a family.
    """
    if not opts.finetune and opts.start == "pretrained" and family in HEAD_UNTRAINED:
        raise UserError(f"{method} with finetune=false would prune a {family} model whose "
                        "classification head is untrained: add --set start=finetuned (prune the "
                        "dense model fine-tuned for T, the post-training setting)")


def fine_tune_first(ctx: RunContext, state: StartState) -> None:
    """Fine-tune the dense model for T as the ``dense`` method does and keep its best weights
    on validation, or take that fine-tune from another run of the out folder.

    Args:
        ctx: the run, before pruning (its mask dense).
        state: set ``started`` (and ``shared_start``) here; saved with the checkpoint.
    """
    if state.started:
        return
    key = None if ctx.shared is None else ctx.shared.key("dense-finetune", without=("sparsity",))
    # a fine-tune half-done before an interruption is finished, not swapped
    entry = None if key is None or ctx.selection is not None else \
        ctx.shared.load(key, ctx.device)
    if entry is None:
        trainer = ctx.make_trainer("final")
        ctx.finetune(trainer, ctx.budget, phase=DENSE_PHASE)
        ctx.close_finetune(DENSE_PHASE)
        if key is not None:
            ctx.shared.save(key, {"weights": ctx.state(), "selection": ctx.finetunes[DENSE_PHASE],
                                  "steps": trainer.step_count,
                                  "samples": trainer.step_count * trainer.batch_size,
                                  **random_state()})
    else:
        ctx.model.load_state_dict(entry["weights"])
        ctx.ledger.add(DENSE_PHASE, entry["steps"], entry["samples"])
        ctx.finetunes[DENSE_PHASE] = entry["selection"]
        set_random_state(entry)
        state.shared_start = True
    state.started = True
    ctx.save()


def finish(ctx: RunContext, opts: Any) -> None:
    """The fine-tune after the prune: T steps (``finetune``), else the BatchNorm statistics
    re-estimated (if any) and one evaluation of the pruned weights. After a dense fine-tune
    its trainer has a name of its own, so a resume never mistakes one for the other."""
    if not opts.finetune and ctx.selection is None:  # not yet evaluated: not on a resume
        recalibrate_batchnorm(ctx, opts.calib_examples)
    trainer = ctx.make_trainer("final" if opts.start == "pretrained" else "refinetune")
    ctx.finetune(trainer, ctx.budget if opts.finetune else 0)
