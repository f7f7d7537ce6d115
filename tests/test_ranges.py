"""Declared types and ranges of hyperparameters and method options (isp_lib.ranges)."""

from __future__ import annotations

import dataclasses
import time
import typing

import pytest

from isp_lib import cli
from isp_lib.errors import UserError
from isp_lib.methods import METHODS, get_method
from isp_lib.methods.base import check_options, parse_options
from isp_lib.methods.isp import ISPOptions
from isp_lib.profiles import PROFILES, Hparams, check_hparams
from isp_lib.ranges import Range, describe, field_type

SMOKE = PROFILES["smoke"]

BAD_HPARAMS = [
    ("batch_size", "-4"), ("batch_size", "0"), ("batch_size", "2.5"), ("batch_size", -4),
    ("batch_size", "inf"), ("batch_size", "sixteen"),
    ("lr", "nan"), ("lr", "0"), ("lr", "-1"), ("lr", "inf"), ("lr", float("nan")),
    ("weight_decay", "-0.1"), ("weight_decay", "inf"),
    ("epochs", "0"), ("epochs", "-1"), ("epochs", "nan"),
    ("warmup_frac", "1"), ("warmup_frac", "-0.1"),
    ("max_grad_norm", "-1"), ("max_grad_norm", "nan"),
    ("rate", "0"), ("rate", "1"), ("rate", "1.5"),
    ("lookahead_steps", "-1"), ("lookahead_steps", "1.5"),
    ("denoisers", "-1"),
    ("seed_frac", "0"), ("seed_frac", "-inf"),
    ("adjust_gap", "1"), ("adjust_gap", "-0.01"),
    ("evals_per_epoch", "0"),
]


def _one_line_naming(exc: pytest.ExceptionInfo, key: str) -> None:
    message = str(exc.value)
    assert "\n" not in message
    assert f"{key}=" in message and "e.g. --set " in message


@pytest.mark.parametrize(("key", "value"), BAD_HPARAMS)
def test_bad_hyperparameter_is_refused_in_one_line(key: str, value: object) -> None:
    with pytest.raises(UserError) as exc:
        SMOKE.hparams_for("bert", {key: value})
    _one_line_naming(exc, key)
    assert str(exc.value).startswith(f"hyperparameter {key}=")


def test_out_of_range_message_names_the_fix() -> None:
    with pytest.raises(UserError, match=r"^hyperparameter batch_size=-4 is out of range: use a "
                       r"whole number >= 1, e.g. --set batch_size=16$"):
        SMOKE.hparams_for("bert", {"batch_size": "-4"})
    with pytest.raises(UserError, match="batch_size='2.5' is not a whole number"):
        SMOKE.hparams_for("bert", {"batch_size": "2.5"})


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("epochs", "1.5", 1.5), ("epochs", 1.5, 1.5), ("epochs", "2", 2.0),
    ("batch_size", "3.0", 3), ("batch_size", "3", 3), ("batch_size", 3.0, 3),
    ("lr", "1e-3", 0.001), ("lr", "2", 2.0), ("weight_decay", "0", 0.0),
    ("lookahead_steps", "0", 0), ("denoisers", "1e1", 10), ("max_grad_norm", 0, 0.0),
])
def test_good_hyperparameter_is_cast_to_its_declared_type(key: str, value: object,
                                                         expected: float) -> None:
    hp = SMOKE.hparams_for("bert", {key: value})
    declared = field_type(next(f for f in dataclasses.fields(Hparams) if f.name == key))
    assert getattr(hp, key) == expected and type(getattr(hp, key)) is declared


def test_every_profile_entry_is_within_the_ranges() -> None:
    for profile in PROFILES.values():
        for family, hp in profile.hparams.items():
            check_hparams(hp)
            assert profile.hparams_for(family) == hp


def test_check_hparams_refuses_a_library_users_values() -> None:
    hp = Hparams(lr=1e-3, weight_decay=0.0, epochs=1, batch_size=8)
    check_hparams(hp)
    for bad in ({"epochs": 0}, {"batch_size": 2.0}, {"lr": float("inf")}, {"rate": True}):
        with pytest.raises(UserError):
            check_hparams(dataclasses.replace(hp, **bad))


def _settings() -> list[tuple[str, dataclasses.Field]]:
    """(owner, field) for every field of Hparams and of every registered method's Options."""
    out = [("hparams", f) for f in dataclasses.fields(Hparams)]
    for name, cls in METHODS.items():
        out += [(name, f) for f in dataclasses.fields(cls.Options)]
    return out


