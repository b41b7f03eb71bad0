"""Spatial operations on image grids, shared by the data generators, the models and the
classical methods: warping by displacement fields in voxels (``warp``, ``SpatialTransformer``),
scaling and squaring of a stationary velocity field (``VecInt``, VoxelMorph's diffeomorphic
layer), resizing a field with its vectors (``resize_flow``), separable Gaussian smoothing
(``gaussian_blur``), and resizing images by area averaging (``area_resize``). Pure tensor code:
nothing here is trained.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

__all__ = ["identity_grid", "warp", "SpatialTransformer", "VecInt", "resize_flow", "gaussian_blur", "area_resize"]


def identity_grid(shape, device=None, dtype=torch.float32) -> torch.Tensor:
    """Voxel coordinates of a grid of ``shape``: (1, dims, *shape)."""
    axes = [torch.arange(s, device=device, dtype=dtype) for s in shape]
    return torch.stack(torch.meshgrid(*axes, indexing="ij")).unsqueeze(0)


def _sample(src: torch.Tensor, new_locs: torch.Tensor, mode: str, padding_mode: str) -> torch.Tensor:
    shape = new_locs.shape[2:]
    dims = len(shape)
    # normalise voxel coordinates to [-1, 1] (align_corners=True)
    scale = torch.tensor([2.0 / max(s - 1, 1) for s in shape], device=new_locs.device, dtype=new_locs.dtype)
    locs = new_locs * scale.view(1, dims, *([1] * dims)) - 1.0
    locs = locs.movedim(1, -1).flip(-1)  # (B, *shape, dims), grid_sample wants x, y(, z)
    return F.grid_sample(src, locs, mode=mode, padding_mode=padding_mode, align_corners=True)


def warp(src: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear", padding_mode: str = "border") -> torch.Tensor:
    """Warp ``src`` (B, C, *spatial) by a displacement ``flow`` (B, dims, *spatial) in voxels:
    ``out(x) = src(x + flow(x))``. Use ``mode="nearest"`` for label maps."""
    dims = flow.shape[1]
    if flow.ndim != dims + 2 or src.shape[2:] != flow.shape[2:]:
        raise ValueError(
            f"warp: expected src (B, C, *spatial) and flow (B, {dims}, *spatial) with the same spatial size, "
            f"got {tuple(src.shape)} and {tuple(flow.shape)}"
        )
    grid = identity_grid(flow.shape[2:], flow.device, flow.dtype)
    return _sample(src, grid + flow, mode, padding_mode)


class SpatialTransformer(nn.Module):
    """Warp images by displacement fields in voxels (VoxelMorph's spatial transformer).

    The identity grid is a non-persistent buffer (moves with ``.to(...)``, not saved).
    """

    def __init__(self, size, mode: str = "bilinear", padding_mode: str = "border"):
        super().__init__()
        self.mode, self.padding_mode = mode, padding_mode
        self.register_buffer("grid", identity_grid(tuple(size)), persistent=False)

    def forward(self, src: torch.Tensor, flow: torch.Tensor, mode: str | None = None) -> torch.Tensor:
        if flow.shape[2:] != self.grid.shape[2:] or src.shape[2:] != self.grid.shape[2:]:
            raise ValueError(
                f"SpatialTransformer built for size {tuple(self.grid.shape[2:])}, got src {tuple(src.shape)} and flow {tuple(flow.shape)}"
            )
        return _sample(src, self.grid + flow, mode or self.mode, self.padding_mode)


class VecInt(nn.Module):
    """Integrate a stationary velocity field by scaling and squaring:
    ``phi = exp(v)``: start from ``v / 2^n`` and compose the field with itself ``n`` times."""

    def __init__(self, size, nsteps: int = 7):
        super().__init__()
        if nsteps < 0:
            raise ValueError(f"VecInt: expected nsteps >= 0, got {nsteps}")
        self.nsteps = nsteps
        self.transformer = SpatialTransformer(size)

    def forward(self, vec: torch.Tensor) -> torch.Tensor:
        vec = vec / 2**self.nsteps
        for _ in range(self.nsteps):
            vec = vec + self.transformer(vec, vec)  # u <- u + u o (id + u)
        return vec


def resize_flow(flow: torch.Tensor, size) -> torch.Tensor:
    """Resize a displacement field (B, dims, *spatial) to ``size``, rescaling the vectors too."""
    dims = flow.shape[1]
    mode = "bilinear" if dims == 2 else "trilinear"
    out = F.interpolate(flow, size=tuple(size), mode=mode, align_corners=True)
    factors = [(n - 1) / max(o - 1, 1) for n, o in zip(size, flow.shape[2:])]
    return out * torch.tensor(factors, device=flow.device, dtype=flow.dtype).view(1, dims, *([1] * dims))


def _kernel1d(sigma: float, dtype=torch.float32) -> torch.Tensor:
    radius = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=dtype)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(x: torch.Tensor, sigma: float | tuple[float, ...]) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, *spatial) over the spatial dims (``sigma`` in voxels),
    zero padding: a band of ~3 sigma at the border is attenuated."""
    dims = x.ndim - 2
    sigmas = (sigma,) * dims if isinstance(sigma, (int, float)) else tuple(sigma)
    if x.device.type == "cpu" and not x.requires_grad:  # scipy is much faster than conv1d on CPU
        out = ndimage.gaussian_filter(x.detach().numpy(), (0, 0, *sigmas), mode="constant", truncate=3.0)
        return torch.from_numpy(out)
    out = x
    for d, s in enumerate(sigmas):
        if s <= 0:
            continue
        k = _kernel1d(s, x.dtype).to(x.device)
        moved = out.movedim(2 + d, -1)  # blur along the last dim with a 1D convolution
        flat = moved.reshape(-1, 1, moved.shape[-1])  # (rest, 1, L)
        flat = F.conv1d(flat, k.view(1, 1, -1), padding=k.numel() // 2)
        out = flat.reshape(moved.shape).movedim(-1, 2 + d)
    return out.contiguous()


def area_resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Images (N, C, H, W) brought to ``size`` x ``size`` by area averaging (a mean over 2 x 2
    pixels for a halving), as a GAN's training slices are: the way to compare a generator of
    another size with them. Unchanged when they already have that size."""
    if images.ndim != 4:
        raise ValueError(f"area_resize: expected images (N, C, H, W), got {tuple(images.shape)}")
    if tuple(images.shape[-2:]) == (size, size):
        return images.float()
    return F.interpolate(images.float(), size=(size, size), mode="area")
