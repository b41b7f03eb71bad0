"""VoxelMorph: a CNN that predicts a deformation field from a pair of images, 2D or 3D.

Reference: G. Balakrishnan, A. Zhao, M. R. Sabuncu, J. Guttag, A. V. Dalca, "VoxelMorph: A
Learning Framework for Deformable Medical Image Registration", IEEE TMI 38(8):1788-1800, 2019.

A U-Net ``g_theta(m, f) = u`` maps the moving image ``m`` and the fixed image ``f`` to a
displacement field ``u`` (voxels); a spatial transformer warps ``m`` by ``phi = id + u``; training
minimises, without any ground-truth deformation,

    L(f, m, phi) = Sim(f, m o phi) + lambda * mean ||grad u||^2  [+ gamma * Dice loss(s_f, s_m o phi)]

with Sim = MSE or minus the local NCC (9^n windows). The optional Dice term uses label maps of the
*training* pairs only ("auxiliary data" in the paper); inference needs images only. The
diffeomorphic variant predicts a stationary velocity ``v`` at half resolution and integrates it by
scaling and squaring, ``phi = exp(v)``, then resizes ``u`` (rescaling the vectors) to full size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import nd
from ..losses import dice_loss, gradient_loss, mse, ncc_loss, one_hot
from ..profiles import Presets
from ..spatial import SpatialTransformer, VecInt, resize_flow, warp

__all__ = ["VoxelMorphConfig", "VoxelMorphUNet", "VoxelMorph", "VxmOutput", "voxelmorph_loss", "voxelmorph_step"]


_CPU = {"dims": 2, "similarity": "mse", "lam": 0.03, "dice_weight": 1.0, "flow_downsize": 2, "lr": 3e-3}


@dataclass
class VoxelMorphConfig(Presets):
    """VoxelMorph settings.

    Attributes:
        dims: 2 (slices) or 3 (volumes).
        enc_chans: encoder widths, one stride-2 conv3 per level (paper: 16-32-32-32).
        dec_chans: decoder widths: one conv3 per level (then upsample + skip), the rest at full
            resolution (paper, VoxelMorph-2: 32-32-32-32-32-16-16).
        diffeomorphic: integrate a velocity field by scaling and squaring (Dalca et al. 2019).
        int_steps: scaling-and-squaring steps (7: ``v / 128`` composed 7 times).
        int_downsize: the velocity lives at ``1 / int_downsize`` resolution.
        flow_downsize: 1 (paper) or 2: stop the decoder one level early and predict the field at
            half resolution (its remaining convolutions run on 4x fewer pixels), then resize it.
        similarity: "mse" (lambda 0.01 in the paper) or "ncc" (lambda 1).
        ncc_win: NCC window size per axis.
        lam: weight of the smoothness term ``mean ||grad u||^2``.
        dice_weight: gamma, weight of the Dice term on warped training labels (0: unsupervised).
        num_labels: label classes including background, for the Dice term.
        lr: Adam learning rate (paper: 1e-4).
    """

    dims: int = 3
    enc_chans: tuple[int, ...] = (16, 32, 32, 32)
    dec_chans: tuple[int, ...] = (32, 32, 32, 32, 32, 16, 16)
    diffeomorphic: bool = False
    int_steps: int = 7
    int_downsize: int = 2
    flow_downsize: int = 1
    similarity: str = "ncc"
    ncc_win: int = 9
    lam: float = 1.0
    dice_weight: float = 0.0
    num_labels: int = 4
    lr: float = 1e-4

    #: the profile presets (:class:`mricourse.profiles.Presets`): the fields each profile sets over the defaults
    PRESETS = {
        # 2D, the paper's widths (0.1M parameters), MSE, Dice-supervised (gamma 1, lambda 0.03: the Dice
        # term dominates, the smoothness keeps folds away), the field at half resolution and a faster
        # learning rate: about 0.9 Dice after 2000 steps of 4 pairs at 128 x 128
        "cpu": _CPU,
        "smoke": {**_CPU, "enc_chans": (8, 16, 16, 16), "dec_chans": (16, 16, 16, 16, 16, 8, 8)},  # half the widths
        "gpu": {**_CPU, "flow_downsize": 1},  # the cpu losses with the paper's full-resolution field
    }

    def __post_init__(self):
        if self.dims not in (2, 3):
            raise ValueError(f"VoxelMorphConfig: expected dims 2 or 3, got {self.dims!r}")
        if self.similarity not in ("mse", "ncc"):
            raise ValueError(f"VoxelMorphConfig: expected similarity 'mse' or 'ncc', got {self.similarity!r}")
        if self.flow_downsize not in (1, 2, 4):
            raise ValueError(f"VoxelMorphConfig: expected flow_downsize 1, 2 or 4, got {self.flow_downsize!r}")
        if len(self.dec_chans) < len(self.enc_chans):
            raise ValueError(f"VoxelMorphConfig: need at least {len(self.enc_chans)} decoder widths, got {self.dec_chans}")
        self.enc_chans, self.dec_chans = tuple(self.enc_chans), tuple(self.dec_chans)

    @classmethod
    def paper(cls, dims: int = 3, similarity: str = "ncc", **kw) -> VoxelMorphConfig:
        """The paper's VoxelMorph-2 (lambda 1 for NCC, 0.01 for MSE; Adam 1e-4)."""
        return cls(dims=dims, similarity=similarity, lam=1.0 if similarity == "ncc" else 0.01, **kw)


