"""Declared types and ranges of the numeric settings (hyperparameters and method options).

A dataclass field declares its range with :func:`ranged`; its type is its annotation (``int``,
``float``, ``bool`` or ``tuple[float, ...]``). :func:`cast_setting` turns a ``--set`` value into
that type, :func:`check_fields` checks every ranged field of an instance, and :func:`describe`
says in a few words what a field takes (for ``isp list``). A string field takes one of some
names (:func:`one_of`) or what a check accepts (:func:`checked`). An option added to a method
after records were made with it is declared :func:`added_later` and left out of the resolved
configuration at its default (:func:`resolved_fields`), so that older config hashes hold.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from isp_lib.errors import UserError

#: The names a string annotation of a setting may use (``from __future__ import annotations``).
_TYPE_NAMES = {"int": int, "float": float, "bool": bool, "str": str, "tuple": tuple}


@dataclass(frozen=True)
class Range:
    """Bounds of a number, or of each element of a tuple of numbers (which must be non-empty).

    Attributes:
        low: lower bound (None: unbounded below).
        high: upper bound (None: unbounded above).
        low_open: exclude ``low`` itself.
        high_open: exclude ``high`` itself.
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    @classmethod
    def parse(cls, spec: str) -> Range:
        """A range from its usual notation: ``"> 0"``, ``">= 1"``, ``"(0, 1]"``, ``"[0, 1)"``.

        Args:
            spec: the notation.

        Returns:
            The :class:`Range`.
        """
        spec = spec.strip()
        if spec[:1] in "([" and spec[-1:] in ")]":
            low, high = (float(part) for part in spec[1:-1].split(","))
            return cls(low, high, spec[0] == "(", spec[-1] == ")")
        for op, is_open in ((">=", False), (">", True)):
            if spec.startswith(op):
                return cls(low=float(spec[len(op):]), low_open=is_open)
        raise ValueError(f"unknown range notation {spec!r}")

    def contains(self, x: float) -> bool:
        """Whether ``x`` (finite) lies in the range."""
        if self.low is not None and (x <= self.low if self.low_open else x < self.low):
            return False
        return self.high is None or (x < self.high if self.high_open else x <= self.high)

    def text(self) -> str:
        """The range in words: ``"> 0"``, ``">= 1"``, ``"in (0, 1]"`` (empty if unbounded)."""
        if self.low is not None and self.high is not None:
            return (f"in {'(' if self.low_open else '['}{self.low:g}, "
                    f"{self.high:g}{')' if self.high_open else ']'}")
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        return ""


def ranged(spec: str, default: Any = dataclasses.MISSING, *, example: Any = None) -> Any:
    """A dataclass field whose value (each element, for a tuple) must lie in ``spec``.

    Args:
        spec: the range in :meth:`Range.parse` notation.
        default: the field's default (none: a required field).
        example: a valid value for messages; the default when not given.

    Returns:
        A :func:`dataclasses.field` carrying the range in its metadata.
    """
    return dataclasses.field(default=default, metadata={
        "range": Range.parse(spec), "example": default if example is None else example})


def one_of(choices: tuple[str, ...], default: str) -> Any:
    """A dataclass field (a ``str``) that takes one of ``choices``.

    Args:
        choices: the allowed values.
        default: the field's default (one of them).

    Returns:
        A :func:`dataclasses.field` carrying the choices in its metadata.
    """
    return dataclasses.field(default=default, metadata={"choices": tuple(choices)})


def checked(check: Callable[[str], object], words: str, default: str, example: str) -> Any:
    """A dataclass field (a ``str``) whose value ``check`` accepts.

    Args:
        check: raises ``ValueError`` saying why for a value it refuses.
        words: what the field takes, for ``isp list`` and messages (``"none or N:M ..."``).
        default: the field's default (``check`` accepts it).
        example: a valid value for messages.

    Returns:
        A :func:`dataclasses.field` carrying the check in its metadata.
    """
    return dataclasses.field(default=default, metadata={"check": check, "words": words,
                                                        "example": example})


