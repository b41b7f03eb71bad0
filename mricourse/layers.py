"""Building blocks shared by several models, N-dimensional (``dims`` = 2 or 3).

- ``ConvBlock`` / ``UNet``: the fastMRI U-Net (conv3 without bias, instance norm, LeakyReLU 0.2;
  average-pool down, transposed-conv up, skip concatenation).
- ``PatchDiscriminator``: the pix2pix/CycleGAN PatchGAN (70x70 receptive field with 3 layers).
- ``SpatialTransformer``, ``VecInt``, ``warp``, ``resize_flow``: warping with displacement
  fields in voxels, and scaling and squaring of a stationary velocity field (VoxelMorph).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ConvBlock", "UNet", "PatchDiscriminator", "SpatialTransformer", "VecInt", "warp", "identity_grid", "resize_flow"]


def _nd(name: str, dims: int):
    if dims not in (2, 3):
        raise ValueError(f"expected dims = 2 or 3, got {dims!r}")
    return getattr(nn, f"{name}{dims}d")


class ConvBlock(nn.Sequential):
    """2 x (conv3 without bias, instance norm, LeakyReLU 0.2, dropout)."""

    def __init__(self, in_chans: int, out_chans: int, dims: int = 2, drop_prob: float = 0.0):
        conv, norm, drop = _nd("Conv", dims), _nd("InstanceNorm", dims), _nd("Dropout", dims)
        super().__init__(
            conv(in_chans, out_chans, 3, padding=1, bias=False),
            norm(out_chans),
            nn.LeakyReLU(0.2),
            drop(drop_prob),
            conv(out_chans, out_chans, 3, padding=1, bias=False),
            norm(out_chans),
            nn.LeakyReLU(0.2),
            drop(drop_prob),
        )


class TransposeConvBlock(nn.Sequential):
    """Transposed conv (kernel 2, stride 2, no bias), instance norm, LeakyReLU 0.2: doubles the size."""

    def __init__(self, in_chans: int, out_chans: int, dims: int = 2):
        super().__init__(
            _nd("ConvTranspose", dims)(in_chans, out_chans, 2, stride=2, bias=False),
            _nd("InstanceNorm", dims)(out_chans),
            nn.LeakyReLU(0.2),
        )


class UNet(nn.Module):
    """The fastMRI U-Net (Ronneberger 2015 as used by Zbontar et al. 2018), 2D or 3D.

    (B, in_chans, *spatial) -> (B, out_chans, *spatial); channel widths chans * 2^level.
    Odd sizes are handled by reflection-padding the upsampled map to the skip's size.
    """

    def __init__(self, in_chans: int, out_chans: int, chans: int = 32, num_pools: int = 4, dims: int = 2, drop_prob: float = 0.0):
        super().__init__()
        self.dims = dims
        self.down = nn.ModuleList([ConvBlock(in_chans, chans, dims, drop_prob)])
        ch = chans
        for _ in range(num_pools - 1):
            self.down.append(ConvBlock(ch, ch * 2, dims, drop_prob))
            ch *= 2
        self.bottleneck = ConvBlock(ch, ch * 2, dims, drop_prob)
        self.up_transpose, self.up = nn.ModuleList(), nn.ModuleList()
        for _ in range(num_pools - 1):
            self.up_transpose.append(TransposeConvBlock(ch * 2, ch, dims))
            self.up.append(ConvBlock(ch * 2, ch, dims, drop_prob))
            ch //= 2
        self.up_transpose.append(TransposeConvBlock(ch * 2, ch, dims))
        self.up.append(nn.Sequential(ConvBlock(ch * 2, ch, dims, drop_prob), _nd("Conv", dims)(ch, out_chans, 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.down[0][0].weight  # the first convolution
        if x.dtype != w.dtype and not torch.is_autocast_enabled(x.device.type):
            raise TypeError(
                f"UNet: expected a {w.dtype} input (the model's precision), got {x.dtype} {tuple(x.shape)}; "
                f"use x.to({w.dtype}) (or model.to({x.dtype}))"
            )
        pool = F.avg_pool2d if self.dims == 2 else F.avg_pool3d
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
            x = pool(x, 2)
        x = self.bottleneck(x)
        for transpose, conv in zip(self.up_transpose, self.up):
            skip = skips.pop()
            x = transpose(x)
            pad = []
            for d in range(1, self.dims + 1):  # F.pad order: last dim first
                pad += [0, skip.shape[-d] - x.shape[-d]]
            if any(pad):
                x = F.pad(x, pad, mode="reflect")
            x = conv(torch.cat([x, skip], dim=1))
        return x


class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator (Isola et al. 2017): a grid of real/fake logits, one per patch.

    conv4 stride 2 (no norm) -> ``n_layers - 1`` x conv4 stride 2 with norm -> conv4 stride 1
    with norm -> conv4 stride 1 to one channel; LeakyReLU 0.2. With 3 layers each logit sees a
    70x70 (or 70^3) patch. ``norm``: 'instance', 'batch' or 'none'.
    """

    def __init__(self, in_chans: int, ndf: int = 64, n_layers: int = 3, dims: int = 2, norm: str = "instance"):
        super().__init__()
        conv = _nd("Conv", dims)
        if norm not in ("instance", "batch", "none"):
            raise ValueError(f"PatchDiscriminator: expected norm 'instance', 'batch' or 'none', got {norm!r}")
        make_norm = {"instance": _nd("InstanceNorm", dims), "batch": _nd("BatchNorm", dims), "none": lambda c: nn.Identity()}[
            norm
        ]
        layers = [conv(in_chans, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        ch = ndf
        for n in range(1, n_layers + 1):
            out = ndf * min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [conv(ch, out, 4, stride=stride, padding=1), make_norm(out), nn.LeakyReLU(0.2)]
            ch = out
        layers.append(conv(ch, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


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
