"""The multi-scale fusion CNN (Liu et al. 2018), 2D super-resolution: chapter 7's training run, and
``mricourse train msfusion`` (``--config factor=4``: the x4 network).

Data: axial slices (128 x 128 pixels of 1.9 mm) of the training subjects in the contrasts
:data:`CONTRASTS` (T1w, T2w, PDw and FLAIR, a pair each), held-out T1w slices of other subjects,
made in memory as in the chapter (:func:`mricourse.brain_slices`: training subjects seed 0,
held-out subjects seed 1), or the slices of a ``slices`` folder; each with its brain mask. Training pairs (:func:`low_resolution`):
by default the degradation a scanner applies, :func:`mricourse.kspace_truncate` (the centre of
k-space kept, complex Gaussian noise on its samples, the magnitude: Rician noise); the override
``degradation=image`` makes them the papers' way instead, by :func:`mricourse.degrade` (Gaussian
blur of :data:`SIGMA` high-resolution pixels, a box average over ``factor`` pixels, Gaussian
noise). Either way the noise in the tissue has a standard deviation of :data:`NOISE` of the
brain's bright end (the Rician sigma; override ``noise=``). Random patches of 32 high-resolution
pixels inside the brain (:class:`mricourse.SRPatches`), 8 a step, MSE
(:func:`~mricourse.training.fit.supervised_update`), Adam with a one-cycle learning rate by the
step. Evaluation: PSNR and SSIM over the brain (border-cropped, :func:`mricourse.sr_metrics`) of
the held-out slices, beside spline interpolation. The held-out slices are the chapter's test
slices; the contrasts and the steps per profile were chosen on other subjects (seed 2, 12 slices
per contrast), never on them. PSNR over the brain, network / cubic B-spline, cpu: x2 trained on
T1w alone (2000 steps) 35.46 / 32.63 dB on T1w but 29.62 / 30.35 on T2w and 27.35 / 28.72 on
FLAIR (below the spline); on the four contrasts, 2000 steps: 34.67 on T1w, 32.13 / 30.35 on T2w;
4000 steps: 34.97, 32.45, and 34.44 / 31.62 on PDw, 30.45 / 28.72 on FLAIR. x4 on T1w alone
(1000 steps) 28.87 / 28.29 on T1w, 20.76 / 22.32 on T2w; on the four contrasts, 1000 / 2000 / 4000
steps: 28.31 / 28.60 / 28.77 on T1w, 23.04 / 24.20 / 24.69 on T2w.
"""

from __future__ import annotations

import functools
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

from ...data.patches import SRPatches
from ...data.sets import load_slices
from ...data.slices import brain_slices
from ...degradation import crop_to_multiple, degrade, factors, interpolate, kspace_truncate, sr_metrics
from ...inference import predict
from ...models.superres import MultiScaleFusionConfig, MultiScaleFusionSR
from ..fit import supervised_update
from ..schedules import OneCycleSchedule
from .base import Recipe, apply_overrides, define, pop_contrasts, pop_float, training_and_t1, with_t1

#: the degradations: PSF sigma in HR pixels (image space), noise as a fraction of the brain's bright end
SIGMA, NOISE = 1.0, 0.02

#: the ways down: ``"kspace"`` (:func:`mricourse.kspace_truncate`, the default), ``"image"`` (:func:`mricourse.degrade`)
DEGRADATIONS = ("kspace", "image")

#: the contrasts of the training slices (the held-out slices are T1w): trained on T1w alone, the
#: networks fell below spline interpolation on T2w and FLAIR slices (see the module docstring)
CONTRASTS = ("T1w", "T2w", "PDw", "FLAIR")

#: the high-resolution patch (pixels per side) of the training batches
PATCH = 32


def chapter_sizes(profile) -> dict:
    """Training subjects, slices per training subject, held-out subjects of the slices made in memory."""
    return profile.pick(
        smoke=dict(train=8, slices=1, test=4), cpu=dict(train=48, slices=2, test=12), gpu=dict(train=400, slices=4, test=50)
    )


@functools.lru_cache(maxsize=2)
def _chapter_slices(n_train: int, slices: int, n_test: int, contrasts: tuple[str, ...] = ("T1w",)) -> tuple[dict, dict]:
    """The chapter's training slices (128 x 128) in ``contrasts`` (channels) and its held-out T1w
    slices, made once per session."""
    train = brain_slices(n_train, contrasts=contrasts, size=128, slices_per_subject=slices, seed=0)
    test = brain_slices(n_test, size=128, seed=1)  # other subjects
    return train, test


def low_resolution(hr, factor, dims: int = 2, degradation: str = "kspace", noise: float = NOISE, seed: int = 0) -> torch.Tensor:
    """The recipes' low-resolution images of ``hr`` (..., *spatial), with noise of std ``noise`` in
    the tissue either way:

    - ``"kspace"``: :func:`mricourse.kspace_truncate`, complex Gaussian noise of std ``noise`` per
      real and imaginary part on the kept k-space samples, the magnitude taken (Rician, sigma
      ``noise``);
    - ``"image"``: :func:`mricourse.degrade`, Gaussian blur of :data:`SIGMA`, box average, Gaussian
      noise of std ``noise``.
    """
    if degradation == "kspace":
        return kspace_truncate(hr, factor, dims, noise=noise, seed=seed)
    if degradation == "image":
        return degrade(hr, factor, dims, sigma=SIGMA, noise=noise, seed=seed)
    raise ValueError(
        f"degradation: expected 'kspace' (k-space truncation) or 'image' (blur, box average, noise), got {degradation!r}"
    )


