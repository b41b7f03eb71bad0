"""The deep cascade of CNNs (Schlemper et al. 2017) on cardiac cine: chapter 2's training run, and
``mricourse train cascade``; ``--config dims=2`` (``overrides={"dims": "2"}``) reconstructs frame by
frame (the 2D cascade), ``dims=3``, the default, in space and time with data sharing (2D+t). Each
gets its profile's preset (:meth:`~mricourse.models.cascade.CascadeConfig.for_profile`); further
overrides apply on top of it.

Data: the ``cine`` data set (fully sampled single-coil k-space, one fastMRI HDF5 file per subject):
``singlecoil_train`` for training, ``singlecoil_val`` for the evaluation; the test subjects are left
to the chapter. Samples (:class:`~mricourse.data.cine_sets.CineCrops`): one sequence a step, its heart
beat rolled to start at a random frame, a band of fully sampled read-out rows, a new k-t mask at an
acceleration in [4, 8]. Loss: the mean squared error of the complex image
(:func:`~mricourse.models.cascade.cascade_step`). Adam; the learning rate decays along a cosine to
zero at the last step.
"""

from __future__ import annotations

from functools import partial

import torch

from ...data.cine_sets import CineCrops, load_cine
from ...data.make import ensure_dataset
from ...fft import fft2c, ifft2c
from ...masks import kt_mask
from ...metrics import psnr
from ...models.cascade import CascadeConfig, CascadeNet, cascade_step
from ...profiles import Profile
from ..schedules import OneCycleSchedule
from .base import Recipe, apply_overrides, define

#: the acceleration of the recipe's evaluation (the middle of the training range)
EVAL_ACCELERATION = 6


def center_lines(profile: Profile) -> int:
    """The central phase-encoding lines every k-t mask samples, in training and evaluation."""
    return profile.pick(smoke=2, cpu=4, gpu=6)


def eval_masks(val_set: torch.Tensor, center: int = 4) -> torch.Tensor:
    """The k-t masks (N, T, 1, W) of :func:`evaluate`: sequence ``i`` of ``val_set`` (N, T, H, W)
    at :data:`EVAL_ACCELERATION` with the mask of seed ``10000 + i`` (the same for every run)."""
    return torch.cat([kt_mask(x.shape[0], x.shape[-1], EVAL_ACCELERATION, center, seed=10_000 + i) for i, x in enumerate(val_set)])


def evaluate(modules, val_set: torch.Tensor, center: int = 4) -> dict[str, float]:
    """Mean PSNR of the magnitude of ``modules["model"]``'s reconstruction and of zero filling on
    every sequence (N, T, H, W) of ``val_set`` at :data:`EVAL_ACCELERATION`, sequence ``i`` with
    the k-t mask of seed ``10000 + i`` (the same for every run)."""
    net = modules["model"].eval()
    device = next(net.parameters()).device
    scores = {"psnr": [], "psnr_zero_filled": []}
    with torch.no_grad():
        for x, mask in zip(val_set, eval_masks(val_set, center)):
            mask = mask[None]  # (1, T, 1, W)
            k0 = mask * fft2c(x[None])
            out = net(k0.to(device), mask.to(device)).cpu()
            scores["psnr"].append(psnr(x.abs(), out[0].abs()))
            scores["psnr_zero_filled"].append(psnr(x.abs(), ifft2c(k0)[0].abs()))
    return {k: float(sum(v) / len(v)) for k, v in scores.items()}


@define("cascade")
def build(profile, data, overrides, seed) -> Recipe:
    # dims picks the preset (2D or 2D+t); the other overrides, and dims again, apply on top of it
    dims = apply_overrides(CascadeConfig(sharing=()), {"dims": overrides["dims"]}).dims if "dims" in overrides else 3
    cfg = apply_overrides(CascadeConfig.for_profile(profile, dims=dims), overrides)
    model = CascadeNet(cfg)  # initialised from the seed, before any data is read
    root = data if data is not None else ensure_dataset("cine", profile.name)
    center = center_lines(profile)
    crop = profile.pick(smoke=16, cpu=16, gpu=64)  # read-out rows per sample (of 32, 64, 128)
    train_set = CineCrops(load_cine(root, "train")["images"], crop, center, accel=(4.0, 8.0))
    lr = 1e-3
    steps = profile.pick(smoke=4, cpu=1200, gpu=3000)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    return Recipe(
        "cascade",
        cfg,
        {"model": model},
        {"opt": opt},
        {"opt": OneCycleSchedule(opt, lr, steps, warmup=0.0, final=0.0)},  # a cosine from lr to 0, by the step
        cascade_step,
        train_set,
        batch_size=profile.pick(smoke=1, cpu=1, gpu=2),
        steps=steps,
        seed=seed,
        profile=profile,
        settings={"lr": lr, "schedule": "cosine to 0", "crop": crop, "center_lines": center, "accelerations": "4-8x"},
        val_set=load_cine(root, "val")["images"],
        evaluate=partial(evaluate, center=center),
        log_every=profile.pick(smoke=2, cpu=10, gpu=50),
    )
