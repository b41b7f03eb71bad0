"""Multi-coil (and emulated single-coil) k-space from digital-brain images.

``x_c = S_c (m e^{i phi})``, ``k_c = F x_c + n_c``: the magnitude image ``m`` gets a smooth random
background phase ``phi``, loop-coil sensitivities ``S_c`` (:func:`mricourse.physics.coil_maps`),
a centred orthonormal FFT, and complex Gaussian noise that is correlated between coils
(covariance ``Psi``, neighbouring coils couple), like a real receive array. As in the fastMRI
brain data the read-out direction (rows) can be oversampled twice; the target is then the centre
crop of the RSS image of the fully sampled, noisy k-space. The emulated single-coil k-space is a
fixed linear combination of the coils (fastMRI's "ESC").

With ``finer`` > 1 the images are given on a grid ``finer`` times finer than the acquisition's: the
coils see them there, and the scanner keeps only the central ``1 / finer`` of each k-space axis.
Edges then show partial volume and Gibbs ringing, as in a real acquisition of a continuous object,
and no reconstruction method meets data simulated on its own grid (the "inverse crime",
Guerquin-Kern et al. 2012).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..fft import fft2c, ifft2c
from ..physics import coil_maps, rss
from .fields import rng_for, smooth_noise, torch_generator
from .slices import brain_slices

__all__ = ["multicoil_kspace", "noise_covariance", "center_crop", "brain_acquisition", "draw_acquisition"]


def center_crop(x: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Centre crop of the last two dims to ``shape`` (fastMRI convention for odd differences)."""
    h, w = x.shape[-2:]
    if shape[0] > h or shape[1] > w:
        raise ValueError(f"center_crop: cannot crop {(h, w)} to {tuple(shape)}")
    top, left = (h - shape[0]) // 2, (w - shape[1]) // 2
    return x[..., top : top + shape[0], left : left + shape[1]]


def noise_covariance(num_coils: int, rng: np.random.Generator, coupling: float = 0.3) -> torch.Tensor:
    """Random receiver noise covariance (coils, coils), Hermitian positive definite: neighbours on
    the ring couple with about ``coupling`` (random phase), channel gains vary +-20 %."""
    c = np.arange(num_coils)
    ring = np.minimum(np.abs(c[:, None] - c[None]), num_coils - np.abs(c[:, None] - c[None]))
    corr = coupling ** ring.astype(float) * np.exp(1j * rng.uniform(-0.3, 0.3, (num_coils, num_coils)))
    corr = (corr + corr.conj().T) / 2
    np.fill_diagonal(corr, 1.0)
    w, v = np.linalg.eigh(corr)
    corr = (v * np.clip(w, 0.05, None)) @ v.conj().T  # keep it positive definite
    gain = np.diag(rng.uniform(0.8, 1.2, num_coils))
    return torch.from_numpy(gain @ corr @ gain).to(torch.complex64)


