"""CycleGAN for unpaired T1 <-> T2 translation.

Reference: Welander, Karlsson and Eklund, "Generative Adversarial Networks for Image-to-Image
Translation on Multi-Contrast MR Images -- A Comparison of CycleGAN and UNIT", arXiv:1806.07777
(2018), using the CycleGAN of Zhu et al. (ICCV 2017).

Two generators ``G_AB: A -> B`` and ``G_BA: B -> A`` and two PatchGAN discriminators. The
generator loss is

    L_G = L_lsgan(D_B(G_AB(a)), 1) + L_lsgan(D_A(G_BA(b)), 1)
          + lambda_cycle (|G_BA(G_AB(a)) - a|_1 + |G_AB(G_BA(b)) - b|_1)
          + lambda_identity lambda_cycle (|G_AB(b) - b|_1 + |G_BA(a) - a|_1)

and each discriminator minimises ``0.5 (L_lsgan(D(real), 1) + L_lsgan(D(pool(fake)), 0))``, with
fakes drawn from a pool of past generated images. The networks are plain modules
(:func:`cyclegan_networks`); the alternating update is :func:`cyclegan_step`; the optimisers, the
learning-rate decay and the data belong to the training recipe (``mc.recipe("cyclegan")``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..inference import predict
from ..layers import PatchDiscriminator
from ..losses import cycle_loss, lsgan_loss
from ..profiles import Presets

__all__ = [
    "CycleGANConfig",
    "ResnetGenerator",
    "ImagePool",
    "cyclegan_networks",
    "cyclegan_step",
    "translate",
    "receptive_field",
]


@dataclass
class CycleGANConfig(Presets):
    """Sizes and weights. ``paper()`` is Welander et al.'s setting (ngf 32, 9 residual blocks).

    The identity loss (``G_AB(b) ~ b``, weight ``lambda_identity * lambda_cycle``; Zhu et al. use
    0.5) helps when both domains share colours; between T1 and T2, whose contrasts are nearly
    inverted, it asks ``G_AB`` to leave a T2 unchanged while inverting a T1. On the cpu profile's
    validation subjects (seed 60, 1000 steps, seed 0, both with the weight average) it lowered T1 ->
    T2 SSIM from 0.860 to 0.849 and raised PSNR from 25.5 to 26.1 dB, for two more generator passes
    per update; the chapter's metric is SSIM, so the presets leave it off.

    ``ema``: the decay of the weight averages of both generators (0: none; the paper has none). On
    the same validation subjects the average raised SSIM from 0.851 to 0.860 (decay 0.995; 0.99
    gave 0.860, 0.999 the same as 0.995: the learning rate decays to zero in the second half)."""

    in_chans: int = 1
    ngf: int = 32
    n_blocks: int = 9
    ndf: int = 64
    n_layers: int = 3
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.0
    pool_size: int = 50
    lr: float = 2e-4
    beta1: float = 0.5
    decay_from: float = 0.5
    ema: float = 0.0

    #: the profile presets (:class:`mricourse.profiles.Presets`): the fields each profile sets over the defaults
    PRESETS = {
        "smoke": {"ngf": 8, "n_blocks": 2, "ndf": 8, "n_layers": 2, "pool_size": 4, "ema": 0.995},
        "cpu": {"ngf": 16, "n_blocks": 6, "ndf": 32, "ema": 0.995},
        "gpu": {"ema": 0.999},  # the paper's sizes, with a weight average over a longer run
    }

    @classmethod
    def paper(cls) -> CycleGANConfig:
        return cls()


class ResidualBlock(nn.Module):
    """x + (reflect-pad, conv3, IN, ReLU, reflect-pad, conv3, IN)(x)."""

    def __init__(self, chans: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(chans, chans, 3), nn.InstanceNorm2d(chans), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(chans, chans, 3), nn.InstanceNorm2d(chans),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """c7s1-ngf, d2ngf, d4ngf, n_blocks x R4ngf, u2ngf, ungf, c7s1-out + tanh (Johnson et al. 2016).

    (B, C, H, W) in [-1, 1] -> (B, C, H, W) in [-1, 1]. Any H, W: the input is reflection-padded
    to a multiple of 4 (two stride-2 convolutions) and the output cropped back.
    """

    def __init__(self, in_chans: int = 1, out_chans: int = 1, ngf: int = 32, n_blocks: int = 9):
        super().__init__()
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_chans, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(True)]
        for mult in (1, 2):  # downsampling: ngf -> 2 ngf -> 4 ngf
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1),
                nn.InstanceNorm2d(ngf * mult * 2),
                nn.ReLU(True),
            ]
        layers += [ResidualBlock(ngf * 4) for _ in range(n_blocks)]
        for mult in (4, 2):  # upsampling: 4 ngf -> 2 ngf -> ngf
            layers += [
                nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1),
                nn.InstanceNorm2d(ngf * mult // 2), nn.ReLU(True),
            ]  # fmt: skip
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_chans, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"ResnetGenerator: expected images (B, C, H, W), got shape {tuple(x.shape)}")
        h, w = x.shape[-2:]
        ph, pw = -h % 4, -w % 4
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect")
        return self.net(x)[..., :h, :w]


class ImagePool:
    """A buffer of past generated images (Shrivastava et al. 2017). While not full, each new image
    is stored and returned; once full, with probability 1/2 a stored image is returned and replaced
    by the new one, otherwise the new image is returned."""

    def __init__(self, size: int = 50, seed: int | None = None):
        self.size, self.images, self.rng = size, [], random.Random(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for im in images.detach():
            im = im.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(im)
                out.append(im)
            elif self.rng.random() < 0.5:
                i = self.rng.randrange(self.size)
                out.append(self.images[i].to(im.device, copy=True))
                self.images[i] = im
            else:
                out.append(im)
        return torch.cat(out)

    def state_dict(self) -> dict:
        """The stored images and the random state, so that a resumed run draws as before."""
        return {"images": torch.cat(self.images) if self.images else torch.zeros(0), "rng": self.rng.getstate()}

    def load_state_dict(self, state: dict) -> None:
        self.images = list(state["images"].split(1)) if len(state["images"]) else []
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))


def _split(x: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The first ``n`` images of a stacked batch and the rest (None when there is none)."""
    return x[:n], (x[n:] if len(x) > n else None)


