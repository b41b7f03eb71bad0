"""The 3D SRGAN (Sanchez and Vilaplana 2018): chapter 7's training run, and ``mricourse train srgan``.

One run in two phases, as in the chapter: first the generator alone with the content loss
(MSE + gradient difference; a one-cycle learning rate over the phase), then the adversarial
fine-tuning (the GAN update of :func:`mricourse.srgan_step`, generator and discriminator at a tenth
of the learning rate). The phase follows the step count (:class:`ContentThenAdversarial`), so a
paused run resumes in the right phase; the chapter pauses at the switch (``fit(stop_after=...)``)
to keep the content-trained generator. ``adv_weight=0``: the content phase only.

Data (3D): skull-stripped T1-weighted digital subjects at 2 mm, made in memory as in the chapter
(:func:`mricourse.make_subject`, training seeds 0, 1, ..., held-out seeds 1000, ...), or the
T1-weighted volumes of an IXI folder (skull-stripped with the labels of ``ground_truth/`` where
there are any, whole heads otherwise; the last sixth held out); degraded like the 2D slices
(:func:`mricourse.training.recipes.msfusion.low_resolution`): by default 3D k-space truncation
with Rician noise (:func:`mricourse.kspace_truncate`), ``degradation=image`` for blur, box average
and Gaussian noise (:func:`mricourse.degrade`); random patches of 12 low-resolution voxels a side,
at least half inside the brain. ``--config dims=2``: the same networks on the chapter's 2D slices
(patches of 24 pixels, 16 a step), as in its comparison of upsampling layers. Evaluation: PSNR and
SSIM (brain-masked, border-cropped) of the held-out images, beside linear and cubic splines.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from ...data.brain import make_subject
from ...data.patches import SRPatches
from ...data.sets import load_ixi
from ...degradation import crop_to_multiple, factors
from ...models.superres import SRGANConfig, SRGANDiscriminator, SRGANGenerator, srgan_step
from ..schedules import ConstantSchedule, OneCycleSchedule
from .base import Recipe, apply_overrides, define
from .msfusion import DEGRADATIONS, evaluate_sr, low_resolution, slice_pairs


class ContentThenAdversarial(OneCycleSchedule):
    """The generator's learning rate over the two phases: a one-cycle schedule (warm-up, cosine
    decay) over the first ``content_steps`` steps, then ``adversarial_lr``. :meth:`Recipe.set_steps`
    stretches both phases alike."""

    def __init__(self, optimizer, max_lr: float, steps: int, content_steps: int, adversarial_lr: float):
        if not 1 <= content_steps <= steps:
            raise ValueError(f"ContentThenAdversarial: expected 1 <= content_steps <= steps, got {content_steps} and {steps}")
        self.planned, self.planned_content, self.adversarial_lr = steps, content_steps, adversarial_lr
        super().__init__(optimizer, max_lr, steps)

    @property
    def content_steps(self) -> int:
        """Steps of the content phase (those of a run of :attr:`steps` steps)."""
        return max(1, round(self.planned_content * self.steps / self.planned))

    @property
    def adversarial(self) -> bool:
        """Whether the next update is one of the adversarial phase."""
        return self.count >= self.content_steps

    def progress(self, step: int) -> float:
        return min(step / self.content_steps, 1.0)

    def lr_at(self, step: int) -> float:
        return super().lr_at(step) if step < self.content_steps else self.adversarial_lr


def chapter_volume(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A skull-stripped T1-weighted digital subject at 2 mm, scaled so that the brain's 99.5th
    percentile is 1, and its brain mask: (1, D, H, W) each."""
    s = make_subject(seed, resolution=2.0)
    img, mask = torch.from_numpy(s.image("T1w")), torch.from_numpy(s.mask)
    return (img / torch.quantile(img[mask], 0.995) * mask)[None], mask[None]


@functools.lru_cache(maxsize=1)
def _chapter_volumes(n_train: int, n_test: int) -> tuple[list, list]:
    """The chapter's training and held-out subjects, made once per session."""
    return [chapter_volume(s) for s in range(n_train)], [chapter_volume(1000 + s) for s in range(n_test)]


