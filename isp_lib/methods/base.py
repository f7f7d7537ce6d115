"""The method interface and the parsing of method options from ``--set key=value``."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from isp_lib.context import RunContext
from isp_lib.errors import UserError
from isp_lib.patterns import pattern_of, pattern_option
from isp_lib.ranges import added_later, cast_setting, check_fields


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """A method without options of its own."""


@dataclasses.dataclass(frozen=True)
class PatternOptions:
    """Attributes:
    pattern: ``none`` (unstructured) or ``N:M``: exactly N of every M consecutive weights along
        each weight's channel axis are kept (:mod:`isp_lib.patterns`); needs ``--sparsity``
        1 - N/M. Added after the first records: left out of the config hash while ``none``.
    """

    pattern: str = added_later(pattern_option())


@dataclasses.dataclass
class PruneState:
    """Resume state of a method that prunes once at the start, then fine-tunes.

    Attributes:
        pruned: the mask is set (the fine-tune may have begun).
    """

    pruned: bool = False


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
        """Refuse settings this method cannot honour (raise :class:`UserError`).

        Ranges of single options are declared on ``Options`` and checked by
        :func:`check_options`; this is for rules that span options or the sparsity.
        """

    def check_family(self, family: str, opts: Any) -> None:
        """Refuse options that make no sense on a model family of the registry (raise
        :class:`UserError`); ``isp run`` calls it, the API (a user's own model) does not."""

    def validate(self, sparsity: float, opts: Any) -> None:
        """Refuse a dense method's nonzero sparsity, out-of-range options and a sparsity other
        than that of an N:M ``pattern`` option; run :meth:`check`."""
        if not self.prunes and sparsity != 0.0:
            raise UserError(f"method '{self.name}' gives a dense model: pass --sparsity 0")
        check_options(opts)
        pattern = pattern_of(opts)
        if pattern is not None:
            pattern.check_sparsity(sparsity)
        self.check(sparsity, opts)


def option_names(options_cls: type) -> list[str]:
    """Names of a method's options."""
    return [f.name for f in dataclasses.fields(options_cls)]


def parse_options(options_cls: type, raw: dict[str, object]) -> Any:
    """Build a method's options from ``--set`` values, cast to their declared types and checked.

    Args:
        options_cls: the method's ``Options`` dataclass.
        raw: option name -> value, a string or a number (only this method's options).

    Returns:
        An ``options_cls`` instance, each option within its declared range.
    """
    known = {f.name: f for f in dataclasses.fields(options_cls)}
    opts = options_cls(**{k: cast_setting(known[k], v, "option") for k, v in raw.items()})
    check_options(opts)
    return opts


def check_options(opts: Any) -> None:
    """Refuse options outside their declared types and ranges (:class:`UserError`).

    Args:
        opts: a method's ``Options`` instance; each numeric field declares its range with
            :func:`~isp_lib.ranges.ranged`.
    """
    check_fields(opts, "option")
