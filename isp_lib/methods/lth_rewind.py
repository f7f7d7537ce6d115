"""LTH with rewinding to an early training step (Frankle et al. 2020)."""

from __future__ import annotations

from dataclasses import dataclass

from isp_lib.context import RunContext
from isp_lib.errors import UserError
from isp_lib.methods.imp import IMP


@dataclass(frozen=True)
class RewindOptions:
    """Attributes:
    rewind_frac: share of the budget T at which the weights are saved and later rewound to.
    """

    rewind_frac: float = 0.05


class LTHRewind(IMP):
    """IMP whose rounds restart from the weights at an early step r of the first fine-tune
    (``rewind_frac`` of T) instead of the pretrained weights; each round and the final
    fine-tune continue the schedule from step r with a fresh optimizer. Cost: (R + 1) x T - R x r.
    """

    name = "lth-rewind"
    summary = "IMP with weights rewound to an early step r of the first fine-tune"
    Options = RewindOptions

    def check(self, sparsity: float, opts: RewindOptions) -> None:
        if not 0.0 < opts.rewind_frac < 1.0:
            raise UserError("rewind_frac must be in (0, 1): pass e.g. --set rewind_frac=0.05")

    def rewind_step(self, ctx: RunContext, opts: RewindOptions) -> int:
        return max(1, round(opts.rewind_frac * ctx.budget))
