"""The skip-connection denoising autoencoder (RED-Net, Mao et al. 2016, as in Bermudez et al. 2018)
on brain slices: chapter 4's training run, and ``mricourse train dae``.

Data: random crops of the chapter's training subjects (the paper's 528, synthesised; or the
slices of a ``slices`` folder) in the contrasts :data:`CONTRASTS` (T1w, PDw and FLAIR; T2w is
held out, chapter 4's unseen contrast), each with Rician noise (complex Gaussian, then the
magnitude) of a level drawn log-uniformly in [0.02, 0.2] of the brain's bright end
(:class:`~mricourse.data.t1slices.NoisyCrops`; the level enters the network as an extra channel;
0.1 for a network that is not noise-conditional); in a fraction :data:`VARYING` of the crops the
level varies smoothly in space around that root mean square, as after a parallel-imaging
reconstruction, and in a fraction :data:`REMAP` the clean crop's intensities are remapped
(``g x^gamma``: other contrasts, dimmer tissue). Chosen on validation subjects (seed 2, cpu, 700
steps, PSNR inside the head at sigma 0.1): T1w alone 31.00 dB on T1w and 22.66 on T2w; the three
contrasts 30.84 and 23.86; with the remapping 31.20 and 27.72. Update:
:func:`~mricourse.models.dae.dae_step`, the squared error weighted by ``1 / sigma^2``. Adam with a
one-cycle learning rate (peak 2e-3) by the step. Evaluation: PSNR inside the head of noisy and
denoised held-out T1w slices at each level.

Tried for chapter 4's small lesions, not adopted (validation subjects, seed 2, cpu, 700 steps;
PSNR at sigma 0.02 / 0.05 / 0.1 / 0.2 on 16 slices; contrast kept at sigma 0.1 / 0.2 on 12 others,
of the chapter's dark 7 mm disc, of a bright (+0.4) 3 px disc in white matter and of a dark 3 px disc
in grey matter): this recipe 39.98 / 34.91 / 31.01 / 26.71 dB, kept 0.757 / 0.570, 0.535 / 0.270,
0.706 / 0.417; an L1 loss (``|f(y) - x| / sigma``) 39.71 / 34.46 / 30.34 / 25.91, kept 0.769 / 0.603,
0.605 / 0.384, 0.724 / 0.453; random blobs in half the clean crops (1-3 soft ellipses, semi-axes
1-6 px, multiplying the tissue by 1 + c, c in [-0.6, 0.6]) 39.72 / 34.29 / 30.17 / 25.50, kept 0.796 /
0.622, 0.696 / 0.515, 0.748 / 0.497; blobs in 15 % of them 39.95 / 34.79 / 30.95 / 26.51, kept 0.749 /
0.600, 0.599 / 0.410, 0.696 / 0.469. Non-local means with the chapter's settings keeps 0.866 / 0.218,
0.680 / 0.167, 0.650 / 0.127. The two that keep more of every lesion lose 0.3 to 1.2 dB of PSNR.
"""

from __future__ import annotations

import math
from functools import partial

import torch

from ...data.t1slices import NoisyCrops, t1_slices
from ...gan_eval import foreground_mask
from ...inference import predict
from ...metrics import psnr
from ...models.dae import DAE, DAEConfig, dae_step
from ...physics import add_rician_noise
from ..schedules import OneCycleSchedule
from .base import Recipe, apply_overrides, define, pop_contrasts, pop_float, training_and_t1, with_t1

#: the noise levels of the chapter (standard deviations, in units of the brain's 99.5th percentile)
LEVELS = (0.02, 0.05, 0.1, 0.2)

#: the contrasts of the training slices (each slice of each contrast an image); T2w is held out:
#: chapter 4 tests the network on it as a contrast it never saw
CONTRASTS = ("T1w", "PDw", "FLAIR")

#: the fraction of training crops whose intensities are remapped (x -> g x^gamma; NoisyCrops)
REMAP = 0.5

#: the fraction of training crops whose noise level varies in space, and the spread of its logarithm
VARYING, SPREAD = 0.5, 0.3  # spread 0.3: local levels within about 0.4-2.5 times the level told, like a g-factor map


def evaluate(modules, val_set: torch.Tensor, levels=LEVELS) -> dict[str, float]:
    """Mean PSNR inside the head (data range: the clean slice's maximum) of the held-out slices
    ``val_set`` (N, 1, H, W) with seeded noise at each level, noisy (``psnr_noisy_<s>``) and
    denoised (``psnr_<s>``)."""
    masks = foreground_mask(val_set)[:, None]  # (N, 1, H, W)
    out = {}
    for s in levels:
        noisy = add_rician_noise(val_set, s, generator=torch.Generator().manual_seed(123))
        pred = predict(modules["model"], noisy, s, batch_size=16)  # eval mode, 16 slices a call
        for name, images in (("psnr_noisy", noisy), ("psnr", pred)):
            scores = [psnr(c[m], p[m], data_range=float(c.max())) for c, p, m in zip(val_set, images, masks)]
            out[f"{name}_{s}"] = float(sum(scores) / len(scores))
    return out


@define("dae")
def build(profile, data, overrides, seed) -> Recipe:
    contrasts = pop_contrasts(overrides, CONTRASTS, "dae")  # settings of the data, not of the network
    remap = pop_float(overrides, "remap", REMAP, "dae", 0.0, 1.0)
    cfg = apply_overrides(DAEConfig.for_profile(profile), overrides)
    model = DAE(cfg)  # weights from the seed
    lr = 2e-3
    steps = profile.pick(smoke=6, cpu=700, gpu=4000)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sigmas = (min(LEVELS), max(LEVELS)) if cfg.noise_conditional else (0.1, 0.1)
    crop = profile.pick(smoke=32, cpu=48, gpu=64)
    loaded = with_t1(contrasts)  # the held-out slices, the chapter's test slices, are T1w
    train, test = training_and_t1(*t1_slices(profile, data, loaded), loaded, contrasts)  # (N, C, H, W), (N, 1, H, W)
    images = train["images"].reshape(-1, 1, *train["images"].shape[-2:])  # (N C, 1, H, W): each subject's slices, contrast by contrast
    return Recipe(
        "dae",
        cfg,
        {"model": model},
        {"opt": opt},
        {"opt": OneCycleSchedule(opt, lr, steps, warmup=0.05)},  # warm-up, then cosine decay, by the step
        partial(dae_step, sigma_ref=math.sqrt(sigmas[0] * sigmas[1])),  # the loss at the range's middle
        NoisyCrops(images, crop, sigmas, varying=VARYING, spread=SPREAD, remap=remap),
        batch_size=profile.pick(smoke=4, cpu=16, gpu=16),
        steps=steps,
        seed=seed,
        profile=profile,
        settings={"lr": lr, "schedule": "one-cycle, warm-up 5 %", "crop": crop, "sigmas": sigmas, "sigma": "log-uniform",
                  "varying": VARYING, "spread": SPREAD, "contrasts": list(contrasts), "remap": remap},
        val_set=test["images"],
        evaluate=evaluate,
        log_every=profile.pick(smoke=2, cpu=20, gpu=50),
        memory_format=profile.pick(smoke="channels_last", cpu="channels_last", gpu="contiguous"),  # make speed: x1.11 channels-last against the default layout on 2 cores (AVX-512); x1.07 with AVX2 kernels
    )
