"""The data sets the kit knows: registry name -> how to load it and how to score it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Literal

from isp_lib.data.split import OfficialSplits
from isp_lib.data.text import GLUE_COLUMNS, load_drugreview, load_glue
from isp_lib.data.vision import HUB_IMAGE_SETS, load_fashion_mnist, load_hub_images
from isp_lib.errors import UserError


@dataclass(frozen=True)
class DatasetSpec:
    """How to load and score one data set.

    Attributes:
        kind: ``"text"`` or ``"image"``.
        metric: ``"accuracy"``, ``"matthews"`` or ``"pearson"`` (pearson means regression).
        load: ``load(source) -> OfficialSplits``; ``source`` overrides where the files are.
    """

    kind: Literal["text", "image"]
    metric: str
    load: Callable[[str | None], OfficialSplits]

    @property
    def regression(self) -> bool:
        """Whether labels are real-valued targets (one output) rather than class ids."""
        return self.metric == "pearson"


GLUE_METRICS = {"cola": "matthews", "stsb": "pearson"}

DATASETS: dict[str, DatasetSpec] = {
    "drugreview": DatasetSpec("text", "accuracy", load_drugreview),
    "fashion-mnist": DatasetSpec("image", "accuracy", load_fashion_mnist),
    **{
        task: DatasetSpec("text", GLUE_METRICS.get(task, "accuracy"), partial(load_glue, task))
        for task in GLUE_COLUMNS
    },
    **{
        name: DatasetSpec("image", "accuracy", partial(load_hub_images, name))
        for name in HUB_IMAGE_SETS
    },
}


def dataset_names() -> list[str]:
    """Return the registry names, in registry order."""
    return list(DATASETS)


def get_spec(name: str) -> DatasetSpec:
    """Look up a data set by registry name.

    Args:
        name: e.g. ``"drugreview"``, ``"sst2"``, ``"cifar10"``.

    Returns:
        Its :class:`DatasetSpec`.
    """
    try:
        return DATASETS[name]
    except KeyError:
        raise UserError(
            f"unknown dataset '{name}': use one of {', '.join(dataset_names())}"
        ) from None
