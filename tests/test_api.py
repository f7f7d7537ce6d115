"""``isp_lib.prune`` (isp_lib.api) on a user's own model: a tiny random BERT, a plain MLP.

Checked: the exact sparsity over the scope, head and pooler left dense, the mask under the
model's own names, pruned weights exactly zero in the returned model, ``evaluate``, the bound
of the scaled defaults, one-line errors before any training, and the README's own example.
"""

from __future__ import annotations

import itertools
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import isp_lib
from isp_lib import prune
from isp_lib.adapters import DefaultCollate
from isp_lib.api import PruneResult
from isp_lib.errors import UserError
from isp_lib.methods import METHODS
from isp_lib.methods.isp import ISPOptions
from isp_lib.scaled import LOOKAHEAD_SHARE, isp_rounds, scaled_hparams
from isp_lib.train import Trainer

datasets = pytest.importorskip("datasets")
transformers = pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parent.parent
FAST = {"lr": 1e-3, "epochs": 2, "batch_size": 8}


def tiny_bert(num_labels: int = 2) -> nn.Module:
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=64,
                                     num_labels=num_labels)
    return transformers.BertForSequenceClassification(config)


def token_data(n: int, num_labels: int = 2, label_key: str = "label", offset: int = 0):
    """Token ids of two lengths, a label and a raw-text field (to be dropped)."""
    rows = [[2, 5 + (i + offset) % 7, 9 + (i + offset) % num_labels, 3][: 3 + i % 2]
            for i in range(n)]
    return datasets.Dataset.from_dict({
        "input_ids": rows, label_key: [(i + offset) % num_labels for i in range(n)],
        "text": [f"example {i}" for i in range(n)],
    })


ENCODER = [f"bert.encoder.layer.{i}.{m}.weight" for i in range(2) for m in (
    "attention.self.query", "attention.self.key", "attention.self.value",
    "attention.output.dense", "intermediate.dense", "output.dense")]


@pytest.fixture(scope="module")
def bert_run() -> tuple[nn.Module, PruneResult]:
    model = tiny_bert()
    result = isp_lib.prune(model, token_data(48), token_data(16, offset=48), sparsity=0.7,
                           hparams=FAST, verbose=False)
    return model, result


def test_bert_is_pruned_in_place_to_the_exact_sparsity_of_its_own_names(bert_run) -> None:
    model, result = bert_run
    assert result.model is model
    params = dict(model.named_parameters())
    assert list(result.mask) == ENCODER  # the model's own names, in its order
    total = sum(params[n].numel() for n in ENCODER)
    pruned = sum(int((~m).sum()) for m in result.mask.values())
    assert pruned == round(0.7 * total)
    assert result.record["actual_sparsity"] == pytest.approx(pruned / total)
    for name, m in result.mask.items():
        assert bool((params[name][~m] == 0).all()), name
        assert params[name].device == m.device


def test_bert_head_and_pooler_stay_dense(bert_run) -> None:
    model, result = bert_run
    assert result.record["kept_dense"] == {"classifier": "head", "bert.pooler": "pooler"}
    for name in ("classifier.weight", "bert.pooler.dense.weight"):
        assert name not in result.mask
        assert bool((dict(model.named_parameters())[name] != 0).all()), name


def test_record_and_evaluate(bert_run) -> None:
    model, result = bert_run
    rec = result.record
    assert rec["method"] == "isp" and rec["metric_name"] == "accuracy"
    assert 0 <= rec["val_metric"] <= 100
    assert rec["train_steps"] == rec["ledger"]["steps"] > 0
    assert rec["scope"]["tensors"] == len(ENCODER)
    assert rec["hparams"]["lr"] == FAST["lr"] and rec["device"] == "cpu"
    looked = rec["ledger"]["phases"].get("lookahead", {"steps": 0})["steps"]
    assert looked <= LOOKAHEAD_SHARE * rec["budget_steps"]
    test = token_data(10, offset=64)
    acc = result.evaluate(test)
    assert isinstance(acc, float) and 0 <= acc <= 100
    assert result.evaluate([dict(row) for row in test]) == acc  # a list of dicts works too
    assert not model.training


