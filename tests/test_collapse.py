"""No method may collapse to a single predicted class where the dense model does not.

Smoke profile, tiny CLIP on Fashion-MNIST (the smoke family whose dense model learns more than
one class in seconds); the methods of the headline comparisons (one-shot, IMP and ISP at 50%,
IMS dense), to keep the suite fast. Random pruning is the paper's floor and may legitimately
destroy a tiny model, so it is not among them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from isp_lib.methods import METHODS
from isp_lib.predictions import predicted_classes
from isp_lib.runs import make_config, run

HEADLINE = ("oneshot", "imp", "isp", "ims")


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    from isp_lib.data.vision import FASHION_MNIST_DIR

    if not Path(FASHION_MNIST_DIR).is_dir():
        pytest.skip("Fashion-MNIST not installed (make assets)")
    return tmp_path_factory.mktemp("collapse")


def smoke_run(method: str, out: Path) -> dict:
    sparsity = 0.5 if METHODS[method].prunes else 0.0
    cfg = make_config(method, "clip-vit-b32", "fashion-mnist", sparsity, "smoke")
    return run(cfg, out, device="cpu")


@pytest.mark.parametrize("method", HEADLINE)
def test_no_method_collapses_where_dense_does_not(method, out):
    dense = predicted_classes(smoke_run("dense", out)["test_confusion"])
    assert dense > 1, "the smoke dense model predicts one class: the check would be vacuous"
    assert predicted_classes(smoke_run(method, out)["test_confusion"]) > 1