def slice_pairs(data: Path | None, profile, factor, degradation: str = "kspace", noise: float = NOISE,
                contrasts=("T1w",)) -> tuple[dict, dict]:
    """Training and held-out 2D pairs: ``{"lr", "hr", "mask", "labels"}`` each, (N, 1, ...) tensors,
    made by :func:`low_resolution`; the noise of the training pairs is seeded with 0, that of the
    held-out pairs with 1. The training pairs hold every slice in each of ``contrasts`` (one pair
    each); the held-out pairs are T1w."""
    if degradation not in DEGRADATIONS:
        raise ValueError(
            f"degradation: expected 'kspace' (k-space truncation) or 'image' (blur, box average, noise), got {degradation!r}"
        )
    if data is None:
        n = chapter_sizes(profile)
        train, test = _chapter_slices(n["train"], n["slices"], n["test"], tuple(contrasts))
    else:
        loaded = with_t1(tuple(contrasts))  # the held-out slices are T1w
        train, test = training_and_t1(*load_slices(data, profile, loaded), loaded, tuple(contrasts))
    c = train["images"].shape[1]
    train = {"images": train["images"].reshape(-1, 1, *train["images"].shape[-2:]),  # (N C, 1, H, W): a pair per contrast
             "labels": train["labels"].repeat_interleave(c, dim=0)}
    out = []
    for d, seed in ((train, 0), (test, 1)):
        hr, labels = crop_to_multiple(d["images"][:, :1], factor), crop_to_multiple(d["labels"], factor)
        lr = low_resolution(hr, factor, 2, degradation, noise, seed)
        out.append({"lr": lr, "hr": hr, "mask": labels > 0, "labels": labels})
    return out[0], out[1]


def evaluate_sr(net, val: dict, factor, dims: int) -> dict[str, float]:
    """PSNR and SSIM (brain-masked, border-cropped) of ``net`` on the held-out pairs, one image at a
    time (the images may differ in size), and of linear and cubic B-spline interpolation
    (``psnr_linear``, ``psnr_cubic``, ...)."""
    scores: dict[str, list[float]] = {}
    for x, y, m in zip(val["lr"], val["hr"], val["mask"]):
        preds = {"": predict(net, x[None])[0]}  # eval mode, no gradients
        preds.update({f"_{name}": interpolate(x, factor, dims, order) for name, order in (("linear", 1), ("cubic", 3))})
        for suffix, p in preds.items():
            for k, v in sr_metrics(y, p, m, dims=dims).items():
                scores.setdefault(k + suffix, []).append(v)
    return {k: sum(v) / len(v) for k, v in scores.items()}


@define("msfusion")
def build(profile, data, overrides, seed) -> Recipe:
    degradation = overrides.pop("degradation", "kspace")  # settings of the data, not of the network
    noise = pop_float(overrides, "noise", NOISE, "msfusion", 0.0)  # a fraction of the brain's bright end
    contrasts = pop_contrasts(overrides, CONTRASTS, "msfusion")
    cfg = apply_overrides(MultiScaleFusionConfig.for_profile(profile), overrides)
    if cfg.dims != 2:
        raise ValueError(f"msfusion: the recipe trains on 2D slices (dims 2), got dims={cfg.dims}")
    f = factors(cfg.factor, 2)
    train, val = slice_pairs(data, profile, f, degradation, noise, contrasts)
    model = MultiScaleFusionSR(cfg)
    lr = 2e-3
    steps = profile.pick(smoke=4, cpu=4000, gpu=10_000 if max(f) >= 4 else 20_000)  # cpu: chosen on the validation subjects (module docstring)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    size = [PATCH // r for r in f]  # low-resolution patch
    return Recipe(
        "msfusion",
        cfg,
        {"model": model},
        {"opt": opt},
        {"opt": OneCycleSchedule(opt, lr, steps)},  # warm-up, then cosine decay, by the step
        partial(supervised_update, loss_fn=F.mse_loss),
        SRPatches(train["lr"], train["hr"], size, f, mask=train["mask"], samples_per_image=4),
        batch_size=8,
        steps=steps,
        seed=seed,
        profile=profile,
        settings={"lr": lr, "schedule": "one-cycle", "loss": "mse", "patch": PATCH, "degradation": degradation, "noise": noise,
                  "contrasts": list(contrasts)},
        val_set=val,
        evaluate=lambda modules, val: evaluate_sr(modules["model"], val, f, 2),
        log_every=profile.pick(smoke=1, cpu=10, gpu=100),
        memory_format=profile.pick(smoke="channels_last", cpu="channels_last", gpu="contiguous"),  # make speed: x1.12 channels-last against the default layout on 2 cores (AVX-512); x1.03 with AVX2 kernels
    )