@pytest.mark.parametrize(("owner", "f"), _settings(), ids=lambda v: getattr(v, "name", v))
def test_every_numeric_setting_declares_a_range(owner: str, f: dataclasses.Field) -> None:
    typ = field_type(f)
    if typ is bool:
        assert "range" not in f.metadata and describe(f) == "bool"
        return
    if typ is str and "check" in f.metadata:  # a checked string (an N:M pattern) says what it takes
        f.metadata["check"](f.default)
        assert describe(f) == f.metadata["words"]
        return
    if typ is str:  # a choice among names declares them
        assert f.default in f.metadata["choices"] and describe(f).startswith("one of ")
        return
    assert typ in (int, float) or typing.get_args(typ) == (float, ...), (owner, f.name, typ)
    assert isinstance(f.metadata.get("range"), Range), (owner, f.name)
    assert describe(f).split()[0] in ("int", "float", "one")


def _method_options() -> list[tuple[str, dataclasses.Field]]:
    return [(name, f) for name, cls in METHODS.items() for f in dataclasses.fields(cls.Options)
            if "range" in f.metadata]


def _outside(rng: Range, typ: type) -> list[float]:
    """Values just outside the range: below the lower bound and above the upper one."""
    out = []
    if rng.low is not None:
        out.append(rng.low if rng.low_open else rng.low - 1)
    if rng.high is not None:
        out.append(rng.high if rng.high_open else rng.high + 1)
    return [int(v) if typ is int else v for v in out]


@pytest.mark.parametrize(("method", "f"), _method_options(),
                         ids=lambda v: getattr(v, "name", v))
def test_option_outside_its_range_is_refused(method: str, f: dataclasses.Field) -> None:
    cls = METHODS[method].Options
    typ = field_type(f)
    inner = typing.get_args(typ)[0] if typing.get_origin(typ) is tuple else typ
    bad_values = _outside(f.metadata["range"], inner)
    assert bad_values and f.metadata["range"].low is not None
    for bad in bad_values:
        with pytest.raises(UserError) as exc:
            parse_options(cls, {f.name: str(bad)})
        _one_line_naming(exc, f.name)
        assert str(exc.value).startswith(f"option {f.name}=")
        value = (bad,) if typing.get_origin(typ) is tuple else bad
        with pytest.raises(UserError):
            get_method(method).validate(0.5, cls(**{f.name: value}))
    if typing.get_origin(typ) is tuple:
        with pytest.raises(UserError, match=f"option {f.name}= is out of range: use one or more"):
            parse_options(cls, {f.name: ""})
    else:
        with pytest.raises(UserError, match=f"option {f.name}=.*nan.*"):
            parse_options(cls, {f.name: "nan"})


@pytest.mark.parametrize("name", list(METHODS))
def test_default_options_pass(name: str) -> None:
    check_options(METHODS[name].Options())


def test_option_messages_and_casts() -> None:
    with pytest.raises(UserError, match=r"^option mask_budget_frac=2.0 is out of range: use a "
                       r"number in \(0, 1\], e.g. --set mask_budget_frac=0.1$"):
        get_method("isp").validate(0.5, ISPOptions(mask_budget_frac=2))
    with pytest.raises(UserError, match="ingredients='2.5' is not a whole number"):
        parse_options(METHODS["greedy-soup"].Options, {"ingredients": "2.5"})
    opts = parse_options(METHODS["greedy-soup"].Options, {"ingredients": "4.0", "wds": "0,1e-3"})
    assert opts.ingredients == 4 and opts.wds == (0.0, 0.001)


@pytest.mark.parametrize(("spec", "inside", "outside", "text"), [
    ("> 0", [1e-9, 5], [0, -1], "> 0"),
    (">= 1", [1, 7], [0.99], ">= 1"),
    ("(0, 1]", [0.5, 1], [0, 1.01], "in (0, 1]"),
    ("[0, 1)", [0, 0.99], [1, -0.01], "in [0, 1)"),
])
def test_range_notation(spec: str, inside: list[float], outside: list[float], text: str) -> None:
    rng = Range.parse(spec)
    assert all(rng.contains(x) for x in inside)
    assert not any(rng.contains(x) for x in outside)
    assert rng.text() == text


def test_cli_refuses_a_bad_hyperparameter_before_loading(tmp_path, capsys) -> None:
    start = time.monotonic()
    code = cli.main(["run", "--method", "oneshot", "--model", "minilm", "--data", "drugreview",
                     "--sparsity", "0.5", "--profile", "smoke", "--out", str(tmp_path),
                     "--device", "cpu", "--set", "batch_size=-4"])
    assert code == 2 and time.monotonic() - start < 30
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "batch_size=-4" in err
    assert not any(tmp_path.iterdir())
