"""Training tasks for super-resolution (chapter 7): ``msfusion`` (the multi-scale fusion CNN, 2D,
Liu 2018) and ``srgan`` (the 3D SRGAN, Sanchez 2018).

Training pairs are made as in the chapter: high-resolution images degraded by
:func:`mricourse.degrade` (Gaussian blur of sigma 1 HR voxel, a box average over ``factor``
voxels, Gaussian noise of 0.02 of the brain's bright end). ``msfusion`` reads a ``slices`` folder
(or synthesises slices, like :mod:`mricourse.tasks_slices`); ``srgan`` reads the T1-weighted
volumes of an IXI folder (``IXI-T1/*.nii.gz``: the real IXI checked by
``data_scripts/prepare_ixi.py``, or ``make_data.py ixi``; without ``--data`` the course's ``ixi``
data set is generated once).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

from ...profile import Profile
from . import Task, apply_overrides, register

__all__ = ["RandomPatches", "SIGMA", "NOISE"]

#: the chapter's degradation: PSF sigma in HR voxels, noise as a fraction of the brain's bright end
SIGMA, NOISE = 1.0, 0.02


class RandomPatches(Dataset):
    """Aligned random patches of (low-, high-resolution) pairs, for a ``DistributedSampler``
    (:class:`mricourse.PatchSampler` is the endless-iterator version the notebook uses).

    Args:
        lr, hr: lists of (1, *spatial) and (1, *(spatial * factor)) tensors (sizes may differ
            between items).
        size: patch size at low resolution per axis (cut to the smallest image).
        factor: per-axis upsampling factors.
        samples_per_image: patches per image in one epoch.
        min_inside: a patch whose HR window has less than this fraction of voxels above 0.05
            is drawn again (up to 10 times), so that batches show anatomy.

    Item ``i``: a patch of image ``i % len(lr)``, placed by torch's global generator
    (checkpointed by ``fit``): ``(lr patch (1, *size), hr patch (1, *(size * factor)))``.
    """

    def __init__(self, lr, hr, size, factor, samples_per_image: int = 8, min_inside: float = 0.3):
        if len(lr) != len(hr) or not lr:
            raise ValueError(f"RandomPatches: expected as many low- as high-resolution images (>0), got {len(lr)} and {len(hr)}")
        self.lr, self.hr, self.f = lr, hr, tuple(factor)
        self.size = tuple(min(s, *(x.shape[1 + a] for x in lr)) for a, s in enumerate(size))
        self.spi, self.min_inside = samples_per_image, min_inside

    def __len__(self) -> int:
        return len(self.lr) * self.spi

    def __getitem__(self, i: int):
        lr, hr = self.lr[i % len(self.lr)], self.hr[i % len(self.lr)]
        for _ in range(10):
            start = [int(torch.randint(n - s + 1, ())) for n, s in zip(lr.shape[1:], self.size)]
            hi = (slice(None), *(slice(a * r, (a + s) * r) for a, s, r in zip(start, self.size, self.f)))
            if float((hr[hi] > 0.05).float().mean()) >= self.min_inside:
                break
        lo = (slice(None), *(slice(a, a + s) for a, s in zip(start, self.size)))
        return lr[lo], hr[hi]


def _pairs(images, factor, dims: int, seed: int):
    """HR images cropped to multiples of ``factor`` and their degraded LR versions (lists)."""
    from ...degrade import crop_to_multiple, degrade

    hr = [crop_to_multiple(x, factor, dims) for x in images]
    return [degrade(x, factor, dims, sigma=SIGMA, noise=NOISE, seed=seed + i) for i, x in enumerate(hr)], hr


def _sr_evaluate(net, lr, hr, factor, dims: int) -> dict:
    """SR metrics of the network and of cubic-spline interpolation on held-out pairs."""
    from ...degrade import interpolate, sr_metrics

    net = net.eval()
    device = next(net.parameters()).device
    ours, cubic = [], []
    with torch.no_grad():
        for x, y in zip(lr, hr):
            ours.append(sr_metrics(y, net(x[None].to(device)).cpu()[0], dims=dims))
            cubic.append(sr_metrics(y, interpolate(x, factor, dims, order=3), dims=dims))
    mean = {k: sum(s[k] for s in ours) / len(ours) for k in ("psnr", "ssim")}
    return {**mean, **{f"{k}_cubic": sum(s[k] for s in cubic) / len(cubic) for k in ("psnr", "ssim")}}


@register("msfusion")
def _msfusion(overrides: dict, data: Path | None, profile: Profile) -> Task:
    """Multi-scale fusion CNN (Liu 2018) on T1-weighted slices, MSE on random patches of 32 HR
    pixels. Evaluation: PSNR and SSIM (border-cropped) on held-out slices, beside cubic splines."""
    from ...data.sets import load_slices
    from ...degrade import factors
    from ...models.superres import MultiScaleFusionConfig, MultiScaleFusionSR
    from ..fit import supervised_step

    cfg = apply_overrides(MultiScaleFusionConfig.for_profile(profile), overrides)
    f = factors(cfg.factor, 2)
    train, test = load_slices(data, profile, ("T1w",))
    lr_train, hr_train = _pairs(train["images"], f, 2, seed=0)
    lr_test, hr_test = _pairs(test["images"], f, 2, seed=100_000)
    model = MultiScaleFusionSR(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return Task(
        cfg,
        {"model": model},
        {"opt": opt},
        lambda modules, optimizers: supervised_step(modules["model"], optimizers["opt"], torch.nn.functional.mse_loss),
        RandomPatches(lr_train, hr_train, [32 // r for r in f], f, samples_per_image=4),
        batch_size=profile.pick(smoke=2, cpu=8, gpu=32),
        steps=profile.pick(smoke=4, cpu=1000, gpu=20_000),
        val_set=(lr_test, hr_test),
        evaluate=lambda modules, val: _sr_evaluate(modules["model"], *val, f, 2),
    )


@register("srgan")
def _srgan(overrides: dict, data: Path | None, profile: Profile) -> Task:
    """3D SRGAN (Sanchez 2018) on IXI T1-weighted volumes: random patches of 12 LR voxels a side,
    content loss (MSE + gradient difference) plus 0.1 x adversarial, the discriminator at a tenth
    of the generator's learning rate; the last volumes (about 1 in 6) are held out. Evaluation:
    PSNR and SSIM of whole held-out volumes, beside cubic splines."""
    from ...data.make import ensure_dataset
    from ...data.sets import load_ixi
    from ...degrade import factors
    from ...models.superres import SRGANConfig, SRGANDiscriminator, SRGANGenerator, srgan_step

    cfg = apply_overrides(SRGANConfig.for_profile(profile), overrides)
    f = factors(cfg.factor, 3)
    volumes = load_ixi(Path(data) if data is not None else ensure_dataset("ixi", profile.name))  # (1, D, H, W) each
    n_val = max(1, len(volumes) // 6)
    lr, hr = _pairs(volumes, f, 3, seed=0)
    gen, disc = SRGANGenerator(cfg), SRGANDiscriminator(cfg)
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr)
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr / 10)

    def make_step(modules, optimizers):
        return srgan_step(modules["G"], modules["D"], optimizers["opt_g"], optimizers["opt_d"], cfg)

    return Task(
        cfg,
        {"G": gen, "D": disc},
        {"opt_g": opt_g, "opt_d": opt_d},
        make_step,
        RandomPatches(lr[:-n_val], hr[:-n_val], (12, 12, 12), f, samples_per_image=16, min_inside=0.5),
        batch_size=profile.pick(smoke=2, cpu=8, gpu=16),
        steps=profile.pick(smoke=4, cpu=600, gpu=20_000),
        val_set=(lr[-n_val:], hr[-n_val:]),
        evaluate=lambda modules, val: _sr_evaluate(modules["G"], *val, f, 3),
    )
