"""The smallest recipe: a two-layer perceptron on a fixed regression problem, used to check the
command line and the distributed launcher end to end."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch import nn
from torch.utils.data import TensorDataset

from ..averaging import WeightAverage
from ..fit import supervised_update
from ..schedules import ConstantSchedule
from .base import Recipe, apply_overrides, define


@dataclass
class ToyConfig:
    width: int = 16
    lr: float = 0.05
    num_samples: int = 64
    average: float | None = None  # decay of a weight average of the model (None: none)


class Toy(nn.Module):
    def __init__(self, cfg: ToyConfig):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, cfg.width), nn.Tanh(), nn.Linear(cfg.width, 1))

    def forward(self, x):
        return self.net(x)


@define("toy")
def build(profile, data, overrides, seed) -> Recipe:
    cfg = apply_overrides(ToyConfig(), overrides)
    model = Toy(cfg)
    g = torch.Generator().manual_seed(1234)  # the problem is fixed; the seed moves the weights
    x = torch.randn(cfg.num_samples, 8, generator=g)
    y = torch.sin(x.sum(1, keepdim=True))
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    steps = profile.pick(smoke=20, cpu=200, gpu=2000)

    def evaluate(modules, val_set):
        device = next(modules["model"].parameters()).device
        xv, yv = (t.to(device) for t in val_set.tensors)
        with torch.no_grad():
            return {"mse": float(nn.functional.mse_loss(modules["model"](xv), yv))}

    return Recipe(
        "toy",
        cfg,
        {"model": model},
        {"opt": opt},
        {"opt": ConstantSchedule(opt, cfg.lr, steps)},
        partial(supervised_update, loss_fn=nn.functional.mse_loss),
        TensorDataset(x, y),
        batch_size=8,
        steps=steps,
        seed=seed,
        profile=profile,
        val_set=TensorDataset(x, y),
        evaluate=evaluate,
        log_every=profile.pick(smoke=2, cpu=10, gpu=50),
        averages={"model": WeightAverage(model, cfg.average)} if cfg.average else {},
    )
