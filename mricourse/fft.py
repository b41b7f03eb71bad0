"""Centred, orthonormal Fourier transforms and the complex <-> channel boundary.

Convention (the same as fastMRI): ``fft2c(x) = fftshift(fftn(ifftshift(x), norm="ortho"))``
over the last two (or ``ndim``) dimensions. The transform is unitary, so ``ifft2c`` inverts
it exactly and Parseval holds: ``||fft2c(x)|| == ||x||``. Masks are stored centred.
"""

from __future__ import annotations

import warnings

import torch

__all__ = ["fftnc", "ifftnc", "fft2c", "ifft2c", "fft3c", "ifft3c", "to_channels", "from_channels", "warn_nonfinite"]


def warn_nonfinite(x: torch.Tensor, what: str, fix: str = "check the data and the step that made it") -> bool:
    """Warn (``RuntimeWarning``) when ``x`` holds NaN or inf values; return True if it does.

    Used at the entry of the operators, models and metrics, so that NaN input never turns into
    NaN output without a word."""
    if not isinstance(x, torch.Tensor) or not (x.is_floating_point() or x.is_complex()):
        return False
    bad = int((~torch.isfinite(x)).sum())
    if bad:
        warnings.warn(f"{what} holds NaN or inf values ({bad} of {x.numel()}): the result will too; {fix}", RuntimeWarning, 3)
    return bool(bad)


def _require_complex(x: torch.Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if not x.is_complex():
        raise TypeError(
            f"{name}: expected a complex tensor (complex64), got {x.dtype} of shape "
            f"{tuple(x.shape)}; use torch.complex(real, imag) or x.to(torch.complex64)"
        )
    if x.numel() == 0:
        raise ValueError(f"{name}: expected a non-empty tensor, got an empty one of shape {tuple(x.shape)} (an empty batch?)")


def fftnc(x: torch.Tensor, ndim: int = 2) -> torch.Tensor:
    """Centred orthonormal FFT over the last ``ndim`` dims of a complex tensor."""
    _require_complex(x, "fftnc")
    dims = tuple(range(-ndim, 0))
    x = torch.fft.ifftshift(x, dim=dims)
    x = torch.fft.fftn(x, dim=dims, norm="ortho")
    return torch.fft.fftshift(x, dim=dims)


def ifftnc(k: torch.Tensor, ndim: int = 2) -> torch.Tensor:
    """Centred orthonormal inverse FFT over the last ``ndim`` dims of a complex tensor."""
    _require_complex(k, "ifftnc")
    dims = tuple(range(-ndim, 0))
    k = torch.fft.ifftshift(k, dim=dims)
    k = torch.fft.ifftn(k, dim=dims, norm="ortho")
    return torch.fft.fftshift(k, dim=dims)


def fft2c(x: torch.Tensor) -> torch.Tensor:
    """Image (..., H, W) complex -> k-space (..., H, W) complex, centred and orthonormal."""
    return fftnc(x, 2)


def ifft2c(k: torch.Tensor) -> torch.Tensor:
    """k-space (..., H, W) complex -> image (..., H, W) complex, centred and orthonormal."""
    return ifftnc(k, 2)


def fft3c(x: torch.Tensor) -> torch.Tensor:
    """Volume (..., D, H, W) complex -> 3D k-space, centred and orthonormal."""
    return fftnc(x, 3)


def ifft3c(k: torch.Tensor) -> torch.Tensor:
    """3D k-space (..., D, H, W) complex -> volume, centred and orthonormal."""
    return ifftnc(k, 3)


def to_channels(x: torch.Tensor) -> torch.Tensor:
    """Complex (B, C, *spatial) -> real (B, 2C, *spatial), channels ordered [re_0..re_C, im_0..im_C]."""
    _require_complex(x, "to_channels")
    return torch.cat([x.real, x.imag], dim=1)


def from_channels(x: torch.Tensor) -> torch.Tensor:
    """Real (B, 2C, *spatial) -> complex (B, C, *spatial); inverse of :func:`to_channels`."""
    if x.is_complex() or x.ndim < 2 or x.shape[1] % 2:
        raise ValueError(
            f"from_channels: expected a real tensor (B, 2C, ...) with an even channel count, "
            f"got {x.dtype} of shape {tuple(x.shape)}"
        )
    re, im = x.chunk(2, dim=1)
    return torch.complex(re.contiguous(), im.contiguous())
