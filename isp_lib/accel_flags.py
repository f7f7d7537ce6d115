"""The flags of ``isp run`` and ``isp sweep`` that say how a run uses its device
(:mod:`isp_lib.accel`), without importing torch: the CLI parses them before any cell starts
(and before ``--executor processes`` starts its fork server).
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser, bf16: bool = False) -> None:
    """Add ``--no-bf16`` and ``--compile`` to ``isp run`` or ``isp sweep``.

    Args:
        parser: the subcommand's parser.
        bf16: also add ``--bf16`` (``isp run``), exclusive with ``--no-bf16``.
    """
    group = parser.add_mutually_exclusive_group()
    if bf16:
        group.add_argument("--bf16", action="store_true",
                           help="bf16 autocast (CUDA only; the default at the paper profile on a "
                                "GPU with native bf16)")
    group.add_argument("--no-bf16", action="store_true",
                       help="float32 where bf16 autocast is the default (the paper profile on a "
                            "CUDA GPU with native bf16, Ampere or newer)")
    parser.add_argument("--compile", action="store_true",
                        help="run the training forward through torch.compile (not part of the "
                             "config hash: the same function, rounded differently; the record "
                             "says so under 'accel')")
