"""Vox2Vox: a 3D pix2pix GAN for brain-tumour segmentation.

Reference: Cirillo, Abramian and Eklund, "Vox2Vox: 3D-GAN for Brain Tumour Segmentation",
BrainLes 2020 (LNCS 12658, 2021).

The generator is a 3D U-Net mapping 4 contrasts (T1, T1ce, T2, FLAIR) to a softmax over 4 classes
(background and the BraTS labels 1, 2, 4); the discriminator is a 3D PatchGAN on the pair
(image, segmentation). The generator minimises

    L_G = alpha * L_seg(G(x), y) + L_lsgan(D(x, G(x)), 1),     alpha = 5,

with the segmentation loss ``L_seg`` (:func:`segmentation_loss`): the paper's generalised Dice
loss (Sudre et al. 2017, ``"gdl"``) or, the default, the soft Dice loss of the tumour classes plus
the voxel-wise cross-entropy (``"dice_ce"``, the pairing of nnU-Net, Isensee et al. 2021); and the
discriminator ``0.5 (L_lsgan(D(x, y), 1) + L_lsgan(D(x, G(x)), 0))``. The networks are plain modules
(:func:`vox2vox_networks`); the alternating update is :func:`vox2vox_step`; the optimisers and the
data belong to the training recipes (``mc.recipe("vox2vox")``, and ``mc.recipe("unet3d_brats")``
for the same generator trained with the segmentation loss alone).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.tumour import classes_to_labels
from ..inference import predict
from ..layers import PatchDiscriminator
from ..losses import dice_loss, generalised_dice_loss, lsgan_loss
from ..profiles import Presets

__all__ = [
    "Vox2VoxConfig",
    "Vox2VoxGenerator",
    "vox2vox_networks",
    "vox2vox_step",
    "segmentation_loss",
    "segment",
    "largest_component",
]


@dataclass
class Vox2VoxConfig(Presets):
    """``paper()``: 128^3 crops, 64 base filters, 4 down/up levels, 4 bottleneck blocks.

    ``seg_loss``: ``"dice_ce"`` (soft Dice of the tumour classes + cross-entropy) or ``"gdl"``
    (the paper's generalised Dice loss), for the GAN's generator and the baseline alike; ``ema``:
    the decay of the generator's weight average (0: none)."""

    in_chans: int = 4
    num_classes: int = 4
    base: int = 64
    depth: int = 4
    bottleneck_blocks: int = 4
    dropout: float = 0.2
    ndf: int = 64
    d_layers: int = 3
    alpha: float = 5.0
    lr: float = 2e-4
    beta1: float = 0.5
    crop: int = 128
    seg_loss: str = "dice_ce"
    ema: float = 0.0

    #: the profile presets (:class:`mricourse.profiles.Presets`): the fields each profile sets over the defaults
    PRESETS = {
        "smoke": {"base": 4, "depth": 2, "bottleneck_blocks": 1, "ndf": 4, "d_layers": 2, "crop": 16},
        "cpu": {"base": 12, "depth": 3, "bottleneck_blocks": 2, "ndf": 12, "d_layers": 2, "crop": 48},
        "gpu": {},  # the paper's
    }

    @classmethod
    def paper(cls) -> Vox2VoxConfig:
        return cls()


def _down(cin: int, cout: int, norm: bool = True) -> nn.Sequential:
    """conv4 stride 2 (halves the size), instance norm, LeakyReLU 0.2."""
    return nn.Sequential(
        nn.Conv3d(cin, cout, 4, stride=2, padding=1, bias=not norm),
        nn.InstanceNorm3d(cout) if norm else nn.Identity(),
        nn.LeakyReLU(0.2),
    )


def _up(cin: int, cout: int, dropout: float) -> nn.Sequential:
    """transposed conv4 stride 2 (doubles the size), instance norm, dropout, ReLU."""
    return nn.Sequential(
        nn.ConvTranspose3d(cin, cout, 4, stride=2, padding=1, bias=False),
        nn.InstanceNorm3d(cout),
        nn.Dropout3d(dropout),
        nn.ReLU(),
    )


class _Bottleneck(nn.Module):
    """conv3 + IN + LeakyReLU + dropout, with a residual connection."""

    def __init__(self, chans: int, dropout: float):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv3d(chans, chans, 3, padding=1, bias=False), nn.InstanceNorm3d(chans), nn.LeakyReLU(0.2), nn.Dropout3d(dropout)
        )

    def forward(self, x):
        return x + self.body(x)