def added_later(f: Any) -> Any:
    """Mark a method option added after records were made with that method.

    At its default such an option must reproduce the computation made before it existed;
    :func:`resolved_fields` then leaves it out of the resolved configuration, so the config
    hashes of the cells recorded before it (``results/*.jsonl``) stay valid. Set to anything
    else, it enters the configuration like any option.

    Args:
        f: the option's field (from :func:`ranged`, :func:`one_of` or :func:`checked`).

    Returns:
        The same field, marked.
    """
    return dataclasses.field(default=f.default, metadata={**f.metadata, "added_later": True})


def resolved_fields(obj: Any) -> dict[str, Any]:
    """A method's options as they enter the resolved configuration (and so the config hash).

    Args:
        obj: a dataclass instance.

    Returns:
        :func:`dataclasses.asdict` of ``obj`` without the fields marked :func:`added_later`
        that are at their default.

    >>> @dataclass
    ... class Opts:
    ...     rate: float = 0.1
    ...     pattern: str = added_later(dataclasses.field(default="none"))
    >>> resolved_fields(Opts()), resolved_fields(Opts(pattern="2:4"))
    ({'rate': 0.1}, {'rate': 0.1, 'pattern': '2:4'})
    """
    values = dataclasses.asdict(obj)
    return {f.name: values[f.name] for f in dataclasses.fields(obj)
            if not (f.metadata.get("added_later") and values[f.name] == f.default)}


def field_type(f: dataclasses.Field) -> Any:
    """A field's annotation as a type (resolving a postponed string annotation).

    Args:
        f: a dataclass field.

    Returns:
        The type, e.g. ``float`` or ``tuple[float, ...]``.
    """
    if isinstance(f.type, str):
        # Only the annotations of the kit's own dataclasses get here, with no builtins in scope.
        return eval(f.type, {"__builtins__": {}}, _TYPE_NAMES)
    return f.type


def describe(f: dataclasses.Field) -> str:
    """What a setting takes, in a few words: ``"float > 0"``, ``"one or more floats in [0, 1]"``.

    Args:
        f: a field of :class:`~isp_lib.profiles.Hparams` or of a method's ``Options``.

    Returns:
        Its type and, where declared, its range.
    """
    if "choices" in f.metadata:
        return f"one of {', '.join(f.metadata['choices'])}"
    if "check" in f.metadata:
        return f.metadata["words"]
    typ = field_type(f)
    rng = f.metadata.get("range", Range())
    if typing.get_origin(typ) is tuple:
        inner = typing.get_args(typ)[0]
        return f"one or more {inner.__name__}s {rng.text()}".strip()
    return f"{getattr(typ, '__name__', typ)} {rng.text()}".strip()


def cast_setting(f: dataclasses.Field, value: object, what: str) -> Any:
    """Cast a ``--set`` value (a string or a number) to the field's declared type.

    An int field takes ``"3"`` and ``"3.0"`` but not ``"2.5"``; a tuple field takes
    comma-separated values. Ranges are checked by :func:`check_fields`, not here.

    Args:
        f: the field.
        value: the value given.
        what: ``"hyperparameter"`` or ``"option"`` (for the message).

    Returns:
        The value as the field's type.
    """
    typ = field_type(f)
    try:
        if typing.get_origin(typ) is tuple:
            inner = typing.get_args(typ)[0]
            parts = value.split(",") if isinstance(value, str) else value
            if not isinstance(parts, list | tuple):
                parts = [parts]
            return tuple(_scalar(p, inner) for p in parts if not (isinstance(p, str)
                                                                   and not p.strip()))
        return _scalar(value, typ)
    except _NotWhole:
        raise UserError(f"{what} {f.name}={value!r} is not a whole number: use {_fix(f)}") from None
    except (TypeError, ValueError):
        if typing.get_origin(typ) is tuple:
            rng = f.metadata.get("range", Range()).text()
            fix = (f"comma-separated numbers, e.g. 1,0.5 (each {rng}: --set {f.name}="
                   f"{_show(_example(f))})")
        else:
            fix = _fix(f)
        raise UserError(f"{what} {f.name}={value!r} is not valid: use {fix}") from None


