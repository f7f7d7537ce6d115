"""Prune your own model in one call: :func:`prune` (also ``isp_lib.prune``).

>>> import isp_lib
>>> result = isp_lib.prune(model, train, val, sparsity=0.7)   # doctest: +SKIP
>>> result.evaluate(test)                                     # doctest: +SKIP

:func:`prune` takes a ``transformers`` model as it is (its ``ModelOutput``'s ``.logits`` are
used) or any module that returns logits, and a ``datasets.Dataset`` or a list of dicts with a
``"label"`` (or ``"labels"``) field. It finds the prunable scope (the weights of ``nn.Linear``
and ``nn.Conv*d`` layers, without the classification head and any pooler), checks everything
it can on one batch before it trains, chooses the hyperparameters the user leaves out (see
:func:`isp_lib.scaled.scaled_hparams`), and runs a method of :mod:`isp_lib.methods` on a
:class:`~isp_lib.context.RunContext`. The user's model comes back pruned in place, with a
:class:`~isp_lib.masks.Mask` keyed by its own parameter names. For full control (checkpoints,
your own scope family, bf16) use :class:`~isp_lib.context.RunContext` directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import torch
from torch import nn

from isp_lib.adapters import (
    WRAP_PREFIX,
    DefaultCollate,
    Examples,
    LogitsModel,
    Renamed,
    all_labels,
    check_examples,
    check_labels,
    find_head,
    first_batch_of,
    input_names,
    probe,
    select_scope,
    under_any,
)
from isp_lib.context import RunContext
from isp_lib.errors import UserError
from isp_lib.masks import Mask
from isp_lib.methods import METHODS, get_method
from isp_lib.methods.base import option_names, parse_options
from isp_lib.profiles import Hparams, check_hparams
from isp_lib.ranges import cast_setting
from isp_lib.scaled import LOOKAHEAD_SHARE, scaled_hparams
from isp_lib.train import evaluate as evaluate_model

#: Hyperparameters :func:`prune` uses where the user gives none (the rest of
#: :class:`~isp_lib.profiles.Hparams` keeps its declared defaults, and the look-ahead fields
#: and the rate are scaled by :func:`~isp_lib.scaled.scaled_hparams` for ISP).
BASE_HPARAMS: dict[str, Any] = {"lr": 2e-5, "weight_decay": 0.0, "epochs": 3, "batch_size": 16}

METRICS = ("accuracy", "matthews", "pearson")



@dataclass
class PruneResult:
    """What :func:`prune` returns.

    Attributes:
        model: the user's model, pruned in place (pruned weights exactly zero), fine-tuned,
            with the best weights on validation, in eval mode.
        mask: the final mask, keyed by the model's own parameter names (True = kept).
        record: ``method``, ``target_sparsity``, ``actual_sparsity`` (over the scope),
            ``metric_name``, ``val_metric``, ``train_steps``, ``budget_steps``,
            ``samples_seen``, ``ledger`` (steps and samples per phase), ``hparams``,
            ``options``, ``scaled`` (the scaled defaults, or None), ``scope`` (tensors,
            weights, share of the model), ``kept_dense``, ``device`` and ``seed``.
    """

    model: nn.Module
    mask: Mask
    record: dict[str, Any]
    _wrapped: LogitsModel = field(repr=False)
    _collate: Callable = field(repr=False)
    _default_collate: bool = field(repr=False)
    _device: torch.device = field(repr=False)
    _num_logits: int = field(repr=False)

    def evaluate(self, test: Examples, batch_size: int = 64) -> float:
        """The metric (``record["metric_name"]``, in percent) of the model on ``test``.

        Args:
            test: examples in the form of the training data (same collate).
            batch_size: evaluation batch size.

        Returns:
            The metric in percent.
        """
        check_examples(test, "test", self._default_collate)
        first_batch_of(test, self._collate, 0, 2)
        check_labels(all_labels(test, self._collate, self._default_collate),
                      self._num_logits, "test")
        return evaluate_model(self._wrapped, test, self._collate, self.record["metric_name"],
                              self._device, batch_size=batch_size)


def _device_of(device: str | torch.device) -> torch.device:
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise UserError(f"unknown device {device!r}: use 'auto', 'cpu' or 'cuda'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError("device='cuda' but no CUDA device is visible: use device='auto'")
    return dev


def _refuse_unknown(given: Iterable[str], known: Iterable[str], what: str, use: str,
                    where: str = "") -> None:
    """Raise one line naming the given names that are not ``known``, and what to use."""
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise UserError(f"unknown {what} {', '.join(unknown)}{where}: use {use}")


def _hparams(hparams: Mapping[str, Any] | Hparams | None) -> tuple[Hparams, set[str]]:
    """The base hyperparameters (before scaling) and the names the user gave."""
    if isinstance(hparams, Hparams):
        check_hparams(hparams)
        return hparams, {f.name for f in fields(Hparams)}
    known = {f.name: f for f in fields(Hparams)}
    given = dict(hparams or {})
    _refuse_unknown(given, known, "hyperparameter(s)", ", ".join(known))
    try:
        cast = {k: cast_setting(known[k], v, "hyperparameter") for k, v in given.items()}
        hp = Hparams(**{**BASE_HPARAMS, **cast})
        check_hparams(hp)
    except UserError as exc:
        raise UserError(str(exc).replace("--set ", "hparams ")) from None
    return hp, set(given)


def _options(method: Any, options: Mapping[str, Any] | None, sparsity: float) -> Any:
    names = option_names(method.Options)
    given = dict(options or {})
    _refuse_unknown(given, names, "option(s)", ", ".join(names) or "none (it has no options)",
                    f" for method '{method.name}'")
    try:
        opts = parse_options(method.Options, given)
        method.validate(sparsity, opts)
    except UserError as exc:
        msg = str(exc).replace("--sparsity 0", "sparsity=0").replace("--set ", "options ")
        raise UserError(msg) from None
    return opts


def _quiet(*_args: Any, **_kwargs: Any) -> None:
    """Prints nothing (``verbose=False``)."""


def prune(
    model: nn.Module,
    train: Examples,
    val: Examples,
    method: str = "isp",
    sparsity: float = 0.7,
    *,
    metric: str = "accuracy",
    hparams: Mapping[str, Any] | Hparams | None = None,
    options: Mapping[str, Any] | None = None,
    collate: Callable[[list[Any]], Mapping[str, torch.Tensor]] | None = None,
    device: str | torch.device = "auto",
    seed: int = 0,
    scope: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    verbose: bool = True,
) -> PruneResult:
    """Prune ``model`` to ``sparsity`` with ``method``, fine-tuned on ``train`` within one
    budget T, the best weights on ``val`` kept.

    Everything is checked on one batch of each split before any training; bad input raises
    :class:`~isp_lib.errors.UserError` with one line that names the fix.

    Args:
        model: a ``transformers`` model as it is (its output's ``.logits`` are used) or any
            module whose forward takes the batch's fields as keyword arguments and returns
            logits ``(batch, num_labels)`` (one output: regression, with ``metric="pearson"``).
        train, val: a ``datasets.Dataset`` or a sequence of dicts with ``"label"`` or
            ``"labels"`` (see :class:`DefaultCollate`; fields the forward does not take, such
            as raw text, are dropped).
        method: a name in :data:`isp_lib.methods.METHODS` (``isp``, ``imp``, ``oneshot``, ...).
        sparsity: target share of pruned weights over the scope, in [0, 1).
        metric: ``accuracy``, ``matthews`` or ``pearson``.
        hparams: :class:`~isp_lib.profiles.Hparams` fields (a dict: the missing ones are
            :data:`BASE_HPARAMS`, the declared defaults, and for ISP the look-ahead steps,
            denoisers and rate of :func:`scaled_hparams`), or a complete ``Hparams``.
        options: the method's options (``isp list`` shows them), e.g. ``{"fit_rate": False}``.
        collate: batches a list of examples into a dict of tensors with ``"labels"`` (default:
            :class:`DefaultCollate`).
        device: ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"`` or a
            ``torch.device``; the model is moved there.
        seed: run seed (batch order, look-ahead subsets; also seeds torch's global RNG).
        scope: names of the parameters to prune, pruned as listed (default: the weights of
            every ``nn.Linear`` and ``nn.Conv*d`` outside the head and any pooler, so no
            embeddings, LayerNorms or biases).
        exclude: module or parameter names kept dense, instead of the automatic choice (the
            classification head, found from ``get_output_embeddings()``, the attributes
            ``classifier``, ``score``, ``head``, ``fc`` and the layer that outputs the logits,
            and any ``pooler``); ``exclude=[]`` prunes those too.
        verbose: print the scope, the inputs and the hyperparameters before training.

    Returns:
        A :class:`PruneResult`: ``.model`` (the same object, pruned), ``.mask`` (the model's
        own parameter names), ``.record`` and ``.evaluate(test)``.
    """
    meth = get_method(method) if isinstance(method, str) else None
    if meth is None:
        raise UserError(f"method must be a name: use one of {', '.join(METHODS)}")
    if isinstance(sparsity, bool) or not isinstance(sparsity, int | float) \
            or not 0.0 <= float(sparsity) < 1.0:
        raise UserError(f"sparsity {sparsity!r} is outside [0, 1): pass e.g. sparsity=0.7")
    sparsity = float(sparsity)
    if not meth.prunes and sparsity != 0.0:
        raise UserError(f"method '{method}' gives a dense model: pass sparsity=0")
    if metric not in METRICS:
        raise UserError(f"unknown metric '{metric}': use one of {', '.join(METRICS)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UserError(f"seed {seed!r} is not a whole number >= 0: pass e.g. seed=0")
    if not isinstance(model, nn.Module):
        raise UserError(f"model is a {type(model).__name__}: pass a torch.nn.Module")
    opts = _options(meth, options, sparsity)
    hp, given = _hparams(hparams)
    dev = _device_of(device)
    default = collate is None
    check_examples(train, "train", default)
    check_examples(val, "val", default)

    inputs = input_names(model)
    if default:
        pad = getattr(getattr(model, "config", None), "pad_token_id", None)
        batcher: Callable = DefaultCollate(inputs, pad if isinstance(pad, int) else 0)
    else:
        batcher = Renamed(collate)
    model.to(dev)
    wrapped = LogitsModel(model)
    first_batch = first_batch_of(train, batcher, 0, min(len(train), 4))
    logits, outputs = probe(wrapped, first_batch, dev, "train")
    probe(wrapped, first_batch_of(val, batcher, 0, min(len(val), 4)), dev, "val")
    num_logits = logits.shape[1]
    if num_logits == 1 and metric != "pearson":
        raise UserError(f"the model has one output (regression) but metric='{metric}': pass "
                        "metric='pearson', or build the model with one logit per class")
    if num_logits > 1 and metric == "pearson":
        raise UserError(f"metric='pearson' needs one output but the model has {num_logits} "
                        "logits: pass metric='accuracy'")
    for split, data in (("train", train), ("val", val)):
        check_labels(all_labels(data, batcher, default), num_logits, split)

    head = find_head(model, outputs)
    names, dense = select_scope(model, scope, exclude, head)
    scaled = None
    if meth.name == "isp" and not isinstance(hparams, Hparams):
        scaled = scaled_hparams(
            len(train), epochs=hp.epochs, batch_size=hp.batch_size, sparsity=sparsity,
            seed_frac=hp.seed_frac, options=opts,
            lookahead_steps=hp.lookahead_steps if "lookahead_steps" in given else None,
            denoisers=hp.denoisers if "denoisers" in given else None)
        hp = replace(hp, lookahead_steps=scaled.lookahead_steps, denoisers=scaled.denoisers,
                     rate=hp.rate if "rate" in given else scaled.rate)
        check_hparams(hp)

    params = dict(model.named_parameters())
    n_scope = sum(params[n].numel() for n in names)
    n_model = sum(p.numel() for p in model.parameters())
    scope_info = {"tensors": len(names), "weights": n_scope, "share": n_scope / n_model}
    say = print if verbose else _quiet
    say(f"isp_lib.prune: {meth.name} to {sparsity:.0%} sparsity on {dev.type}, {len(train)} "
        f"train / {len(val)} val examples, {num_logits} logits, metric {metric}")
    say(f"scope: {len(names)} tensors, {n_scope:,} weights = {scope_info['share']:.1%} of the "
        f"model's {n_model:,} parameters; kept dense: "
        + (", ".join(f"{n} ({why})" for n, why in dense.items()) or "nothing"))
    pruned_heads = [n for n, why in head.items() if why == "head" and under_any(names, n)]
    if pruned_heads:
        say(f"note: the head {', '.join(pruned_heads)} is pruned (as exclude= or scope= say)")
    if not any(why == "head" for why in head.values()):
        say("note: no classification head found: pass exclude=['<head module>'] to keep it "
            "dense")
    if default:
        fed = [k for k in first_batch if k != "labels"]
        dropped = [str(k) for k in train[0] if k not in fed and k not in ("label", "labels")]
        say(f"inputs: {', '.join(fed)}" + (f" (dropped: {', '.join(dropped)})" if dropped else ""))
    say("hparams: " + " ".join(f"{k}={v}" for k, v in asdict(hp).items()))
    if scaled is not None:
        say(f"scaled to T={scaled.budget} steps: C={hp.lookahead_steps} look-ahead steps x "
            f"N={hp.denoisers} denoisers x at most {scaled.rounds} rounds = "
            f"{scaled.lookahead_cost} steps ({scaled.share:.0%} of T, bound "
            f"{LOOKAHEAD_SHARE:.0%}); rate {hp.rate:.3g}")

    ctx = _ScopedContext(model=wrapped, family="linear", train_set=train, val_set=val,
                         collate=batcher, metric=metric, hp=hp, sparsity=sparsity, seed=seed,
                         device=dev, scope_names=tuple(WRAP_PREFIX + n for n in names))
    torch.manual_seed(seed)
    meth.run(ctx, opts)
    wrapped.eval()
    best = ctx.progress.get("best_val")
    val_metric = float(best) if best is not None else ctx.evaluate_val()
    mask = Mask({n[len(WRAP_PREFIX):]: m for n, m in ctx.mask.items()})
    record = {
        "method": meth.name, "target_sparsity": sparsity, "actual_sparsity": mask.sparsity(),
        "metric_name": metric, "val_metric": val_metric, "train_steps": ctx.ledger.steps,
        "budget_steps": ctx.budget, "samples_seen": ctx.ledger.samples,
        "ledger": ctx.ledger.to_dict(), "hparams": asdict(hp), "options": asdict(opts),
        "scaled": None if scaled is None else asdict(scaled), "scope": scope_info,
        "kept_dense": dense, "device": str(dev), "seed": seed,
    }
    say(f"done: sparsity {mask.sparsity():.1%} over the scope, val {metric} {val_metric:.2f}, "
        f"{ctx.ledger.steps} steps (budget T={ctx.budget})")
    return PruneResult(model, mask, record, wrapped, batcher, default, dev, num_logits)


@dataclass
class _ScopedContext(RunContext):
    """A run context whose prunable scope is an explicit list of parameter names."""

    scope_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        named = dict(self.model.named_parameters())
        self.params = {n: named[n] for n in self.scope_names}
        if self.mask is None:
            self.mask = Mask.ones_like(self.params)

