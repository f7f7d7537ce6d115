"""Heavy packages load only when a builder needs them (each check in a fresh interpreter).

open_clip, transformers, datasets and torchvision take seconds to import: ``import isp_lib``,
the run and command-line modules and the model modules must not pull them in, and building the
CNN stand-in pulls in torchvision but none of the others.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("open_clip", "transformers", "datasets", "torchvision")


def loaded_after(code: str) -> dict[str, bool]:
    """Run ``code`` in a new interpreter; which of :data:`HEAVY` it left in ``sys.modules``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps({{m: m in sys.modules for m in {HEAVY}}}))"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_library_runs_and_cli_import_no_heavy_package() -> None:
    loaded = loaded_after(
        "import isp_lib, isp_lib.runs, isp_lib.cli, isp_lib.models, isp_lib.methods, "
        "isp_lib.records, isp_lib.report, isp_lib.models.clip, isp_lib.models.effnet"
    )
    assert loaded == dict.fromkeys(HEAVY, False)


def test_building_the_cnn_stand_in_imports_neither_open_clip_nor_transformers() -> None:
    pytest.importorskip("efficientnet_lite_pytorch")
    loaded = loaded_after(
        "import numpy as np\n"
        "from isp_lib.data.base import RawData, Split\n"
        "from isp_lib.models import build_model\n"
        "from isp_lib.profiles import get_profile\n"
        "split = Split([np.zeros((28, 28), dtype=np.uint8)] * 2, np.array([0, 1]))\n"
        "data = RawData('fashion-mnist', 'image', split, split, split, ['a', 'b'], 'accuracy', 2)\n"
        "bundle = build_model('effnet-lite0', data, get_profile('smoke'))\n"
        "items = bundle.make_dataset(data.train)\n"
        "assert bundle.collate([items[0], items[1]])['pixel_values'].shape == (2, 3, 32, 32)"
    )
    assert loaded == {**dict.fromkeys(HEAVY, False), "torchvision": True}
