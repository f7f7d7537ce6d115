"""Data loading: every data set the kit uses, as raw train/val/test splits.

``load_data(name, profile)`` returns a :class:`~isp_lib.data.base.RawData` whose validation
split is carved from the official train split with a fixed seed and whose sizes follow the
profile's caps.
"""

from __future__ import annotations

from isp_lib.data.base import RawData, Split
from isp_lib.data.registry import DATASETS, DatasetSpec, dataset_names, get_spec
from isp_lib.data.split import make_splits
from isp_lib.profiles import Profile

__all__ = ["DATASETS", "DatasetSpec", "RawData", "Split", "dataset_names", "load_data"]


def load_data(name: str, profile: Profile, source: str | None = None, val_seed: int = 0) -> RawData:
    """Load a registered data set as train/val/test splits.

    Args:
        name: registry name (see :func:`dataset_names`).
        profile: run profile; its caps and ``val_fraction`` shape the splits.
        source: where to read the files instead of the default (a local folder of parquet
            files for hub sets, the IDX folder for Fashion-MNIST, the zip for drug reviews).
        val_seed: seed of the caps and of the validation carve; fixed across runs so that every
            method sees the same splits.

    Returns:
        The :class:`RawData`.
    """
    spec = get_spec(name)
    official = spec.load(source)
    train, val, test = make_splits(official, profile, val_seed, stratify=not spec.regression)
    return RawData(
        name=name,
        kind=spec.kind,
        train=train,
        val=val,
        test=test,
        class_names=official.class_names,
        metric=spec.metric,
        num_labels=1 if spec.regression else len(official.class_names),
    )
