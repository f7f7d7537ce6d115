"""P8: the CLIP input pipeline, from CIFAR-10-shaped uint8 images to normalised 224-px batches.

Old (the plain path): each image through PIL when it is read, as ``ImageDataset`` does:
``to_pil_rgb``, then open_clip's ViT-B/32 evaluation transform (bicubic resize of the short
side to 224, centre crop, to tensor, normalise), then ``stack_collate``; in the main thread,
or in each loader worker. New (the fast path, :mod:`isp_lib.accel`): the images decoded once
into one uint8 tensor (``DecodedImages``); a batch is an index and a stack on the CPU
(``stack_collate``), and ``DevicePreprocess`` resizes and normalises it on the device after
the copy. The three steps (old batch, new CPU side, new device side) are timed side by side
on batches of 256 of the same random 32x32x3 images, on one torch thread; the CPU sides on
the process's CPU time (images/s per core), the device side on the figure's clock. A row
compares the new batch's pixels with the old one's in 8-bit levels, before normalisation
(``DevicePreprocess.resize`` against PIL's pixels recovered from the normalised batch), on
one batch of 256 plus an all-black and an all-white image (target: at most one level;
``DevicePreprocess`` computes PIL's fixed-point resampling, so it should be zero and the
normalised batches bit-identical). A miss is reported in the table, not raised.
"""

from __future__ import annotations

import numpy as np
import torch

from benchmarks.common import (
    Outcome,
    Row,
    Settings,
    clock_name,
    interleave,
    paired_ratio,
    times,
    yes_no,
)
from isp_lib.models.clip import (
    DecodedImages,
    DevicePreprocess,
    ImageDataset,
    decode_images,
    stack_collate,
    to_pil_rgb,
)
from isp_lib.train import move

NAME = "P8"
BATCH = 256
SIZE = 224
#: Images per second per CPU core that the CPU side must deliver: 2,000 per 4 workers.
TARGET = 2000 / 4
#: Float slack when PIL's 8-bit pixels are recovered from its normalised float32 batch.
LEVEL_SLACK = 1e-3


def _transform():
    """open_clip's evaluation transform of ViT-B/32 (OpenAI weights) and its device twin."""
    import open_clip

    mean, std = open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD
    pil = open_clip.image_transform(SIZE, is_train=False, mean=mean, std=std,
                                    resize_mode="shortest", interpolation="bicubic")
    return pil, DevicePreprocess(SIZE, mean, std, "bicubic")


def _compare(pil, preprocess: DevicePreprocess, idx: list[int], images: np.ndarray,
             device: torch.device) -> tuple[float, float, bool]:
    """Compare the device path with PIL on ``images[idx]`` plus an all-0 and an all-255 image.

    Returns:
        The largest pixel difference in 8-bit levels before normalisation, the largest
        difference of the normalised batches, and whether those are bit-identical.
    """
    chosen = np.concatenate([images[idx], np.zeros_like(images[:1]),
                             np.full_like(images[:1], 255)])
    with torch.no_grad():
        pixels = move({"pixel_values": decode_images(chosen)}, device)["pixel_values"]
        ours_levels = preprocess.resize(pixels).cpu()
        ours = preprocess(pixels).cpu()
    theirs = torch.stack([pil(to_pil_rgb(image)) for image in chosen])
    mean, std = preprocess.mean.cpu().double(), preprocess.std.cpu().double()
    theirs_levels = (theirs.double() * std + mean) * 255  # PIL's uint8 pixels, to float error
    worst = float((ours_levels.double() - theirs_levels).abs().max())
    return worst, float((ours - theirs).abs().max()), torch.equal(ours, theirs)


