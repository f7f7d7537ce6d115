"""Export a complete run's pruned model into a folder that plain libraries load without isp_lib.

``isp export RUN_DIR --to DIR`` reads the run's ``model.safetensors`` (with safetensors only,
never a pickle), checks it against ``result.json`` (size and SHA-256) and the mask against its
digest, and writes, per model family:

* BERT family, ``cls`` pooling (``bert-base``, ``bert:SOURCE``): a ``transformers`` folder that
  ``AutoModelForSequenceClassification.from_pretrained(DIR)`` loads (config, tokenizer,
  weights): the kit's head (pooler, dropout, linear) is ``BertForSequenceClassification``'s.
* BERT family, ``mean`` pooling (``minilm``): ``BertForSequenceClassification`` has no mean
  pooling (it classifies the pooler's output on [CLS]), and no stock class pools BERT's tokens
  by their attention-masked mean. The folder is the encoder as a ``BertModel``
  (``AutoModel.from_pretrained(DIR)``, with its tokenizer) plus ``head.safetensors`` (the
  linear head's ``weight`` and ``bias``); the README gives the three lines of pooling.
* CLIP: the visual tower's state dict as open_clip names it (``visual.safetensors``, loaded
  into ``open_clip.CLIP(**model_cfg).visual``), ``open_clip_config.json`` (``model_cfg`` and
  ``preprocess_cfg``, open_clip's layout) and the zero-shot head (``head.safetensors``).
* CNN (EfficientNet-Lite): ``model.safetensors``, the state dict of
  ``efficientnet_lite_pytorch.EfficientNet.from_name(**config)`` with the head as ``_fc``.

Every folder has a ``README.md``: the record (method, sparsity, test metric, config hash,
commit), how to load it, and the sparsity of each pruned tensor under its exported name.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from isp_lib.data.base import RawData, Split
from isp_lib.errors import UserError
from isp_lib.io import load_mask, mask_digest
from isp_lib.masks import Mask
from isp_lib.models import build_model, model_family, model_spec
from isp_lib.profiles import get_profile
from isp_lib.runs import RunConfig, file_sha256, load_result


@dataclass
class Exported:
    """What a family's exporter wrote into the folder.

    Attributes:
        rename: kit parameter name -> its name in the exported files (for the sparsity table).
        load: the README's section on how to load the folder (markdown).
    """

    rename: Callable[[str], str]
    load: str


def export_run(run_dir: Path, to: Path) -> dict[str, Any]:
    """Export the pruned model of a complete run (see the module docstring).

    Args:
        run_dir: a complete run directory made with weights (``isp run`` without
            ``--no-weights``).
        to: the export folder: new, or an existing empty folder.

    Returns:
        ``{"export", "family", "files"}``: the folder, the model family and the files written.

    Raises:
        UserError: one line, before anything is written, if ``run_dir`` is not a complete run
            with weights, its files do not match its record, or ``to`` is not new or empty.
    """
    run_dir, to = Path(run_dir), Path(to)
    record = _record_with_weights(run_dir)
    _check_target(to)
    cfg = _config(run_dir, record)
    mask = load_mask(run_dir / "mask.pt")
    if mask_digest(mask) != record["mask_digest"]:
        raise UserError(f"run directory {run_dir} is corrupt (mask.pt is not the mask that "
                        "result.json describes): delete it and rerun")
    state = _read_weights(run_dir, record)
    family = model_family(cfg.model)
    exporter = {"bert": _export_bert, "clip": _export_clip, "cnn": _export_cnn}[family]
    created = _missing_parents(to)
    to.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{to.name}.", suffix=".tmp", dir=to.parent))
    try:
        done = exporter(cfg, state, tmp)
        (tmp / "README.md").write_text(_readme(record, family, mask, done))
        for path in [tmp, *tmp.iterdir()]:  # mkdtemp's and safetensors' 0700/0600 would hide
            os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~_umask())  # them from the group
        os.replace(tmp, to)  # onto a missing or empty folder: readers never see half of it
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for folder in created:
            with suppress(OSError):
                folder.rmdir()
        raise
    return {"export": str(to), "family": family, "files": sorted(p.name for p in to.iterdir())}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _missing_parents(to: Path) -> list[Path]:
    """The folders above ``to`` that do not exist yet, nearest first."""
    missing, here = [], to.absolute().parent
    while not here.exists():
        missing.append(here)
        here = here.parent
    return missing


def _record_with_weights(run_dir: Path) -> dict:
    """The record of a complete run that kept its weights, or a one-line error."""
    if not run_dir.is_dir() or not ((run_dir / "result.json").exists()
                                    or (run_dir / "config.json").exists()):
        raise UserError(f"{run_dir} is not a run directory (no result.json): pass a folder "
                        "that isp run wrote, e.g. runs/<method>_<model>_<data>_<hash>")
    record = load_result(run_dir)
    if record is None:
        raise UserError(f"run {run_dir} is not complete (no result.json): finish it with the "
                        "same isp run command, then export it")
    if not record.get("model_file"):
        raise UserError(f"run {run_dir} was made with --no-weights (no model.safetensors): "
                        "delete it and rerun it without --no-weights, then export it")
    return record


def _check_target(to: Path) -> None:
    """Refuse an export folder that exists and is not an empty folder."""
    if to.exists() and not to.is_dir():
        raise UserError(f"--to {to} is a file: pass a new folder")
    if to.is_dir() and any(to.iterdir()):
        raise UserError(f"--to {to} is not empty: pass a new folder or an empty one")


def _config(run_dir: Path, record: dict) -> RunConfig:
    """The run's :class:`RunConfig`, from the record's ``config``."""
    raw = record.get("config")
    names = {f.name for f in fields(RunConfig)}
    if not isinstance(raw, dict) or not set(raw) <= names:
        raise UserError(f"run directory {run_dir} is corrupt (result.json has no config this "
                        "kit reads): delete it and rerun")
    overrides = tuple((str(k), str(v)) for k, v in raw.get("overrides", ()))
    return RunConfig(**{**raw, "overrides": overrides})


def _read_weights(run_dir: Path, record: dict) -> dict[str, torch.Tensor]:
    """The run's final state dict, after checking the file's size and SHA-256."""
    path = run_dir / str(record["model_file"])
    corrupt = f"run directory {run_dir} is corrupt ({path.name} %s): delete it and rerun"
    if not path.is_file():
        raise UserError(corrupt % "is missing")
    if path.stat().st_size != record.get("model_bytes") or \
            file_sha256(path) != record.get("model_sha256"):
        raise UserError(corrupt % "is not the file that result.json records")
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError):
        raise UserError(corrupt % "is not a safetensors file") from None


def _load_strict(model: nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError:
        raise UserError(f"the run's weights do not fit {what} as this kit builds it (other "
                        "tensor names or shapes): export with the kit version that made the run"
                        ) from None


def _stub_data(cfg: RunConfig, num_labels: int) -> RawData:
    """A data set with no examples: what :func:`build_model` needs to build the architecture."""
    empty = Split(inputs=[], labels=np.zeros(0))
    return RawData(name=cfg.data, kind="text", train=empty, val=empty, test=empty,
                   class_names=[], metric="", num_labels=num_labels)


def _export_bert(cfg: RunConfig, state: dict[str, torch.Tensor], folder: Path) -> Exported:
    """BERT family: a transformers folder (see the module docstring)."""
    from transformers import BertForSequenceClassification

    profile = get_profile(cfg.profile)
    num_labels = int(state["classifier.weight"].shape[0])
    bundle = build_model(cfg.model, _stub_data(cfg, num_labels), profile,
                         source=cfg.model_source)
    model = bundle.model
    _load_strict(model, state, cfg.model)
    tokenizer = bundle.tokenizer
    tokenizer.model_max_length = profile.max_len  # the run's truncation length
    tokenizer.save_pretrained(folder)
    encoder = model.encoder
    if model.pooling == "mean":
        _quiet(encoder.save_pretrained, folder)
        save_file({"weight": state["classifier.weight"], "bias": state["classifier.bias"]},
                  folder / "head.safetensors")
        return Exported(rename=lambda n: n.removeprefix("encoder."), load=BERT_MEAN_LOAD)
    if encoder.config.model_type != "bert":
        raise UserError(f"cannot export a {encoder.config.model_type} encoder as "
                        "BertForSequenceClassification: export runs of BERT encoders")
    config = encoder.config.__class__.from_dict(encoder.config.to_dict())
    config.num_labels = num_labels
    config.architectures = ["BertForSequenceClassification"]
    config.problem_type = "regression" if num_labels == 1 else "single_label_classification"
    hf = BertForSequenceClassification(config)
    _load_strict(hf.bert, encoder.state_dict(), "BertModel")
    _load_strict(hf.classifier, model.classifier.state_dict(), "the classifier")
    _quiet(hf.save_pretrained, folder)
    return Exported(rename=lambda n: "bert." + n.removeprefix("encoder."), load=BERT_CLS_LOAD)


def _quiet(save: Callable[[Path], Any], folder: Path) -> None:
    """Call a transformers ``save_pretrained`` without its progress bar."""
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        save(folder)
    finally:
        if shown:
            hf_logging.enable_progress_bar()


def _export_clip(cfg: RunConfig, state: dict[str, torch.Tensor], folder: Path) -> Exported:
    """CLIP: the visual tower as open_clip names it, its config and the zero-shot head."""
    import open_clip

    from isp_lib.models.clip import open_clip_config

    config = open_clip_config(model_spec(cfg.model), get_profile(cfg.profile), cfg.model_source)
    visual = {k.removeprefix("visual."): v for k, v in state.items() if k.startswith("visual.")}
    _load_strict(open_clip.CLIP(**config["model_cfg"]).visual, visual, "open_clip's visual tower")
    save_file(visual, folder / "visual.safetensors")
    save_file({"head": state["head"]}, folder / "head.safetensors")
    (folder / "open_clip_config.json").write_text(json.dumps(config, indent=2) + "\n")
    return Exported(rename=lambda n: n.removeprefix("visual."), load=CLIP_LOAD)


def _export_cnn(cfg: RunConfig, state: dict[str, torch.Tensor], folder: Path) -> Exported:
    """CNN: the state dict of ``efficientnet_lite_pytorch``'s model, its head as ``_fc``."""
    from efficientnet_lite_pytorch import EfficientNet

    from isp_lib.models.effnet import effnet_config

    config = effnet_config(model_spec(cfg.model), get_profile(cfg.profile))
    config["from_name"]["num_classes"] = int(state["classifier.weight"].shape[0])

    def rename(name: str) -> str:
        return "_fc." + name[11:] if name.startswith("classifier.") else \
            name.removeprefix("backbone.")

    out = {rename(k): v for k, v in state.items()}
    _load_strict(EfficientNet.from_name(config["arch"], **config["from_name"]), out,
                 config["arch"])
    save_file(out, folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return Exported(rename=rename, load=CNN_LOAD)


def _readme(record: dict, family: str, mask: Mask, done: Exported) -> str:
    """The export's README.md: the record, how to load, the sparsity per tensor."""
    profile = record.get("profile", record.get("resolved", {}).get("profile"))
    lines = [
        f"# {record['method']} on {record['model']} / {record['data']}: pruned model",
        "",
        "Exported by `isp export` (Instant Soup kit) from one run. Loading it needs no isp_lib.",
        "",
        "| field | value |",
        "|---|---|",
        f"| method | `{record['method']}` |",
        f"| model (family) | `{record['model']}` ({family}) |",
        f"| data, profile | `{record['data']}`, `{profile}` |",
        f"| sparsity (target / actual, prunable scope) | {record['target_sparsity']:.4f} / "
        f"{record['actual_sparsity']:.4f} |",
        f"| test {record['metric_name']} | {record['test_metric']:.4f} |",
        f"| val {record['metric_name']} | {_number(record['val_metric'])} |",
        f"| seed | {record['seed']} |",
        f"| config hash | `{record['config_hash']}` |",
        f"| git commit | `{record['git_commit']}` |",
        f"| isp_lib, torch | {record['isp_lib_version']}, {record['torch_version']} |",
        f"| weights SHA-256 (run's model.safetensors) | `{record['model_sha256']}` |",
        "",
        "Classes are the data set's label ids, 0 to N-1, in the kit's order.",
        "",
        "## How to load",
        "",
        done.load.strip(),
        "",
        *_speed_section(record, family),
        "## Sparsity per tensor",
        "",
        "Pruned entries are exactly zero. Tensors outside the prunable scope are dense.",
        "",
        "| tensor | shape | pruned |",
        "|---|---|---|",
    ]
    for name in sorted(mask):
        m = mask[name]
        pruned = 1.0 - float(m.float().mean()) if m.numel() else 0.0
        lines.append(f"| `{done.rename(name)}` | {tuple(m.shape)} | {pruned:.2%} |")
    lines += ["", f"Overall: {mask.sparsity():.2%} of {mask.num_total():,} prunable weights.", ""]
    return "\n".join(lines)


def _speed_section(record: dict, family: str) -> list[str]:
    """The README's lines on whether the mask can run faster, and how (2:4 on a GPU)."""
    resolved = (record.get("resolved") or {}).get("options") or {}
    pattern = resolved.get("pattern", (record.get("options") or {}).get("pattern", "none"))
    if pattern != "2:4":
        return ["## Speed", "", f"The mask is {'unstructured' if pattern == 'none' else pattern}"
                ": pruned weights are zeros in dense tensors, so no kernel runs this model "
                "faster than the dense one; the sparsity saves FLOPs on paper only.", ""]
    if family == "cnn":
        return ["## Speed", "", "The mask is 2:4 along the input channels (NVIDIA ASP's rule), but "
                "PyTorch has 2:4 kernels for linear layers only, and this model's pruned weights "
                "are convolutions: run it through TensorRT with sparsity enabled to use them.", ""]
    return ["## Speed: 2:4 on a GPU", "", SEMI_STRUCTURED_LOAD.strip(), ""]


SEMI_STRUCTURED_LOAD = """
The mask is 2:4 (2 of every 4 consecutive input weights of each row kept), which NVIDIA GPUs
from Ampere on (compute capability 8.0) multiply about twice as fast through
`torch.sparse.to_sparse_semi_structured`. On a CPU it saves no time. After loading as above
(`model` below is the loaded module: `encoder` for a mean-pooled BERT, `model.visual` for CLIP):

```python
import torch
from torch.sparse import to_sparse_semi_structured

model = model.to("cuda", torch.bfloat16).eval()
in_attention = {id(m.out_proj) for m in model.modules()
                if isinstance(m, torch.nn.MultiheadAttention)}  # its fused path needs dense
for layer in model.modules():
    linear = isinstance(layer, torch.nn.Linear) and id(layer) not in in_attention
    w = layer.weight if linear else None
    if w is not None and w.shape[0] % 32 == 0 and w.shape[1] % 64 == 0 and \\
            bool(((w != 0).view(w.shape[0], -1, 4).sum(-1) <= 2).all()):
        layer.weight = torch.nn.Parameter(to_sparse_semi_structured(w), requires_grad=False)
```

With isp_lib installed, `isp_lib.to_semi_structured(model)` does the same, and
`isp_lib.semi_structured.plan(model)` says why each other layer stays dense.
"""


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "-"


BERT_CLS_LOAD = """
A standard `BertForSequenceClassification` folder (pooler on [CLS], dropout, linear head:
the kit's `cls` head), with its tokenizer (`model_max_length` is the run's truncation length):

```python
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained(DIR)
model = AutoModelForSequenceClassification.from_pretrained(DIR).eval()
batch = tokenizer(["a text"], truncation=True, padding=True, return_tensors="pt")
with torch.no_grad():
    logits = model(**batch).logits        # text pairs: tokenizer(first, second, ...)
```
"""

BERT_MEAN_LOAD = """
The run's model pools the encoder's last hidden states by their attention-masked mean, then
applies a linear head. `BertForSequenceClassification` classifies the pooler's output on
[CLS] instead and no stock transformers class pools by the mean, so
`AutoModelForSequenceClassification.from_pretrained(DIR)` would load the encoder with a new,
random head: do not use it. The folder is the encoder as a `BertModel` with its tokenizer
(`model_max_length` is the run's truncation length), and `head.safetensors` holds the linear
head (`weight`: classes x hidden, `bias`):

```python
import torch
from safetensors.torch import load_file
from transformers import AutoModel, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained(DIR)
encoder = AutoModel.from_pretrained(DIR, add_pooling_layer=False).eval()
head = load_file(f"{DIR}/head.safetensors")
batch = tokenizer(["a text"], truncation=True, padding=True, return_tensors="pt")
with torch.no_grad():
    hidden = encoder(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
    logits = pooled @ head["weight"].T + head["bias"]
```
"""

CLIP_LOAD = """
The fine-tuned, pruned visual tower of an open_clip CLIP (`visual.safetensors`, named as in
`model.visual.state_dict()`), the architecture and preprocessing (`open_clip_config.json`,
open_clip's layout) and the zero-shot head (`head.safetensors`: `head`, embed_dim x classes,
the normalised class embeddings times CLIP's logit scale). The text tower is not part of the
classifier and is not exported.

```python
import json

import open_clip
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

cfg = json.load(open(f"{DIR}/open_clip_config.json"))
model = open_clip.CLIP(**cfg["model_cfg"]).eval()   # or open_clip.create_model(ARCH, ...)
model.visual.load_state_dict(load_file(f"{DIR}/visual.safetensors"))
head = load_file(f"{DIR}/head.safetensors")["head"]
pre = cfg["preprocess_cfg"]
preprocess = open_clip.image_transform(
    pre["size"], is_train=False, mean=pre["mean"], std=pre["std"],
    interpolation=pre["interpolation"], resize_mode=pre["resize_mode"])
with torch.no_grad():
    x = preprocess(pil_image.convert("RGB")).unsqueeze(0)
    logits = F.normalize(model.visual(x), dim=-1) @ head
```
"""

CNN_LOAD = """
The state dict (`model.safetensors`) of an `efficientnet_lite_pytorch` EfficientNet whose
final layer `_fc` is the run's classification head; `config.json` gives the architecture
(`arch`, `from_name` keyword arguments) and the input transform (RGB, resized to
`resolution` square, `(pixel - mean) / std` on 0-255 values):

```python
import json

import torch
from efficientnet_lite_pytorch import EfficientNet
from safetensors.torch import load_file
from torchvision import transforms

cfg = json.load(open(f"{DIR}/config.json"))
net = EfficientNet.from_name(cfg["arch"], **cfg["from_name"]).eval()
net.load_state_dict(load_file(f"{DIR}/model.safetensors"))
size = cfg["resolution"]
preprocess = transforms.Compose([
    transforms.Resize((size, size), interpolation=transforms.InterpolationMode.BILINEAR,
                      antialias=True),
    transforms.ToTensor(),
    transforms.Normalize([cfg["mean"] / 255] * 3, [cfg["std"] / 255] * 3)])
with torch.no_grad():
    logits = net(preprocess(pil_image.convert("RGB")).unsqueeze(0))
```
"""
