"""What every figure shares: settings, table rows, interleaved timing and formatting."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from isp_lib.data import RawData, load_data
from isp_lib.models import ModelBundle, build_model
from isp_lib.profiles import Profile, get_profile
from isp_lib.records import read_records

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    """How a figure runs.

    Attributes:
        reps: repetitions; figures report medians.
        quick: smaller sizes, for a fast check of the machinery.
        device: where models and masks live.
        seed: seed of every model init and data draw.
        threads: torch intra-op threads (also passed to subprocesses).
    """

    reps: int
    quick: bool
    device: torch.device
    seed: int
    threads: int


@dataclass
class Row:
    """One line of the table; every field is already formatted."""

    figure: str
    ours: str
    reference: str
    ratio: str
    target: str
    met: str


@dataclass
class Outcome:
    """What a figure returns: its table rows and the raw numbers behind them."""

    rows: list[Row]
    details: dict = field(default_factory=dict)


def sync(device: torch.device) -> None:
    """Wait for queued kernels, so that wall time covers them."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Timings:
    """Seconds per repetition and variant, on two clocks.

    Attributes:
        wall: wall-clock seconds.
        cpu: CPU seconds of this process (all its threads). Other load on the machine stretches
            wall time, by as much as 30% from one repetition to the next on a 2-core machine
            that also trains, but hardly CPU time; on a GPU, CPU time misses the kernels.
    """

    wall: dict[str, list[float]]
    cpu: dict[str, list[float]]

    def main(self, device: torch.device) -> dict[str, list[float]]:
        """The clock the table uses: CPU time on the CPU, wall time on a GPU."""
        return self.wall if device.type == "cuda" else self.cpu


def clock_name(device: torch.device) -> str:
    """Which clock :meth:`Timings.main` reads, in words."""
    return "wall" if device.type == "cuda" else "process CPU time"


def interleave(
    variants: Mapping[str, Callable[[], object]], reps: int, device: torch.device, desc: str
) -> Timings:
    """Time each variant once per repetition, in the order A, B, A, B, ...

    Args:
        variants: name -> a call to time (warmed up by the caller).
        reps: repetitions.
        device: synchronised around each call.
        desc: progress-bar label.

    Returns:
        Seconds per repetition, per variant, on both clocks.
    """
    out = Timings({name: [] for name in variants}, {name: [] for name in variants})
    for _ in tqdm(range(reps), desc=desc, leave=False, disable=None):
        for name, call in variants.items():
            sync(device)
            wall, cpu = time.perf_counter(), time.process_time()
            call()
            sync(device)
            out.wall[name].append(time.perf_counter() - wall)
            out.cpu[name].append(time.process_time() - cpu)
    return out


def paired_ratio(ours: list[float], reference: list[float]) -> float:
    """Median over repetitions of ours / reference, each pair timed side by side."""
    return statistics.median(a / b for a, b in zip(ours, reference, strict=True))


def yes_no(ok: bool) -> str:
    """The ``met`` column."""
    return "yes" if ok else "no"


def seconds(x: float) -> str:
    """Wall time for the table."""
    return f"{x:.3f} s" if x < 10 else f"{x:.1f} s"


def times(x: float) -> str:
    """A ratio for the table."""
    return f"{x:.3f}x"


def load_minilm(seed: int) -> tuple[ModelBundle, RawData, Profile]:
    """MiniLM-L6 (offline pretrained weights) and the drug reviews at the ``cpu`` profile.

    Args:
        seed: seeds the classifier head's init.

    Returns:
        The model bundle (CPU), the data and the profile.
    """
    profile = get_profile("cpu")
    data = load_data("drugreview", profile)
    torch.manual_seed(seed)
    return build_model("minilm", data, profile), data, profile


def full_length(dataset: Dataset, length: int, count: int) -> np.ndarray:
    """Indices of the first ``count`` examples of exactly ``length`` tokens (no padding).

    Args:
        dataset: a tokenised text dataset.
        length: the token count wanted (the profile's ``max_len``: truncated reviews).
        count: how many.

    Returns:
        The indices.
    """
    found = [i for i in range(len(dataset)) if len(dataset[i]["input_ids"]) == length][:count]
    if len(found) < count:
        raise RuntimeError(f"only {len(found)} training examples have {length} tokens")
    return np.array(found)


def load_records() -> list[dict]:
    """Every result record in ``results/*.jsonl`` (files by name), once per config hash.

    Returns:
        The records; a record whose config hash was already read is left out.
    """
    out: dict[str, dict] = {}
    for path in sorted((ROOT / "results").glob("*.jsonl")):
        for record in read_records(path):
            out.setdefault(record["config_hash"], record)
    return list(out.values())


def minilm_cpu(records: list[dict]) -> list[dict]:
    """The records of MiniLM-L6 on the drug reviews at the ``cpu`` profile."""
    return [r for r in records if r.get("profile") == "cpu" and r.get("model") == "minilm"
            and r.get("data") == "drugreview"]


def percent(sparsity: float) -> str:
    """``0.7`` -> ``"70%"``."""
    return f"{sparsity:.0%}"