def multicoil_kspace(
    images: torch.Tensor,
    num_coils: int = 8,
    snr: float = 30.0,
    seed: int = 0,
    oversample: int = 2,
    phase: float = 1.0,
    finer: int = 1,
) -> dict[str, torch.Tensor]:
    """Simulate the k-space of a volume (a stack of slices) acquired with a coil array.

    Args:
        images: (S, H, W) real magnitude images (one subject: the same coils for every slice).
        num_coils: receive coils (1 gives a single, uniform coil).
        snr: ``rms(k-space) / sigma`` over the volume (sigma per real/imaginary part, before
            coupling); ``inf`` for no noise.
        seed: seed of the coil positions, background phase and noise.
        oversample: read-out (row) oversampling factor: k-space has ``oversample * H`` rows.
        phase: amplitude (radians, ~std) of the smooth background phase.
        finer: the images' grid is this many times finer than the acquisition's (H and W
            divisible by it); k-space keeps the central (oversample H / finer, W / finer) samples,
            scaled so that intensities stay those of the images.
    Returns:
        dict with ``kspace`` (S, coils, oversample H, W) complex64, ``sens_maps``
        (1, coils, oversample H, W) complex64, ``target`` (S, H, W) float32 (RSS, centre crop),
        ``kspace_sc`` (S, oversample H, W) complex64 emulated single coil, ``target_sc`` (S, H, W),
        ``image`` (S, H, W) complex64 the noise-free complex image, ``noise_cov`` (coils, coils);
        with ``finer`` > 1, H and W are the acquisition's (the images' divided by ``finer``).
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 3 or images.is_complex():
        got = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
        raise TypeError(f"multicoil_kspace: expected real images of shape (S, H, W), got {got}")
    s, h, w = images.shape
    if not isinstance(finer, int) or finer < 1 or h % finer or w % finer:
        raise ValueError(f"multicoil_kspace: expected a whole finer >= 1 dividing the image size {(h, w)}, got {finer!r}")
    rng = rng_for(seed, 21)
    gen = torch_generator(rng)
    big = (oversample * h, w)
    # smooth background phase and the complex image, zero-padded along the read-out
    phi = phase * smooth_noise((h, w), spacing=max(h, w) / 3, generator=gen)[0, 0]
    image = images.float() * torch.exp(1j * phi)  # (S, H, W) complex
    pad = (big[0] - h) // 2
    padded = torch.zeros(s, *big, dtype=torch.complex64)
    padded[:, pad : pad + h] = image
    if num_coils == 1:
        maps = torch.ones(1, 1, *big, dtype=torch.complex64)
    else:  # geometry on a square box of the padded size, then the central columns
        side = max(big)
        sq = coil_maps(
            num_coils, (side, side), coil_radius=1.4 * h / side, coil_width=0.7 * h / side, seed=int(rng.integers(2**31))
        )
        maps = center_crop(sq, big)
        maps = maps / rss(maps).amax()
    coils = maps * padded[:, None]  # (S, C, 2H, W)
    kspace = fft2c(coils)
    if finer > 1:  # the scanner's matrix: the central k-space of the finer grid
        h, w, big = h // finer, w // finer, (big[0] // finer, big[1] // finer)
        kspace = center_crop(kspace, big) / finer  # orthonormal FFTs: keeps the intensities
        maps = torch.complex(*(F.avg_pool2d(part, finer) for part in (maps.real, maps.imag)))  # the smooth maps, coarse
        image = center_crop(ifft2c(center_crop(fft2c(padded), big)), (h, w)) / finer
    cov = noise_covariance(num_coils, rng) if num_coils > 1 else torch.ones(1, 1, dtype=torch.complex64)
    if math.isfinite(snr):
        if snr <= 0:
            raise ValueError(f"multicoil_kspace: expected snr > 0, got {snr}")
        sigma = float(kspace.abs().pow(2).mean().sqrt()) / snr
        chol = torch.linalg.cholesky(cov.to(torch.complex128)).to(torch.complex64)
        white = torch.complex(torch.randn(s, *big, num_coils, generator=gen), torch.randn(s, *big, num_coils, generator=gen))
        noise = (white @ chol.T).permute(0, 3, 1, 2) * sigma  # (S, C, 2H, W), covariance sigma^2 Psi
        kspace = kspace + noise
    target = center_crop(rss(ifft2c(kspace))[:, 0], (h, w))
    # emulated single coil: one fixed complex weight per coil, matched to the sensitivities
    weights = maps[0].mean((-2, -1)).conj()  # (C,)
    weights = weights / weights.abs().pow(2).sum().sqrt()
    kspace_sc = (weights.view(1, -1, 1, 1) * kspace).sum(1)
    target_sc = center_crop(ifft2c(kspace_sc).abs(), (h, w))
    return {
        "kspace": kspace.to(torch.complex64),
        "sens_maps": maps.to(torch.complex64),
        "target": target.float(),
        "kspace_sc": kspace_sc.to(torch.complex64),
        "target_sc": target_sc.float(),
        "image": image.to(torch.complex64),
        "noise_cov": cov,
    }


def draw_acquisition(seed: int, subject: int, coils=8, snr=40.0) -> dict:
    """One subject's scanner settings: ``coils`` an int or a list to draw from, ``snr`` a value or
    a ``[low, high]`` range drawn log-uniformly; the draw depends only on ``(seed, subject)``."""
    rng = rng_for(seed, subject, 77)
    n = int(rng.choice(list(coils))) if isinstance(coils, (list, tuple)) else int(coils)
    if isinstance(snr, (list, tuple)):
        if len(snr) != 2 or not 0 < snr[0] <= snr[1]:
            raise ValueError(f"draw_acquisition: expected an SNR range [low, high] with 0 < low <= high, got {snr!r}")
        value = float(np.exp(rng.uniform(np.log(snr[0]), np.log(snr[1]))))
    else:
        value = float(snr)
    return {"coils": n, "snr": value}


def brain_acquisition(
    subject: int,
    contrast: str = "T2w",
    size: int = 128,
    slices: int = 8,
    coils: int = 8,
    snr: float = 40.0,
    oversample: int = 1,
    finer: int = 1,
    seed: int = 0,
    edit=None,
    keep=None,
) -> dict[str, torch.Tensor]:
    """The multi-coil k-space of ``slices`` axial slices of digital-brain subject ``subject``
    (:func:`~mricourse.data.slices.brain_slices`), rendered ``finer`` times finer than the
    ``size`` x ``size`` acquisition (:func:`multicoil_kspace`): the course's fastMRI-style volumes.

    ``keep``: indices of the slices to acquire (default all). ``edit(image, labels) -> image``
    changes each fine magnitude image before the acquisition (a lesion). Returns
    :func:`multicoil_kspace`'s dict plus ``labels`` (slices, size, size), the tissue labels on the
    acquisition's grid (nearest), and ``fine_labels`` on the rendering grid."""
    d = brain_slices(1, (contrast,), size=size * finer, slices_per_subject=slices, seed=seed, start=subject)
    images, labels = d["images"][:, 0], d["labels"][:, 0]
    if keep is not None:
        images, labels = images[list(keep)], labels[list(keep)]
    if edit is not None:
        images = torch.stack([edit(images[j], labels[j]) for j in range(len(images))])
    acq = multicoil_kspace(images, num_coils=coils, snr=snr, seed=seed * 100003 + subject, oversample=oversample, finer=finer)
    acq["labels"], acq["fine_labels"] = labels[:, finer // 2 :: finer, finer // 2 :: finer], labels
    return acq
