"""Which weight tensors are prunable, per architecture.

Following the paper (Sec. 3.1: "we prune the key trainable part of the network (key, query,
value, dense) ignoring embeddings") and the official CLIP code:

* ``clip``: in every resblock of the visual tower, ``attn.in_proj_weight`` (fused QKV),
  ``attn.out_proj.weight``, ``mlp.c_fc.weight`` and ``mlp.c_proj.weight``. Never ``conv1``,
  embeddings, LayerNorms, biases or ``visual.proj``.
* ``bert``: in every encoder layer, query, key, value, attention output dense, intermediate
  dense and output dense weights. Embeddings, LayerNorms and biases are never pruned. The
  pooler is *not* pruned either (BERT-Tickets prunes it; we keep the scope to the transformer
  blocks, so that the mean-pooled heads, which have no pooler, and the pooled heads prune the
  same tensors). The task head is never pruned.
* ``cnn`` (the EfficientNet-Lite stand-in for CLIP, ``isp_lib.models.effnet``): the weights of
  every ``nn.Conv2d`` and ``nn.Linear`` inside the module ``backbone`` except the first conv in
  registration order (the stem, the analogue of CLIP's ``conv1``). The depthwise convs are
  included (about 5% of the scope in Lite0); the new ``classifier`` sits outside the backbone
  and is never pruned, nor are BatchNorms and biases.
* ``linear``: for a user's own model, every ``nn.Linear``/``nn.Conv*d`` weight except those of
  modules whose name ends in ``classifier``, ``head`` or ``fc_out``.
"""

from __future__ import annotations

import re

from torch import nn

from isp_lib.errors import UserError

_PATTERNS: dict[str, re.Pattern[str]] = {
    "clip": re.compile(
        r"(^|\.)visual\.transformer\.resblocks\.\d+\."
        r"(attn\.in_proj_weight|attn\.out_proj\.weight|mlp\.c_fc\.weight|mlp\.c_proj\.weight)$"
    ),
    "bert": re.compile(
        r"(^|\.)encoder\.layer\.\d+\."
        r"(attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense"
        r"|output\.dense)\.weight$"
    ),
}
_HEAD_NAMES = ("classifier", "head", "fc_out")
_CNN_BACKBONE = "backbone."


def _cnn_names(model: nn.Module) -> list[str]:
    """Conv2d/Linear weights under ``backbone`` without the stem (the first Conv2d)."""
    layers = [(name, mod) for name, mod in model.named_modules()
              if name.startswith(_CNN_BACKBONE) and isinstance(mod, nn.Conv2d | nn.Linear)]
    if layers and isinstance(layers[0][1], nn.Conv2d):
        layers = layers[1:]
    return [f"{name}.weight" for name, _ in layers]


def prunable_names(model: nn.Module, family: str) -> list[str]:
    """Names of the parameters in the prunable scope, in ``named_parameters`` order.

    Args:
        model: the network.
        family: ``"clip"``, ``"bert"``, ``"cnn"`` or ``"linear"`` (generic; see module
            docstring).

    Returns:
        Parameter names; never empty.
    """
    if family == "linear":
        names = [
            f"{mod_name}.weight" if mod_name else "weight"
            for mod_name, mod in model.named_modules()
            if isinstance(mod, nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d)
            and not mod_name.split(".")[-1].endswith(_HEAD_NAMES)
        ]
    elif family == "cnn":
        names = _cnn_names(model)
    elif family in _PATTERNS:
        pattern = _PATTERNS[family]
        names = [n for n, _ in model.named_parameters() if pattern.search(n)]
    else:
        raise UserError(
            f"unknown scope family '{family}': use one of "
            f"{', '.join([*_PATTERNS, 'cnn', 'linear'])}"
        )
    if not names:
        raise UserError(
            f"no prunable tensors of family '{family}' in this model: "
            "pick the family that matches its architecture, or 'linear'"
        )
    return names


def prunable_params(model: nn.Module, family: str) -> dict[str, nn.Parameter]:
    """The prunable parameters themselves, by name (see :func:`prunable_names`)."""
    params = dict(model.named_parameters())
    return {n: params[n] for n in prunable_names(model, family)}
