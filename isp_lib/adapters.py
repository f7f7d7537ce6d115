"""A user's own model and data, as the kit's trainer takes them: logits from a ``transformers``
``ModelOutput`` (:class:`LogitsModel`), a default collate for ``datasets.Dataset`` rows or
dicts with ``"label"``/``"labels"`` (:class:`DefaultCollate`), and the prunable scope without
the classification head and pooler (:func:`find_head`, :func:`select_scope`). Used by
:func:`isp_lib.api.prune`.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from isp_lib.errors import UserError

#: Fields a default collate pads (with 0, ``input_ids`` with the model's pad token id).
PAD_FIELDS = ("input_ids", "attention_mask", "token_type_ids")

_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_HEAD_ATTRS = ("classifier", "score", "head", "fc")
#: The prefix the trainer's wrapper (:class:`LogitsModel`) adds to the user's parameter names.
WRAP_PREFIX = "model."

Examples = Sequence[Mapping[str, Any]]



def logits_of(output: Any) -> torch.Tensor:
    """The logits in a model's output: a tensor as is, else its ``.logits`` (a
    ``transformers`` ``ModelOutput``) or its ``"logits"`` entry.

    Raises:
        UserError: for anything else.
    """
    if isinstance(output, torch.Tensor):
        return output
    logits = getattr(output, "logits", None)
    if logits is None and isinstance(output, Mapping):
        logits = output.get("logits")
    if isinstance(logits, torch.Tensor):
        return logits
    raise UserError(
        f"the model returned a {type(output).__name__}, not logits: make its forward return a "
        "tensor of logits or an object with .logits (a transformers ModelOutput; do not pass "
        "return_dict=False)")


class LogitsModel(nn.Module):
    """Wraps a model so that it returns logits (what the kit's trainer expects).

    Its parameter names are the wrapped model's with the prefix ``model.``.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, **batch: torch.Tensor) -> torch.Tensor:
        """The wrapped model's logits for a batch of keyword inputs."""
        return logits_of(self.model(**batch))


def input_names(model: nn.Module) -> set[str] | None:
    """Keyword inputs the model's forward names (None: it names none, so pass every field)."""
    try:
        params = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):
        return None
    names = {p.name for p in params
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return names or None


# --------------------------------------------------------------------------- data


class DefaultCollate:
    """Batches dicts of fields for a model's forward.

    ``label`` is renamed ``labels``; fields the model's forward does not name are dropped,
    and so are fields that are not numbers (e.g. raw text); equal-shaped fields are stacked;
    ``input_ids``, ``attention_mask`` and ``token_type_ids`` of different lengths are padded on
    the right (``input_ids`` with ``pad_id``, the others with 0), and an ``attention_mask`` is
    added if the model takes one and the examples have none.

    Args:
        inputs: the forward's input names (None: keep every field).
        pad_id: the padding token id.
    """

    def __init__(self, inputs: set[str] | None = None, pad_id: int = 0) -> None:
        self.inputs = inputs
        self.pad_id = pad_id

    def keeps(self, key: str) -> bool:
        """Whether a field of this name goes to the model (or is the labels)."""
        name = "labels" if key == "label" else key
        return name == "labels" or self.inputs is None or name in self.inputs

    def __call__(self, items: list[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        first = items[0]
        keys = [k for k in first if self.keeps(k) and not (k == "label" and "labels" in first)]
        out: dict[str, torch.Tensor] = {}
        for key in keys:
            name = "labels" if key == "label" else key
            try:
                values = [torch.as_tensor(it[key]) for it in items]
            except (TypeError, ValueError, RuntimeError):
                if name == "labels":
                    raise UserError(
                        f"labels such as {items[0][key]!r} are not numbers: map them to class "
                        "ids 0..K-1") from None
                continue
            if all(v.shape == values[0].shape for v in values):
                out[name] = torch.stack(values)
            elif name in PAD_FIELDS and all(v.dim() == 1 for v in values):
                pad = self.pad_id if name == "input_ids" else 0
                out[name] = nn.utils.rnn.pad_sequence(values, batch_first=True,
                                                      padding_value=pad)
                if name == "input_ids" and "attention_mask" not in items[0] and \
                        (self.inputs is None or "attention_mask" in self.inputs):
                    out["attention_mask"] = nn.utils.rnn.pad_sequence(
                        [torch.ones_like(v) for v in values], batch_first=True)
            else:
                raise UserError(
                    f"field '{key}' has examples of different shapes: pad it to one length, "
                    "or pass collate=")
        return out


class Renamed:
    """A user's collate whose ``label`` output is renamed ``labels``."""

    def __init__(self, collate: Callable[[list[Any]], Mapping[str, torch.Tensor]]) -> None:
        self.collate = collate

    def __call__(self, items: list[Any]) -> dict[str, torch.Tensor]:
        batch = dict(self.collate(items))
        if "label" in batch and "labels" not in batch:
            batch["labels"] = batch.pop("label")
        return batch


def check_examples(data: Any, split: str, dicts: bool) -> None:
    """Refuse data that is not an indexable, non-empty sequence (of dicts, if ``dicts``)."""
    if isinstance(data, str | bytes | Mapping) or not hasattr(data, "__len__") \
            or not hasattr(data, "__getitem__"):
        raise UserError(f"{split} is a {type(data).__name__}: pass a datasets.Dataset or a "
                        "list of dicts of fields")
    if len(data) == 0:
        raise UserError(f"{split} is empty: pass at least one example")
    if not dicts:
        return
    first = data[0]
    if not isinstance(first, Mapping):
        raise UserError(f"{split} examples are {type(first).__name__}s, not dicts of fields: "
                        "pass dicts such as {'input_ids': [...], 'label': 0}, or collate=")
    if "label" not in first and "labels" not in first:
        raise UserError(f"{split} examples have no 'label' or 'labels' field (fields: "
                        f"{', '.join(map(str, first)) or 'none'}): add the class ids as 'label'")


def first_batch_of(data: Any, collate: Callable, start: int, size: int) -> dict[str, torch.Tensor]:
    """Collate examples ``start .. start+size`` and check the batch's form."""
    items = [data[i] for i in range(start, min(start + size, len(data)))]
    batch = collate(items)
    if not isinstance(batch, Mapping):
        raise UserError(f"collate returned a {type(batch).__name__}: return a dict of tensors")
    if "labels" not in batch:
        raise UserError(f"batches have no 'labels' (fields: {', '.join(batch) or 'none'}): give "
                        "each example a 'label', or make collate return 'labels'")
    for key, value in batch.items():
        if not isinstance(value, torch.Tensor):
            raise UserError(f"collate returned field '{key}' as a {type(value).__name__}: "
                            "return tensors only")
    return batch


def all_labels(data: Any, collate: Callable, default: bool) -> torch.Tensor:
    """Every example's label, in order (from the field itself with the default collate)."""
    first = data[0]
    if default:
        key = "labels" if "labels" in first else "label"
        columns = getattr(data, "column_names", None)
        values = data[key] if columns is not None and key in columns else \
            [data[i][key] for i in range(len(data))]
        try:
            return torch.stack([torch.as_tensor(v) for v in values])
        except (TypeError, ValueError, RuntimeError):
            raise UserError(f"labels such as {first[key]!r} are not numbers (or not one per "
                            "example): map them to class ids 0..K-1") from None
    return torch.cat([first_batch_of(data, collate, s, 256)["labels"].reshape(-1).cpu()
                      for s in range(0, len(data), 256)])


def check_labels(labels: torch.Tensor, num_logits: int, split: str) -> None:
    """Refuse labels that the loss cannot take for a model with ``num_logits`` outputs."""
    if labels.dim() != 1:
        raise UserError(f"labels in {split} have shape {tuple(labels.shape[1:])} per example: "
                        "give one class id per example")
    if num_logits == 1:
        return
    if labels.is_floating_point() or labels.is_complex():
        raise UserError(f"labels in {split} are not whole numbers: use class ids "
                        f"0..{num_logits - 1} (or a model with one output for regression)")
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= num_logits:
        raise UserError(f"labels in {split} run from {lo} to {hi} but the model has "
                        f"{num_logits} logits: use labels 0..{num_logits - 1}, or build the "
                        f"model with num_labels={max(hi + 1, num_logits)}")


@torch.no_grad()
def probe(wrapped: LogitsModel, batch: Mapping[str, torch.Tensor], device: torch.device,
           split: str) -> tuple[torch.Tensor, list[str]]:
    """Run one batch; the logits, and the names of the layers that output them (the head)."""
    inputs = {k: v.to(device) for k, v in batch.items() if k != "labels"}
    seen: list[str] = []
    hooks = []
    for name, mod in wrapped.model.named_modules():
        if isinstance(mod, _LAYERS):
            hooks.append(mod.register_forward_hook(
                lambda _m, _i, out, name=name: seen.append((name, out))))
    was_training = wrapped.model.training
    wrapped.eval()
    try:
        logits = wrapped(**inputs)
    except TypeError as exc:
        raise UserError(f"the model's forward refused a {split} batch with fields "
                        f"{', '.join(inputs) or 'none'} ({exc}): give examples the fields its "
                        "forward takes, or pass collate=") from None
    finally:
        wrapped.train(was_training)
        for h in hooks:
            h.remove()
    n = len(batch["labels"])
    if logits.dim() != 2 or logits.shape[0] != n or not logits.is_floating_point():
        raise UserError(f"the model's logits have shape {tuple(logits.shape)} for {n} "
                        f"{split} examples: return one row of class scores per example, "
                        "shape (batch, num_labels)")
    return logits, [name for name, out in seen if out is logits]


# --------------------------------------------------------------------------- scope


def find_head(model: nn.Module, outputs: Iterable[str] = ()) -> dict[str, str]:
    """The model's classification head(s) and pooler(s), by module name.

    Args:
        model: the user's model.
        outputs: names of layers seen to output the logits.

    Returns:
        module name -> why it is kept dense (``"head"`` or ``"pooler"``).
    """
    names = {id(m): n for n, m in model.named_modules()}
    found: dict[str, str] = {}
    candidates: list[Any] = []
    get_out = getattr(model, "get_output_embeddings", None)
    if callable(get_out):
        with contextlib.suppress(NotImplementedError, AttributeError, TypeError):
            candidates.append(get_out())
    candidates += [getattr(model, a, None) for a in _HEAD_ATTRS]
    for mod in candidates:
        if isinstance(mod, nn.Module) and names.get(id(mod)):
            found.setdefault(names[id(mod)], "head")
    for name in outputs:
        if not any(name == h or name.startswith(h + ".") for h in found):
            found[name] = "head"
    for name in names.values():
        if name.split(".")[-1] == "pooler":
            found.setdefault(name, "pooler")
    return found


def _under(param: str, prefixes: Iterable[str]) -> bool:
    """Whether ``param`` is one of ``prefixes`` or inside a module named by one."""
    return any(param == p or param.startswith(p + ".") for p in prefixes)


def under_any(params: Iterable[str], module: str) -> bool:
    """Whether any of ``params`` is inside ``module``."""
    return any(_under(p, [module]) for p in params)


def select_scope(model: nn.Module, scope: Sequence[str] | None, exclude: Sequence[str] | None,
                 head: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """The names of the parameters to prune, in ``named_parameters`` order.

    Args:
        model: the user's model.
        scope: explicit parameter names, pruned as listed (None: every ``nn.Linear`` and
            ``nn.Conv*d`` weight outside ``head``).
        exclude: module or parameter names kept dense, instead of ``head`` (None: ``head``
            when ``scope`` is None, else nothing).
        head: what :func:`find_head` found.

    Returns:
        The names, and the exclusions applied (name -> reason).

    Raises:
        UserError: for unknown names or an empty scope.
    """
    params = dict(model.named_parameters())
    order = {n: i for i, n in enumerate(params)}
    if exclude is None:
        dense = dict(head) if scope is None else {}
    else:
        if isinstance(exclude, str):
            exclude = [exclude]
        modules = {n for n, _ in model.named_modules()}
        unknown = [e for e in exclude if e not in params and e not in modules]
        if unknown:
            raise UserError(f"exclude names {unknown} are not modules or parameters of the "
                            f"model: use names from model.named_modules()")
        dense = dict.fromkeys(exclude, "exclude=")
    if scope is None:
        names = [f"{n}.weight" if n else "weight" for n, m in model.named_modules()
                 if isinstance(m, _LAYERS)]
        names = [n for n in names if n in params]
        where = ("the model has no nn.Linear/nn.Conv weights outside "
                 f"{', '.join(dense) or 'its head'}: pass scope=[parameter names]")
    else:
        if isinstance(scope, str):
            scope = [scope]
        unknown = [n for n in scope if n not in params]
        if unknown:
            example = next(iter(params), "")
            raise UserError(f"scope names {unknown[:3]} are not parameters of the model: use "
                            f"names from model.named_parameters(), e.g. '{example}'")
        names = sorted(set(scope), key=order.__getitem__)
        where = "scope= is empty or all excluded: list the parameter names to prune"
    names = [n for n in names if not _under(n, dense)]
    if not names:
        raise UserError(f"nothing to prune: {where}")
    return names, dense