class Vox2VoxGenerator(nn.Module):
    """3D U-Net: (B, 4, D, H, W) contrasts -> (B, 4, D, H, W) class probabilities (softmax).

    Encoder: ``depth`` strided conv4 blocks (base, 2 base, ... up to 8 base channels); bottleneck
    of residual conv3 blocks with dropout; decoder: transposed conv4 blocks, each concatenated
    with the encoder feature map of the same size; a last transposed conv to the classes.
    Sizes that are not multiples of ``2^depth`` are padded (replicate) and the output cropped.
    """

    def __init__(self, cfg: Vox2VoxConfig):
        super().__init__()
        self.depth = cfg.depth
        chans = [min(cfg.base * 2**i, cfg.base * 8) for i in range(cfg.depth)]
        self.down = nn.ModuleList(
            [_down(cfg.in_chans, chans[0], norm=False)] + [_down(chans[i - 1], chans[i]) for i in range(1, cfg.depth)]
        )
        self.bottleneck = nn.Sequential(*[_Bottleneck(chans[-1], cfg.dropout) for _ in range(cfg.bottleneck_blocks)])
        self.up = nn.ModuleList()
        for i in range(cfg.depth - 1, 0, -1):  # input: previous up output (or bottleneck) + skip
            cin = chans[i] if i == cfg.depth - 1 else chans[i] * 2
            self.up.append(_up(cin, chans[i - 1], cfg.dropout))
        self.final = nn.ConvTranspose3d(chans[0] * 2 if cfg.depth > 1 else chans[0], cfg.num_classes, 4, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5:
            raise ValueError(f"Vox2VoxGenerator: expected volumes (B, C, D, H, W), got shape {tuple(x.shape)}")
        size = x.shape[2:]
        m = 2**self.depth
        pad = [p for s in reversed(size) for p in (0, -s % m)]
        if any(pad):
            x = F.pad(x, pad, mode="replicate")
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        x = self.bottleneck(skips.pop())
        for layer in self.up:
            x = torch.cat([layer(x), skips.pop()], dim=1)
        logits = self.final(x)[..., : size[0], : size[1], : size[2]]
        return logits.softmax(dim=1)


def largest_component(labels: torch.Tensor) -> torch.Tensor:
    """Post-processing of a label map (D, H, W): keep the largest connected component (26-connected)
    of the whole tumour (labels > 0) and set every other tumour voxel to background."""
    from scipy import ndimage

    if labels.ndim != 3:
        raise ValueError(f"largest_component: expected a label map (D, H, W), got shape {tuple(labels.shape)}")
    comps, n = ndimage.label((labels > 0).cpu().numpy(), structure=np.ones((3, 3, 3)))
    if n <= 1:
        return labels
    sizes = np.bincount(comps.ravel())[1:]
    return labels * torch.from_numpy(comps == 1 + int(sizes.argmax())).to(labels.device)


def vox2vox_networks(cfg: Vox2VoxConfig) -> dict[str, nn.Module]:
    """The two trained networks: the generator ``G`` (:class:`Vox2VoxGenerator`) and the 3D
    PatchGAN ``D``, which scores (image, segmentation) pairs (``in_chans + num_classes`` channels)."""
    return {
        "G": Vox2VoxGenerator(cfg),
        "D": PatchDiscriminator(cfg.in_chans + cfg.num_classes, cfg.ndf, cfg.d_layers, dims=3, norm="instance"),
    }


SEG_LOSSES = ("dice_ce", "gdl")


def segmentation_loss(probs: torch.Tensor, classes: torch.Tensor, kind: str = "dice_ce") -> torch.Tensor:
    """The generator's segmentation loss of class probabilities (B, K, D, H, W) against class
    indices (B, 1, D, H, W) long.

    ``"dice_ce"``: ``dice_loss(p, r) + CE(p, y)``, the soft Dice loss of the tumour classes (per
    crop, averaged over classes 1..K-1; :func:`~mricourse.losses.dice_loss`) plus the mean
    voxel-wise cross-entropy ``-log p_y``: Dice keeps the small classes from being swamped by the
    background, cross-entropy gives every voxel a gradient that does not vanish when a class is
    missed altogether. ``"gdl"``: the generalised Dice loss (Sudre et al. 2017), Cirillo et al.'s."""
    if kind not in SEG_LOSSES:
        raise ValueError(f"segmentation_loss: expected kind in {SEG_LOSSES}, got {kind!r}")
    y1h = F.one_hot(classes.squeeze(1), probs.shape[1]).movedim(-1, 1).to(probs.dtype)  # (B, K, D, H, W)
    if kind == "gdl":
        return generalised_dice_loss(probs, y1h)
    ce = F.nll_loss(probs.clamp_min(1e-7).log(), classes.squeeze(1))  # the softmax is the generator's last layer
    return dice_loss(probs, y1h) + ce


def vox2vox_step(
    modules: dict, optimizers: dict, batch, *, alpha: float = 5.0, adversarial: bool = True, seg_loss: str = "dice_ce"
) -> dict[str, float]:
    """One update on ``(images (B, 4, D, H, W), classes (B, 1, D, H, W) long)``.

    ``modules``: ``G`` and ``D`` (:func:`vox2vox_networks`); ``optimizers``: ``opt_G`` and
    ``opt_D``. The generator minimises ``alpha * L_seg(G(x), y) + L_lsgan(D(x, G(x)), 1)`` with the
    discriminator frozen (``L_seg``: :func:`segmentation_loss` of kind ``seg_loss``); then the
    discriminator learns real pairs (x, y) from generated pairs (x, G(x)). With
    ``adversarial=False`` only ``G`` is trained (``opt_G``), with ``L_seg`` alone: the chapter's
    baseline (same network, same loss, same data, same steps). The learning rates belong to the
    schedules, which the caller advances."""
    G, opt_G = modules["G"], optimizers["opt_G"]
    device = next(G.parameters()).device
    x, y = (t.to(device) for t in batch)
    G.train()
    probs = G(x)  # (B, K, D, H, W)
    y1h = F.one_hot(y.squeeze(1), probs.shape[1]).movedim(-1, 1).float()  # (B, K, D, H, W)
    seg = segmentation_loss(probs, y, seg_loss)
    if not adversarial:
        opt_G.zero_grad(set_to_none=True)
        seg.backward()
        opt_G.step()
        return {"seg": seg.item()}
    D, opt_D = modules["D"], optimizers["opt_D"]
    D.train()
    # 1. generator: fool D on (x, G(x)) and match the labels
    for p in D.parameters():
        p.requires_grad_(False)
    d_fake = D(torch.cat([x, probs], 1))
    adv = lsgan_loss(d_fake, True)
    opt_G.zero_grad(set_to_none=True)
    (alpha * seg + adv).backward()
    opt_G.step()
    # 2. discriminator: real pairs (x, y) vs generated pairs (x, G(x))
    for p in D.parameters():
        p.requires_grad_(True)
    d_real, d_fake = D(torch.cat([x, y1h], 1)), D(torch.cat([x, probs.detach()], 1))
    loss_D = 0.5 * (lsgan_loss(d_real, True) + lsgan_loss(d_fake, False))
    opt_D.zero_grad(set_to_none=True)
    loss_D.backward()
    opt_D.step()
    return {"seg": seg.item(), "G_adv": adv.item(), "D": loss_D.item()}


def segment(generator: nn.Module, x: torch.Tensor, largest: bool = False, batch_size: int = 1) -> torch.Tensor:
    """(B, 4, D, H, W) -> BraTS label maps (B, 1, D, H, W) with values {0, 1, 2, 4}, on the CPU,
    from ``generator``'s class probabilities (:func:`~mricourse.inference.predict`: eval mode, on
    its device, ``batch_size`` volumes per call); with ``largest``, each map keeps only its
    largest tumour component (:func:`largest_component`)."""
    if x.ndim != 5:
        raise ValueError(f"segment: expected volumes (B, C, D, H, W), got shape {tuple(x.shape)}")
    seg = classes_to_labels(predict(generator, x, batch_size=batch_size).argmax(1, keepdim=True))
    if largest:
        seg = torch.stack([largest_component(s[0])[None] for s in seg])
    return seg
