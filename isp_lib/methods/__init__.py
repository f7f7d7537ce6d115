"""The registry of methods: name -> class. ``isp run --method NAME`` looks names up here."""

from __future__ import annotations

from isp_lib.errors import UserError
from isp_lib.methods.base import Method
from isp_lib.methods.dense import Dense
from isp_lib.methods.earlybird import EarlyBird
from isp_lib.methods.grasp import GraSP
from isp_lib.methods.greedy_soup import GreedySoup
from isp_lib.methods.imp import IMP
from isp_lib.methods.ims import IMS
from isp_lib.methods.isp import ISP
from isp_lib.methods.lottery_pools import LotteryPools
from isp_lib.methods.lth_rewind import LTHRewind
from isp_lib.methods.oneshot import OneShot
from isp_lib.methods.progressive import Progressive
from isp_lib.methods.random_prune import RandomPruning
from isp_lib.methods.snip import SNIP
from isp_lib.methods.sparsegpt import SparseGPT
from isp_lib.methods.uniform_soup import UniformSoup
from isp_lib.methods.wanda import Wanda

METHODS: dict[str, type[Method]] = {
    cls.name: cls for cls in (
        Dense, RandomPruning, OneShot, SNIP, GraSP, Wanda, SparseGPT, Progressive, EarlyBird, IMP,
        LTHRewind, LotteryPools, ISP, UniformSoup, GreedySoup, IMS,
    )
}


def get_method(name: str) -> Method:
    """An instance of the method registered as ``name``."""
    try:
        return METHODS[name]()
    except KeyError:
        raise UserError(f"unknown method '{name}': use one of {', '.join(METHODS)}") from None
