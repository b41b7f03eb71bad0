"""Low-resolution images from high-resolution ones, the interpolation baselines, and SR metrics.

Super-resolution networks learn from pairs made by degrading high-resolution (HR) images
(Liu et al. 2018; Sanchez and Vilaplana 2018). Two ways down, both on the last ``dims`` axes:

- image space, as the papers do: blur with a Gaussian point-spread function, integrate over the
  larger voxel (a box average over ``f`` samples per axis), add Gaussian noise::

      lr = box_f(G_sigma * hr) + n,            n ~ N(0, noise^2)

  A thick-slice acquisition is the special case ``sigma = 0`` with ``f > 1`` along one axis only.
- k-space, the MRI-physical way: a lower-resolution scan samples only the centre of k-space, so
  crop the centred k-space to ``1/f`` of its size per axis, add complex Gaussian noise to the
  samples, take the magnitude of the inverse FFT (a sinc point-spread function: Gibbs ringing
  instead of blur; Rician noise)::

      lr = | F^-1 (crop_f(F hr) + n) |,        n ~ CN(0, 2 noise^2): std ``noise`` per real/imag part

Grid convention (both ways, and the baselines): low-resolution voxel ``j`` covers the HR voxels
``[f j, f j + f)``; its centre sits at HR coordinate ``f j + (f - 1) / 2``, the convention of
``scipy.ndimage.zoom(grid_mode=True)``, ``skimage.transform.resize`` and PyTorch's
``interpolate(align_corners=False)``. Sizes must be multiples of ``f`` (``crop_to_multiple``).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.ndimage as ndi
import torch

from .fft import fftnc, ifftnc
from .metrics import psnr, ssim
from .physics import complex_noise
from .spatial import gaussian_blur

__all__ = ["factors", "crop_to_multiple", "degrade", "kspace_truncate", "interpolate", "sr_metrics"]


def factors(factor, dims: int) -> tuple[int, ...]:
    """An int or a per-axis tuple of ints -> a tuple of ``dims`` positive ints."""
    f = (factor,) * dims if isinstance(factor, (int, np.integer)) else tuple(factor)
    if len(f) != dims or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in f):
        raise ValueError(f"expected factor as a positive int or a tuple of {dims} positive ints, got {factor!r}")
    return tuple(int(v) for v in f)


def _check(x, dims: int, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(np.asarray(x))
    if dims not in (2, 3) or x.ndim < dims or x.is_complex():
        raise ValueError(
            f"{name}: expected a real image (..., *spatial) with dims = 2 or 3 spatial axes, got {x.dtype} {tuple(x.shape)}, dims={dims}"
        )
    return x.float()


def crop_to_multiple(x, factor, dims: int = 2):
    """Crop the last ``dims`` axes (centred) to multiples of ``factor`` (int or per-axis tuple)."""
    f = factors(factor, dims)
    idx = [slice(None)] * (x.ndim - dims)
    for n, r in zip(x.shape[-dims:], f):
        m = n - n % r
        idx.append(slice((n - m) // 2, (n - m) // 2 + m))
    return x[tuple(idx)]


def _noise(shape, std: float, seed: int, device, complex_: bool = False) -> torch.Tensor:
    """Gaussian noise of std ``std`` (per real and imaginary part if ``complex_``), seeded."""
    gen = torch.Generator().manual_seed(int(seed))  # CPU generator: the same noise on every device
    if complex_:
        return complex_noise(shape, std, gen).to(device)
    return (std * torch.randn(shape, generator=gen)).to(device)


def degrade(hr, factor=2, dims: int = 2, sigma=1.0, noise: float = 0.0, seed: int = 0) -> torch.Tensor:
    """Image-space degradation: Gaussian blur, box average over ``factor`` voxels, Gaussian noise.

    Args:
        hr: (..., *spatial) real image(s); the last ``dims`` axes are spatial, sizes multiples of
            ``factor``.
        factor: int, or a per-axis tuple such as ``(2, 1, 1)`` (thick slices along the first axis).
        sigma: Gaussian PSF in HR voxels (float or per-axis), applied only along axes with
            ``factor > 1``; ``sigma=0`` gives the pure box (slice-profile) average.
        noise: standard deviation of the added Gaussian noise (in image units).
        seed: seeds the noise; the output depends only on ``(hr, factor, sigma, noise, seed)``.

    Returns:
        (..., *spatial // factor) float32.
    """
    x = _check(hr, dims, "degrade")
    f = factors(factor, dims)
    if any(n % r for n, r in zip(x.shape[-dims:], f)):
        raise ValueError(f"degrade: spatial size {tuple(x.shape[-dims:])} is not a multiple of factor {f}; use crop_to_multiple")
    sig = (float(sigma),) * dims if isinstance(sigma, (int, float)) else tuple(float(s) for s in sigma)
    sig = tuple(s if r > 1 else 0.0 for s, r in zip(sig, f))
    lead = x.shape[:-dims]
    if any(sig):  # the course's Gaussian blur (zero padding: the background of a head is dark anyway)
        x = gaussian_blur(x.reshape(-1, 1, *x.shape[-dims:]), sig).reshape(x.shape)
    split = [v for n, r in zip(x.shape[-dims:], f) for v in (n // r, r)]
    x = x.reshape(*lead, *split)  # (..., n1/f1, f1, n2/f2, f2, ...)
    lr = x.mean(dim=tuple(range(len(lead) + 1, x.ndim, 2)))  # box average over each large voxel
    if noise > 0:
        lr = lr + _noise(lr.shape, noise, seed, lr.device)
    return lr


def kspace_truncate(hr, factor=2, dims: int = 2, noise: float = 0.0, seed: int = 0) -> torch.Tensor:
    """k-space degradation: keep the central ``1/factor`` of centred k-space per axis, add complex
    Gaussian noise of std ``noise`` per real and imaginary part to the kept samples, return the
    magnitude of the low-resolution image: Rician noise of parameter ``noise`` (the orthonormal
    FFT keeps white noise white with the same std, so ``noise`` is also the std per part in image
    space: about ``noise`` where the signal is bright, Rayleigh, mean ``noise sqrt(pi / 2)``, where
    there is none; as :func:`mricourse.add_rician_noise`).

    A linear phase first shifts the image by ``(f - 1) / 2`` HR voxels so that the low-resolution
    grid matches :func:`degrade` (voxel centres at ``f j + (f - 1) / 2``), and the result is scaled
    by ``sqrt(prod f)`` so that a constant image keeps its value.
    """
    x = _check(hr, dims, "kspace_truncate")
    f = factors(factor, dims)
    if any(n % r for n, r in zip(x.shape[-dims:], f)):
        raise ValueError(f"kspace_truncate: spatial size {tuple(x.shape[-dims:])} is not a multiple of factor {f}")
    k = fftnc(x.to(torch.complex64), dims)
    idx = [slice(None)] * (x.ndim - dims)
    for axis, (n, r) in enumerate(zip(x.shape[-dims:], f)):
        m = n // r
        kc = torch.arange(n, device=x.device, dtype=torch.float32) - n // 2  # centred frequency index
        shape = [1] * dims
        shape[axis] = n
        k = k * torch.exp(2j * math.pi * kc * (r - 1) / 2 / n).view(shape)  # x(p) -> x(p + (f-1)/2)
        idx.append(slice(n // 2 - m // 2, n // 2 - m // 2 + m))
    k = k[tuple(idx)] / math.sqrt(math.prod(f))
    if noise > 0:  # the receiver's thermal noise, on the acquired samples
        k = k + _noise(k.shape, noise, seed, k.device, complex_=True)
    return ifftnc(k, dims).abs()


def interpolate(lr, factor=2, dims: int = 2, order: int = 3) -> torch.Tensor:
    """Classical baseline: spline interpolation with ``scipy.ndimage.zoom`` (``grid_mode=True``).

    ``order`` 1: (bi/tri)linear; 3: cubic B-spline (the usual "bicubic"). Works on (..., *spatial)
    tensors or arrays; returns a float32 tensor of size ``spatial * factor``.
    """
    x = _check(lr, dims, "interpolate")
    f = factors(factor, dims)
    items = x.cpu().numpy().reshape(-1, *x.shape[-dims:])  # (N, *spatial)
    # one item at a time: zooming the leading axes too (by 1) would make the spline (order + 1)^ndim wide
    out = np.stack([ndi.zoom(v, f, order=order, mode="reflect", grid_mode=True) for v in items])
    return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32)).reshape(*x.shape[:-dims], *out.shape[1:])


def sr_metrics(gt, pred, mask=None, border: int = 4, dims: int = 2) -> dict[str, float]:
    """PSNR and SSIM the way SR papers report them: border-cropped and brain-masked.

    ``border`` voxels are cut from each side of the last ``dims`` axes; PSNR is over the voxels
    inside ``mask`` with ``data_range = gt.max()``; SSIM is the mean 7x7 SSIM over the slices (last
    two axes) of ``gt * mask`` and ``pred * mask``. Inputs (N, ..., *spatial) give the mean over the
    N items (each item scored on its own, as the papers average per image or per volume); inputs
    with exactly ``dims`` axes are one item.
    """
    gt, pred = _check(gt, dims, "sr_metrics"), _check(pred, dims, "sr_metrics")
    if gt.shape != pred.shape:
        raise ValueError(f"sr_metrics: expected gt and pred of the same shape, got {tuple(gt.shape)} and {tuple(pred.shape)}")
    mask = (
        torch.ones_like(gt, dtype=torch.bool)
        if mask is None
        else torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask).bool().expand_as(gt)
    )
    if gt.ndim > dims:
        items = [sr_metrics(g, p, m, border, dims) for g, p, m in zip(gt, pred, mask)]
        return {k: float(np.mean([it[k] for it in items])) for k in ("psnr", "ssim")}
    idx = (...,) + (slice(border, -border if border else None),) * dims
    gt, pred, mask = gt[idx], pred[idx], mask[idx]
    peak = float(gt.max())
    return {
        "psnr": float(psnr(gt[mask], pred[mask], data_range=peak)),
        "ssim": float(ssim(gt * mask, pred * mask, data_range=peak)),
    }
