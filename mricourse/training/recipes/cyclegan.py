"""Chapter 5's training runs, also ``mricourse train cyclegan`` and ``mricourse train unet_t1t2``.

``cyclegan``: CycleGAN (Welander et al. 2018; Zhu et al. 2017) from T1-weighted to T2-weighted
slices and back, **unpaired**: T1w slices of the first half of the training subjects, T2w slices of
the other half (:class:`~mricourse.data.unpaired.UnpairedSlices`, a new random partner per item).
Adam (lr 2e-4, beta1 0.5) for the generators and for the discriminators, each learning rate
constant for the first half of the run, then linear to zero by the step (CycleGAN's schedule);
the update is :func:`~mricourse.models.cyclegan.cyclegan_step`, with one image pool of past fakes
per domain. Both generators have a weight average (EMA, decay ``ema`` of the config: 0.995 in the
cpu profile), which is the model after training; the identity loss is off (``lambda_identity``: see
:class:`~mricourse.models.cyclegan.CycleGANConfig` for the validation run that chose both).

``unet_t1t2``: the chapter's upper bound, a U-Net trained with an L1 loss on **paired** T1w/T2w
slices of every training subject; Adam with a one-cycle learning rate and, as for CycleGAN, a
weight average (``ema``).

Data: without ``--data``, the chapter's digital-brain slices (:data:`SLICES`, synthesised in
memory; test subjects from another seed); with it, a ``slices`` folder (``train.npz``,
``test.npz`` with T1w and T2w, ``python data_scripts/make_data.py slices``). Intensities are
scaled so that the brain's 99.5th percentile is 1 and clipped at :data:`CLIP`; the networks see
[-1, 1] (:func:`~mricourse.inference.to_gan_range` with ``vmax=CLIP``). Evaluation: T1 -> T2 of
the held-out subjects against their true T2 (MAE, PSNR and SSIM on [0, CLIP]). Settings are
chosen on validation subjects (:func:`validation_slices`, another seed), never the test ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from ...data.sets import load_slices
from ...data.slices import brain_slices
from ...data.unpaired import UnpairedSlices
from ...inference import from_gan_range, predict, to_gan_range
from ...layers import UNet
from ...metrics import psnr, ssim
from ...models.cyclegan import CycleGANConfig, ImagePool, cyclegan_networks, cyclegan_step
from ...profiles import Presets, Profile
from ..averaging import WeightAverage
from ..fit import supervised_update
from ..schedules import LinearDecaySchedule, OneCycleSchedule
from .base import Recipe, apply_overrides, define

__all__ = ["SLICES", "CLIP", "VAL_SEED", "PairedUNetConfig", "t1t2_slices", "validation_slices", "evaluate_t1_to_t2"]

#: intensities are scaled so that the brain's 99.5th percentile is 1; [0, CLIP] maps to [-1, 1]
CLIP = 1.5

#: the chapter's slices per profile: training subjects (half give T1w, half T2w), test subjects,
#: size in pixels, axial slices per subject, and the seeds of the training and test subjects
SLICES = {
    "smoke": dict(train=8, test=4, size=32, per_subject=1, seed=5, test_seed=50),
    "cpu": dict(train=160, test=24, size=64, per_subject=3, seed=5, test_seed=50),
    "gpu": dict(train=800, test=100, size=128, per_subject=5, seed=5, test_seed=50),
}
#: the seed of the validation subjects (as many as the test subjects), on which settings are chosen
VAL_SEED = 60


@dataclass
class PairedUNetConfig(Presets):
    """The paired baseline: a 2D U-Net (:class:`~mricourse.layers.UNet`) of ``num_pools`` levels
    with ``chans`` channels at the first, trained with Adam at a one-cycle peak rate ``lr``, with a
    weight average of decay ``ema`` (0: none)."""

    chans: int = 32
    num_pools: int = 3
    lr: float = 2e-3
    ema: float = 0.995

    #: the profile presets (:class:`mricourse.profiles.Presets`): the fields each profile sets over the defaults
    PRESETS = {"smoke": {"chans": 8}, "cpu": {"chans": 16}, "gpu": {"chans": 32, "ema": 0.999}}


def t1t2_slices(data, profile: Profile) -> tuple[dict, dict]:
    """Training and test slices ``{"images": (N, 2, H, W) T1w and T2w in [0, CLIP], "subject":
    (N,)}``: from the ``slices`` folder ``data``, or (``data`` None) the chapter's :data:`SLICES`."""
    if data is not None:
        train, test = load_slices(data, profile, ("T1w", "T2w"))
    else:
        p = SLICES[profile.name]
        make = partial(brain_slices, contrasts=("T1w", "T2w"), size=p["size"], slices_per_subject=p["per_subject"])
        train, test = make(p["train"], seed=p["seed"]), make(p["test"], seed=p["test_seed"])
    return tuple({"images": d["images"].float().clamp(0, CLIP), "subject": d["subject"]} for d in (train, test))


