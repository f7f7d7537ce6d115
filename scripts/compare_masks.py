"""Compare the masks of finished runs: which weights they keep in common and how they spread
their sparsity over the layers.

For two or more run directories (``isp run`` and ``isp sweep`` print them), prints the cosine
similarity of every pair's kept weights (the paper's Fig. 3 measure: 1 = the same weights
kept) and the sparsity of each layer per run. Reads each run's ``mask.pt`` with the kit's
checked loader and its ``result.json`` for a label; runs nothing.

Usage: python scripts/compare_masks.py RUN_DIR RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from isp_lib.analysis import layer_sparsity_by_mask, mask_similarity
from isp_lib.errors import UserError
from isp_lib.io import load_mask
from isp_lib.masks import Mask


def run_label(run_dir: Path) -> str:
    """``method (settings) at sparsity, seed N`` from the run's record, else the folder's name."""
    try:
        record = json.loads((run_dir / "result.json").read_text())
        settings = " ".join(f"{k}={v}" for k, v in record["config"]["overrides"])
        return (f"{record['method']}{f' ({settings})' if settings else ''} at "
                f"{record['target_sparsity']:.0%}, seed {record['seed']}")
    except (OSError, ValueError, KeyError, TypeError):
        return run_dir.name


def read_masks(run_dirs: list[Path]) -> dict[str, Mask]:
    """Each run's mask under its label; a UserError naming the fix for a folder without a mask
    or masks over different weights."""
    masks: dict[str, Mask] = {}
    for run_dir in run_dirs:
        if not (run_dir / "mask.pt").is_file():
            raise UserError(f"{run_dir} has no mask.pt: give the run directories of finished "
                            "pruning runs (isp run prints its run dir)")
        label = run_label(run_dir)
        masks[f"{label} [{run_dir.name}]" if label in masks else label] = \
            load_mask(run_dir / "mask.pt")
    first, *rest = masks.items()
    for label, mask in rest:
        if set(mask) != set(first[1]) or any(mask[n].shape != first[1][n].shape for n in mask):
            raise UserError(f"'{label}' and '{first[0]}' mask different weights: compare runs "
                            "of one model and scope")
    return masks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", metavar="RUN_DIR")
    args = parser.parse_args(argv)
    if len(args.runs) < 2:
        print("compare_masks: give at least two run directories", file=sys.stderr)
        return 2
    try:
        masks = read_masks(args.runs)
    except UserError as exc:
        print(f"compare_masks: {exc}", file=sys.stderr)
        return 2
    keys = {label: f"[{i}]" for i, label in enumerate(masks, 1)}
    for label, key in keys.items():
        print(f"{key} {label}")
    short = {keys[label]: mask for label, mask in masks.items()}
    with pd.option_context("display.width", 200, "display.max_columns", None):
        print("\ncosine similarity of the kept weights:")
        print(mask_similarity(short).round(4).to_string())
        print("\nsparsity per layer (layer: the first number in a weight's name):")
        print(layer_sparsity_by_mask(short).round(3).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
