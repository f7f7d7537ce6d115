"""LTH with rewinding to an early training step (Frankle et al. 2020)."""

from __future__ import annotations

from dataclasses import dataclass

from isp_lib.context import RunContext
from isp_lib.methods.imp import IMP
from isp_lib.patterns import pattern_option
from isp_lib.ranges import added_later, ranged


@dataclass(frozen=True)
class RewindOptions:
    """Attributes:
    rewind_frac: share of the budget T at which the weights are saved and later rewound to.
    pattern: ``none`` or ``N:M``, as for :class:`~isp_lib.methods.imp.IMP`; left out of the
        config hash while ``none``.
    """

    rewind_frac: float = ranged("(0, 1)", 0.05)
    pattern: str = added_later(pattern_option())


class LTHRewind(IMP):
    """IMP whose rounds restart from the weights at an early step r of the first fine-tune
    (``rewind_frac`` of T) instead of the pretrained weights; each round and the final
    fine-tune continue the schedule from step r with a fresh optimizer. Cost: (R + 1) x T - R x r.
    """

    name = "lth-rewind"
    summary = "IMP with weights rewound to an early step r of the first fine-tune"
    Options = RewindOptions

    def rewind_step(self, ctx: RunContext, opts: RewindOptions) -> int:
        return max(1, round(opts.rewind_frac * ctx.budget))
