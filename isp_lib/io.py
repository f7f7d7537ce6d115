"""Atomic writes and the on-disk format of masks (bit-packed)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from isp_lib.masks import Mask


def _atomic(path: Path, write: Callable[[str], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON; readers never see a half-written file."""

    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True)
            f.write("\n")

    _atomic(Path(path), write)


def write_jsonl(path: Path, records: list[dict]) -> None:
    """Write one JSON object per line, keys sorted; readers never see a half-written file."""

    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            for record in records:
                f.write(json.dumps(record, sort_keys=True) + "\n")

    _atomic(Path(path), write)


def write_torch(path: Path, obj: Any) -> None:
    """``torch.save`` to a temporary file, then rename over ``path``."""
    _atomic(Path(path), lambda tmp: torch.save(obj, tmp))


def save_mask(mask: Mask, path: Path) -> None:
    """Store a mask bit-packed (1 bit per weight) and atomically."""
    packed = {
        n: {"shape": list(m.shape), "bits": torch.from_numpy(np.packbits(m.cpu().numpy()))}
        for n, m in mask.items()
    }
    write_torch(path, packed)


def load_mask(path: Path, device: torch.device | str = "cpu") -> Mask:
    """Read a mask written by :func:`save_mask`."""
    packed = torch.load(path, map_location="cpu", weights_only=True)
    out = Mask()
    for n, entry in packed.items():
        count = int(np.prod(entry["shape"]))
        bits = np.unpackbits(entry["bits"].numpy(), count=count).astype(bool)
        out[n] = torch.from_numpy(bits).reshape(entry["shape"]).to(device)
    return out
