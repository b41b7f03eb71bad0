"""Building blocks shared by several models, N-dimensional (``dims`` = 2 or 3).

- ``ConvBlock`` / ``UNet``: the fastMRI U-Net (conv3 without bias, instance norm, LeakyReLU 0.2;
  average-pool down, transposed-conv up, skip concatenation).
- ``PatchDiscriminator``: the pix2pix/CycleGAN PatchGAN (70x70 receptive field with 3 layers).

Warping (``SpatialTransformer``, ``VecInt``, ``warp``) lives in :mod:`mricourse.spatial`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ConvBlock", "UNet", "PatchDiscriminator", "nd"]


def nd(name: str, dims: int):
    """The ``dims``-D version of a layer: ``nd("Conv", 3)`` is ``nn.Conv3d`` (2 or 3 only)."""
    if dims not in (2, 3):
        raise ValueError(f"expected dims = 2 or 3, got {dims!r}")
    return getattr(nn, f"{name}{dims}d")


class ConvBlock(nn.Sequential):
    """2 x (conv3 without bias, instance norm, LeakyReLU 0.2, dropout)."""

    def __init__(self, in_chans: int, out_chans: int, dims: int = 2, drop_prob: float = 0.0):
        conv, norm, drop = nd("Conv", dims), nd("InstanceNorm", dims), nd("Dropout", dims)
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
            nd("ConvTranspose", dims)(in_chans, out_chans, 2, stride=2, bias=False),
            nd("InstanceNorm", dims)(out_chans),
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
        self.up.append(nn.Sequential(ConvBlock(ch * 2, ch, dims, drop_prob), nd("Conv", dims)(ch, out_chans, 1)))

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
        conv = nd("Conv", dims)
        if norm not in ("instance", "batch", "none"):
            raise ValueError(f"PatchDiscriminator: expected norm 'instance', 'batch' or 'none', got {norm!r}")
        make_norm = {"instance": nd("InstanceNorm", dims), "batch": nd("BatchNorm", dims), "none": lambda c: nn.Identity()}[norm]
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
