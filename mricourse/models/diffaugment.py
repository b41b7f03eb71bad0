"""Differentiable augmentation (DiffAugment) for training a GAN on few images.

Reference: S. Zhao, Z. Liu, J. Lin, J.-Y. Zhu, S. Han, "Differentiable augmentation for
data-efficient GAN training", NeurIPS 33 (2020).

A discriminator trained on a few hundred images memorises them, and its gradients stop telling
the generator anything about the data. DiffAugment changes every image the discriminator sees, real
or generated, in its own update and in the generator's, with the same random, differentiable
operations: the discriminator never sees the same image twice, the augmentations are no clue to
"real", and the generator learns through them (so it is not taught to draw them). The operations
here are the paper's for single-channel images: "color" (brightness, contrast; saturation needs
colour channels), "translation" and "cutout", with the background value shifted or cut in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["diff_augment", "augment_ops", "AUGMENTS"]


def _brightness(x: torch.Tensor, fill: float) -> torch.Tensor:
    """Add one random offset in [-0.5, 0.5) per image."""
    return x + (torch.rand(x.shape[0], 1, 1, 1) - 0.5).to(x)


def _contrast(x: torch.Tensor, fill: float) -> torch.Tensor:
    """Scale each image about its mean by a random factor in [0.5, 1.5)."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(x.shape[0], 1, 1, 1) + 0.5).to(x) + mean


def _translation(x: torch.Tensor, fill: float, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by a random whole number of pixels, up to ``ratio`` of its size in each
    direction; the pixels shifted in take the value ``fill`` (the background)."""
    B, _, H, W = x.shape
    sh, sw = int(H * ratio + 0.5), int(W * ratio + 0.5)
    ty = torch.randint(-sh, sh + 1, (B, 1, 1)).to(x.device)
    tx = torch.randint(-sw, sw + 1, (B, 1, 1)).to(x.device)
    rows = (torch.arange(H, device=x.device)[None, :, None] + ty + 1).clamp(0, H + 1)  # (B, H, 1) into the padded image
    cols = (torch.arange(W, device=x.device)[None, None, :] + tx + 1).clamp(0, W + 1)  # (B, 1, W)
    padded = F.pad(x, (1, 1, 1, 1), value=fill)  # (B, C, H + 2, W + 2): out-of-range reads land on the fill
    batch = torch.arange(B, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)  # (B, H, W, C) -> (B, C, H, W)


def _cutout(x: torch.Tensor, fill: float, ratio: float = 0.5) -> torch.Tensor:
    """Set a square of ``ratio`` of the image's size, at a random centre per image, to ``fill``."""
    B, _, H, W = x.shape
    ch, cw = int(H * ratio + 0.5), int(W * ratio + 0.5)
    cy = torch.randint(0, H + (1 - ch % 2), (B, 1, 1)).to(x.device)
    cx = torch.randint(0, W + (1 - cw % 2), (B, 1, 1)).to(x.device)
    rows = torch.arange(H, device=x.device)[None, :, None] - cy + ch // 2  # (B, H, 1)
    cols = torch.arange(W, device=x.device)[None, None, :] - cx + cw // 2  # (B, 1, W)
    cut = ((rows >= 0) & (rows < ch) & (cols >= 0) & (cols < cw))[:, None]  # (B, 1, H, W)
    return torch.where(cut, torch.full_like(x, fill), x)


#: DiffAugment's operations for single-channel images: "color" is brightness then contrast
#: (saturation needs colour channels)
AUGMENTS = {
    "brightness": [_brightness],
    "contrast": [_contrast],
    "color": [_brightness, _contrast],
    "translation": [_translation],
    "cutout": [_cutout],
}


def augment_ops(policy: str) -> list[str]:
    """The names in a policy string "color,translation,cutout" (empty: none)."""
    return [p.strip() for p in policy.split(",") if p.strip()]


def diff_augment(x: torch.Tensor, policy: str = "color,translation,cutout", fill: float = -1.0) -> torch.Tensor:
    """Differentiable augmentation (DiffAugment; Zhao et al. 2020) of images (B, C, H, W).

    Each operation of ``policy``, in order, with its own random parameters for every image (drawn
    on the CPU from torch's global generator): brightness (add U(-0.5, 0.5)), contrast (scale about
    the image mean by U(0.5, 1.5)), translation (up to 1/8 of the size, ``fill`` shifted in),
    cutout (a square of half the size set to ``fill``). Every operation is differentiable in ``x``,
    so G learns through it. A GAN applies it to every image D sees, real and generated, in both
    players' steps: D then cannot memorise a small training set (it never sees the same image
    twice), and G is not taught to draw the augmentations, because they are applied to its
    output too. ``fill``: the background value, -1 in the GAN's range.
    """
    for name in augment_ops(policy):
        if name not in AUGMENTS:
            raise ValueError(f"diff_augment: unknown operation {name!r}; expected some of {sorted(AUGMENTS)}")
        for op in AUGMENTS[name]:
            x = op(x, fill)
    return x.contiguous()
