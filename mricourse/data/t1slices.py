"""Chapter 4's data: mid-axial slices, one per subject (Bermudez et al. 2018 trained on 528 of
them), T1-weighted by default and in other contrasts on request, and the two training pipelines
built on them: :class:`GANSlices` for the DCGAN (T1w) and :class:`NoisyCrops` for the denoising
autoencoder (T1w, PDw and FLAIR in its recipe).

Without a data folder the slices are synthesised in memory from the digital brain (training
subjects from seed 0, held-out subjects from seed 1) at the sizes of :data:`T1_SLICES`; with one,
they are the slices of a ``slices`` data set (``train.npz``, ``test.npz``).
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..physics import add_rician_noise
from ..profiles import Profile
from ..profiles import profile as get_profile
from ..spatial import area_resize

__all__ = ["T1_SLICES", "t1_slices", "GANSlices", "NoisyCrops"]

#: per profile: training subjects (the paper's 528), held-out subjects, image size (240 mm across)
T1_SLICES = {
    "smoke": dict(train=48, test=24, size=64),
    "cpu": dict(train=528, test=256, size=128),
    "gpu": dict(train=528, test=512, size=256),
}


@functools.lru_cache(maxsize=4)
def _synthesised(n: int, size: int, seed: int, contrasts: tuple[str, ...]) -> dict[str, torch.Tensor]:
    from .slices import brain_slices

    return brain_slices(n, contrasts=contrasts, size=size, seed=seed)


def t1_slices(profile: Profile | str | None = None, data: Path | str | None = None, contrasts=("T1w",)) -> tuple[dict, dict]:
    """Training and held-out slices ``{"images": (N, len(contrasts), H, W), "labels": (N, 1, H, W),
    "subject": (N,)}``, T1w by default (other contrasts of the same subjects as further channels):
    from the ``slices`` data set in ``data``, or, when ``data`` is None, synthesised at the sizes of
    :data:`T1_SLICES` for ``profile`` (kept in memory, so that the chapter and its recipes make them
    once; the tensors returned are copies)."""
    prof = get_profile(None if profile is None else str(profile))
    contrasts = (contrasts,) if isinstance(contrasts, str) else tuple(contrasts)
    if data is not None:
        from .sets import load_slices

        return load_slices(Path(data), prof, contrasts)
    p = T1_SLICES[prof.name]
    return tuple(
        {k: v.clone() for k, v in _synthesised(n, p["size"], seed, contrasts).items()}
        for n, seed in ((p["train"], 0), (p["test"], 1))
    )


class GANSlices(Dataset):
    """Slices for a GAN: (N, 1, H, W) images resized to ``size`` x ``size`` (area averaging: a mean
    over 2x2 pixels for a halving) and mapped from [0, ``vmax``] to the generator's [-1, 1]
    (clipped), ``2 x / vmax - 1``. Item ``i``: the image (1, size, size). No random draws."""

    def __init__(self, images: torch.Tensor, size: int, vmax: float = 1.5):
        if images.ndim != 4 or images.shape[1] != 1:
            raise ValueError(f"GANSlices: expected single-channel images (N, 1, H, W), got {tuple(images.shape)}")
        resized = area_resize(images.float(), size)  # (N, 1, size, size)
        self.images = (resized / vmax).clamp(0.0, 1.0) * 2.0 - 1.0
        self.vmax = vmax

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]


class NoisyCrops(Dataset):
    """Noisy random crops for a denoiser: item ``i`` is ``{"noisy": y, "clean": x, "sigma": s}``
    with ``x`` a ``crop`` x ``crop`` patch (C, crop, crop) of image ``i`` at a random position,
    ``s`` drawn log-uniformly in ``sigmas = (lo, hi)``, ``s = lo (hi / lo)^u``, ``u ~ U(0, 1)`` (every
    decade of noise as likely; a fixed level when ``lo == hi``), and ``y = |x + s n|``, ``n`` complex Gaussian (:func:`mricourse.physics.add_rician_noise`).

    With probability ``varying`` the level varies smoothly in space instead, as it does after a
    parallel-imaging reconstruction: ``s_map = s m / rms(m)``, ``m = exp(spread f)`` with ``f`` a
    smooth random field of unit standard deviation (a 3 x 3 grid of Gaussian values, interpolated
    bicubically over the crop), so that the map's root mean square over the crop is ``s``, the
    level the item reports. A denoiser told ``s`` can then learn to judge the local level from the
    image itself. (Crops of one pixel have no room to vary: their level stays ``s``.)

    With probability ``remap`` the clean crop's intensities are remapped first, ``x -> g x^gamma``,
    ``gamma`` log-uniform in ``gammas`` and ``g`` in ``gains``: other contrasts and dimmer tissue
    than the training images hold (a denoiser that saw only bright tissue can learn to push dim
    tissue, such as a T2-weighted scalp, down to the background).

    Every draw comes from torch's global generator, which :func:`mricourse.fit` seeds and
    checkpoints: the same seed gives the same items, and a resumed run the same ones it would have
    seen."""

    def __init__(self, images: torch.Tensor, crop: int, sigmas: tuple[float, float] = (0.02, 0.2), varying: float = 0.0, spread: float = 0.3,
                 remap: float = 0.0, gammas: tuple[float, float] = (0.5, 2.0),
                 gains: tuple[float, float] = (0.25, 1.0)):
        if images.ndim != 4:
            raise ValueError(f"NoisyCrops: expected images (N, C, H, W), got {tuple(images.shape)}")
        if crop > min(images.shape[-2:]) or crop < 1:
            raise ValueError(f"NoisyCrops: expected a crop of 1 to {min(images.shape[-2:])} pixels, got {crop}")
        lo, hi = sigmas
        if not 0 < lo <= hi:
            raise ValueError(f"NoisyCrops: expected noise levels 0 < lo <= hi, got {sigmas}")
        if not 0 <= varying <= 1 or spread < 0:
            raise ValueError(f"NoisyCrops: expected a probability 0 <= varying <= 1 and spread >= 0, got {varying}, {spread}")
        self.images, self.crop, self.sigmas = images, crop, (float(lo), float(hi))
        self.varying, self.spread = float(varying), float(spread)
        if not 0 <= remap <= 1 or not 0 < gammas[0] <= gammas[1] or not 0 < gains[0] <= gains[1]:
            raise ValueError(f"NoisyCrops: expected 0 <= remap <= 1 and ranges 0 < lo <= hi, got {remap}, {gammas}, {gains}")
        self.remap, self.gammas, self.gains = float(remap), tuple(map(float, gammas)), tuple(map(float, gains))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        h, w = self.images.shape[-2:]
        r = int(torch.randint(0, h - self.crop + 1, ()))  # the crop's top-left corner
        c = int(torch.randint(0, w - self.crop + 1, ()))
        clean = self.images[i, :, r : r + self.crop, c : c + self.crop]  # (C, crop, crop)
        if self.remap > 0 and float(torch.rand(())) < self.remap:  # another contrast, dimmer tissue
            (g0, g1), (a0, a1) = self.gammas, self.gains
            gamma = g0 * (g1 / g0) ** torch.rand(())
            gain = a0 * (a1 / a0) ** torch.rand(())
            clean = gain * clean.clamp_min(0) ** gamma
        lo, hi = self.sigmas
        sigma = lo * (hi / lo) ** torch.rand(())  # log-uniform in [lo, hi]
        level = sigma
        if self.varying > 0 and self.crop > 1 and float(torch.rand(())) < self.varying:  # noise varying smoothly in space
            field = F.interpolate(torch.randn(1, 1, 3, 3), size=(self.crop, self.crop), mode="bicubic", align_corners=True)
            m = torch.exp(self.spread * field / field.std().clamp_min(1e-6))  # (1, 1, crop, crop)
            level = sigma * m / m.square().mean().sqrt()  # root mean square over the crop: sigma
        noisy = add_rician_noise(clean[None], level)[0]  # a magnitude image's noise
        return {"noisy": noisy, "clean": clean, "sigma": sigma}
