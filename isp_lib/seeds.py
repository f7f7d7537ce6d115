"""Named random streams: every stream of a run derives from ``(run seed, stream name)``.

A run draws several independent random streams: the batch order of each trainer (main model,
IMP round, look-ahead, soup ingredient, ...), the data subset of each look-ahead or weak model,
the examples a saliency score is computed on. Each is seeded by a
:class:`numpy.random.SeedSequence` of the run seed and a stable hash of the stream's name, so
no two streams of any two seeds coincide (unlike ``seed * 1000 + offset`` schemes, where seed 0
at offset 1000 is seed 1 at offset 0), and a stream does not move when another one is added.
"""

from __future__ import annotations

import hashlib

import numpy as np


def _entropy(seed: int, name: str) -> list[int]:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"run seed must be a whole number >= 0, got {seed!r}")
    digest = hashlib.sha256(name.encode()).digest()
    return [int(seed), *np.frombuffer(digest, dtype="<u4").tolist()]


def stream_seed(seed: int, name: str) -> int:
    """A 63-bit integer seed for the stream ``name`` of run ``seed`` (for ``torch.Generator``).

    Args:
        seed: the run seed (>= 0).
        name: the stream's name, unique within a run, e.g. ``"batches:lookahead-2-1"``.

    Returns:
        An integer in ``[0, 2**63)``.

    >>> stream_seed(0, "batches:main") == stream_seed(0, "batches:main")
    True
    >>> stream_seed(0, "batches:main") != stream_seed(1, "batches:main")
    True
    """
    state = np.random.SeedSequence(_entropy(seed, name)).generate_state(1, dtype=np.uint64)
    return int(state[0]) >> 1


def stream_rng(seed: int, name: str) -> np.random.Generator:
    """A NumPy generator for the stream ``name`` of run ``seed``.

    Args:
        seed: the run seed (>= 0).
        name: the stream's name, unique within a run, e.g. ``"subset:lookahead-2-1"``.

    Returns:
        A fresh :class:`numpy.random.Generator`.
    """
    return np.random.default_rng(np.random.SeedSequence(_entropy(seed, name)))
