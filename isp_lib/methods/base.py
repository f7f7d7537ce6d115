"""The method interface and the parsing of method options from ``--set key=value``."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, ClassVar

from isp_lib.context import RunContext
from isp_lib.errors import UserError


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """A method without options of its own."""


class Method:
    """A pruning (or soup) method: prunes ``ctx.model`` to ``ctx.sparsity`` and fine-tunes it.

    Subclasses set ``name``, ``summary`` (one line for ``isp run --help``), ``Options`` (a frozen
    dataclass of method-specific settings), ``prunes`` (False for methods whose result is
    dense: they need ``--sparsity 0``) and implement :meth:`run`. On return, ``ctx.model``
    holds the selected (best-on-validation) weights and ``ctx.mask`` the final mask.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    Options: ClassVar[type] = NoOptions
    prunes: ClassVar[bool] = True

    def run(self, ctx: RunContext, opts: Any) -> None:
        """Prune and fine-tune; see the class docstring."""
        raise NotImplementedError

    def check(self, sparsity: float, opts: Any) -> None:
        """Refuse settings this method cannot honour (raise :class:`UserError`)."""

    def validate(self, sparsity: float, opts: Any) -> None:
        """Refuse a nonzero sparsity for a dense method, then run :meth:`check`."""
        if not self.prunes and sparsity != 0.0:
            raise UserError(f"method '{self.name}' gives a dense model: pass --sparsity 0")
        self.check(sparsity, opts)


def _cast(value: str, typ: Any, key: str) -> Any:
    origin = typing.get_origin(typ)
    try:
        if origin is tuple:
            (inner, *_rest) = typing.get_args(typ)
            return tuple(inner(v) for v in value.split(",") if v.strip())
        if typ is bool:
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return value.lower() in ("true", "1", "yes")
        return typ(value)
    except (TypeError, ValueError):
        raise UserError(f"option {key}={value!r} is not valid: use {_expected(typ)}") from None


def _expected(typ: Any) -> str:
    if typing.get_origin(typ) is tuple:
        inner = typing.get_args(typ)[0]
        plural = {float: "numbers", int: "whole numbers"}.get(inner, f"{inner.__name__} values")
        return f"comma-separated {plural}, e.g. 1,0.5"
    return {bool: "true or false", int: "a whole number", float: "a number"}.get(
        typ, getattr(typ, "__name__", str(typ)))


def option_names(options_cls: type) -> list[str]:
    """Names of a method's options."""
    return [f.name for f in dataclasses.fields(options_cls)]


def parse_options(options_cls: type, raw: dict[str, str]) -> Any:
    """Build a method's options from strings, casting each to its declared type.

    Args:
        options_cls: the method's ``Options`` dataclass.
        raw: option name -> string value (only this method's options).

    Returns:
        An ``options_cls`` instance.
    """
    hints = typing.get_type_hints(options_cls)
    return options_cls(**{k: _cast(v, hints[k], k) for k, v in raw.items()})
