"""Training tasks on 2D brain slices: ``dcgan`` and ``dae`` (chapter 4).

They read the ``slices`` data set (``train.npz``, ``test.npz`` written by
``python data_scripts/make_data.py slices``) from ``--data``, or, without ``--data``, synthesise
the same slices in memory with :func:`mricourse.brain_slices` at that data set's sizes for the
profile. The GAN tasks list generator(s) and discriminator(s) as separate modules, so under
``torchrun`` each is wrapped in its own ``DistributedDataParallel``; their update steps are the
model files' own.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, TensorDataset

from ...data.sets import load_slices
from ...profile import Profile
from . import Task, apply_overrides, register

__all__ = ["NoisySlices", "CLIP"]

#: slices are scaled so the brain's 99.5th percentile is 1; the GAN range [-1, 1] covers [0, CLIP]
CLIP = 1.5


@register("dcgan")
def _dcgan(overrides: dict, data: Path | None, profile: Profile) -> Task:
    """DCGAN (Bermudez 2018) on T1-weighted slices resized to ``image_size``. Evaluation: the
    mean NCC of generated slices with their nearest training slice, beside that of held-out real
    slices (a generator that copies its training set scores higher than new subjects do)."""
    from ...gan_eval import nearest_neighbours
    from ...models.dcgan import DCGANConfig, from_gan_range, gan_step, make_gan, to_gan_range

    cfg = apply_overrides(DCGANConfig.for_profile(profile), overrides)
    train, test = load_slices(data, profile, ("T1w",))

    def prep(x):  # (N, 1, H, W) -> (N, 1, S, S) in [-1, 1]
        x = F.interpolate(x, size=(cfg.image_size,) * 2, mode="bilinear", antialias=True, align_corners=False)
        return to_gan_range(x, vmax=CLIP)

    G, D, opt_g, opt_d = make_gan(cfg)

    def make_step(modules, optimizers):
        return gan_step(modules["G"], modules["D"], optimizers["opt_g"], optimizers["opt_d"])

    def evaluate(modules, val_set):
        real_train, real_test = from_gan_range(prep(train["images"])), from_gan_range(val_set.tensors[0])
        fake = from_gan_range(modules["G"].sample(len(real_test), generator=torch.Generator().manual_seed(0))).cpu()
        return {
            "ncc_generated_to_train": float(nearest_neighbours(fake, real_train)[0].mean()),
            "ncc_test_to_train": float(nearest_neighbours(real_test, real_train)[0].mean()),
        }

    return Task(
        cfg,
        {"G": G, "D": D},
        {"opt_g": opt_g, "opt_d": opt_d},
        make_step,
        TensorDataset(prep(train["images"])),
        batch_size=profile.pick(smoke=2, cpu=32, gpu=64),
        steps=profile.pick(smoke=4, cpu=1500, gpu=20_000),
        val_set=TensorDataset(prep(test["images"])),
        evaluate=evaluate,
    )


class NoisySlices(Dataset):
    """``((y, sigma), x)`` with ``y = x + sigma n``: ``sigma`` uniform in ``sigmas`` (a fixed
    level when both ends are equal), ``n`` from torch's global generator (checkpointed by ``fit``)."""

    def __init__(self, images: torch.Tensor, sigmas: tuple[float, float] = (0.02, 0.2)):
        self.images, self.sigmas = images, sigmas

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        from ...models.dae import add_gaussian_noise

        lo, hi = self.sigmas
        sigma = torch.tensor(lo + (hi - lo) * float(torch.rand(())))
        x = self.images[i]
        return (add_gaussian_noise(x[None], sigma)[0], sigma), x


@register("dae")
def _dae(overrides: dict, data: Path | None, profile: Profile) -> Task:
    """The skip-connection denoising autoencoder (RED-Net, as in Bermudez 2018) on T1-weighted
    slices with Gaussian noise, sigma in [0.02, 0.2] of the brain's bright end (0.1 for a
    network that is not noise-conditional). Evaluation: PSNR of noisy and denoised held-out slices
    at sigma 0.1."""
    from ...metrics import psnr
    from ...models.dae import DAE, DAEConfig, add_gaussian_noise
    from ..fit import supervised_step

    cfg = apply_overrides(DAEConfig.for_profile(profile), overrides)
    train, test = load_slices(data, profile, ("T1w",))
    sigmas = (0.02, 0.2) if cfg.noise_conditional else (0.1, 0.1)
    model = DAE(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def evaluate(modules, val_set):
        net = modules["model"].eval()
        device = next(net.parameters()).device
        x = val_set.clamp(0, CLIP)
        y = add_gaussian_noise(x, 0.1, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            out = torch.cat([net(y[i : i + 16].to(device), 0.1).cpu() for i in range(0, len(y), 16)])
        return {"psnr_noisy": psnr(x, y, data_range=CLIP), "psnr": psnr(x, out, data_range=CLIP)}

    return Task(
        cfg,
        {"model": model},
        {"opt": opt},
        lambda modules, optimizers: supervised_step(modules["model"], optimizers["opt"], F.mse_loss),
        NoisySlices(train["images"].clamp(0, CLIP), sigmas),
        batch_size=profile.pick(smoke=2, cpu=16, gpu=32),
        steps=profile.pick(smoke=4, cpu=600, gpu=10_000),
        val_set=test["images"],
        evaluate=evaluate,
    )
