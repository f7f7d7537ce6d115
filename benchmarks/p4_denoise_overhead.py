"""P4: the share of a denoised prune (Alg. 2) spent outside the look-ahead training steps.

One call of ``isp_lib.methods.denoise.denoised_prune`` on MiniLM-L6 and the real drug reviews
at the ``cpu`` profile, as ISP's first round makes it (N = 4 look-aheads of C = 6 steps, the
protocols ISP varies). ``Trainer.train`` is wrapped to time the training steps; everything else
(copying weights into the scratch module, building trainers, the masks and their union) is
overhead. During the call every loader (``build_model``, ``load_data``, ``torch.load``,
``from_pretrained``) raises, which proves that the look-aheads reload nothing from disk.
"""

from __future__ import annotations

import contextlib
import copy
import statistics
import sys
import time
from collections.abc import Iterator
from unittest import mock

import torch
import transformers
from tqdm.auto import tqdm

from benchmarks.common import Outcome, Row, Settings, clock_name, load_minilm, seconds, sync, yes_no
from isp_lib.context import RunContext
from isp_lib.methods.denoise import denoised_prune
from isp_lib.methods.isp import ISP, ISPOptions
from isp_lib.train import Trainer

NAME = "P4"
SPARSITY = 0.7
TARGET = 0.05
LOADERS = ("build_model", "build_bert", "build_clip", "load_data")


@contextlib.contextmanager
def no_reloads() -> Iterator[None]:
    """Make every way of reading a model or data set from disk raise ``AssertionError``."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the denoised prune read a model or data set from disk")

    with contextlib.ExitStack() as stack:
        for name, module in list(sys.modules.items()):
            if name == "isp_lib" or name.startswith("isp_lib."):
                for attr in LOADERS:
                    if hasattr(module, attr):
                        stack.enter_context(mock.patch.object(module, attr, refuse))
        stack.enter_context(mock.patch.object(torch, "load", refuse))
        for cls in (transformers.AutoModel, transformers.AutoTokenizer):
            stack.enter_context(mock.patch.object(cls, "from_pretrained", refuse))
        yield


def run(s: Settings) -> Outcome:
    """Time denoised prunes and the training steps inside them.

    Args:
        s: the settings (``quick``: N = 2 look-aheads of C = 2 steps).

    Returns:
        One row: the median share of the call's time (CPU time on a CPU, wall time on a GPU)
        spent outside ``Trainer.train``.
    """
    bundle, data, profile = load_minilm(s.seed)
    n, c = (2, 2) if s.quick else (4, 6)
    hp = profile.hparams_for("bert", {"denoisers": n, "lookahead_steps": c})
    model = bundle.model.to(s.device)
    ctx = RunContext(model=model, family="bert", train_set=bundle.make_dataset(data.train),
                     val_set=bundle.make_dataset(data.val), collate=bundle.collate,
                     metric=data.metric, hp=hp, sparsity=SPARSITY, seed=s.seed, device=s.device)
    scratch = copy.deepcopy(model)
    protocols = ISP().protocols(ctx, ISPOptions())
    clock = time.perf_counter if s.device.type == "cuda" else time.process_time
    inside: list[float] = []
    real_train = Trainer.train

    def timed_train(self: Trainer, *args: object, **kwargs: object) -> float:
        sync(s.device)
        start = clock()
        loss = real_train(self, *args, **kwargs)
        sync(s.device)
        inside.append(clock() - start)
        return loss

    totals, trained = [], []
    with mock.patch.object(Trainer, "train", timed_train), no_reloads():
        for _ in tqdm(range(s.reps), desc="P4 denoised prunes", leave=False, disable=None):
            inside.clear()
            sync(s.device)
            start = clock()
            mask, report = denoised_prune(ctx, scratch, protocols, hp.rate, 0,
                                          force_adjust=False, adjust_gap=hp.adjust_gap)
            sync(s.device)
            totals.append(clock() - start)
            trained.append(sum(inside))
            if len(inside) != n or not mask.is_subset_of(ctx.mask):
                raise AssertionError("the denoised prune did not run its look-aheads as set")
    shares = [(t - x) / t for t, x in zip(totals, trained, strict=True)]
    share = statistics.median(shares)
    outside = statistics.median(t - x for t, x in zip(totals, trained, strict=True))
    row = Row("P4 denoise overhead", f"{seconds(outside)} outside",
              f"{seconds(statistics.median(totals))} total", f"{share:.1%}",
              f"<= {TARGET:.0%}", yes_no(share <= TARGET))
    details = {"lookaheads": n, "steps_each": c, "clock": clock_name(s.device),
               "total_s": totals, "train_s": trained, "share_outside": shares,
               "report": vars(report), "reloads": "none (loaders raised during the call)"}
    return Outcome([row], details)
