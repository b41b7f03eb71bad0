"""MRI forward models: single- and multi-coil Cartesian operators, coil sensitivities, noise, RSS.

Shapes: images (B, 1, H, W) complex (or (B, T, H, W) for dynamic single-coil data); multi-coil
k-space and coil maps (B, coils, H, W) complex; masks broadcastable (B|1, 1, 1, W) or (B|1, T, 1, W).
The operators follow the deepinv pattern: ``A`` (image -> measured k-space) and ``A_adjoint``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .fft import fft2c, ifft2c, warn_nonfinite

__all__ = [
    "SingleCoilMRI",
    "MultiCoilMRI",
    "rss",
    "g_factor",
    "coil_maps",
    "complex_noise",
    "add_noise",
    "add_rician_noise",
    "zero_filled",
    "adjointness_error",
    "adjoint_inner_products",
]


def _require_kspace(k: torch.Tensor, what: str, min_dim: int = 3) -> None:
    if not isinstance(k, torch.Tensor) or not k.is_complex() or k.ndim < min_dim:
        got = f"{k.dtype} {tuple(k.shape)}" if isinstance(k, torch.Tensor) else type(k).__name__
        raise TypeError(f"expected complex {what}, got {got}")
    warn_nonfinite(k, f"the {what.split(' of shape')[0]}")


def require_mask(mask: torch.Tensor, what: str = "mask") -> None:
    """A sampling mask is real (float or bool) and holds only 0 and 1; raise otherwise."""
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{what}: expected a torch.Tensor of 0/1 floats, got {type(mask).__name__}")
    if mask.is_complex() or not (mask.is_floating_point() or mask.dtype == torch.bool):
        raise TypeError(f"{what}: expected a real float (or bool) 0/1 mask, got {mask.dtype}; use mask.float()")
    if mask.dtype != torch.bool and not ((mask == 0) | (mask == 1)).all():
        values = torch.unique(mask.detach())[:5].tolist()
        raise ValueError(f"{what}: expected values 0 and 1 only (1 = sampled), got {values}; use (mask > 0).float()")


def _require_mask(mask: torch.Tensor, shape: torch.Size) -> None:
    try:
        torch.broadcast_shapes(mask.shape, shape)
    except RuntimeError:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast against k-space of shape "
            f"{tuple(shape)}; expected (B|1, 1, 1, W) with W = {shape[-1]}"
        ) from None


class SingleCoilMRI:
    """Single-coil Cartesian MRI: ``A x = M F x``, ``A^H k = F^H M k``.

    Works for static (B, 1, H, W) and dynamic (B, T, H, W) images; the mask broadcasts.
    """

    def __init__(self, mask: torch.Tensor):
        require_mask(mask)
        self.mask = mask

    def A(self, x: torch.Tensor) -> torch.Tensor:
        _require_kspace(x, "image of shape (B, 1|T, H, W)", 4)
        _require_mask(self.mask, x.shape)
        return self.mask.to(x.device) * fft2c(x)

    def A_adjoint(self, k: torch.Tensor) -> torch.Tensor:
        _require_kspace(k, "k-space of shape (B, 1|T, H, W)", 4)
        _require_mask(self.mask, k.shape)
        return ifft2c(self.mask.to(k.device) * k)


class MultiCoilMRI:
    """Multi-coil (SENSE) Cartesian MRI: ``A x = M F (S x)``, ``A^H k = sum_c conj(S_c) F^H M k_c``.

    Args:
        sens_maps: (B, coils, H, W) complex coil sensitivities.
        mask: broadcastable (B|1, 1, 1, W) sampling mask.
    """

    def __init__(self, sens_maps: torch.Tensor, mask: torch.Tensor):
        _require_kspace(sens_maps, "coil maps of shape (B, coils, H, W)", 4)
        require_mask(mask)
        _require_mask(mask, sens_maps.shape)
        self.sens_maps, self.mask = sens_maps, mask

    def A(self, x: torch.Tensor) -> torch.Tensor:
        _require_kspace(x, "image of shape (B, 1, H, W)", 4)
        if x.shape[1] != 1 or x.shape[-2:] != self.sens_maps.shape[-2:]:
            raise ValueError(
                f"expected an image of shape (B, 1, {self.sens_maps.shape[-2]}, {self.sens_maps.shape[-1]}), got {tuple(x.shape)}"
            )
        return self.mask.to(x.device) * fft2c(self.sens_maps * x)

    def A_adjoint(self, k: torch.Tensor) -> torch.Tensor:
        _require_kspace(k, "multi-coil k-space of shape (B, coils, H, W)", 4)
        if k.shape[1:] != self.sens_maps.shape[1:]:
            raise ValueError(
                f"expected multi-coil k-space of shape (B, {', '.join(map(str, self.sens_maps.shape[1:]))}), got {tuple(k.shape)}"
            )
        return (self.sens_maps.conj() * ifft2c(self.mask.to(k.device) * k)).sum(1, keepdim=True)


def adjoint_inner_products(op, x_shape: tuple[int, ...], k_shape: tuple[int, ...], seed: int = 0) -> tuple[complex, complex]:
    """The dot-product test: ``(<A x, y>, <x, A^H y>)`` on random complex128 x, y (equal for an exact adjoint).

    ``op`` is any object with ``A`` and ``A_adjoint``; the package's operators are rebuilt in double
    precision first.
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*x_shape, dtype=torch.complex128, generator=g)
    y = torch.randn(*k_shape, dtype=torch.complex128, generator=g)
    if isinstance(op, MultiCoilMRI):
        op = type(op)(op.sens_maps.to(torch.complex128), op.mask.double())
    elif isinstance(op, SingleCoilMRI):
        op = type(op)(op.mask.double())
    lhs = torch.vdot(op.A(x).flatten().to(torch.complex128), y.flatten())
    rhs = torch.vdot(x.flatten(), op.A_adjoint(y).flatten().to(torch.complex128))
    return complex(lhs), complex(rhs)


