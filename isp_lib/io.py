"""Atomic writes, safe reads and the on-disk format of masks (bit-packed).

Every tensor file the kit reads from a run directory (checkpoints, masks, artifacts) is read
with ``torch.load(weights_only=True)``: tensors and primitive containers only, never code. A
file that holds anything else is refused with a one-line :class:`~isp_lib.errors.UserError`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from isp_lib.errors import UserError
from isp_lib.masks import Mask


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic(path: Path, write: Callable[[str], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would hide results from the group
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


def read_torch(path: Path, device: torch.device | str = "cpu") -> Any:
    """Load a tensor file written by the kit, refusing anything but tensors and plain data.

    Args:
        path: the file (a checkpoint, mask or artifact).
        device: where tensors are mapped.

    Returns:
        The stored object (dicts, lists, numbers, strings and tensors only).

    Raises:
        UserError: one line naming the file, if it is missing, unreadable or holds other
            objects (a pickle that would run code is refused before it runs).
    """
    path = Path(path)
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise UserError(f"run directory {path.parent} is corrupt ({path.name} is missing): "
                        "delete it and rerun") from None
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        raise UserError(
            f"run directory {path.parent} is corrupt ({path.name} is not a file of tensors that "
            f"the kit wrote: {exc.__class__.__name__}): delete it and rerun") from None


def save_mask(mask: Mask, path: Path) -> None:
    """Store a mask bit-packed (1 bit per weight) and atomically."""
    packed = {
        n: {"shape": list(m.shape), "bits": torch.from_numpy(np.packbits(m.cpu().numpy()))}
        for n, m in mask.items()
    }
    write_torch(path, packed)


def load_mask(path: Path, device: torch.device | str = "cpu") -> Mask:
    """Read a mask written by :func:`save_mask`."""
    packed = read_torch(path)
    out = Mask()
    try:
        for n, entry in packed.items():
            count = int(np.prod(entry["shape"]))
            bits = np.unpackbits(entry["bits"].numpy(), count=count).astype(bool)
            out[n] = torch.from_numpy(bits).reshape(entry["shape"]).to(device)
    except (AttributeError, KeyError, TypeError, ValueError, RuntimeError):
        raise UserError(f"run directory {Path(path).parent} is corrupt ({Path(path).name} is "
                        "not a mask that the kit wrote): delete it and rerun") from None
    return out


def mask_digest(mask: Mask) -> str:
    """SHA-256 (first 16 hex digits) of a mask's names, shapes and bits, in name order."""
    h = hashlib.sha256()
    for n in sorted(mask):
        m = mask[n]
        h.update(f"{n}:{list(m.shape)};".encode())
        h.update(np.packbits(m.cpu().numpy()).tobytes())
    return h.hexdigest()[:16]