class MLP(nn.Module):
    """A plain torch model: tensor output, head named ``fc``."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU())
        self.fc = nn.Linear(32, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x))


def mlp_data(n: int, seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 16, generator=g)
    y = (x @ torch.randn(16, 3, generator=torch.Generator().manual_seed(7))).argmax(1)
    return [{"x": x[i].tolist(), "labels": int(y[i])} for i in range(n)]


def test_plain_torch_model_with_fc_head_and_scaled_rounds(capsys) -> None:
    torch.manual_seed(0)
    model = MLP()
    hp = {"lr": 3e-3, "epochs": 10, "batch_size": 16}  # T = 100, up to 4 prune rounds
    result = isp_lib.prune(model, mlp_data(160, 1), mlp_data(48, 2), sparsity=0.8, hparams=hp)
    out = capsys.readouterr().out
    assert "scope: 2 tensors, 1,536 weights" in out and "kept dense: fc (head)" in out
    assert "scaled to T=100 steps" in out
    assert list(result.mask) == ["body.0.weight", "body.2.weight"]
    assert bool((model.fc.weight != 0).all())
    assert result.mask.num_kept() == 1536 - round(0.8 * 1536)
    rec = result.record
    scaled = rec["scaled"]
    assert scaled["rounds"] == 4
    assert scaled["lookahead_cost"] <= LOOKAHEAD_SHARE * scaled["budget"]
    assert rec["ledger"]["phases"]["lookahead"]["steps"] <= scaled["lookahead_cost"]
    assert rec["val_metric"] > 50  # it learns the linear teacher
    assert result.evaluate(mlp_data(32, 3)) > 50


@pytest.mark.parametrize("method", ["wanda", "sparsegpt"])
def test_calibration_methods_on_a_users_model(method) -> None:
    """Wanda and SparseGPT prune a user's own model from its training data, with their own
    setting (no fine-tune: the calibration pass only) or the one-shot fine-tune at 2:4."""
    from isp_lib.patterns import is_nm, parse_pattern

    torch.manual_seed(0)
    model = MLP()
    result = isp_lib.prune(model, mlp_data(160, 1), mlp_data(48, 2), method, 0.5, hparams=FAST,
                           options={"finetune": False}, verbose=False)
    assert result.mask.num_kept() == 1536 // 2
    assert list(result.record["ledger"]["phases"]) == ["calib"]
    assert bool((model.body[0].weight[~result.mask["body.0.weight"]] == 0).all())
    torch.manual_seed(0)
    result = isp_lib.prune(MLP(), mlp_data(160, 1), mlp_data(48, 2), method, 0.5, hparams=FAST,
                           options={"pattern": "2:4"}, verbose=False)
    assert is_nm(result.mask, parse_pattern("2:4"))
    assert result.record["ledger"]["phases"]["finetune"]["steps"] > 0


def test_custom_collate_and_exclude_and_scope() -> None:
    torch.manual_seed(0)
    model = MLP()
    rows = [(torch.tensor(d["x"]), d["labels"]) for d in mlp_data(32, 1)]

    def collate(items):
        return {"x": torch.stack([x for x, _ in items]),
                "label": torch.tensor([y for _, y in items])}

    result = isp_lib.prune(model, rows, rows, "oneshot", 0.5, hparams=FAST, collate=collate,
                           exclude=["body.0"], verbose=False)
    assert list(result.mask) == ["body.2.weight", "fc.weight"]  # exclude= replaces the default
    result = isp_lib.prune(model, rows, rows, "oneshot", 0.5, hparams=FAST, collate=collate,
                           scope=["fc.weight", "body.0.weight"], verbose=False)
    assert list(result.mask) == ["body.0.weight", "fc.weight"]  # as listed, in model order


def test_default_collate_pads_renames_and_drops() -> None:
    collate = DefaultCollate({"input_ids", "attention_mask", "token_type_ids"}, pad_id=0)
    batch = collate([{"input_ids": [5, 6, 7], "label": 1, "text": "a", "idx": 0},
                     {"input_ids": [8], "label": 0, "text": "b", "idx": 1}])
    assert set(batch) == {"input_ids", "attention_mask", "labels"}
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [1, 0] and batch["labels"].dtype == torch.int64


@pytest.mark.parametrize(("n_train", "epochs", "batch_size", "sparsity", "budget_frac"),
                         list(itertools.product((8, 40, 420, 5000, 100_000), (0.2, 1, 3, 10),
                                                (8, 32), (0.5, 0.9), (0.1, 0.6))))
def test_scaled_defaults_keep_lookaheads_within_30_percent_of_t(
        n_train, epochs, batch_size, sparsity, budget_frac) -> None:
    opts = ISPOptions(mask_budget_frac=budget_frac)
    s = scaled_hparams(n_train, epochs=epochs, batch_size=batch_size, sparsity=sparsity,
                       options=opts)
    spe = math.ceil(n_train / batch_size)
    assert s.budget == max(1, round(epochs * spe))
    assert s.rounds == isp_rounds(s.budget, spe, 0.075, budget_frac) >= 1
    assert s.lookahead_cost == s.rounds * s.denoisers * s.lookahead_steps
    assert s.lookahead_cost <= LOOKAHEAD_SHARE * s.budget
    assert 0 <= s.denoisers <= 4 and 1 <= s.lookahead_steps <= 30
    assert 0.1 <= s.rate < 1
    for c in (1, 3, 50):  # a C the user fixes: N is fitted to the bound
        fixed = scaled_hparams(n_train, epochs=epochs, batch_size=batch_size,
                               sparsity=sparsity, options=opts, lookahead_steps=c)
        assert fixed.lookahead_steps == c
        assert fixed.lookahead_cost <= LOOKAHEAD_SHARE * fixed.budget


def test_scaled_defaults_are_the_papers_at_paper_scale() -> None:
    s = scaled_hparams(100_000, epochs=10, batch_size=32, sparsity=0.7)
    assert (s.lookahead_steps, s.denoisers) == (30, 4)


class TupleOut(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(16, 8)
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        return (self.fc(self.body(x)),)


def no_label(n: int):
    return token_data(n).remove_columns("label")


BAD = [
    ("tuple output", lambda: (TupleOut(), mlp_data(8, 1), mlp_data(8, 2), {}),
     "the model returned a tuple, not logits: make its forward return a tensor of logits"),
    ("no labels", lambda: (tiny_bert(), no_label(8), token_data(8), {}),
     "train examples have no 'label' or 'labels' field (fields: input_ids, text)"),
    ("labels out of range", lambda: (tiny_bert(), token_data(8, num_labels=3), token_data(8), {}),
     "labels in train run from 0 to 2 but the model has 2 logits: use labels 0..1, or build "
     "the model with num_labels=3"),
    ("empty scope", lambda: (tiny_bert(), token_data(8), token_data(8), {"scope": []}),
     "nothing to prune: scope= is empty"),
    ("all excluded", lambda: (tiny_bert(), token_data(8), token_data(8),
                              {"exclude": ["bert", "classifier"]}),
     "nothing to prune: the model has no nn.Linear/nn.Conv weights outside bert, classifier"),
    ("sparsity 1", lambda: (tiny_bert(), token_data(8), token_data(8), {"sparsity": 1.0}),
     "sparsity 1.0 is outside [0, 1): pass e.g. sparsity=0.7"),
    ("sparsity < 0", lambda: (tiny_bert(), token_data(8), token_data(8), {"sparsity": -0.1}),
     "sparsity -0.1 is outside [0, 1)"),
    ("unknown method", lambda: (tiny_bert(), token_data(8), token_data(8), {"method": "isq"}),
     f"unknown method 'isq': use one of {', '.join(METHODS)}"),
    ("unknown hparam", lambda: (tiny_bert(), token_data(8), token_data(8),
                                {"hparams": {"epoch": 3}}),
     "unknown hyperparameter(s) epoch: use lr, weight_decay, epochs"),
    ("bad hparam", lambda: (tiny_bert(), token_data(8), token_data(8), {"hparams": {"lr": -1}}),
     "hyperparameter lr=-1.0 is out of range: use a number > 0"),
    ("unknown option", lambda: (tiny_bert(), token_data(8), token_data(8),
                                {"options": {"denoisers": 2}}),
     "unknown option(s) denoisers for method 'isp'"),
    ("unknown metric", lambda: (tiny_bert(), token_data(8), token_data(8), {"metric": "f1"}),
     "unknown metric 'f1': use one of accuracy, matthews, pearson"),
    ("dense method", lambda: (tiny_bert(), token_data(8), token_data(8), {"method": "dense"}),
     "method 'dense' gives a dense model: pass sparsity=0"),
    ("empty data", lambda: (tiny_bert(), [], token_data(8), {}),
     "train is empty: pass at least one example"),
    ("a data loader", lambda: (tiny_bert(), torch.utils.data.DataLoader(token_data(8)),
                               token_data(8), {}),
     "train is a DataLoader: pass a datasets.Dataset or a list of dicts"),
    ("string labels", lambda: (tiny_bert(), [{"input_ids": [1, 2], "label": "pos"}],
                               token_data(8), {}),
     "labels such as 'pos' are not numbers"),
    ("token logits", lambda: (transformers.BertForTokenClassification(tiny_bert().config),
                              token_data(8), token_data(8), {}),
     "the model's logits have shape (4, 4, 2) for 4 train examples: return one row of class "
     "scores per example"),
]


@pytest.mark.parametrize(("case", "make", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_one_line_before_any_training(monkeypatch, case, make, message) -> None:
    def no_step(self):
        raise AssertionError("a training step ran before the input was checked")

    monkeypatch.setattr(Trainer, "_step", no_step)
    model, train, val, kwargs = make()
    kwargs = {"hparams": FAST, "verbose": False, **kwargs}
    with pytest.raises(UserError) as err:
        isp_lib.prune(model, train, val, **kwargs)
    text = str(err.value)
    assert message in text, text
    assert "\n" not in text


def test_import_isp_lib_stays_cheap_and_prune_is_the_function() -> None:
    assert isp_lib.prune is prune and prune.__name__ == "prune"
    code = (
        "import sys\n"
        "import isp_lib\n"
        "assert 'torch' not in sys.modules\n"
        "from isp_lib import prune\n"
        "assert prune.__module__ == 'isp_lib.api'\n"
        "assert not any(m in sys.modules for m in ('transformers', 'datasets'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr


def readme_example() -> str:
    """The fenced python block of README.md's section on using the library on one's own model."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Using the library on your own model\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S)[1]


def test_readme_example_runs_as_written(capsys) -> None:
    code = readme_example()
    assert "isp_lib.prune(" in code and len(code.strip().splitlines()) < 10
    namespace: dict = {"__name__": "readme"}
    exec(compile(code, "README.md", "exec"), namespace)
    result = namespace["result"]
    assert result.model is namespace["model"]
    assert result.record["actual_sparsity"] == pytest.approx(0.7, abs=1e-3)
    assert "scope: 12 tensors" in capsys.readouterr().out
