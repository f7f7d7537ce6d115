"""Model builders: a registry name plus a data set and a profile give a :class:`ModelBundle`.

>>> bundle = build_model("minilm", data, get_profile("cpu"))  # doctest: +SKIP
>>> logits = bundle.model(**inputs)                           # doctest: +SKIP
"""

from __future__ import annotations

from isp_lib.data.base import RawData
from isp_lib.errors import UserError
from isp_lib.models.base import ModelBundle
from isp_lib.models.registry import MODELS, ModelSpec
from isp_lib.profiles import Profile

__all__ = ["MODELS", "ModelBundle", "ModelSpec", "build_model", "model_family", "model_names",
           "model_spec"]


def model_names() -> list[str]:
    """Names accepted by :func:`build_model`, in registry order."""
    return list(MODELS)


def _spec(name: str) -> ModelSpec:
    """A registry entry, or one made for ``clip:ARCH`` (any open_clip architecture, default
    ``openai`` weights) or ``bert:SOURCE`` (any BERT-family hub id or folder, pooler head)."""
    family, sep, rest = name.partition(":")
    if sep and rest and family == "clip":
        return ModelSpec(family="clip", kind="image", default_source="openai", arch=rest,
                         quick_gelu=True, description=f"open_clip {rest}")
    if sep and rest and family == "bert":
        return ModelSpec(family="bert", kind="text", default_source=rest, pooling="cls",
                         description=f"BERT family {rest}")
    spec = MODELS.get(name)
    if spec is None:
        raise UserError(
            f"unknown model '{name}': use one of {', '.join(MODELS)}, clip:ARCH or bert:SOURCE"
        )
    return spec


def model_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of a registry name (or ``clip:ARCH`` / ``bert:SOURCE``)."""
    return _spec(name)


def model_family(name: str) -> str:
    """The family (``"bert"``, ``"clip"`` or ``"cnn"``) of a registry name, building nothing.

    Args:
        name: registry name.

    Returns:
        The family, which also names the prunable scope and the hyperparameter set.
    """
    return _spec(name).family


def build_model(
    name: str,
    data: RawData,
    profile: Profile,
    source: str | None = None,
    pretrained: bool = True,
) -> ModelBundle:
    """Build a named classifier for a data set at a profile's scale.

    Args:
        name: registry name (:func:`model_names`): ``minilm``, ``bert-base``, ``clip-vit-b32``
            or ``effnet-lite0``.
        data: the data set; its ``kind`` must match the model's, and it gives the classes.
        profile: ``profile.tiny`` builds a tiny random-init model of the same family;
            ``profile.max_len`` is the text truncation length.
        source: checkpoint override: a hub id or local folder (BERT family), an open_clip
            pretrained tag or local checkpoint file (CLIP), a state-dict file (CNN).
            None: the registry default.
        pretrained: False builds the exact architecture at random init, offline.

    Returns:
        The model (CPU, eval mode) with its ``make_dataset`` and ``collate``.
    """
    spec = _spec(name)
    if data.kind != spec.kind:
        fits = [n for n, s in MODELS.items() if s.kind == data.kind]
        raise UserError(
            f"model '{name}' reads {spec.kind} but data set '{data.name}' is {data.kind}: "
            f"use --model {' or '.join(fits)}"
        )
    # Imported here: open_clip and transformers take seconds to import; build only what is used.
    if spec.family == "bert":
        from isp_lib.models.bert import build_bert

        return build_bert(spec, data, profile, source, pretrained)
    if spec.family == "cnn":
        from isp_lib.models.effnet import build_effnet

        return build_effnet(spec, data, profile, source, pretrained)
    from isp_lib.models.clip import build_clip

    return build_clip(spec, data, profile, source, pretrained)
