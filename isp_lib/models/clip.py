"""CLIP image classifiers: the visual tower of an open_clip model and a frozen zero-shot head.

Following the paper's CLIP setting (Jaiswal et al., ICML 2023, after Wortsman et al.'s model
soups), the classifier is CLIP's image encoder followed by a linear head initialised from the
text tower: for each class, the text embeddings of several prompts are normalised, averaged and
normalised again (Radford et al., 2021, Sec. 3.1.4), then scaled by CLIP's learned temperature.
The head is a frozen buffer and the text tower is dropped once the head is built, so only the
visual tower (``visual.transformer.resblocks.N...``, the ``clip`` scope) is fine-tuned and pruned.
"""

from __future__ import annotations

import functools
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


#: Resize filters that :class:`DevicePreprocess` computes as PIL does (:func:`pil_weights`).
DEVICE_FILTERS = ("bicubic", "bilinear")
#: Fraction bits of PIL's fixed-point weights for 8-bit images (``PRECISION_BITS``).
PIL_PRECISION_BITS = 32 - 8 - 2


def _pil_bicubic(x: float) -> float:
    """PIL's bicubic filter (Keys, a = -0.5), in PIL's operation order."""
    a = -0.5
    if x < 0.0:
        x = -x
    if x < 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    if x < 2.0:
        return (((x - 5) * x + 8) * x - 4) * a
    return 0.0


def _pil_bilinear(x: float) -> float:
    """PIL's bilinear (triangle) filter."""
    if x < 0.0:
        x = -x
    return 1.0 - x if x < 1.0 else 0.0


#: filter name -> (function, support at scale 1), as PIL defines them.
_PIL_FILTERS = {"bicubic": (_pil_bicubic, 2.0), "bilinear": (_pil_bilinear, 1.0)}


@functools.lru_cache(maxsize=64)
def pil_weights(in_size: int, out_size: int, interpolation: str) -> torch.Tensor:
    """The fixed-point weights with which PIL resamples one axis of an 8-bit image.

    PIL (``src/libImaging/Resample.c``: ``precompute_coeffs``, ``normalize_coeffs_8bpc``)
    centres output pixel ``i`` at ``(i + 0.5) * in_size / out_size``, widens the filter's
    support by that scale when it shrinks (antialiasing), normalises each row's weights to sum
    to one in double precision and rounds them half away from zero to integers in units of
    ``2**-PIL_PRECISION_BITS``. Computed here with the same double-precision operations in the
    same order, so the integers are PIL's own.

    Args:
        in_size: input pixels along the axis.
        out_size: output pixels along the axis.
        interpolation: one of :data:`DEVICE_FILTERS`.

    Returns:
        (out_size, in_size) float64 matrix of integer weights (a CPU tensor, cached; do not
        modify it).
    """
    fn, base_support = _PIL_FILTERS[interpolation]
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = base_support * filterscale
    ss, one = 1.0 / filterscale, float(1 << PIL_PRECISION_BITS)
    weights = torch.zeros(out_size, in_size, dtype=torch.float64)
    for i in range(out_size):
        center = (i + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)  # C's (int) truncates towards zero, as int()
        hi = min(int(center + support + 0.5), in_size)
        row = [fn((x - center + 0.5) * ss) for x in range(lo, hi)]
        total = 0.0
        for w in row:
            total += w
        for k, w in enumerate(row):
            w = w / total if total != 0.0 else w
            weights[i, lo + k] = int(w * one - 0.5) if w < 0 else int(w * one + 0.5)
    return weights