def volume_pairs(data: Path | None, profile, factor, degradation: str = "kspace") -> tuple[dict, dict]:
    """Training and held-out 3D pairs ``{"lr", "hr", "mask"}`` (tensors (N, 1, ...), or lists of
    (1, ...) tensors for IXI volumes of different sizes), low resolution by
    :func:`~mricourse.training.recipes.msfusion.low_resolution`; the noise of item ``i`` seeded with
    ``2000 + i`` (training) or ``3000 + i`` (held out)."""
    if degradation not in DEGRADATIONS:
        raise ValueError(f"degradation: expected one of {DEGRADATIONS}, got {degradation!r}")
    if data is None:
        n = profile.pick(smoke=(1, 1), cpu=(4, 2), gpu=(20, 5))
        train, test = _chapter_volumes(*n)
    else:
        volumes, labels = load_ixi(data)
        pairs = [(v * (s > 0), s > 0) if s is not None else (v, v > 0.05) for v, s in zip(volumes, labels)]
        n_val = max(1, len(pairs) // 6)
        train, test = pairs[:-n_val], pairs[-n_val:]
    out = []
    for items, seed in ((train, 2), (test, 3)):
        hr = [crop_to_multiple(v, factor, 3) for v, _ in items]
        mask = [crop_to_multiple(m, factor, 3) for _, m in items]
        lr = [low_resolution(x, factor, 3, degradation, seed=1000 * seed + i) for i, x in enumerate(hr)]
        if len({x.shape for x in hr}) == 1:  # one size: tensors, as the chapter uses them
            hr, mask, lr = torch.stack(hr), torch.stack(mask), torch.stack(lr)
        out.append({"lr": lr, "hr": hr, "mask": mask})
    return out[0], out[1]


@define("srgan")
def build(profile, data, overrides, seed) -> Recipe:
    degradation = overrides.pop("degradation", "kspace")  # a setting of the data, not of the networks
    cfg = apply_overrides(SRGANConfig.for_profile(profile), overrides)
    f = factors(cfg.factor, cfg.dims)
    if cfg.dims == 3:
        train, val = volume_pairs(data, profile, f, degradation)
        patches = SRPatches(train["lr"], train["hr"], 12, f, mask=train["mask"], min_inside=0.5, samples_per_image=16)
        batch_size = profile.pick(smoke=2, cpu=8, gpu=16)
        content = profile.pick(smoke=3, cpu=800, gpu=20_000)  # cpu: chosen on validation subjects (seeds 500, 501)
    else:
        train, val = slice_pairs(data, profile, f, degradation)
        patches = SRPatches(train["lr"], train["hr"], 24, f, mask=train["mask"], samples_per_image=4)
        batch_size = 16
        content = profile.pick(smoke=2, cpu=200, gpu=2000)
    adversarial = profile.pick(smoke=2, cpu=60, gpu=5000) if cfg.adv_weight > 0 else 0
    steps = content + adversarial
    gen, disc = SRGANGenerator(cfg), SRGANDiscriminator(cfg)
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr)
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr / 10)
    phases = ContentThenAdversarial(opt_g, cfg.lr, steps, content, cfg.lr / 10)

    def update(modules, optimizers, batch):  # the phase follows the step count
        return srgan_step(modules, optimizers, batch, cfg=cfg, adversarial=phases.adversarial)

    return Recipe(
        "srgan",
        cfg,
        {"G": gen, "D": disc},
        {"opt_g": opt_g, "opt_d": opt_d},
        {"opt_g": phases, "opt_d": ConstantSchedule(opt_d, cfg.lr / 10, steps)},
        update,
        patches,
        batch_size=batch_size,
        steps=steps,
        seed=seed,
        profile=profile,
        settings={
            "lr_g": cfg.lr,
            "lr_d": cfg.lr / 10,
            "content_steps": content,
            "schedule": "one-cycle over the content phase, then lr / 10",
            "patch": patches.size,
            "degradation": degradation,
        },
        val_set=val,
        evaluate=lambda modules, val: evaluate_sr(modules["G"], val, f, cfg.dims),
        log_every=profile.pick(smoke=1, cpu=5, gpu=100),
        memory_format=profile.pick(smoke="channels_last", cpu="channels_last", gpu="contiguous"),  # make speed: x1.32 channels-last against the default layout on 2 cores (AVX-512)
    )
