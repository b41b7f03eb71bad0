"""The deep cascade of CNNs (Schlemper et al. 2017) on cardiac cine: chapter 2's training run."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

from ...profile import Profile
from . import Task, apply_overrides, register


@register("cascade")
def _cascade(overrides: dict, data: Path | None, profile: Profile) -> Task:
    """DC-CNN (2D+t by default, ``--config dims=2`` for frame by frame) on cardiac cine: the
    ``cine`` data set (fully sampled single-coil k-space, frames as slices, in fastMRI HDF5;
    generated when ``--data`` is not given), undersampled on the fly by k-t masks at 4-8x."""
    from ...data.fastmri import read_fastmri
    from ...data.make import ensure_dataset
    from ...fft import ifft2c
    from ...metrics import psnr
    from ...models.cascade import CascadeConfig, CascadeNet

    cfg = apply_overrides(CascadeConfig.for_profile(profile), overrides)
    root = Path(data) if data is not None else ensure_dataset("cine", profile.name)

    def sequences(split):  # every file of the split: (N, T, H, W) complex images
        files = sorted((root / split).glob("*.h5"))
        if not files:
            raise FileNotFoundError(f"{root / split}: no cine .h5 files; make them with python data_scripts/make_data.py cine")
        return torch.stack([ifft2c(read_fastmri(f)["kspace"]) for f in files])

    center = profile.pick(smoke=2, cpu=4, gpu=6)
    train_set = CineCrops(sequences("singlecoil_train"), profile.pick(smoke=16, cpu=16, gpu=64), center)
    val = sequences("singlecoil_val")
    model = CascadeNet(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def make_step(modules, optimizers):
        from ..fit import supervised_step

        return supervised_step(modules["model"], optimizers["opt"], lambda pred, x: (pred - x).abs().pow(2).mean())

    def evaluate(modules, val_set):  # every validation sequence at 6x, fixed masks
        from ...fft import fft2c
        from ...masks import kt_mask

        net = modules["model"].eval()
        device = next(net.parameters()).device
        scores = {"psnr": [], "psnr_zero_filled": []}
        with torch.no_grad():
            for i, x in enumerate(val_set):
                mask = kt_mask(x.shape[0], x.shape[-1], 6, center, seed=10_000 + i)  # (1, T, 1, W)
                k0 = (mask * fft2c(x[None])).to(device)
                out = net(k0, mask.to(device)).cpu()
                scores["psnr"].append(psnr(x.abs(), out[0].abs()))
                scores["psnr_zero_filled"].append(psnr(x.abs(), ifft2c(k0.cpu())[0].abs()))
        return {k: sum(v) / len(v) for k, v in scores.items()}

    steps = profile.pick(smoke=4, cpu=1200, gpu=3000)  # cpu: as chapter 2 (bands of 16 rows, one sequence a step)
    batch = profile.pick(smoke=2, cpu=1, gpu=4)
    return Task(cfg, {"model": model}, {"opt": opt}, make_step, train_set, batch, steps, val, evaluate)


class CineCrops(Dataset):
    """Training samples from cine sequences (N, T, H, W) complex: the heart beat rolled to start
    at a random frame, a random band of ``crop`` fully sampled read-out rows, and a new k-t mask
    at a random acceleration in [4, 8]. Item: ``((masked k-space (T, crop, W), mask (T, 1, W)),
    image (T, crop, W))``. Randomness comes from torch's global generator (checkpointed by ``fit``)."""

    def __init__(self, images: torch.Tensor, crop: int, center_lines: int, accel: tuple[float, float] = (4.0, 8.0)):
        if images.ndim != 4 or not images.is_complex():
            raise TypeError(f"CineCrops: expected complex sequences (N, T, H, W), got {images.dtype} {tuple(images.shape)}")
        self.images, self.crop, self.center, self.accel = images, min(crop, images.shape[-2]), center_lines, accel

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        from ...fft import fft2c
        from ...masks import kt_mask

        x = self.images[i]
        t, h, w = x.shape
        x = x.roll(int(torch.randint(t, ())), dims=0)  # start the heart beat anywhere
        top = int(torch.randint(h - self.crop + 1, ()))
        x = x[:, top : top + self.crop]  # (T, crop, W)
        accel = self.accel[0] + (self.accel[1] - self.accel[0]) * float(torch.rand(()))
        mask = kt_mask(t, w, accel, self.center, seed=int(torch.randint(1 << 30, ())))[0]  # (T, 1, W)
        return (mask * fft2c(x), mask), x
