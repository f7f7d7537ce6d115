"""Shared test fixtures: a toy classifier and data that need no downloads."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import contextlib  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import Dataset  # noqa: E402

from isp_lib import runs  # noqa: E402
from isp_lib.context import RunContext  # noqa: E402
from isp_lib.profiles import Hparams  # noqa: E402


class ToyData(Dataset):
    """Gaussian inputs labelled by a fixed random linear teacher (3 classes)."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 16, generator=g)
        teacher = torch.randn(16, 3, generator=torch.Generator().manual_seed(123))
        self.y = (self.x @ teacher).argmax(1)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i], "labels": self.y[i]}


def toy_collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


class ToyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(16, 64)
        self.fc2 = nn.Linear(64, 64)
        self.classifier = nn.Linear(64, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


TOY_HP = Hparams(lr=3e-3, weight_decay=0.01, epochs=2, batch_size=16, rate=0.3,
                 lookahead_steps=3, denoisers=2, seed_frac=0.2, evals_per_epoch=2)


def make_toy_ctx(sparsity: float = 0.7, seed: int = 0, hp: Hparams = TOY_HP) -> RunContext:
    """A fresh context on the toy task; the model init depends only on ``seed``."""
    torch.manual_seed(seed)
    model = ToyNet()
    return RunContext(model=model, family="linear", train_set=ToyData(160, 1),
                      val_set=ToyData(64, 2), collate=toy_collate, metric="accuracy", hp=hp,
                      sparsity=sparsity, seed=seed, device=torch.device("cpu"))


@pytest.fixture
def toy_ctx() -> RunContext:
    return make_toy_ctx()


class Killed(Exception):
    """Stands for a kill: raised right after a checkpoint was written."""


@contextlib.contextmanager
def killed_at_checkpoint(n: int) -> Iterator[None]:
    """The run inside is killed right after writing its ``n``-th ``ckpt.pt`` (and must be)."""
    real, count = runs.write_torch, [0]

    def dying(path, obj) -> None:
        real(path, obj)
        if path.name == "ckpt.pt":
            count[0] += 1
            if count[0] == n:
                raise Killed

    runs.write_torch = dying
    try:
        with pytest.raises(Killed):
            yield
    finally:
        runs.write_torch = real