def adjointness_error(op, x_shape: tuple[int, ...], k_shape: tuple[int, ...], seed: int = 0) -> float:
    """Relative error of ``<A x, y> = <x, A^H y>`` on random complex x, y (0 for an exact adjoint)."""
    lhs, rhs = adjoint_inner_products(op, x_shape, k_shape, seed)
    return abs(lhs - rhs) / max(abs(lhs), abs(rhs), 1e-30)


def rss(x: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Root-sum-of-squares coil combination: ``sqrt(sum_c |x_c|^2)`` over ``dim`` (kept)."""
    return torch.sqrt((x.abs() ** 2).sum(dim, keepdim=True))


def g_factor(sens_maps: torch.Tensor, accel: int) -> torch.Tensor:
    """SENSE g-factor map (Pruessmann et al. 1999) of a Cartesian acquisition that keeps every
    ``accel``-th column, with white noise of the same level in every coil.

    Keeping every ``R``-th column folds the ``R`` pixels ``c, c + W/R, ..., c + (R-1) W/R`` of a row
    onto one. With ``S`` the (coils x R) matrix of the sensitivities at those pixels, unfolding
    multiplies the noise of pixel ``p`` by ``sqrt(R)`` (fewer samples) times

        g_p = sqrt([(S^H S)^-1]_pp [S^H S]_pp) >= 1.

    Args:
        sens_maps: (coils, H, W) complex sensitivities; ``W`` divisible by ``accel``.
        accel: the acceleration ``R`` (a whole number >= 1).

    Returns:
        (H, W) real g-factor, 1 where the coils tell the folded pixels apart perfectly.
    """
    if not isinstance(sens_maps, torch.Tensor) or not sens_maps.is_complex() or sens_maps.ndim != 3:
        got = f"{sens_maps.dtype} {tuple(sens_maps.shape)}" if isinstance(sens_maps, torch.Tensor) else type(sens_maps).__name__
        raise TypeError(f"g_factor: expected complex sensitivities of shape (coils, H, W), got {got}")
    c, h, w = sens_maps.shape
    if not isinstance(accel, int) or accel < 1 or w % accel:
        raise ValueError(f"g_factor: expected a whole acceleration >= 1 that divides the width {w}, got {accel!r}")
    n = w // accel
    s = sens_maps.to(torch.complex128).reshape(c, h, accel, n).permute(1, 3, 0, 2)  # (H, W/R, coils, R): pixels i + a W/R
    a = s.conj().transpose(-1, -2) @ s  # (H, W/R, R, R): S^H S
    inv = torch.linalg.inv(a)
    g = torch.sqrt((torch.diagonal(inv, dim1=-2, dim2=-1) * torch.diagonal(a, dim1=-2, dim2=-1)).real.clamp_min(1.0))
    return g.permute(0, 2, 1).reshape(h, w).float()  # (H, R, W/R) -> (H, W)


def coil_maps(
    num_coils: int,
    shape: tuple[int, int],
    coil_radius: float = 1.4,
    coil_width: float = 0.7,
    seed: int | None = None,
    dtype: torch.dtype = torch.complex64,
) -> torch.Tensor:
    """Loop-coil sensitivities of a head array, shape (1, coils, H, W) complex.

    Coil ``c`` sits on a ring of radius ``coil_radius`` (in units of the half field of view) at
    angle ``2 pi c / coils`` (plus a small random jitter). Its magnitude falls off as
    ``1 / (1 + (d / coil_width)^2)^(3/2)`` with the distance ``d`` from the coil (a loop's
    on-axis Biot-Savart profile), and its phase turns with the direction from the coil, so the
    maps are smooth, shade the centre and are *not* normalised to RSS = 1, like real arrays.
    """
    if num_coils < 1:
        raise ValueError(f"coil_maps: expected num_coils >= 1, got {num_coils}")
    h, w = shape
    rng = np.random.default_rng(seed)
    y, x = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    maps = []
    for c in range(num_coils):
        a = 2 * math.pi * c / num_coils + rng.uniform(-0.15, 0.15)
        cy, cx = coil_radius * math.sin(a), coil_radius * math.cos(a)
        dy, dx = y - cy, x - cx
        d = np.sqrt(dx**2 + dy**2)
        mag = (1 + (d / coil_width) ** 2) ** -1.5
        phase = np.arctan2(dy, dx) - a + rng.uniform(-math.pi, math.pi)
        maps.append(mag * np.exp(1j * phase))
    maps = np.stack(maps)
    maps /= np.abs(maps).max()
    return torch.from_numpy(maps).to(dtype).unsqueeze(0)


def complex_noise(shape, sigma: float, generator: torch.Generator | None = None, dtype=torch.complex64):
    """Circular complex Gaussian noise with standard deviation ``sigma`` per real/imag part."""
    real_dtype = torch.float64 if dtype == torch.complex128 else torch.float32
    re = torch.randn(*shape, generator=generator, dtype=real_dtype)
    im = torch.randn(*shape, generator=generator, dtype=real_dtype)
    return torch.complex(re, im).to(dtype) * sigma


def add_noise(kspace: torch.Tensor, snr: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Add complex Gaussian noise so that ``rms(kspace) / sigma = snr`` (sigma per real/imag part).

    With the orthonormal FFT the noise standard deviation is the same in image space.
    """
    _require_kspace(kspace, "k-space", 1)
    if not snr > 0:  # also refuses NaN
        raise ValueError(f"add_noise: expected snr > 0 (math.inf for no noise), got {snr}")
    sigma = float(kspace.abs().pow(2).mean().sqrt()) / snr
    return kspace + complex_noise(kspace.shape, sigma, generator, kspace.dtype).to(kspace.device)


def add_rician_noise(images: torch.Tensor, sigma, generator: torch.Generator | None = None) -> torch.Tensor:
    """The noise of a magnitude image: ``y = |x + sigma (n_re + i n_im)|``, ``n ~ N(0, 1)`` per part.

    ``images`` are real magnitude images (B, ...), ``sigma`` a float, one level per image (B,), or a
    map of levels with as many dims as the images, broadcastable to them (noise that varies in space,
    as in a parallel-imaging reconstruction).
    Where ``x >> sigma`` the noise is nearly Gaussian with standard deviation ``sigma``; where there
    is no signal (the background) ``y`` is Rayleigh distributed: mean ``sigma sqrt(pi / 2)``,
    standard deviation about ``0.655 sigma``, and ``mean(y^2) = 2 sigma^2``.
    """
    if images.is_complex():
        raise TypeError(f"add_rician_noise: expected real magnitude images, got {images.dtype}")
    s = torch.as_tensor(sigma, dtype=images.dtype)
    s = (s if s.ndim == images.ndim > 1 else s.reshape(-1, *([1] * (images.ndim - 1)))).to(images.device)
    if bool((s < 0).any()):
        raise ValueError(f"add_rician_noise: expected noise levels >= 0, got {sigma}")
    noise = torch.randn((2, *images.shape), generator=generator, dtype=images.dtype).to(images.device)
    return torch.sqrt((images + s * noise[0]) ** 2 + (s * noise[1]) ** 2)


def zero_filled(masked_kspace: torch.Tensor, coil_dim: int | None = 1) -> torch.Tensor:
    """Zero-filled reconstruction: inverse FFT of the measured k-space (zeros elsewhere), then
    RSS over coils (``coil_dim``), or the magnitude if ``coil_dim`` is None. Returns magnitude."""
    _require_kspace(masked_kspace, "k-space", 2)
    image = ifft2c(masked_kspace)
    return image.abs() if coil_dim is None else rss(image, coil_dim)
