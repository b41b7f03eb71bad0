"""Super-resolution: a multi-scale fusion CNN (2D) and a 3D SRGAN.

References: Liu et al. 2018, "Fusing multi-scale information in convolution network for MR image
super-resolution reconstruction" (BioMedical Engineering OnLine); Sanchez and Vilaplana 2018,
"Brain MRI super-resolution using 3D generative adversarial networks" (MIDL).

- ``MultiScaleFusionSR`` (Liu): interpolate the low-resolution image first, then learn the
  missing detail: ``hr = up + tail(units(head(up)))`` with ``up = bicubic(lr)``; each unit runs
  parallel 3x3 / 5x5 / 7x7 convolutions, concatenates them and fuses them with a 1x1 conv.
- ``SRGANGenerator`` / ``SRGANDiscriminator`` (Sanchez): the generator works at low resolution
  (residual blocks conv-BN-LReLU-conv-BN with a long skip) and upsamples at the end by a
  sub-pixel convolution, initialised so that it starts as nearest-neighbour upsampling (ICNR,
  Aitken et al. 2017): no checkerboard at the start. The discriminator: strided 3^3 convolutions,
  global average pooling, one linear layer. Generator loss: MSE + gradient difference + 0.1 x
  adversarial; the alternating update is written out in :func:`srgan_step`. The optimisers, the
  learning rates of the two phases (content loss, then adversarial) and the data belong to the
  training recipes (``mc.recipe("msfusion")``, ``mc.recipe("srgan")``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..degradation import factors
from ..layers import nd
from ..losses import discriminator_loss, generator_loss, gradient_difference_loss
from ..profiles import Presets

__all__ = [
    "pixel_shuffle",
    "pixel_unshuffle",
    "icnr_",
    "Upsampler",
    "MultiScaleFusionConfig",
    "MultiScaleFusionSR",
    "SRGANConfig",
    "SRGANGenerator",
    "SRGANDiscriminator",
    "srgan_step",
]


# ---------------------------------------------------------------------------------- sub-pixel


def pixel_shuffle(x: torch.Tensor, factor) -> torch.Tensor:
    """Sub-pixel shuffle (Shi et al. 2016), 2D or 3D, per-axis factors r:
    (B, C * prod(r), *spatial) -> (B, C, *(spatial * r)). Channel ``c * prod(r) + offset`` fills
    sub-voxel ``offset`` (row-major over the r grid) of output channel ``c``; in 2D with equal
    factors this is ``torch.nn.functional.pixel_shuffle``."""
    dims = x.ndim - 2
    r = factors(factor, dims)
    b, cr, *sp = x.shape
    if cr % math.prod(r):
        raise ValueError(f"pixel_shuffle: channels {cr} are not a multiple of prod(factor) = {math.prod(r)}")
    x = x.reshape(b, cr // math.prod(r), *r, *sp)  # (B, C, r1..rd, s1..sd)
    perm = [0, 1] + [i for d in range(dims) for i in (2 + dims + d, 2 + d)]
    x = x.permute(perm)  # (B, C, s1, r1, s2, r2, ...)
    return x.reshape(b, cr // math.prod(r), *(s * f for s, f in zip(sp, r)))


def pixel_unshuffle(x: torch.Tensor, factor) -> torch.Tensor:
    """The inverse of :func:`pixel_shuffle`: (B, C, *(spatial * r)) -> (B, C * prod(r), *spatial)."""
    dims = x.ndim - 2
    r = factors(factor, dims)
    b, c, *sp = x.shape
    if any(s % f for s, f in zip(sp, r)):
        raise ValueError(f"pixel_unshuffle: spatial size {tuple(sp)} is not a multiple of factor {r}")
    x = x.reshape(b, c, *[v for s, f in zip(sp, r) for v in (s // f, f)])  # (B, C, s1, r1, s2, r2, ...)
    perm = [0, 1] + [3 + 2 * d for d in range(dims)] + [2 + 2 * d for d in range(dims)]
    return x.permute(perm).reshape(b, c * math.prod(r), *(s // f for s, f in zip(sp, r)))


@torch.no_grad()
def icnr_(conv: nn.Module, factor) -> nn.Module:
    """Initialise the conv before a :func:`pixel_shuffle` so the pair starts as conv followed by
    nearest-neighbour upsampling: the ``prod(r)`` output channels that fill one output channel's
    sub-voxels get identical kernels (and biases)."""
    dims = conv.weight.ndim - 2
    n = math.prod(factors(factor, dims))
    base = torch.empty(conv.out_channels // n, *conv.weight.shape[1:])
    nn.init.kaiming_normal_(base, a=0.2)
    conv.weight.copy_(base.repeat_interleave(n, dim=0))
    if conv.bias is not None:
        conv.bias.copy_(conv.bias[::n].repeat_interleave(n))
    return conv


class Upsampler(nn.Module):
    """Learned upsampling by ``factor``: sub-pixel conv (``mode`` 'icnr' or 'random' init) or a
    transposed convolution (kernel r + 1, stride r: overlaps unevenly, the checkerboard's cause)."""

    def __init__(self, chans: int, factor, dims: int = 3, mode: str = "icnr"):
        super().__init__()
        self.r, self.mode = factors(factor, dims), mode
        if mode in ("icnr", "random"):
            self.conv = nd("Conv", dims)(chans, chans * math.prod(self.r), 3, padding=1)
            if mode == "icnr":
                icnr_(self.conv, self.r)
        elif mode == "transposed":
            convt = nn.ConvTranspose2d if dims == 2 else nn.ConvTranspose3d
            k = tuple(f + 1 if f > 1 else 3 for f in self.r)
            self.conv = convt(chans, chans, k, stride=self.r, padding=1, output_padding=tuple(int(f > 1) for f in self.r))
        else:
            raise ValueError(f"Upsampler: expected mode 'icnr', 'random' or 'transposed', got {mode!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y if self.mode == "transposed" else pixel_shuffle(y, self.r)


# ------------------------------------------------------------------ multi-scale fusion (Liu 2018)


@dataclass
class MultiScaleFusionConfig(Presets):
    """Liu et al.'s multi-scale fusion CNN. ``factor``: int or per-axis tuple."""

    factor: int | tuple[int, ...] = 2
    chans: int = 64
    num_units: int = 4
    kernel_sizes: tuple[int, ...] = (3, 5, 7)
    dims: int = 2

    #: the profile presets (:class:`mricourse.profiles.Presets`): the fields each profile sets over the defaults
    PRESETS = {
        "smoke": {"chans": 8, "num_units": 1},
        "cpu": {"chans": 16, "num_units": 2},
        "gpu": {"chans": 64, "num_units": 4},  # close to the paper's largest setting
    }

    @classmethod
    def paper(cls, factor=2):
        """Close to the paper's largest setting (64 filters per path, 4 units): the ``gpu`` preset."""
        return cls.gpu(factor=factor)


class MultiScaleUnit(nn.Module):
    """Parallel k x k convolutions (k in ``kernel_sizes``), ReLU, concatenated, fused by a 1x1
    conv, added to the input: ``x + fuse(cat_k relu(conv_k(x)))``."""

    def __init__(self, chans: int, kernel_sizes=(3, 5, 7), dims: int = 2):
        super().__init__()
        conv = nd("Conv", dims)
        self.paths = nn.ModuleList([conv(chans, chans, k, padding=k // 2) for k in kernel_sizes])
        self.fuse = conv(chans * len(kernel_sizes), chans, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([F.relu(path(x)) for path in self.paths], dim=1)  # (B, chans * paths, *spatial)
        return x + self.fuse(y)


class MultiScaleFusionSR(nn.Module):
    """(B, 1, *spatial) low resolution -> (B, 1, *(spatial * factor)):
    ``hr = up + tail(units(head(up)))``, ``up`` = bicubic (2D) / trilinear (3D) interpolation."""

    def __init__(self, cfg: MultiScaleFusionConfig):
        super().__init__()
        self.cfg = cfg
        conv = nd("Conv", cfg.dims)
        self.head = nn.Sequential(conv(1, cfg.chans, 3, padding=1), nn.ReLU())
        self.units = nn.Sequential(*[MultiScaleUnit(cfg.chans, cfg.kernel_sizes, cfg.dims) for _ in range(cfg.num_units)])
        self.tail = conv(cfg.chans, 1, 3, padding=1)
        nn.init.zeros_(self.tail.weight)  # the untrained network is exactly the interpolation
        nn.init.zeros_(self.tail.bias)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        if lr.ndim != self.cfg.dims + 2 or lr.shape[1] != 1:
            raise ValueError(
                f"MultiScaleFusionSR: expected (B, 1, *spatial) with {self.cfg.dims} spatial dims, got {tuple(lr.shape)}"
            )
        r = factors(self.cfg.factor, self.cfg.dims)
        size = [s * f for s, f in zip(lr.shape[2:], r)]
        up = F.interpolate(lr, size=size, mode="bicubic" if self.cfg.dims == 2 else "trilinear", align_corners=False)
        return up + self.tail(self.units(self.head(up)))  # global residual: learn only the detail


# ------------------------------------------------------------------------- 3D SRGAN (Sanchez 2018)


@dataclass
class SRGANConfig(Presets):
    """Sanchez and Vilaplana's 3D SRGAN (``dims=2`` gives the same networks in 2D).

    ``upsample``: 'icnr' (sub-pixel, nearest-neighbour init), 'random' (sub-pixel, default init)
    or 'transposed'. ``norm``: batch norm in the residual blocks (the paper). ``interp_skip``: add
    the trilinear interpolation of the input to the output, so that the generator learns a
    residual, starting from zero (not in the paper; it makes the CPU preset train in minutes).
    """

    factor: int | tuple[int, ...] = 2
    chans: int = 64
    num_blocks: int = 6
    norm: bool = True
    upsample: str = "icnr"
    interp_skip: bool = False
    disc_chans: int = 32
    disc_layers: int = 4
    grad_diff_weight: float = 1.0
    adv_weight: float = 0.1
    lr: float = 1e-4
    dims: int = 3

    #: the profile presets (:class:`mricourse.profiles.Presets`): the fields each profile sets over the defaults
    PRESETS = {
        "smoke": {"chans": 4, "num_blocks": 1, "norm": False, "interp_skip": True, "disc_chans": 4, "disc_layers": 2, "lr": 1e-3},
        "cpu": {"chans": 16, "num_blocks": 4, "norm": False, "interp_skip": True, "disc_chans": 8, "disc_layers": 3, "lr": 1e-3},
        "gpu": {"chans": 64, "num_blocks": 6},  # the paper's design
    }

    @classmethod
    def paper(cls, factor=2):
        """The paper's design (64 filters, 6 residual blocks): the ``gpu`` preset."""
        return cls.gpu(factor=factor)


class ResidualBlock(nn.Module):
    """conv3-BN-LReLU-conv3-BN plus the identity (SRGAN's residual block)."""

    def __init__(self, chans: int, dims: int = 3, norm: bool = True):
        super().__init__()
        conv = nd("Conv", dims)
        bn = (nn.BatchNorm2d if dims == 2 else nn.BatchNorm3d) if norm else lambda c: nn.Identity()
        self.body = nn.Sequential(
            conv(chans, chans, 3, padding=1), bn(chans), nn.LeakyReLU(0.2), conv(chans, chans, 3, padding=1), bn(chans)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SRGANGenerator(nn.Module):
    """(B, 1, *spatial) -> (B, 1, *(spatial * factor)): features at low resolution, a long skip,
    learned upsampling at the end (sub-pixel by default), a last conv to one channel."""

    def __init__(self, cfg: SRGANConfig):
        super().__init__()
        self.cfg = cfg
        conv, c = nd("Conv", cfg.dims), cfg.chans
        bn = (nn.BatchNorm2d if cfg.dims == 2 else nn.BatchNorm3d) if cfg.norm else lambda c: nn.Identity()
        self.head = nn.Sequential(conv(1, c, 3, padding=1), nn.LeakyReLU(0.2))
        self.blocks = nn.Sequential(
            *[ResidualBlock(c, cfg.dims, cfg.norm) for _ in range(cfg.num_blocks)], conv(c, c, 3, padding=1), bn(c)
        )
        self.up = nn.Sequential(Upsampler(c, cfg.factor, cfg.dims, cfg.upsample), nn.LeakyReLU(0.2))
        self.tail = conv(c, 1, 3, padding=1)
        if cfg.interp_skip:  # start as trilinear interpolation: the network learns only a correction
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        if lr.ndim != self.cfg.dims + 2 or lr.shape[1] != 1:
            raise ValueError(
                f"SRGANGenerator: expected (B, 1, *spatial) with {self.cfg.dims} spatial dims, got {tuple(lr.shape)}"
            )
        feat = self.head(lr)
        hr = self.tail(self.up(feat + self.blocks(feat)))  # long skip around the residual blocks
        if self.cfg.interp_skip:
            size = [s * f for s, f in zip(lr.shape[2:], factors(self.cfg.factor, self.cfg.dims))]
            hr = hr + F.interpolate(lr, size=size, mode="bilinear" if self.cfg.dims == 2 else "trilinear", align_corners=False)
        return hr


class SRGANDiscriminator(nn.Module):
    """(B, 1, *spatial) -> (B,) real/fake logits: conv3 + LReLU, then ``disc_layers`` x (conv3
    stride 2, BN, LReLU) doubling the channels, global average pooling, a linear layer."""

    def __init__(self, cfg: SRGANConfig):
        super().__init__()
        conv, c = nd("Conv", cfg.dims), cfg.disc_chans
        bn = nn.BatchNorm2d if cfg.dims == 2 else nn.BatchNorm3d
        layers = [conv(1, c, 3, padding=1), nn.LeakyReLU(0.2)]
        for _ in range(cfg.disc_layers):
            layers += [conv(c, 2 * c, 3, stride=2, padding=1), bn(2 * c), nn.LeakyReLU(0.2)]
            c *= 2
        self.features = nn.Sequential(*layers)
        self.classify = nn.Linear(c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x).flatten(2).mean(-1)  # global average pooling: (B, C)
        return self.classify(h).squeeze(1)


def srgan_step(modules: dict, optimizers: dict, batch, *, cfg: SRGANConfig, adversarial: bool = True) -> dict[str, float]:
    """The update step on an ``(lr, hr)`` batch of patches, the GAN update written out:

    1. discriminator ``modules["D"]``: ``BCE(D(hr), 1) + BCE(D(G(lr)), 0)`` (the fake detached),
       one step of ``optimizers["opt_d"]``;
    2. generator ``modules["G"]``: ``MSE(G(lr), hr) + grad_diff_weight GradDiff + adv_weight BCE(D(G(lr)), 1)``
       (GradDiff: the gradient difference loss),
       one step of ``optimizers["opt_g"]``.

    With ``adversarial=False`` (the content phase) or ``cfg.adv_weight == 0`` only the content loss
    (MSE + gradient difference) trains the generator and the discriminator is not used. Returns the losses.
    """
    gen, opt_g = modules["G"], optimizers["opt_g"]
    adversarial = adversarial and cfg.adv_weight > 0
    device = next(gen.parameters()).device
    lr, hr = (t.to(device) for t in batch)
    gen.train()
    fake = gen(lr)
    out = {}
    if adversarial:  # 1. discriminator update
        disc, opt_d = modules["D"], optimizers["opt_d"]
        disc.train()
        real_logits, fake_logits = disc(hr), disc(fake.detach())
        d_loss = discriminator_loss(real_logits, fake_logits)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        out["d_loss"] = d_loss.item()
    # 2. generator update
    mse = F.mse_loss(fake, hr)
    grad_diff = gradient_difference_loss(fake, hr)
    g_loss = mse + cfg.grad_diff_weight * grad_diff
    if adversarial:
        logits = modules["D"](fake)
        adv = generator_loss(logits)
        g_loss = g_loss + cfg.adv_weight * adv
        out["adv"] = adv.item()
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    opt_g.step()
    return {"mse": mse.item(), "grad_diff": grad_diff.item(), **out}