def validation_slices(profile: Profile) -> torch.Tensor:
    """Paired validation slices (N, 2, H, W), T1w and T2w in [0, CLIP]: as many new subjects as
    the test set, from :data:`VAL_SEED` (neither training nor test subjects)."""
    p = SLICES[profile.name]
    d = brain_slices(p["test"], contrasts=("T1w", "T2w"), size=p["size"], slices_per_subject=p["per_subject"], seed=VAL_SEED)
    return d["images"].float().clamp(0, CLIP)


def _unpaired(train: dict) -> UnpairedSlices:
    """T1w of the first half of the subjects, T2w of the others, in [-1, 1]: no T1w has its T2w."""
    ids = train["subject"].unique()
    first = torch.isin(train["subject"], ids[: len(ids) // 2])
    images = to_gan_range(train["images"], CLIP)
    return UnpairedSlices(images[first, :1], images[~first, 1:])


def evaluate_t1_to_t2(generator, test: torch.Tensor) -> dict[str, float]:
    """MAE, PSNR and SSIM (data range CLIP) of ``generator``'s T2w from the T1w of the paired test
    slices ``test`` (N, 2, H, W) in [0, CLIP], against their true T2w."""
    t1, t2 = test[:, :1], test[:, 1:]
    fake = from_gan_range(predict(generator, to_gan_range(t1, CLIP), batch_size=16), CLIP)  # eval mode, 16 slices a call
    return {
        "mae": float((fake - t2).abs().mean()),
        "psnr": float(psnr(t2, fake, data_range=CLIP)),
        "ssim": float(ssim(t2, fake, data_range=CLIP)),
    }


@define("cyclegan")
def build(profile, data, overrides, seed) -> Recipe:
    cfg = apply_overrides(CycleGANConfig.for_profile(profile), overrides)
    train, test = t1t2_slices(data, profile)
    modules = cyclegan_networks(cfg)
    betas = (cfg.beta1, 0.999)
    opt_G = torch.optim.Adam([*modules["G_AB"].parameters(), *modules["G_BA"].parameters()], lr=cfg.lr, betas=betas)
    opt_D = torch.optim.Adam([*modules["D_A"].parameters(), *modules["D_B"].parameters()], lr=cfg.lr, betas=betas)
    steps = profile.pick(smoke=6, cpu=1000, gpu=20_000)
    pools = {"A": ImagePool(cfg.pool_size, seed=2 * seed), "B": ImagePool(cfg.pool_size, seed=2 * seed + 1)}
    return Recipe(
        "cyclegan",
        cfg,
        modules,
        {"opt_G": opt_G, "opt_D": opt_D},
        {k: LinearDecaySchedule(o, cfg.lr, steps, cfg.decay_from) for k, o in (("opt_G", opt_G), ("opt_D", opt_D))},
        partial(cyclegan_step, cfg=cfg, pools=pools),
        _unpaired(train),
        batch_size=profile.pick(smoke=2, cpu=4, gpu=4),
        steps=steps,
        seed=seed,
        profile=profile,
        settings={"schedule": f"constant, then linear to 0 from {cfg.decay_from:g} of the run", **_data(data, profile)},
        val_set=test["images"],
        evaluate=lambda modules, test: evaluate_t1_to_t2(modules["G_AB"], test),
        local_state={"pool_A": pools["A"], "pool_B": pools["B"]},
        log_every=profile.pick(smoke=2, cpu=25, gpu=100),
        averages={k: WeightAverage(modules[k], cfg.ema) for k in ("G_AB", "G_BA")} if cfg.ema else {},
    )


@define("unet_t1t2")
def build_unet(profile, data, overrides, seed) -> Recipe:
    cfg = apply_overrides(PairedUNetConfig.for_profile(profile), overrides)
    train, test = t1t2_slices(data, profile)
    paired = to_gan_range(train["images"], CLIP)  # both contrasts of every training subject
    model = UNet(1, 1, chans=cfg.chans, num_pools=cfg.num_pools)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    steps = profile.pick(smoke=6, cpu=1000, gpu=5000)
    return Recipe(
        "unet_t1t2",
        cfg,
        {"model": model},
        {"opt": opt},
        {"opt": OneCycleSchedule(opt, cfg.lr, steps)},  # warm-up, then cosine decay, by the step
        partial(supervised_update, loss_fn=F.l1_loss),
        TensorDataset(paired[:, :1], paired[:, 1:]),  # (T1w, T2w) of the same slice
        batch_size=4,
        steps=steps,
        seed=seed,
        profile=profile,
        settings={"loss": "l1", "schedule": "one-cycle", **_data(data, profile)},
        val_set=test["images"],
        evaluate=lambda modules, test: evaluate_t1_to_t2(modules["model"], test),
        log_every=profile.pick(smoke=2, cpu=10, gpu=50),
        averages={"model": WeightAverage(model, cfg.ema)} if cfg.ema else {},
    )


def _data(data, profile: Profile) -> dict:
    """What the training data are, for the run's record."""
    return {"data": "slices folder"} if data is not None else {"data": "chapter slices", "slices": dict(SLICES[profile.name])}