def _conv_block(in_chans: int, out_chans: int, dims: int, stride: int = 1) -> nn.Sequential:
    """conv3 (stride 1 or 2) + LeakyReLU 0.2, the only layer VoxelMorph uses."""
    return nn.Sequential(nd("Conv", dims)(in_chans, out_chans, 3, stride=stride, padding=1), nn.LeakyReLU(0.2))


class VoxelMorphUNet(nn.Module):
    """The VoxelMorph U-Net: strided-conv encoder, decoder with upsampling and skips.

    (B, in_chans, *spatial) -> (B, dec_chans[-1], *spatial / 2^(levels - up_levels)): the first
    ``up_levels`` decoder convs (default: one per encoder level) are each followed by a x2
    upsampling and the skip; the rest run at the final resolution. Upsampling is
    nearest-neighbour to the skip's size, so odd sizes work.
    """

    def __init__(self, in_chans: int, enc_chans, dec_chans, dims: int = 2, up_levels: int | None = None):
        super().__init__()
        self.encoder = nn.ModuleList()
        skip_chans, ch = [in_chans], in_chans
        for c in enc_chans:
            self.encoder.append(_conv_block(ch, c, dims, stride=2))
            skip_chans.append(c)
            ch = c
        skip_chans.pop()  # the deepest level has no skip
        up = len(enc_chans) if up_levels is None else up_levels
        self.decoder = nn.ModuleList()
        for c in dec_chans[:up]:
            self.decoder.append(_conv_block(ch, c, dims))
            ch = c + skip_chans.pop()
        rest = dec_chans[up:]
        self.remaining = nn.Sequential(*[_conv_block(a, b, dims) for a, b in zip((ch, *rest), rest)])
        self.out_chans = rest[-1] if rest else ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for layer in self.encoder:
            skips.append(x)
            x = layer(x)  # half the size per level
        for layer in self.decoder:
            skip = skips.pop()
            x = F.interpolate(layer(x), size=skip.shape[2:], mode="nearest")
            x = torch.cat([x, skip], dim=1)  # (B, c + skip chans, *skip size)
        return self.remaining(x)


class VxmOutput(NamedTuple):
    """``warped`` = moving o phi (B, C, *spatial); ``flow`` = u (B, dims, *spatial) in voxels;
    ``field`` = the field the smoothness term acts on (``flow``, or the half-size velocity)."""

    warped: torch.Tensor
    flow: torch.Tensor
    field: torch.Tensor


