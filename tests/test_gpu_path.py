"""The fast path of isp_lib.accel (paper profile on CUDA), checked on the CPU.

CI has no GPU: the DataLoader path is forced here by building an ``Accel`` by hand, CUDA is
mocked where only its presence and size matter, and the checks compare the fast path with
the plain one (the path every cpu and smoke record was made on).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from isp_lib import cli, runs
from isp_lib.accel import PLAIN, Accel, auto_bf16, eval_batch_size, matmul_precision, plan
from isp_lib.data import load_data
from isp_lib.data.base import RawData, Split
from isp_lib.models import build_model
from isp_lib.models.clip import (
    DecodedImages,
    DevicePreprocess,
    ImageDataset,
    decode_images,
    eval_transform,
    to_pil_rgb,
)
from isp_lib.profiles import get_profile
from isp_lib.train import BatchStream, Ledger, Trainer, feed, predict
from tests.conftest import ToyData, ToyNet, toy_collate

SMOKE = get_profile("smoke")
CPU = torch.device("cpu")
CUDA = torch.device("cuda")
#: One 8-bit level after normalisation by CLIP's smallest std (0.2613), plus float slack.
LEVEL = 1 / 255 / 0.2613 + 1e-5


def _image_split(n: int = 24, shape: tuple[int, ...] = (32, 32, 3)) -> Split:
    rng = np.random.default_rng(1)
    return Split(rng.integers(0, 256, (n, *shape), dtype=np.uint8), np.arange(n) % 3)


@pytest.fixture(scope="module")
def text_data() -> RawData:
    return load_data("drugreview", SMOKE)


@pytest.fixture(scope="module")
def image_data() -> RawData:
    return load_data("fashion-mnist", SMOKE)


@pytest.fixture(scope="module")
def text_bundle(text_data):
    torch.manual_seed(0)
    return build_model("minilm", text_data, SMOKE)


@pytest.fixture(scope="module")
def clip_bundle(image_data):
    torch.manual_seed(0)
    return build_model("clip-vit-b32", image_data, SMOKE)


def _index_batches(n: int, batch: int, count: int) -> list[list[int]]:
    stream = BatchStream(np.arange(n), batch, seed=3)
    return [stream.next() for _ in range(count)]


def _same(a: list[dict[str, torch.Tensor]], b: list[dict[str, torch.Tensor]]) -> bool:
    return len(a) == len(b) and all(
        x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
        for x, y in zip(a, b, strict=True)
    )


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize(("data", "bundle"), [("text_data", "text_bundle"),
                                              ("image_data", "clip_bundle")])
def test_loader_yields_the_plain_batches_in_order(workers, data, bundle, request):
    """The smoke drug reviews (tokenised) and Fashion-MNIST (PIL per item, so workers)."""
    data, bundle = request.getfixturevalue(data), request.getfixturevalue(bundle)
    dataset = bundle.make_dataset(data.train)
    indices = _index_batches(len(dataset), 7, 9)  # batches run across epoch ends
    plain = list(feed(dataset, bundle.collate, iter(indices), CPU))
    rng = torch.get_rng_state()
    fast = list(feed(dataset, bundle.collate, iter(indices), CPU,
                     Accel(loader=True, workers=workers)))
    assert torch.equal(torch.get_rng_state(), rng)  # the loader drew nothing from torch's RNG
    assert _same(plain, fast)


def test_only_data_sets_that_decode_per_item_get_workers():
    assert ImageDataset.decodes_per_item
    assert not getattr(DecodedImages, "decodes_per_item", False)


def _trainer(accel: Accel) -> Trainer:
    torch.manual_seed(0)
    return Trainer(ToyNet(), ToyData(80, 1), toy_collate, lr=3e-3, weight_decay=0.01,
                   batch_size=16, total_steps=12, warmup_steps=2, max_grad_norm=1.0, seed=5,
                   ledger=Ledger(), device=CPU, accel=accel)


def test_trainer_on_the_loader_path_trains_bit_identically():
    plain, fast = _trainer(PLAIN), _trainer(Accel(loader=True))
    losses = [(plain.train(5, "train"), fast.train(5, "train")) for _ in range(2)]
    assert all(a == b for a, b in losses)
    fast_state = fast.model.state_dict()
    for name, a in plain.model.state_dict().items():
        assert torch.equal(a, fast_state[name]), name
    assert plain.stream.pos == fast.stream.pos
    assert torch.equal(plain.stream.perm, fast.stream.perm)


def test_mean_loss_is_summed_as_python_floats(monkeypatch):
    trainer = _trainer(PLAIN)
    losses: list[float] = []
    step = trainer._step

    def recording(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        loss = step(batch)
        losses.append(float(loss))
        return loss

    monkeypatch.setattr(trainer, "_step", recording)
    mean = trainer.train(6, "train")
    total = 0.0
    for loss in losses:  # as the trainer summed them when it read each step's loss
        total += loss
    assert mean == total / 6


def test_device_preprocess_matches_the_pil_transform(clip_bundle):
    transform = eval_transform(clip_bundle.model.visual)
    preprocess = clip_bundle.model.preprocess
    for shape in [(32, 32, 3), (28, 28), (24, 40, 3), (45, 30, 4)]:
        images = _image_split(6, shape).inputs
        ours = preprocess(decode_images(images))
        pil = torch.stack([transform(to_pil_rgb(i)) for i in images])
        assert ours.shape == pil.shape == (6, 3, 32, 32)
        diff = (ours - pil).abs()
        assert diff.max() <= LEVEL, shape
        assert diff.mean() < LEVEL / 20, shape


def test_device_preprocess_at_clip_size_matches_open_clip():
    import open_clip

    mean, std = open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD
    transform = open_clip.image_transform(224, is_train=False, mean=mean, std=std,
                                          resize_mode="shortest", interpolation="bicubic")
    images = _image_split(4).inputs  # CIFAR-shaped, upscaled 7x as CLIP ViT-B/32 reads them
    ours = DevicePreprocess(224, mean, std, "bicubic")(decode_images(images))
    pil = torch.stack([transform(to_pil_rgb(i)) for i in images])
    diff = (ours - pil).abs()
    assert diff.max() <= LEVEL
    assert diff.mean() < LEVEL / 20
    assert DevicePreprocess(224, mean, std, "bicubic").state_dict() == {}


def _pil_pixels(transform, images) -> torch.Tensor:
    """PIL's 8-bit pixels from ``transform``'s PIL steps (resize, centre crop), as (N, 3, H, W)."""
    from torchvision.transforms import CenterCrop, Resize

    steps = [t for t in transform.transforms if isinstance(t, Resize | CenterCrop)]
    assert len(steps) == 2
    out = []
    for image in images:
        image = to_pil_rgb(image)
        for step in steps:
            image = step(image)
        out.append(np.asarray(image))
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2)


def test_device_resize_is_within_one_8bit_level_of_pil():
    """Benchmark P8's data at CLIP's size: 512 random CIFAR-shaped images, smooth ones and
    the extremes, compared in 8-bit pixels, before normalisation (PIL's resampling is fixed
    point; the device path computes the same integers, so the difference is in fact zero;
    the tests above compare the normalised output with the whole transform)."""
    import open_clip

    mean, std = open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD
    transform = open_clip.image_transform(224, is_train=False, mean=mean, std=std,
                                          resize_mode="shortest", interpolation="bicubic")
    rng = np.random.default_rng(8)
    y, x = np.mgrid[0:32, 0:32]
    smooth = [np.stack([127.5 + 127.5 * np.sin(x / (2 + k) + y / (3 + k) + c)
                        for c in range(3)], -1).round().astype(np.uint8) for k in range(6)]
    stripes = np.repeat(((x + y) % 2 * 255).astype(np.uint8)[..., None], 3, -1)
    images = np.concatenate([rng.integers(0, 256, (512, 32, 32, 3), dtype=np.uint8),
                             np.stack(smooth), np.zeros((1, 32, 32, 3), np.uint8),
                             np.full((1, 32, 32, 3), 255, np.uint8), stripes[None]])
    preprocess = DevicePreprocess(224, mean, std, "bicubic")
    pixels = decode_images(images)
    ours = preprocess.resize(pixels)
    assert ours.shape == (len(images), 3, 224, 224)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # as in a bf16 run: float64 is kept
        assert torch.equal(preprocess.resize(pixels[:8]), ours[:8])
    assert torch.equal(ours[:8], ours[:8].round())
    assert ours.sub_(_pil_pixels(transform, images)).abs_().max() <= 1  # in place: 0.6 GB


@pytest.mark.parametrize("interpolation", ["bicubic", "bilinear"])
def test_device_resize_matches_pil_when_shrinking_and_cropping(interpolation):
    """Non-square images, enlarged and shrunk (where PIL widens its filter to antialias)."""
    import open_clip

    mean, std = open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD
    transform = open_clip.image_transform(40, is_train=False, mean=mean, std=std,
                                          resize_mode="shortest", interpolation=interpolation)
    preprocess = DevicePreprocess(40, mean, std, interpolation)
    rng = np.random.default_rng(9)
    for shape in [(24, 37, 3), (90, 61, 3), (40, 130, 3), (40, 40, 3)]:
        images = rng.integers(0, 256, (4, *shape), dtype=np.uint8)
        ours = preprocess.resize(decode_images(images))
        assert ours.shape == (4, 3, 40, 40), shape
        assert (ours - _pil_pixels(transform, images)).abs().max() <= 1, shape


def test_decoded_images_classify_as_the_pil_path(clip_bundle):
    split = _image_split(10, (28, 28))
    decoded = clip_bundle.make_device_dataset(split)
    assert isinstance(decoded, DecodedImages)
    assert decoded.pixels.dtype == torch.uint8 and decoded.pixels.shape == (10, 3, 28, 28)
    assert torch.equal(decoded.labels, torch.as_tensor(split.labels))
    model = clip_bundle.model.eval()
    fast, gold = predict(model, decoded, clip_bundle.collate, CPU, accel=Accel(loader=True))
    plain, gold_plain = predict(model, clip_bundle.make_dataset(split), clip_bundle.collate, CPU)
    assert np.array_equal(gold, gold_plain)
    np.testing.assert_allclose(fast, plain, atol=0.05)
    assert "preprocess.mean" not in model.state_dict()


def test_images_of_mixed_sizes_fall_back_to_pil(clip_bundle):
    images = [np.zeros((32, 32, 3), np.uint8), np.zeros((30, 32, 3), np.uint8)]
    dataset = clip_bundle.make_device_dataset(Split(images, np.array([0, 1])))
    assert isinstance(dataset, ImageDataset)


def test_plan_takes_the_fast_path_only_at_the_paper_profile_on_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda _d: SimpleNamespace(total_memory=80 * 2**30))
    for profile in ("smoke", "cpu"):
        assert plan(profile, CUDA) == PLAIN
        assert plan(profile, CPU, compile=True) == Accel(compile=True)
    assert plan("paper", CPU) == PLAIN
    fast = plan("paper", CUDA)
    assert fast.loader and fast.pin_memory and fast.device_images and fast.fused_adamw
    assert fast.tf32 and fast.workers >= 1 and fast.eval_batch == 1024 and not fast.compile


def test_eval_batch_scales_with_gpu_memory(monkeypatch):
    assert eval_batch_size(CPU) == 64
    for gib, batch in [(15, 192), (40, 640), (80, 1024), (2, 64)]:
        monkeypatch.setattr(torch.cuda, "get_device_properties",
                            lambda _d, g=gib: SimpleNamespace(total_memory=g * 2**30))
        assert eval_batch_size(CUDA) == batch


def test_matmul_precision_is_restored():
    before = torch.get_float32_matmul_precision()
    with matmul_precision(Accel(tf32=True)):
        assert torch.get_float32_matmul_precision() == "high"
    assert torch.get_float32_matmul_precision() == before
    with matmul_precision(PLAIN):
        assert torch.get_float32_matmul_precision() == before


def _mock_cuda(monkeypatch, capability: tuple[int, int] | None) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: capability is not None)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda _d=None: capability)


@pytest.mark.parametrize(("capability", "device", "profile", "expected"), [
    ((8, 0), "auto", "paper", True),
    ((9, 0), "cuda", "paper", True),
    ((7, 5), "auto", "paper", False),   # a T4 emulates bf16
    ((8, 0), "cpu", "paper", False),
    ((8, 0), "auto", "cpu", False),
    ((8, 0), "cuda", "smoke", False),
    (None, "auto", "paper", False),
    (None, "cuda", "paper", True),      # a Slurm/Ray driver: the jobs run on GPU nodes
])
def test_bf16_default_per_profile_and_device(monkeypatch, capability, device, profile, expected):
    _mock_cuda(monkeypatch, capability)
    assert auto_bf16(profile, device) is expected


ARGS = ["run", "--method", "oneshot", "--model", "bert-base", "--data", "sst2",
        "--sparsity", "0.7", "--profile"]


def _run_args(monkeypatch, argv: list[str]) -> dict:
    """What ``isp run ARGV`` passes to :func:`isp_lib.runs.run` (which is not run)."""
    seen = {}

    def fake_run(cfg, out, **kwargs):
        seen.update(cfg=cfg, **kwargs)
        return {"config_hash": cfg.config_hash()}

    monkeypatch.setattr(runs, "run", fake_run)
    assert cli.main([*argv, "--json"]) == 0
    return seen


def test_isp_run_defaults_to_bf16_at_paper_on_an_ampere_gpu(monkeypatch, capsys):
    _mock_cuda(monkeypatch, (8, 0))
    assert _run_args(monkeypatch, [*ARGS, "paper"])["cfg"].bf16
    assert not _run_args(monkeypatch, [*ARGS, "paper", "--no-bf16"])["cfg"].bf16
    assert not _run_args(monkeypatch, [*ARGS, "cpu"])["cfg"].bf16
    _mock_cuda(monkeypatch, None)
    assert not _run_args(monkeypatch, [*ARGS, "paper"])["cfg"].bf16
    capsys.readouterr()


def test_bf16_and_no_bf16_exclude_each_other(capsys):
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args([*ARGS, "paper", "--bf16", "--no-bf16"])
    assert "not allowed with" in capsys.readouterr().err


def test_compile_is_accepted_and_not_in_the_hash(monkeypatch, capsys):
    plain = _run_args(monkeypatch, [*ARGS, "smoke"])
    compiled = _run_args(monkeypatch, [*ARGS, "smoke", "--compile"])
    assert compiled["compile"] and not plain["compile"]
    assert compiled["cfg"] == plain["cfg"]
    assert compiled["cfg"].config_hash() == plain["cfg"].config_hash()
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["config_hash"] == \
        plain["cfg"].config_hash()
    sweep = cli.build_parser().parse_args(["sweep", "x.yaml", "--compile", "--no-bf16"])
    assert sweep.compile and sweep.no_bf16


def test_compile_wraps_the_training_forward_only(monkeypatch):
    wrapped = []

    def fake_compile(model):
        wrapped.append(model)
        return model

    monkeypatch.setattr(torch, "compile", fake_compile)
    trainer = _trainer(Accel(compile=True))
    names = [n for n, _ in trainer.model.named_parameters()]
    trainer.train(2, "train")
    assert wrapped == [trainer.model]
    assert [n for n, _ in trainer.model.named_parameters()] == names
    _trainer(PLAIN)
    assert len(wrapped) == 1


def test_a_smoke_run_on_the_forced_fast_path(monkeypatch, tmp_path):
    forced = Accel(loader=True, workers=0, device_images=True, eval_batch=32, fused_adamw=True)
    monkeypatch.setattr(runs, "plan", lambda profile, device, compile=False: forced)
    cfg = runs.make_config("oneshot", "clip-vit-b32", "fashion-mnist", 0.5, "smoke")
    record = runs.run(cfg, tmp_path, device="cpu", weights=False)
    assert record["accel"] == asdict(forced)
    assert np.isfinite(record["test_metric"]) and record["sizes"]["test"] == 48
    assert record["config_hash"] == cfg.config_hash()