def run(s: Settings) -> Outcome:
    """Time old and new batches of 256, interleaved, and check they hold the same pixels.

    Args:
        s: the settings (``quick``: 512 images, fewer batches per repetition).

    Returns:
        Rows: CPU images/s per core, new vs old (the target); the old path alone against the
        target; the device side; the one-time decode; the pixel check in 8-bit levels.
    """
    rng = np.random.default_rng(s.seed)
    count = 512 if s.quick else 2048
    images = rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)
    labels = torch.as_tensor(np.arange(count) % 10)
    pil, preprocess = _transform()
    preprocess = preprocess.to(s.device)
    old_set = ImageDataset(images, labels, pil)
    new_set = DecodedImages(decode_images(images), labels)
    order = torch.randperm(count, generator=torch.Generator().manual_seed(s.seed)).tolist()
    per_rep = {"old": 1 if s.quick else 2, "new cpu": 16 if s.quick else 64,
               "new device": 1 if s.quick else 2}

    def batches(n: int) -> list[list[int]]:
        return [[order[(b * BATCH + k) % count] for k in range(BATCH)] for b in range(n)]

    def old() -> None:
        for idx in batches(per_rep["old"]):
            stack_collate([old_set[i] for i in idx])

    def new_cpu() -> None:
        for idx in batches(per_rep["new cpu"]):
            stack_collate([new_set[i] for i in idx])

    one = stack_collate([new_set[i] for i in batches(1)[0]])

    def new_device() -> None:
        for _ in range(per_rep["new device"]):
            with torch.no_grad():
                preprocess(move(one, s.device)["pixel_values"])

    calls = {"old": old, "new cpu": new_cpu, "new device": new_device}
    for call in calls.values():
        call()  # warm-up
    timings = interleave(calls, s.reps, s.device, "P8 batches")

    def rate(name: str, clock: dict[str, list[float]]) -> list[float]:
        return [per_rep[name] * BATCH / t for t in clock[name]]

    old_rate, new_rate = rate("old", timings.cpu), rate("new cpu", timings.cpu)
    device_rate = rate("new device", timings.main(s.device))
    per_image = {name: [t / (per_rep[name] * BATCH) for t in ts]
                 for name, ts in timings.cpu.items()}
    speedup = paired_ratio(per_image["old"], per_image["new cpu"])
    med = {name: float(np.median(r)) for name, r in
           (("old", old_rate), ("new cpu", new_rate), ("new device", device_rate))}

    decode_timing = interleave({"decode": lambda: decode_images(images)}, 1, s.device, "P8 decode")
    decode_rate = count / decode_timing.cpu["decode"][0]

    worst, worst_normalised, identical = _compare(pil, preprocess, batches(1)[0], images,
                                                  s.device)

    rows = [
        Row("P8 CPU images/s per core, new vs old", f"{med['new cpu']:,.0f} img/s",
            f"{med['old']:,.0f} img/s", times(speedup), f">= {TARGET:,.0f} img/s",
            yes_no(med["new cpu"] >= TARGET)),
        Row("P8 old path alone (PIL per image)", f"{med['old']:,.0f} img/s", "-", "-",
            f">= {TARGET:,.0f} img/s", yes_no(med["old"] >= TARGET)),
        Row(f"P8 resize+normalise on {s.device.type}", f"{med['new device']:,.0f} img/s", "-",
            "-", "-", "n/a"),
        Row("P8 decode once (uint8 tensor)", f"{decode_rate:,.0f} img/s", "-", "-", "-", "n/a"),
        Row("P8 same pixels (8-bit levels)", f"max diff {worst:.2f}",
            "bit-identical" if identical else "not bit-identical", "-", "<= 1 level",
            yes_no(worst <= 1 + LEVEL_SLACK)),
    ]
    details = {
        "data": f"{count} random 32x32x3 uint8 images, batches of {BATCH} to {SIZE} px",
        "batches_per_rep": per_rep, "cpu_images_per_s": {"old": old_rate, "new cpu": new_rate},
        "device_images_per_s": device_rate, "device_clock": clock_name(s.device),
        "speedup_cpu_per_image": speedup, "decode_images_per_s": decode_rate,
        "wall_seconds": timings.wall, "cpu_seconds": timings.cpu,
        "max_diff_levels": worst, "max_abs_diff_normalised": worst_normalised,
        "bit_identical": identical, "compared_images": BATCH + 2, "threads": s.threads,
    }
    return Outcome(rows, details)
