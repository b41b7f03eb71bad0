"""Multi-coil (and emulated single-coil) k-space from digital-brain images.

``x_c = S_c (m e^{i phi})``, ``k_c = F x_c + n_c``: the magnitude image ``m`` gets a smooth random
background phase ``phi``, loop-coil sensitivities ``S_c`` (:func:`mricourse.physics.coil_maps`),
a centred orthonormal FFT, and complex Gaussian noise that is correlated between coils
(covariance ``Psi``, neighbouring coils couple), like a real receive array. As in the fastMRI
brain data the read-out direction (rows) can be oversampled twice; the target is then the centre
crop of the RSS image of the fully sampled, noisy k-space. The emulated single-coil k-space is a
fixed linear combination of the coils (fastMRI's "ESC").
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..fft import fft2c, ifft2c
from ..physics import coil_maps, rss
from .fields import rng_for, smooth_noise, torch_generator

__all__ = ["multicoil_kspace", "noise_covariance", "center_crop"]


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
    Returns:
        dict with ``kspace`` (S, coils, oversample H, W) complex64, ``sens_maps``
        (1, coils, oversample H, W) complex64, ``target`` (S, H, W) float32 (RSS, centre crop),
        ``kspace_sc`` (S, oversample H, W) complex64 emulated single coil, ``target_sc`` (S, H, W),
        ``image`` (S, H, W) complex64 the noise-free complex image, ``noise_cov`` (coils, coils).
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 3 or images.is_complex():
        got = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
        raise TypeError(f"multicoil_kspace: expected real images of shape (S, H, W), got {got}")
    s, h, w = images.shape
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