def check_fields(obj: Any, what: str) -> None:
    """Refuse a ranged field of ``obj`` whose value is not a finite number in its range.

    Args:
        obj: a dataclass instance (hyperparameters or method options).
        what: ``"hyperparameter"`` or ``"option"`` (for the message).
    """
    for f in dataclasses.fields(obj):
        choices = f.metadata.get("choices")
        if choices is not None and getattr(obj, f.name) not in choices:
            raise UserError(f"{what} {f.name}={getattr(obj, f.name)!r} is not valid: use one of "
                            f"{', '.join(choices)}, e.g. --set {f.name}={choices[0]}")
        check = f.metadata.get("check")
        if check is not None:
            try:
                check(getattr(obj, f.name))
            except ValueError as exc:
                raise UserError(f"{what} {f.name}={getattr(obj, f.name)!r} is not valid ({exc}): "
                                f"use {_fix(f)}") from None
        if "range" not in f.metadata:
            continue
        typ, value = field_type(f), getattr(obj, f.name)
        if typing.get_origin(typ) is tuple:
            inner = typing.get_args(typ)[0]
            ok = isinstance(value, tuple | list) and len(value) > 0
            ok = ok and all(_in_range(v, inner, f.metadata["range"]) for v in value)
        else:
            ok = _in_range(value, typ, f.metadata["range"])
        if not ok:
            raise UserError(
                f"{what} {f.name}={_show(value, typ)} is out of range: use {_fix(f)}")


class _NotWhole(ValueError):
    """A number given for a whole-number setting that is not whole (e.g. 2.5)."""


def _scalar(value: object, typ: Any) -> Any:
    """Cast one value to ``typ`` (ValueError or TypeError if it does not fit)."""
    if typ is bool:
        text = str(value).strip().lower()
        if text not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(value)
        return text in ("true", "1", "yes")
    if isinstance(value, bool) or not isinstance(value, str | numbers.Real):
        raise TypeError(value)
    if typ is int:
        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            return int(value)
        number = float(value)
        if not number.is_integer():
            raise _NotWhole(value)
        return int(number)
    return typ(value)


def _in_range(value: object, typ: Any, rng: Range) -> bool:
    """Whether ``value`` is a number of ``typ`` (finite) within ``rng``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    if typ is int and not isinstance(value, numbers.Integral):
        return False
    return math.isfinite(value) and rng.contains(value)


def _fix(f: dataclasses.Field) -> str:
    """What to pass instead: e.g. ``a number in (0, 1], e.g. --set mask_budget_frac=0.1``."""
    if "choices" in f.metadata:
        return f"one of {', '.join(f.metadata['choices'])}"
    if "check" in f.metadata:
        return f"{f.metadata['words']}, e.g. --set {f.name}={_example(f)}"
    typ = field_type(f)
    rng = f.metadata.get("range", Range())
    if typ is bool:
        kind = "true or false"
    elif typing.get_origin(typ) is tuple:
        kind = "one or more comma-separated numbers"
    else:
        kind = "a whole number" if typ is int else "a number"
    return f"{kind} {rng.text()}".strip() + f", e.g. --set {f.name}={_show(_example(f))}"


def _example(f: dataclasses.Field) -> Any:
    """A valid value of the field: its declared example, else its default."""
    return f.metadata.get("example", f.default)


def _show(value: object, typ: Any = None) -> str:
    """A value as one would type it after ``--set`` (a whole number as a float for ``float``)."""
    if isinstance(value, tuple | list):
        inner = typing.get_args(typ)[0] if typing.get_origin(typ) is tuple else None
        return ",".join(_show(v, inner) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(float(value)) if typ is float and isinstance(value, int) else str(value)

