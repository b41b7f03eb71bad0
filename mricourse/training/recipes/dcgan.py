"""The DCGAN of Bermudez et al. (2018) on mid-axial T1-weighted brain slices: chapter 4's training
run, and ``mricourse train dcgan``.

Data: the chapter's slices (the paper's 528 training subjects, synthesised; or the T1w slices of a
``slices`` folder), resized to the generator's size by area averaging and mapped from [0, 1.5] to
[-1, 1] (:class:`~mricourse.data.t1slices.GANSlices`). Update: :func:`~mricourse.models.dcgan.gan_step`,
one step of D, then one of G, with fresh latent vectors from torch's generator (seeded and
checkpointed by ``fit``); as the config asks (the presets train as DCGAN did; see
:data:`~mricourse.models.dcgan.DATA_EFFICIENT`): every image D sees passed through DiffAugment
(``augment``), D spectrally normalised (``d_norm``) or R1-penalised (``r1``), Adam (``beta1``,
``beta2``: DCGAN's 0.5 and 0.999, or SAGAN's 0 and 0.9) at two constant learning rates (``lr_d`` and
``lr_g``; 2e-4 for both, as in DCGAN, or D's faster: TTUR), and an exponential moving average of G's weights (decay ``ema``), updated after every step
and put into G when ``fit`` returns.
Evaluation: the median NCC of generated slices with their nearest training slice, beside that of
held-out real slices (a generator that copies its training set scores higher than new subjects do),
and of each set with its nearest other member (a collapsed generator's samples are all alike).
"""

from __future__ import annotations

from functools import partial

import torch

from ...data.t1slices import GANSlices, t1_slices
from ...gan_eval import diversity, nearest_neighbours
from ...inference import from_gan_range
from ...models.dcgan import DCGANConfig, DCGANDiscriminator, DCGANGenerator, gan_step
from ...spatial import area_resize
from ..averaging import WeightAverage
from ..schedules import ConstantSchedule
from .base import Recipe, apply_overrides, define

#: intensities (the brain's 99.5th percentile is 1) are clipped here; [0, VMAX] becomes [-1, 1]
VMAX = 1.5


def evaluate(modules, val_set: GANSlices, train_set: GANSlices) -> dict[str, float]:
    """Median NCC with the nearest training slice of as many generated slices (fixed latents) as
    held-out real ones, and of the held-out real slices themselves (memorisation); the same sets'
    median NCC to their nearest other image (diversity: a collapsed generator scores near 1)."""
    real_train, real_test = from_gan_range(train_set.images), from_gan_range(val_set.images)
    fake = modules["G"].sample(len(real_test), generator=torch.Generator().manual_seed(0))  # on the CPU
    fake = from_gan_range(area_resize(fake, real_test.shape[-1]))  # another profile's generator: to the slices' size, as they were
    return {
        "ncc_generated_to_train": float(nearest_neighbours(fake, real_train)[0].median()),
        "ncc_test_to_train": float(nearest_neighbours(real_test, real_train)[0].median()),
        "ncc_generated_to_other": diversity(fake),
        "ncc_test_to_other": diversity(real_test),
    }


@define("dcgan")
def build(profile, data, overrides, seed) -> Recipe:
    cfg = apply_overrides(DCGANConfig.for_profile(profile), overrides)
    G, D = DCGANGenerator(cfg), DCGANDiscriminator(cfg)  # weights from the seed (DCGAN's N(0, 0.02))
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    train, test = t1_slices(profile, data)
    train_set = GANSlices(train["images"], cfg.image_size, VMAX)
    steps = profile.pick(smoke=8, cpu=1500, gpu=8000)
    return Recipe(
        "dcgan",
        cfg,
        {"G": G, "D": D},
        {"opt_g": opt_g, "opt_d": opt_d},
        {"opt_g": ConstantSchedule(opt_g, cfg.lr_g, steps), "opt_d": ConstantSchedule(opt_d, cfg.lr_d, steps)},
        partial(
            gan_step,
            nz=cfg.nz,
            label_smoothing=cfg.label_smoothing,
            instance_noise=cfg.instance_noise,
            augment=cfg.augment,
            r1=cfg.r1,
        ),
        train_set,
        batch_size=profile.pick(smoke=4, cpu=32, gpu=64),
        steps=steps,
        seed=seed,
        profile=profile,
        settings={"vmax": VMAX, "resize": "area", "schedule": "constant"},
        val_set=GANSlices(test["images"], cfg.image_size, VMAX),
        evaluate=partial(evaluate, train_set=train_set),
        log_every=profile.pick(smoke=2, cpu=20, gpu=50),
        averages={"G": WeightAverage(G, cfg.ema)} if cfg.ema > 0 else {},
        memory_format=profile.pick(smoke="channels_last", cpu="channels_last", gpu="contiguous"),  # make speed: x1.23 channels-last against the default layout on 2 cores (AVX-512); x1.15 with AVX2 kernels
    )
