"""CLIP image classifiers: the visual tower of an open_clip model and a frozen zero-shot head.

Following the paper's CLIP setting (Jaiswal et al., ICML 2023, after Wortsman et al.'s model
soups), the classifier is CLIP's image encoder followed by a linear head initialised from the
text tower: for each class, the text embeddings of several prompts are normalised, averaged and
normalised again (Radford et al., 2021, Sec. 3.1.4), then scaled by CLIP's learned temperature.
The head is a frozen buffer and the text tower is dropped once the head is built, so only the
visual tower (``visual.transformer.resblocks.N...``, the ``clip`` scope) is fine-tuned and pruned.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import Dataset

from isp_lib.data.base import RawData, Split
from isp_lib.errors import UserError
from isp_lib.models.base import Batch, ModelBundle
from isp_lib.models.registry import ModelSpec
from isp_lib.models.templates import templates_for
from isp_lib.profiles import Profile

if TYPE_CHECKING:
    import open_clip

# open_clip (and the torchvision and timm it pulls in) takes seconds to import, and the CNN
# builder reuses this module's datasets: each function that needs it imports it.

# Tiny random-init CLIP for the smoke profile. The text tower keeps the standard context length
# and vocabulary so that open_clip's own tokenizer feeds it.
_TINY_EMBED_DIM = 32
_TINY_VISION = {"image_size": 32, "patch_size": 8, "width": 32, "layers": 2, "head_width": 16}
_TINY_TEXT = {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}


class ClipClassifier(nn.Module):
    """CLIP's visual tower with a fixed zero-shot classification head.

    Args:
        visual: the open_clip model's ``.visual`` tower (images -> (batch, embed_dim)).
        head: (embed_dim, num_classes) matrix of scaled class embeddings (see
            :func:`zero_shot_head`); stored as a buffer, never trained.
    """

    head: torch.Tensor

    def __init__(self, visual: nn.Module, head: torch.Tensor) -> None:
        super().__init__()
        self.visual = visual
        self.register_buffer("head", head.detach().clone())

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Classify a batch of preprocessed images.

        Args:
            pixel_values: (batch, 3, H, W) images, normalised as by :func:`eval_transform`.

        Returns:
            (batch, num_classes) logits: scaled cosine similarities to the class embeddings.
        """
        return F.normalize(self.visual(pixel_values), dim=-1) @ self.head


def zero_shot_head(
    clip: nn.Module,
    tokenizer: Callable[[list[str]], torch.Tensor],
    class_names: Sequence[str],
    templates: Sequence[str],
) -> torch.Tensor:
    """Build the zero-shot head from CLIP's text tower (Radford et al., 2021).

    Args:
        clip: an open_clip model with ``encode_text`` and ``logit_scale``.
        tokenizer: open_clip tokenizer (list of strings -> (n, context_length) ids).
        class_names: one name per class.
        templates: prompt templates, each with one ``{}`` for the class name.

    Returns:
        (embed_dim, num_classes) tensor: per class, the normalised mean of the normalised prompt
        embeddings, times ``logit_scale.exp()``. Built in eval mode without gradients.
    """
    was_training = clip.training
    clip.eval()
    device = clip.logit_scale.device
    with torch.no_grad():
        columns = []
        for name in class_names:
            tokens = tokenizer([t.format(name) for t in templates]).to(device)
            prompts = F.normalize(clip.encode_text(tokens), dim=-1)
            columns.append(F.normalize(prompts.mean(dim=0), dim=0))
        head = torch.stack(columns, dim=1) * clip.logit_scale.exp()
    clip.train(was_training)
    return head


def to_pil_rgb(image: Any) -> Image.Image:
    """Turn one raw image (PIL, or uint8 array HxW / HxWx1 / HxWx3 / HxWx4) into RGB PIL.

    Args:
        image: the raw example.

    Returns:
        A 3-channel ``PIL.Image.Image`` (grayscale is replicated into the three channels).
    """
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, np.ndarray):
        arr = image
        if arr.ndim == 3 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if arr.dtype == np.uint8 and (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] in (3, 4))):
            return Image.fromarray(arr).convert("RGB")
        raise UserError(
            f"cannot read an image array of shape {image.shape} and dtype {image.dtype}: "
            "images must be uint8 arrays HxW or HxWxC (C = 1, 3 or 4), or PIL images"
        )
    raise UserError(
        f"an image model got a {type(image).__name__} example: pick a text model "
        "(--model minilm) for text data"
    )


