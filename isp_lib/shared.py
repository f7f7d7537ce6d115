"""Work that the runs of one out folder share: a soup ingredient trained once serves every soup
that would train it the same way (and a dense fine-tune every post-training prune of it,
:mod:`isp_lib.methods.start`).

The uniform and greedy soups (Wortsman et al., ICML 2022) are two ways to merge the same N
fine-tunes; with the same seed and settings the kit's two runs train identical ingredients.
The first run keeps each finished ingredient under ``<out>/.shared/``; a later run whose
ingredient has the same key takes it instead of training it again. The key is the SHA-256 of
what decides the ingredient: the run's resolved configuration without its method and method
options (model, data, profile scale, hyperparameters, sparsity, seed, sources, bf16, numerics
version), the device type and the acceleration plan (:mod:`isp_lib.accel`), the ingredient's
index and the learning rates and weight decays of it and of every ingredient before it (they
train one after another on one random stream).

An entry holds the ingredient's best weights, its validation selection, its ledger steps and
samples and the random state after it, so a run that takes it ends with the record it would
have computed: the same weights, metrics, ledger (the cost in units of T counts every
ingredient, taken or trained) and trace; only its wall time is shorter, and its trace lists
the ingredients it took (``shared_ingredients``). Entries are written atomically and read as
tensors and plain data only (:func:`isp_lib.io.read_torch`); delete ``.shared/`` to retrain.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from isp_lib.errors import UserError
from isp_lib.io import read_torch, write_torch

#: The folder of shared work inside an out folder.
SHARED_DIR = ".shared"


@dataclass(frozen=True)
class SharedWork:
    """The shared entries of one out folder, for runs computed from ``basis``.

    Attributes:
        folder: ``<out>/.shared``.
        basis: JSON-ready description of what the run computes from besides its method (see
            the module docstring).
    """

    folder: Path
    basis: dict[str, Any]

    def key(self, kind: str, without: tuple[str, ...] = (), **detail: Any) -> str:
        """The entry name of a piece of work ``kind`` (e.g. ``soup-ingredient``) with ``detail``;
        the fields of the basis named in ``without`` (e.g. ``sparsity``) do not decide it."""
        basis = {k: v for k, v in self.basis.items() if k not in without}
        blob = json.dumps({"kind": kind, "basis": basis, "detail": detail}, sort_keys=True,
                          separators=(",", ":"))
        return f"{kind}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"

    def load(self, key: str, device: torch.device) -> dict[str, Any] | None:
        """The entry ``key`` (tensors on ``device``), or None if no run has written it.

        Raises:
            UserError: if the file is not an entry the kit wrote.
        """
        path = self.folder / f"{key}.pt"
        if not path.exists():
            return None
        entry = read_torch(path, device)
        if not isinstance(entry, dict) or entry.get("key") != key:
            raise UserError(f"{path} is not an entry the kit wrote: delete it and rerun")
        return entry

    def save(self, key: str, entry: dict[str, Any]) -> None:
        """Write the entry ``key`` atomically (tensors moved to the CPU)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        write_torch(self.folder / f"{key}.pt", {**_cpu(entry), "key": key})


def _cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _cpu(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cpu(v) for v in value]
    return value
