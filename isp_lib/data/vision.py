"""Image data sets: Fashion-MNIST from Debian's IDX files, and image sets from the HF hub."""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from isp_lib.data.base import Split
from isp_lib.data.split import (
    HFSplit,
    LazyColumn,
    OfficialSplits,
    class_labels,
    label_names,
    load_hf_splits,
    read_column,
    require_columns,
)
from isp_lib.errors import UserError

# Where Debian's dataset-fashion-mnist package puts the IDX files.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_FIX = "run 'sudo apt-get install dataset-fashion-mnist' (or 'make assets')"
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
IDX_UINT8 = 0x08


@dataclass(frozen=True)
class HubImageSet:
    """Where an image set lives on the HF hub.

    Attributes:
        hub_id: hub repository id.
        image_column: column holding the images (an ``Image()`` feature).
        label_column: column holding the class ids (a ``ClassLabel`` feature).
        config: hub configuration name, if any.
    """

    hub_id: str
    image_column: str
    label_column: str
    config: str | None = None


HUB_IMAGE_SETS: dict[str, HubImageSet] = {
    "cifar10": HubImageSet("uoft-cs/cifar10", "img", "label"),
    "cifar100": HubImageSet("uoft-cs/cifar100", "img", "fine_label"),
    "mnist": HubImageSet("ylecun/mnist", "image", "label"),
    "svhn": HubImageSet("ufldl-stanford/svhn", "image", "label", config="cropped_digits"),
    "gtsrb": HubImageSet("tanganke/gtsrb", "image", "label"),
    "cars": HubImageSet("tanganke/stanford_cars", "image", "label"),
}


def load_fashion_mnist(source: str | None) -> OfficialSplits:
    """Load Fashion-MNIST (60k train, 10k test 28x28 grey images; 10 classes).

    Args:
        source: folder holding the four gzipped IDX files; None uses :data:`FASHION_MNIST_DIR`.

    Returns:
        The official splits; inputs are a ``uint8`` array of shape (N, 28, 28).
    """
    folder = Path(source if source is not None else FASHION_MNIST_DIR)
    if not folder.is_dir():
        raise UserError(f"Fashion-MNIST not found in {folder}: {FASHION_MNIST_FIX}")
    return OfficialSplits(
        train=_idx_split(folder, "train"),
        test=_idx_split(folder, "t10k"),
        class_names=list(FASHION_MNIST_CLASSES),
    )


def _idx_split(folder: Path, prefix: str) -> Split:
    images_path = folder / f"{prefix}-images-idx3-ubyte.gz"
    labels_path = folder / f"{prefix}-labels-idx1-ubyte.gz"
    images = read_idx(images_path, ndim=3)
    labels = read_idx(labels_path, ndim=1)
    if len(images) != len(labels):
        raise UserError(
            f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} "
            f"labels: {FASHION_MNIST_FIX}"
        )
    return Split(inputs=images, labels=class_labels(labels, len(FASHION_MNIST_CLASSES),
                                                    str(labels_path)))


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read a gzipped IDX file of unsigned bytes, checking its header.

    Args:
        path: the ``.gz`` file.
        ndim: number of dimensions the file must have (3 for images, 1 for labels).

    Returns:
        A ``uint8`` array with the file's dimensions.
    """
    try:
        data = gzip.decompress(path.read_bytes())
    except FileNotFoundError:
        raise UserError(f"{path} not found: {FASHION_MNIST_FIX}") from None
    except (OSError, EOFError, zlib.error) as err:
        raise UserError(f"{path} is not a readable gzip file: {FASHION_MNIST_FIX}") from err
    header = 4 + 4 * ndim
    if len(data) < header or data[:4] != bytes([0, 0, IDX_UINT8, ndim]):
        raise UserError(
            f"{path} has no valid {ndim}-d uint8 IDX header (corrupt?): {FASHION_MNIST_FIX}"
        )
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    if len(data) - header != int(np.prod(dims)):
        raise UserError(
            f"{path} holds {len(data) - header} bytes of data but its header says {dims} "
            f"(truncated?): {FASHION_MNIST_FIX}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def load_hub_images(name: str, source: str | None) -> OfficialSplits:
    """Load an image set of :data:`HUB_IMAGE_SETS` (official train and test splits).

    Args:
        name: key of :data:`HUB_IMAGE_SETS`.
        source: a folder with ``train.parquet`` and ``test.parquet`` in the hub's schema;
            None loads the hub id.

    Returns:
        The official splits; inputs decode to PIL images on access. Class names have
        underscores replaced by spaces (CLIP's zero-shot head reads them).
    """
    spec = HUB_IMAGE_SETS[name]
    splits = load_hf_splits(f"'{name}'", spec.hub_id, spec.config, "test", source)
    names = label_names(splits["train"], spec.label_column)
    return OfficialSplits(
        train=_image_split(splits["train"], spec, len(names)),
        test=_image_split(splits["test"], spec, len(names)),
        class_names=[n.replace("_", " ") for n in names],
    )


def _image_split(split: HFSplit, spec: HubImageSet, num_classes: int) -> Split:
    import datasets

    require_columns(split, [spec.image_column, spec.label_column])
    if not isinstance(split.table.features[spec.image_column], datasets.Image):
        raise UserError(
            f"{split.origin}: column '{spec.image_column}' is not an Image() feature: "
            "write it with features=datasets.Features({..., column: Image()})"
        )
    labels = class_labels(read_column(split, spec.label_column), num_classes, split.origin)
    return Split(inputs=LazyColumn(split.table, spec.image_column), labels=labels)