def eval_transform(visual: nn.Module) -> Callable[[Image.Image], torch.Tensor]:
    """open_clip's evaluation preprocessing for a visual tower (resize, crop, normalise).

    Args:
        visual: the tower; its ``preprocess_cfg`` (set by ``open_clip.create_model``) gives the
            image size, mean, std and resize mode; without one, the size and CLIP's defaults.

    Returns:
        PIL image -> (3, H, W) float tensor.
    """
    import open_clip

    cfg = open_clip.get_model_preprocess_cfg(visual)
    return open_clip.image_transform(
        cfg["size"], is_train=False, mean=cfg.get("mean"), std=cfg.get("std"),
        resize_mode=cfg.get("resize_mode"), interpolation=cfg.get("interpolation"),
    )


class ImageDataset(Dataset):
    """Raw images, converted to RGB and preprocessed lazily, one item at a time.

    Args:
        images: the split's raw images.
        labels: int64 class ids.
        transform: PIL image -> tensor.
    """

    def __init__(
        self,
        images: Sequence[Any],
        labels: torch.Tensor,
        transform: Callable[[Image.Image], torch.Tensor],
    ) -> None:
        if len(images) != len(labels):
            raise UserError(f"{len(images)} images but {len(labels)} labels: fix the data loader")
        self.images = images
        self.labels = labels
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        pixels = self.transform(to_pil_rgb(self.images[i]))
        return {"pixel_values": pixels, "labels": self.labels[i]}


def image_datasets(transform: Callable) -> Callable[[Split], ImageDataset]:
    """A ``make_dataset`` for image models: wraps a split, converting and transforming each
    image when it is read (the first one is checked at once, not in a DataLoader worker).

    Args:
        transform: PIL image -> input tensor.

    Returns:
        split -> :class:`ImageDataset`.
    """

    def make_dataset(split: Split) -> ImageDataset:
        labels = torch.as_tensor(np.asarray(split.labels), dtype=torch.long)
        if len(split):
            to_pil_rgb(split.inputs[0])
        return ImageDataset(split.inputs, labels, transform)

    return make_dataset


def stack_collate(items: list[dict[str, torch.Tensor]]) -> Batch:
    """Stack :class:`ImageDataset` items: (B, 3, H, W) ``pixel_values`` and (B,) ``labels``."""
    return {key: torch.stack([it[key] for it in items]) for key in items[0]}


def _tiny_clip() -> open_clip.CLIP:
    """A two-block, width-32 CLIP at random init (smoke profile)."""
    import open_clip

    return open_clip.CLIP(
        embed_dim=_TINY_EMBED_DIM,
        vision_cfg=open_clip.CLIPVisionCfg(**_TINY_VISION),
        text_cfg=open_clip.CLIPTextCfg(**_TINY_TEXT),
    )


def open_clip_config(
    spec: ModelSpec, profile: Profile, source: str | None, pretrained: bool = True
) -> dict[str, Any]:
    """The open_clip configuration of the model that :func:`build_clip` makes, for export.

    Args:
        spec, profile, source, pretrained: as for :func:`build_clip`.

    Returns:
        ``{"model_cfg", "preprocess_cfg"}`` in the layout of open_clip's
        ``open_clip_config.json``: ``open_clip.CLIP(**model_cfg)`` builds the architecture
        (QuickGELU as the weights were loaded), and ``preprocess_cfg`` gives the size, mean,
        std, interpolation and resize mode of :func:`eval_transform`.
    """
    import open_clip

    arch = str(spec.arch)
    if profile.tiny:
        model_cfg: dict[str, Any] = {"embed_dim": _TINY_EMBED_DIM, "vision_cfg": dict(_TINY_VISION),
                                     "text_cfg": dict(_TINY_TEXT)}
        pretrained_cfg: dict[str, Any] = {}
    else:
        model_cfg = open_clip.get_model_config(arch)
        source = source or spec.default_source
        is_file = Path(source).expanduser().is_file()
        pretrained_cfg = {} if not pretrained or is_file else \
            open_clip.get_pretrained_cfg(arch, source)
        model_cfg["quick_gelu"] = bool(pretrained and (
            spec.quick_gelu if is_file else pretrained_cfg.get("quick_gelu", False)))
    preprocess_cfg = {
        "size": model_cfg["vision_cfg"]["image_size"], "mean": list(open_clip.OPENAI_DATASET_MEAN),
        "std": list(open_clip.OPENAI_DATASET_STD), "interpolation": "bicubic",
        "resize_mode": "shortest",
    }
    preprocess_cfg.update({k: list(v) if isinstance(v, tuple) else v
                           for k, v in pretrained_cfg.items() if k in preprocess_cfg})
    return {"model_cfg": model_cfg, "preprocess_cfg": preprocess_cfg}