def cyclegan_networks(cfg: CycleGANConfig) -> dict[str, nn.Module]:
    """The four trained networks: generators ``G_AB: A -> B`` and ``G_BA: B -> A`` (ResNet
    generators) and PatchGAN discriminators ``D_A`` (real A or not) and ``D_B``."""
    c = cfg.in_chans
    return {
        "G_AB": ResnetGenerator(c, c, cfg.ngf, cfg.n_blocks),
        "G_BA": ResnetGenerator(c, c, cfg.ngf, cfg.n_blocks),
        "D_A": PatchDiscriminator(c, cfg.ndf, cfg.n_layers, dims=2, norm="instance"),
        "D_B": PatchDiscriminator(c, cfg.ndf, cfg.n_layers, dims=2, norm="instance"),
    }


def cyclegan_step(modules: dict, optimizers: dict, batch, *, cfg: CycleGANConfig, pools: dict) -> dict[str, float]:
    """One CycleGAN update on an unpaired batch ``(real_A, real_B)``, each (B, C, H, W) in [-1, 1].

    ``modules``: ``G_AB``, ``G_BA``, ``D_A``, ``D_B`` (:func:`cyclegan_networks`); ``optimizers``:
    ``opt_G`` (both generators) and ``opt_D`` (both discriminators); ``pools``: ``{"A": ImagePool,
    "B": ImagePool}`` of past generated images of each domain. First the generators, with the
    discriminators frozen, then the discriminators on real images and pooled past fakes. The
    learning rates belong to the schedules, which the caller advances.

    Images that go through the same network are stacked into one call (instance norm is per
    image, so this equals separate calls, in less time): ``G_AB`` translates ``real_A`` and,
    for the identity loss, ``real_B`` together, and each discriminator scores real and pooled
    fake images together."""
    G_AB, G_BA, D_A, D_B = (modules[k] for k in ("G_AB", "G_BA", "D_A", "D_B"))
    opt_G, opt_D = optimizers["opt_G"], optimizers["opt_D"]
    device = next(G_AB.parameters()).device
    real_A, real_B = (x.to(device) for x in batch)
    n = len(real_A)
    for m in (G_AB, G_BA, D_A, D_B):
        m.train()
    # 1. generators, with the discriminators frozen
    for p in [*D_A.parameters(), *D_B.parameters()]:
        p.requires_grad_(False)
    idt = cfg.lambda_identity > 0
    fake_B, idt_B = _split(G_AB(torch.cat([real_A, real_B]) if idt else real_A), n)
    fake_A, idt_A = _split(G_BA(torch.cat([real_B, real_A]) if idt else real_B), n)
    rec_A, rec_B = G_BA(fake_B), G_AB(fake_A)
    loss_gan = lsgan_loss(D_B(fake_B), True) + lsgan_loss(D_A(fake_A), True)
    loss_cycle = cfg.lambda_cycle * (cycle_loss(real_A, rec_A) + cycle_loss(real_B, rec_B))
    loss_idt = torch.zeros((), device=device)
    if idt:
        loss_idt = cfg.lambda_identity * cfg.lambda_cycle * (cycle_loss(real_B, idt_B) + cycle_loss(real_A, idt_A))
    loss_G = loss_gan + loss_cycle + loss_idt
    opt_G.zero_grad(set_to_none=True)
    loss_G.backward()
    opt_G.step()
    # 2. discriminators, on real images and pooled past fakes
    for p in [*D_A.parameters(), *D_B.parameters()]:
        p.requires_grad_(True)
    d_real_B, d_fake_B = _split(D_B(torch.cat([real_B, pools["B"].query(fake_B)])), n)
    d_real_A, d_fake_A = _split(D_A(torch.cat([real_A, pools["A"].query(fake_A)])), n)
    loss_D_B = 0.5 * (lsgan_loss(d_real_B, True) + lsgan_loss(d_fake_B, False))
    loss_D_A = 0.5 * (lsgan_loss(d_real_A, True) + lsgan_loss(d_fake_A, False))
    opt_D.zero_grad(set_to_none=True)
    (loss_D_A + loss_D_B).backward()
    opt_D.step()
    return {
        "G_gan": loss_gan.item(),
        "cycle": loss_cycle.item(),
        "identity": loss_idt.item(),
        "D": (loss_D_A + loss_D_B).item(),
    }


def translate(generator: nn.Module, x: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
    """Translate images (N, C, H, W) in [-1, 1] (:func:`~mricourse.inference.to_gan_range`) with
    ``generator`` (``G_AB`` or ``G_BA``): :func:`~mricourse.inference.predict`, in eval mode and
    in batches of ``batch_size``, on the generator's device; returned on the CPU."""
    if x.ndim != 4:
        raise ValueError(f"translate: expected images (N, C, H, W), got shape {tuple(x.shape)}")
    return predict(generator, x, batch_size=batch_size)


def receptive_field(disc: nn.Module, size: int = 160) -> int:
    """Measure a discriminator's receptive field: the width of the input region whose pixels
    change the central logit (from the gradient; use a discriminator without normalisation)."""
    x = torch.zeros(1, disc_in_chans(disc), size, size, requires_grad=True)
    out = disc(x)
    out[0, 0, out.shape[-2] // 2, out.shape[-1] // 2].backward()
    cols = (x.grad[0].abs().sum((0, 1)) > 0).nonzero()
    return int(cols.max() - cols.min() + 1)


def disc_in_chans(disc: nn.Module) -> int:
    """Number of input channels of a convolutional network (its first convolution's)."""
    return next(m for m in disc.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d))).in_channels