class DevicePreprocess(nn.Module):
    """open_clip's evaluation preprocessing as tensor ops, for uint8 images on any device.

    Resizes the shorter side to ``size`` exactly as PIL resizes 8-bit images, crops the centre
    square and normalises: the steps of :func:`eval_transform` (``resize_mode="shortest"``),
    with the same pixels. PIL resamples in two passes, width then height, each a weighted sum
    with integer weights (:func:`pil_weights`) rounded half up and clipped to 8 bits; here
    each pass is one matrix product in float64 with those weights times
    ``2**-PIL_PRECISION_BITS`` (exact: a power of two), then the same rounding and clipping.
    Every product and partial sum is then a multiple of ``2**-22`` below ``2**9`` in
    magnitude (31 significant bits), which float64 holds exactly, whatever the summation
    order. So the result is bit-identical to PIL's, deterministic on every device, and
    unaffected by TF32 or autocast (neither touches float64). Rows and columns outside the
    centre crop are never computed. ``mean`` and ``std`` are non-persistent buffers: the
    state dict is unchanged. The device needs float64 matrix products (CUDA and the CPU do).

    Args:
        size: output side in pixels.
        mean, std: per-channel normalisation of [0, 1] pixel values.
        interpolation: one of :data:`DEVICE_FILTERS`.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, size: int, mean: Sequence[float], std: Sequence[float],
                 interpolation: str) -> None:
        super().__init__()
        if interpolation not in DEVICE_FILTERS:
            raise UserError(f"DevicePreprocess resizes with {' or '.join(DEVICE_FILTERS)}, "
                            f"not {interpolation}")
        self.size = size
        self.interpolation = interpolation
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        self._weights: dict[tuple[int, int, int, torch.device], torch.Tensor] = {}

    def _axis(self, in_size: int, out_size: int, start: int,
              device: torch.device) -> torch.Tensor:
        """Rows ``start:start + size`` of :func:`pil_weights` times
        ``2**-PIL_PRECISION_BITS``, on ``device``; cached."""
        key = (in_size, out_size, start, device)
        if key not in self._weights:
            weights = pil_weights(in_size, out_size, self.interpolation)[start:start + self.size]
            self._weights[key] = weights.mul(2.0 ** -PIL_PRECISION_BITS).to(device)
        return self._weights[key]

    def resize(self, pixels: torch.Tensor) -> torch.Tensor:
        """Resize and crop a batch as PIL and torchvision do, without normalising.

        Args:
            pixels: (batch, 3, H, W) uint8 RGB images, all of one size.

        Returns:
            (batch, 3, size, size) float64 integers in [0, 255]: PIL's 8-bit pixels.
        """
        height, width = pixels.shape[-2:]
        short, long = min(height, width), max(height, width)
        new_long = int(self.size * long / short)  # torchvision's Resize(size) on the short side
        new_h, new_w = (self.size, new_long) if height <= width else (new_long, self.size)
        top = int(round((new_h - self.size) / 2.0))  # torchvision's CenterCrop
        left = int(round((new_w - self.size) / 2.0))
        x = pixels.to(torch.float64)
        with torch.autocast(pixels.device.type, enabled=False):
            if new_w != width:  # PIL skips a pass whose size does not change
                weights = self._axis(width, new_w, left, x.device)
                x = torch.matmul(x, weights.T).add_(0.5).floor_().clamp_(0, 255)
            else:
                x = x[..., left:left + self.size]
            if new_h != height:
                weights = self._axis(height, new_h, top, x.device)
                x = torch.matmul(weights, x).add_(0.5).floor_().clamp_(0, 255)
            else:
                x = x[..., top:top + self.size, :]
        return x

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Preprocess a batch.

        Args:
            pixels: (batch, 3, H, W) uint8 RGB images, all of one size.

        Returns:
            (batch, 3, size, size) float32 images, normalised as ``ToTensor`` and
            ``Normalize`` do.
        """
        x = self.resize(pixels).to(torch.float32)
        return x.div_(255).sub_(self.mean).div_(self.std)