class VoxelMorph(nn.Module):
    """VoxelMorph registration network for images of a fixed ``size`` ((H, W) or (D, H, W)).

    ``forward(moving, fixed)`` with images (B, 1, *size) returns a :class:`VxmOutput`.
    """

    def __init__(self, cfg: VoxelMorphConfig, size):
        super().__init__()
        size = tuple(int(s) for s in size)
        if len(size) != cfg.dims:
            raise ValueError(f"VoxelMorph: expected a {cfg.dims}D size, got {size}")
        self.cfg, self.size = cfg, size
        up_levels = len(cfg.enc_chans) - {1: 0, 2: 1, 4: 2}[cfg.flow_downsize]
        self.unet = VoxelMorphUNet(2, cfg.enc_chans, cfg.dec_chans, cfg.dims, up_levels)
        self.flow = nd("Conv", cfg.dims)(self.unet.out_chans, cfg.dims, 3, padding=1)
        nn.init.normal_(self.flow.weight, std=1e-5)  # start near the identity
        nn.init.zeros_(self.flow.bias)
        self.transformer = SpatialTransformer(size)
        if cfg.diffeomorphic:
            self.half = tuple(max(2, -(-s // cfg.int_downsize)) for s in size)  # ceil, as a stride-2 conv
            self.integrate = VecInt(self.half, cfg.int_steps)

    def forward(self, moving: torch.Tensor, fixed: torch.Tensor) -> VxmOutput:
        if moving.shape != fixed.shape or tuple(moving.shape[2:]) != self.size or moving.shape[1] != 1:
            raise ValueError(
                f"VoxelMorph: expected moving and fixed images (B, 1, {', '.join(map(str, self.size))}), "
                f"got {tuple(moving.shape)} and {tuple(fixed.shape)}"
            )
        field = self.flow(self.unet(torch.cat([moving, fixed], dim=1)))  # (B, dims, *size / flow_downsize)
        if self.cfg.diffeomorphic:
            if tuple(field.shape[2:]) != self.half:
                field = resize_flow(field, self.half)  # velocity v at 1 / int_downsize resolution
            flow = resize_flow(self.integrate(field), self.size)  # u = exp(v) - id, full size
        else:
            flow = field if tuple(field.shape[2:]) == self.size else resize_flow(field, self.size)
        return VxmOutput(self.transformer(moving, flow), flow, field)

    def warp_labels(self, labels: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        """Warp integer label maps (B, 1, *size) by ``flow`` with nearest-neighbour sampling."""
        return self.transformer(labels.float(), flow, mode="nearest").round().to(labels.dtype)


def voxelmorph_loss(out: VxmOutput, fixed: torch.Tensor, cfg: VoxelMorphConfig, moving_labels=None, fixed_labels=None):
    """The training loss and its parts: ``Sim + lambda * Grad [+ gamma * Dice]``.

    The Dice term warps the one-hot moving labels bilinearly (so it is differentiable) and needs
    both label maps (B, 1, *spatial); it is skipped when ``cfg.dice_weight`` is 0.
    """
    sim = mse(fixed, out.warped) if cfg.similarity == "mse" else ncc_loss(fixed, out.warped, cfg.ncc_win)
    smooth = gradient_loss(out.field)
    total = sim + cfg.lam * smooth
    parts = {"sim": sim.item(), "smooth": smooth.item()}
    if cfg.dice_weight > 0:
        if moving_labels is None or fixed_labels is None:
            raise ValueError("voxelmorph_loss: dice_weight > 0 needs moving_labels and fixed_labels")
        warped_seg = warp(one_hot(moving_labels, cfg.num_labels), out.flow)  # (B, K, *spatial)
        dl = dice_loss(warped_seg, one_hot(fixed_labels, cfg.num_labels))
        total = total + cfg.dice_weight * dl
        parts["dice"] = dl.item()
    return total, parts


def voxelmorph_step(modules: dict, optimizers: dict, batch: dict, *, cfg: VoxelMorphConfig) -> dict[str, float]:
    """The update step: one step of ``optimizers["opt"]`` on :func:`voxelmorph_loss` of
    ``modules["model"]`` (losses and flags from ``cfg``).

    Batches are dicts (:class:`mricourse.RegistrationPairs`) with ``moving`` and ``fixed``
    images (B, 1, *size) and, for the Dice term, ``moving_labels`` and ``fixed_labels``
    (B, 1, *size) integer maps. Returns the loss and its parts (``sim``, ``smooth``, ``dice``).
    """
    model, optimizer = modules["model"], optimizers["opt"]
    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    model.train()
    out = model(batch["moving"], batch["fixed"])
    loss, parts = voxelmorph_loss(out, batch["fixed"], cfg, batch.get("moving_labels"), batch.get("fixed_labels"))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return {"loss": loss.item(), **parts}
