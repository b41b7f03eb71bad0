"""Training tasks on 2D brain slices: ``dcgan`` and ``dae`` (chapter 4), ``voxelmorph`` (chapter 8).

They read the ``slices`` data set (``train.npz``, ``test.npz`` written by
``python data_scripts/make_data.py slices``) from ``--data``, or, without ``--data``, synthesise
the same slices in memory with :func:`mricourse.brain_slices` at that data set's sizes for the
profile. The GAN tasks list generator(s) and discriminator(s) as separate modules, so under
``torchrun`` each is wrapped in its own ``DistributedDataParallel``; their update steps are the
model files' own.
"""

from __future__ import annotations

from dataclasses import replace
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


@register("voxelmorph")
def _voxelmorph(overrides: dict, data: Path | None, profile: Profile) -> Task:
    """VoxelMorph (Balakrishnan 2019), subject-to-subject in 2D: random pairs of distinct training
    subjects, with their tissue labels for the Dice term. ``--config dims=3``: volumes of an IXI
    folder (the course's ``ixi`` data set without ``--data``), centre-cropped to a common shape
    (multiples of 16), with the tissue labels of ``ground_truth/`` when every volume has them
    (real IXI has none: the Dice term is then off), held-out subjects registered to the first
    training subject. Evaluation on held-out pairs: the mean squared difference of the warped moving
    and the fixed image, and the Dice of the warped moving labels, each beside its value before
    registration."""
    from ...data.datasets import RegistrationPairs
    from ...metrics import dice
    from ...models.voxelmorph import VoxelMorph, VoxelMorphConfig, voxelmorph_step

    cfg = apply_overrides(VoxelMorphConfig.for_profile(profile), overrides)
    if cfg.dims == 3:
        pairs, val_pairs, cfg = _volume_pairs(data, profile, cfg)
        size = pairs.images.shape[2:]
    else:
        train, test = load_slices(data, profile, ("T1w",))
        if "num_labels" not in overrides:
            cfg = replace(cfg, num_labels=int(max(train["labels"].max(), test["labels"].max())) + 1)
        pairs = RegistrationPairs(train["images"], train["labels"], length=4 * len(train["images"]), seed=0)
        val_pairs, size = RegistrationPairs(test["images"], test["labels"], seed=1), train["images"].shape[2:]
    model = VoxelMorph(cfg, size)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)

    def make_step(modules, optimizers):
        inner = voxelmorph_step(modules["model"], optimizers["opt"])
        keys = {"moving": "moving", "fixed": "fixed", "moving_label": "moving_labels", "fixed_label": "fixed_labels"}
        return lambda batch: inner({keys[k]: v for k, v in batch.items()})

    def evaluate(modules, val_set):
        net = modules["model"].eval()
        device = next(net.parameters()).device
        scores = {"mse": [], "mse_before": [], "dice": [], "dice_before": []}
        labels = list(range(1, cfg.num_labels))
        with torch.no_grad():
            for item in val_set:
                m, f = item["moving"][None].to(device), item["fixed"][None].to(device)
                out = net(m, f)
                scores["mse"].append(float((out.warped - f).pow(2).mean()))
                scores["mse_before"].append(float((m - f).pow(2).mean()))
                if item["fixed_label"].any():  # Dice only where there are labels (not on real IXI)
                    warped = net.warp_labels(item["moving_label"][None].to(device), out.flow).cpu()
                    scores["dice"].append(_mean(dice(warped[0, 0], item["fixed_label"][0], labels)))
                    scores["dice_before"].append(_mean(dice(item["moving_label"][0], item["fixed_label"][0], labels)))
        return {k: sum(v) / len(v) for k, v in scores.items() if v}

    return Task(
        cfg,
        {"model": model},
        {"opt": opt},
        make_step,
        pairs,
        batch_size=profile.pick(smoke=2, cpu=4, gpu=16),
        steps=profile.pick(smoke=4, cpu=2000, gpu=10_000),
        val_set=val_pairs,
        evaluate=evaluate,
    )


def _volume_pairs(data: Path | None, profile: Profile, cfg):
    """3D training pairs, held-out pairs (to the first training subject) and the config (labels
    counted, the Dice term off without labels) from an IXI folder."""
    import warnings

    from ...data.datasets import RegistrationPairs
    from ...data.make import ensure_dataset
    from ...data.sets import load_ixi

    volumes, labels = load_ixi(Path(data) if data is not None else ensure_dataset("ixi", profile.name), labels=True)
    shape = [min(v.shape[1 + a] for v in volumes) // 16 * 16 for a in range(3)]

    def crop(x):  # centre crop (C, D, H, W) -> (C, *shape)
        return x[(slice(None), *(slice((n - s) // 2, (n - s) // 2 + s) for n, s in zip(x.shape[1:], shape)))]

    images = torch.stack([crop(v) for v in volumes])  # (N, 1, *shape)
    if any(seg is None for seg in labels):
        if cfg.dice_weight > 0:
            warnings.warn(
                "voxelmorph: some IXI volumes have no ground_truth labels; training without the Dice term", stacklevel=3
            )
        cfg, segs = replace(cfg, dice_weight=0.0), torch.zeros(images.shape, dtype=torch.long)
    else:
        segs = torch.stack([crop(seg) for seg in labels])
        cfg = replace(cfg, num_labels=int(segs.max()) + 1)
    n_val = max(1, len(images) // 6)
    atlas = (images[0], segs[0])
    train = RegistrationPairs(images[:-n_val], segs[:-n_val], length=4 * (len(images) - n_val), seed=0)
    return train, RegistrationPairs(images[-n_val:], segs[-n_val:], atlas=atlas), cfg


def _mean(scores) -> float:
    values = list(scores.values()) if isinstance(scores, dict) else [scores]
    return float(sum(values) / len(values))