def _load_clip(spec: ModelSpec, source: str) -> nn.Module:
    """Load ``spec.arch`` with pretrained weights from a tag or a local checkpoint file."""
    import open_clip

    arch = str(spec.arch)
    tags = open_clip.list_pretrained_tags_by_model(arch)
    if Path(source).expanduser().is_file():
        source = str(Path(source).expanduser())
        quick_gelu = spec.quick_gelu
    elif source in tags:
        quick_gelu = bool(open_clip.get_pretrained_cfg(arch, source).get("quick_gelu", False))
    else:
        raise UserError(
            f"'{source}' is neither a checkpoint file nor an open_clip tag of {arch} "
            f"(e.g. {', '.join(tags[:3])}): pass a local checkpoint file with --model-source PATH"
        )
    try:
        return open_clip.create_model(
            arch, pretrained=source, force_quick_gelu=quick_gelu, require_pretrained=True
        )
    except (OSError, RuntimeError, ValueError, KeyError, pickle.UnpicklingError) as err:
        raise UserError(
            f"cannot load CLIP {arch} weights '{source}' (offline?): pass a local checkpoint "
            "file with --model-source PATH"
        ) from err


def build_clip(
    spec: ModelSpec, data: RawData, profile: Profile, source: str | None, pretrained: bool
) -> ModelBundle:
    """Build a CLIP zero-shot-initialised image classifier and its dataset/collate pair.

    Args:
        spec: the registry entry (family ``clip``).
        data: the image data set; ``class_names`` feed the zero-shot head.
        profile: ``tiny`` builds a 32-pixel, width-32, two-block CLIP at random init.
        source: open_clip pretrained tag or local checkpoint file; None uses
            ``spec.default_source``. Ignored when tiny or not ``pretrained``.
        pretrained: False builds ``spec.arch`` at random init, offline.

    Returns:
        The :class:`ModelBundle` (model in eval mode, on the CPU).
    """
    if data.num_labels < 2:
        raise UserError(
            f"CLIP classifies into classes but '{data.name}' is a regression task: "
            "use a text model (--model minilm)"
        )
    if len(data.class_names) != data.num_labels:
        raise UserError(
            f"'{data.name}' has {data.num_labels} classes but {len(data.class_names)} class "
            "names: CLIP's zero-shot head needs one name per class; fix the data loader"
        )
    import open_clip

    arch = str(spec.arch)
    if arch not in open_clip.list_models():
        raise UserError(f"'{arch}' is not an open_clip architecture: use e.g. clip:ViT-B-32 "
                        "(open_clip.list_models() lists them)")
    if profile.tiny:
        clip = _tiny_clip()
    elif not pretrained:
        clip = open_clip.create_model(arch, pretrained=None)
    else:
        clip = _load_clip(spec, source or spec.default_source)
    head = zero_shot_head(
        clip, open_clip.get_tokenizer(arch), data.class_names, templates_for(data.name)
    )
    model = ClipClassifier(clip.visual, head).eval()
    transform = eval_transform(model.visual)

    return ModelBundle(model=model, family="clip", make_dataset=image_datasets(transform),
                       collate=stack_collate)