class ClipClassifier(nn.Module):
    """CLIP's visual tower with a fixed zero-shot classification head.

    Args:
        visual: the open_clip model's ``.visual`` tower (images -> (batch, embed_dim)).
        head: (embed_dim, num_classes) matrix of scaled class embeddings (see
            :func:`zero_shot_head`); stored as a buffer, never trained.
        preprocess: finishes uint8 images on the model's device (the fast path's
            :class:`DecodedImages`); None: the model reads preprocessed images only.
    """

    head: torch.Tensor

    def __init__(self, visual: nn.Module, head: torch.Tensor,
                 preprocess: DevicePreprocess | None = None) -> None:
        super().__init__()
        self.visual = visual
        self.register_buffer("head", head.detach().clone())
        self.preprocess = preprocess

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Classify a batch of images.

        Args:
            pixel_values: (batch, 3, H, W) images, normalised as by :func:`eval_transform`, or
                uint8 images at their stored size (:class:`DecodedImages`), which
                ``preprocess`` finishes here.

        Returns:
            (batch, num_classes) logits: scaled cosine similarities to the class embeddings.
        """
        if pixel_values.dtype == torch.uint8:
            if self.preprocess is None:
                raise UserError("this CLIP classifier was built without a DevicePreprocess: "
                                "feed it preprocessed float images")
            pixel_values = self.preprocess(pixel_values)
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


def device_preprocess(visual: nn.Module) -> DevicePreprocess | None:
    """:func:`eval_transform` of ``visual`` as a :class:`DevicePreprocess`, where it has one.

    Args:
        visual: the tower (see :func:`eval_transform`).

    Returns:
        The module, or None for a transform it does not compute (a non-square size, a resize
        mode other than ``shortest``, a filter outside :data:`DEVICE_FILTERS`).
    """
    import open_clip

    cfg = open_clip.get_model_preprocess_cfg(visual)
    size = cfg["size"]
    side = size if isinstance(size, int) else size[0] if size[0] == size[1] else None
    interpolation = cfg.get("interpolation") or "bicubic"
    if side is None or (cfg.get("resize_mode") or "shortest") != "shortest" or \
            interpolation not in DEVICE_FILTERS:
        return None
    return DevicePreprocess(side, cfg.get("mean") or open_clip.OPENAI_DATASET_MEAN,
                            cfg.get("std") or open_clip.OPENAI_DATASET_STD, interpolation)


class ImageDataset(Dataset):
    """Raw images, converted to RGB and preprocessed lazily, one item at a time.

    Args:
        images: the split's raw images.
        labels: int64 class ids.
        transform: PIL image -> tensor.
    """

    #: Each item is decoded and transformed when read: a loader gives it worker processes.
    decodes_per_item = True

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


class DecodedImages(Dataset):
    """Images decoded once into one uint8 tensor at their stored size; a
    :class:`DevicePreprocess` finishes them on the model's device.

    Args:
        pixels: (N, 3, H, W) uint8 RGB images.
        labels: (N,) int64 class ids.
    """

    def __init__(self, pixels: torch.Tensor, labels: torch.Tensor) -> None:
        if len(pixels) != len(labels):
            raise UserError(f"{len(pixels)} images but {len(labels)} labels: fix the data loader")
        self.pixels = pixels
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"pixel_values": self.pixels[i], "labels": self.labels[i]}


def decode_images(images: Sequence[Any]) -> torch.Tensor | None:
    """Every image as RGB (as :func:`to_pil_rgb` makes it), stacked into one uint8 tensor.

    Args:
        images: a split's raw images (at least one).

    Returns:
        (N, 3, H, W) uint8, or None if the images are not all of one size.
    """
    first = np.asarray(to_pil_rgb(images[0]))
    pixels = np.empty((len(images), 3, *first.shape[:2]), dtype=np.uint8)
    for i in range(len(images)):
        image = first if i == 0 else np.asarray(to_pil_rgb(images[i]))
        if image.shape != first.shape:
            return None
        pixels[i] = image.transpose(2, 0, 1)
    return torch.from_numpy(pixels)


def device_datasets(fallback: Callable[[Split], Dataset]) -> Callable[[Split], Dataset]:
    """The fast path's ``make_dataset`` for CLIP (see :class:`DecodedImages`).

    Args:
        fallback: the plain ``make_dataset``, for an empty split or images of mixed sizes (each
            decoded and transformed when read, in the loader's worker processes).

    Returns:
        split -> :class:`DecodedImages`, or what ``fallback`` makes.
    """

    def make_dataset(split: Split) -> Dataset:
        pixels = decode_images(split.inputs) if len(split) else None
        if pixels is None:
            return fallback(split)
        return DecodedImages(pixels, torch.as_tensor(np.asarray(split.labels), dtype=torch.long))

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
    preprocess = device_preprocess(clip.visual)
    model = ClipClassifier(clip.visual, head, preprocess).eval()
    make_dataset = image_datasets(eval_transform(model.visual))
    return ModelBundle(model=model, family="clip", make_dataset=make_dataset,
                       collate=stack_collate, make_device_dataset=None if preprocess is None
                       else device_datasets(make_dataset))
