"""A DCGAN for single-channel brain slices, with the alternating GAN update written out.

Reference: C. Bermudez, A. J. Plassard, L. T. Davis, A. T. Newton, S. M. Resnick, B. A. Landman,
"Learning implicit brain MRI manifolds with deep learning", Proc. SPIE Medical Imaging 10574 (2018).

The generator maps a latent vector ``z ~ N(0, I)`` of ``nz`` numbers to a 4x4 feature map, then
doubles the size (batch norm, ReLU) up to the image, which ends in ``tanh`` (images live in
[-1, 1]; :func:`~mricourse.inference.to_gan_range` and :func:`~mricourse.inference.from_gan_range`
map the slices there and back). DCGAN doubles with transposed convolutions (kernel 4, stride 2,
``upsample="transposed"``); their uneven overlap paints checkerboards that a discriminator spots
at once, and in a few hundred steps on 528 slices that generator never escaped them here, so the
presets resize first (nearest neighbour, then a 3x3 convolution, ``upsample="nearest"``; Odena et
al. 2016). The discriminator mirrors it with strided convolutions and LeakyReLU 0.2 and returns one
logit per image. Training solves

    min_G max_D  E_x[log D(x)] + E_z[log(1 - D(G(z)))]

by alternating one step on D and one on G (:func:`gan_step`), with G's non-saturating loss ``-log D(G(z))``
(Goodfellow et al. 2014) and the DCGAN stabilisers: Adam (beta1 0.5), weights from N(0, 0.02), no
batch norm on D's input layer, optional one-sided label smoothing.

DCGAN learnt from hundreds of thousands of images; on a few hundred (the paper's 528) its
discriminator memorises the training set and the generator collapses onto one output. The presets
therefore train the same networks with the data-efficient settings of later work, gathered in
:data:`DATA_EFFICIENT` (:meth:`DCGANConfig.paper` trains as DCGAN did): spectral normalisation of
D's convolutions instead of its batch norm (Miyato et al. 2018), two time-scales, D faster than G
(TTUR; Heusel et al. 2017) with SAGAN's Adam (Zhang et al. 2019: beta1 0, beta2 0.9, D at 4e-4 and
G at 1e-4; without momentum neither player keeps moving along a direction that the other's last
step has made wrong, and here the samples came out less alike), the minibatch standard deviation
as a last feature of D (:class:`MinibatchStdDev`; Karras et al. 2018), and an exponential moving
average of G's weights, the generator one samples (:class:`~mricourse.training.averaging.WeightAverage`;
Yazici et al. 2019).
The config also offers differentiable augmentation of every image D sees
(:mod:`~mricourse.models.diffaugment`; Zhao et al. 2020) and the R1 penalty (:func:`r1_penalty`;
Mescheder et al. 2018): on validation subjects, in the cpu profile's 1500 steps, both made the
samples less varied and easier to tell from real ones (:data:`DATA_EFFICIENT`'s comment).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..inference import predict
from ..losses import discriminator_loss, generator_loss
from ..profiles import Presets
from .diffaugment import AUGMENTS, augment_ops, diff_augment

__all__ = [
    "DCGANConfig",
    "DCGANGenerator",
    "DCGANDiscriminator",
    "gan_step",
    "r1_penalty",
    "MinibatchStdDev",
    "slerp",
]


#: data-efficient training for a GAN on a few hundred images (see the module docstring), as
#: config fields over DCGAN's: the presets' settings. Measured on 256 validation subjects (seed 2)
#: after the cpu profile's 1500 steps (seed 0), C2ST accuracy (0.5: indistinguishable) / median
#: NCC of a sample to its nearest other sample (real slices: 0.45) / training-set nearest
#: neighbour NCC (real: 0.50), all but the last lines with DCGAN's Adam (beta1 0.5, beta2 0.999):
#: DCGAN's own training 1.000 / 0.959 / 0.371 (one grid-textured head for every z);
#: + minibatch std 1.000 / 0.921 / 0.433; + spectral norm and TTUR 0.775 / 0.603 / 0.452;
#: + weight average (these settings) 0.680 / 0.599 / 0.489. Not kept, each with the minibatch std:
#: these settings with G's rate 2e-4, 0.924 / 0.885; both rates 1e-4 with batch norm, 0.922 / 0.758;
#: spectral norm, R1 (gamma 1), both rates 2e-4, 1.000 / 0.900; these settings with DiffAugment
#: (colour, translation, cutout), 0.957 / 0.715; these settings with groups of 8 for the minibatch
#: std, 0.639 / 0.612, or without label smoothing, 0.719 / 0.609 (within one seed's spread).
#: These settings trained twice as long (3000 steps): 0.510 / 0.628 / 0.508: the classifier no
#: longer tells the samples apart; their diversity stays short of real slices'. The paper's widths
#: (``ngf = ndf = 32``: 0.80 M generator parameters, not 0.30 M), 1500 steps: 0.563 / 0.620, in five
#: times the time (these settings, in the same run: 0.680 / 0.599). Part of the diversity gap is
#: texture, not layout: with every image blurred by one pixel first, real slices score 0.744 and
#: these settings' samples 0.798. More, in one set of runs (256 validation subjects, seed 2, 1500
#: steps, the C2ST trained 8 epochs as in the chapter; these settings 0.512 / 0.595): D twice as wide
#: (``ndf = 32``) 0.666 / 0.624; batches of 64, 0.510 / 0.649; the paper's transposed convolutions
#: in G, 0.902 / 0.972 (collapse); DiffAugment's translation alone, 0.941 / 0.812; D's rate 1e-4,
#: 2e-4, 8e-4 or 1.6e-3, 0.939 / 0.914, 0.646 / 0.644, 0.695 / 0.606, 0.654 / 0.625; G's rate 5e-5,
#: 0.857 / 0.584; an average of decay 0.99, 0.502 / 0.599. Mirroring the training slices left to
#: right (twice the images) gave 0.654 / 0.539, but these brains are not symmetric: the C2ST tells
#: mirrored real slices from real ones at 0.699, so the generator would learn another distribution.
#: Adam's moments, last (256 validation subjects, seed 2, 1500 steps, the C2ST trained 8 epochs;
#: real slices 0.453 apart, 0.744 blurred by one pixel; C2ST / NCC to the nearest other sample / the
#: same blurred, for training seeds 0, 1, 2): DCGAN's beta1 0.5, beta2 0.999
#: 0.531 / 0.592 / 0.788, 0.668 / 0.572 / 0.784, 0.920 / 0.787 / 0.908 (near collapse); beta1 0,
#: beta2 0.99, 0.516 / 0.557 / 0.750, 0.545 / 0.549 / 0.760 (seed 2 not run); SAGAN's beta1 0,
#: beta2 0.9 (these settings) 0.506 / 0.520 / 0.730, 0.500 / 0.524 / 0.740, 0.531 / 0.557 / 0.749:
#: at every seed the samples differ from one another in layout about as much as real slices do.
#: Trained longer (a run of its own: seed 0, one thread, the same validation subjects), these
#: settings' samples sharpen into clearer anatomy but grow alike again: NCC to the nearest other
#: 0.559, 0.547, 0.598, 0.604 (blurred 0.808) at steps 2250, 3000, 3750, 4500; groups of 8 for the
#: minibatch std, 0.537 and 0.574 at 1500 and 3000; DiffAugment (translation, cutout), 0.653 with a
#: C2ST of 0.801 at 1500: neither stops it.
DATA_EFFICIENT = {"d_norm": "spectral", "lr_g": 1e-4, "lr_d": 4e-4, "beta1": 0.0, "beta2": 0.9, "mbstd": 4, "ema": 0.999}


@dataclass
class DCGANConfig(Presets):
    """Sizes and training settings of the DCGAN (the recipe ``dcgan`` builds its optimisers from
    ``lr_g``, ``lr_d``, ``beta1`` and ``beta2`` and its weight average from ``ema``; the update step
    takes ``label_smoothing``, ``instance_noise``, ``augment`` and ``r1``).

    Attributes:
        image_size: side of the square images, a power of two >= 8.
        nz: length of the latent vector z.
        ngf, ndf: channels of the generator's last / the discriminator's first hidden layer; they
            double at every halving of the size (the paper's 4x4x256 start is ``ngf=32`` at 64 px).
        lr_g, lr_d: Adam's learning rates of the generator and the discriminator (DCGAN: 2e-4 for
            both; two time-scales, TTUR, Heusel et al. 2017: a faster discriminator).
        beta1, beta2: Adam's moment decays, for both networks.
        upsample: "nearest" (resize, then conv3) or "transposed" (ConvTranspose k4 s2, the paper's).
        d_norm: the discriminator's hidden-layer normalisation: "batch" (DCGAN's batch norm) or
            "spectral" (spectral normalisation of every convolution, no batch norm; Miyato et al. 2018).
        label_smoothing: real targets for D are ``1 - label_smoothing`` (one-sided smoothing).
        instance_noise: standard deviation of Gaussian noise added to every image D sees, real
            or generated (Sonderby et al. 2017).
        augment: DiffAugment's policy (:func:`diff_augment`), e.g. "color,translation,cutout", applied
            to every image D sees, real or generated, in D's and G's steps; "" for none.
        r1: weight gamma of the R1 penalty ``gamma / 2 E ||grad_x D(x)||^2`` on real images (0: off).
        ema: decay of the generator's exponential moving average (0: none); the recipe's sampler.
        mbstd: group size of the minibatch standard deviation in D (:class:`MinibatchStdDev`;
            Karras et al. 2018): D sees how much the images of a group differ, so that a generator
            drawing one image for every z is easy to spot (0: off).
    """

    image_size: int = 64
    nz: int = 100
    ngf: int = 32
    ndf: int = 32
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    upsample: str = "nearest"
    d_norm: str = "batch"
    label_smoothing: float = 0.0
    instance_noise: float = 0.0
    augment: str = ""
    r1: float = 0.0
    ema: float = 0.0
    mbstd: int = 0

    #: the profile presets (:class:`mricourse.profiles.Presets`): the fields each profile sets over the defaults
    PRESETS = {
        "smoke": {"image_size": 32, "nz": 32, "ngf": 8, "ndf": 8, **DATA_EFFICIENT},
        # half the paper's widths: a quarter of the cost per step (1500 steps of 32 slices in minutes)
        "cpu": {"image_size": 64, "nz": 100, "ngf": 16, "ndf": 16, "label_smoothing": 0.1, **DATA_EFFICIENT},
        "gpu": {"image_size": 128, "nz": 100, "ngf": 64, "ndf": 64, "label_smoothing": 0.1, **DATA_EFFICIENT},
    }

    def __post_init__(self):
        if self.image_size < 8 or self.image_size & (self.image_size - 1):
            raise ValueError(f"DCGANConfig: expected image_size a power of two >= 8, got {self.image_size}")
        if not 0.0 <= self.label_smoothing < 0.5:
            raise ValueError(f"DCGANConfig: expected 0 <= label_smoothing < 0.5, got {self.label_smoothing}")
        if self.upsample not in ("nearest", "transposed"):
            raise ValueError(f"DCGANConfig: expected upsample 'nearest' or 'transposed', got {self.upsample!r}")
        if self.d_norm not in ("batch", "spectral"):
            raise ValueError(f"DCGANConfig: expected d_norm 'batch' or 'spectral', got {self.d_norm!r}")
        unknown = set(augment_ops(self.augment)) - set(AUGMENTS)
        if unknown:
            raise ValueError(f"DCGANConfig: unknown augment {sorted(unknown)}; expected some of {sorted(AUGMENTS)}")
        if self.mbstd < 0 or self.mbstd == 1:
            raise ValueError(f"DCGANConfig: expected mbstd 0 (off) or a group size >= 2, got {self.mbstd}")
        if self.r1 < 0 or not 0.0 <= self.ema < 1.0:
            raise ValueError(f"DCGANConfig: expected r1 >= 0 and 0 <= ema < 1, got r1={self.r1}, ema={self.ema}")

    @property
    def num_ups(self) -> int:
        """Number of size doublings from 4x4 to the image."""
        return int(math.log2(self.image_size)) - 2

    @classmethod
    def paper(cls) -> DCGANConfig:
        """z of 100 -> 4x4x256 -> transposed convolutions -> 64x64 (Radford et al. 2016's layout),
        trained as DCGAN was: Adam 2e-4 for both, batch norm in D, no augmentation, no average."""
        return cls(image_size=64, nz=100, ngf=32, ndf=32, upsample="transposed")


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights ~ N(0, 0.02), batch-norm scales ~ N(1, 0.02), biases 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def up2(in_chans: int, out_chans: int, mode: str, bias: bool = False) -> list[nn.Module]:
    """Double the size: a transposed conv (kernel 4, stride 2) or nearest resize + conv3."""
    if mode == "transposed":
        return [nn.ConvTranspose2d(in_chans, out_chans, 4, 2, 1, bias=bias)]
    return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(in_chans, out_chans, 3, 1, 1, bias=bias)]


class DCGANGenerator(nn.Module):
    """z (B, nz) -> image (B, 1, S, S) in [-1, 1]: 4x4 projection, then (up x2, BN, ReLU) x n, tanh."""

    def __init__(self, cfg: DCGANConfig):
        super().__init__()
        self.cfg = cfg
        ch = cfg.ngf * 2 ** (cfg.num_ups - 1)  # channels at 4x4
        layers = [nn.ConvTranspose2d(cfg.nz, ch, 4, 1, 0, bias=False), nn.BatchNorm2d(ch), nn.ReLU(True)]  # (B, ch, 4, 4)
        for _ in range(cfg.num_ups - 1):  # (B, ch, s, s) -> (B, ch / 2, 2s, 2s)
            layers += [*up2(ch, ch // 2, cfg.upsample), nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [*up2(ch, 1, cfg.upsample, bias=True), nn.Tanh()]  # (B, 1, S, S)
        self.net = nn.Sequential(*layers)
        self.apply(init_weights)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.cfg.nz:
            raise ValueError(f"DCGANGenerator: expected z of shape (B, {self.cfg.nz}), got {tuple(z.shape)}")
        return self.net(z[:, :, None, None])  # (B, nz, 1, 1) -> (B, 1, S, S)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images (n, 1, S, S) on the CPU from fresh latent vectors (drawn on the CPU from
        ``generator``), in one call in eval mode without gradients (:func:`~mricourse.inference.predict`)."""
        z = torch.randn(n, self.cfg.nz, generator=generator)
        return predict(self, z, batch_size=max(n, 1))


class MinibatchStdDev(nn.Module):
    """Append one feature map: the standard deviation over a group of ``group`` images of every
    feature, averaged over features and positions (Karras et al. 2018). (B, C, H, W) -> (B, C + 1, H, W).

    A discriminator that judges one image at a time cannot see that a generator draws the same
    image for every z; with this channel, a batch of near-copies has a telltale low value. The
    group is the largest divisor of B not above ``group``."""

    def __init__(self, group: int = 4):
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        g = max(d for d in range(1, min(self.group, b) + 1) if b % d == 0)
        y = x.reshape(g, b // g, c, h, w)  # image i sits in group i % (b // g)
        std = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (B / g,)
        return torch.cat([x, std.repeat(g)[:, None, None, None].expand(b, 1, h, w)], dim=1)


class DCGANDiscriminator(nn.Module):
    """image (B, 1, S, S) -> one logit per image (B,): Conv4 s2 + LReLU, (Conv4 s2, norm, LReLU) x n, Conv4.

    ``cfg.d_norm``: "batch" (DCGAN) or "spectral": every convolution spectrally normalised (its
    weight divided by its largest singular value, estimated by one power iteration per training
    forward pass; Miyato et al. 2018), and no batch norm, so that D is about 1-Lipschitz layer by layer.
    """

    def __init__(self, cfg: DCGANConfig):
        super().__init__()
        self.cfg = cfg
        sn = cfg.d_norm == "spectral"
        ch = cfg.ndf
        layers = [nn.Conv2d(1, ch, 4, 2, 1), nn.LeakyReLU(0.2, True)]  # no norm on the input layer
        for _ in range(cfg.num_ups - 1):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=sn)] + ([] if sn else [nn.BatchNorm2d(ch * 2)])
            layers += [nn.LeakyReLU(0.2, True)]
            ch *= 2
        if cfg.mbstd:  # (B, ch, 4, 4) -> (B, ch + 1, 4, 4)
            layers += [MinibatchStdDev(cfg.mbstd)]
        layers += [nn.Conv2d(ch + (1 if cfg.mbstd else 0), 1, 4, 1, 0)]  # (B, ch, 4, 4) -> (B, 1, 1, 1)
        self.net = nn.Sequential(*layers)
        self.apply(init_weights)
        if sn:  # W / sigma_max(W), sigma by power iteration (its vectors drawn from the seed)
            for i, m in enumerate(self.net):
                if isinstance(m, nn.Conv2d):
                    self.net[i] = nn.utils.parametrizations.spectral_norm(m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.cfg.image_size
        if x.ndim != 4 or x.shape[1:] != (1, s, s):
            raise ValueError(f"DCGANDiscriminator: expected images of shape (B, 1, {s}, {s}), got {tuple(x.shape)}")
        return self.net(x).flatten()  # (B,)


# ------------------------------------------------------------------ data-efficient training


def r1_penalty(D: nn.Module, real: torch.Tensor) -> torch.Tensor:
    """The R1 penalty (Mescheder et al. 2018): ``E_x ||grad_x D(x)||^2`` over real images ``x``
    (B, C, H, W), a scalar with a graph for D's update. It penalises D's slope on the data, where
    an over-confident D would otherwise push G's gradients to explode or vanish."""
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(real).sum(), real, create_graph=True)  # (B, C, H, W)
    return grad.pow(2).flatten(1).sum(1).mean()


def gan_step(
    modules: dict,
    optimizers: dict,
    batch,
    nz: int,
    label_smoothing: float = 0.0,
    instance_noise: float = 0.0,
    augment: str = "",
    r1: float = 0.0,
) -> dict[str, float]:
    """The update step: one update of the discriminator ``modules["D"]`` (``optimizers["opt_d"]``),
    then one of the generator ``modules["G"]`` (``optimizers["opt_g"]``).

    ``batch``: real images (B, 1, S, S) in [-1, 1] (or a tuple whose first item they are). Every
    image D sees, real or generated, in either step, passes through ``look``: DiffAugment with
    the policy ``augment`` (:func:`diff_augment`), then instance noise of std ``instance_noise``.
    D's loss adds ``r1 / 2`` times the R1 penalty on the (augmented) real batch. The latent vectors
    ``z`` (B, ``nz``), augmentations and noise come from torch's global generator (drawn on the
    CPU: the same draws on any device). Returns the losses and ``d_real`` / ``d_fake``, D's mean
    probabilities that real / generated images are real.
    """
    G, D, opt_g, opt_d = modules["G"], modules["D"], optimizers["opt_g"], optimizers["opt_d"]
    real = batch[0] if isinstance(batch, (tuple, list)) else batch
    device = next(G.parameters()).device
    real = real.to(device)
    G.train()
    D.train()
    z = torch.randn(real.shape[0], nz).to(device)  # (B, nz)
    fake = G(z)  # (B, 1, S, S)

    def look(x):  # what D sees: a fresh augmentation and fresh instance noise at every look
        x = diff_augment(x, augment) if augment else x
        return x + instance_noise * torch.randn(x.shape).to(device) if instance_noise > 0 else x

    # 1) discriminator: push D(x) -> 1 and D(G(z)) -> 0; G is held fixed (detach)
    real_seen = look(real)
    real_logits, fake_logits = D(real_seen), D(look(fake.detach()))
    loss_d = discriminator_loss(real_logits, fake_logits, real_label=1.0 - label_smoothing)
    penalty = r1_penalty(D, real_seen) if r1 > 0 else torch.zeros(())
    opt_d.zero_grad(set_to_none=True)
    (loss_d + 0.5 * r1 * penalty).backward()
    opt_d.step()

    # 2) generator: push the updated D(G(z)) -> 1; only G's optimiser steps
    loss_g = generator_loss(D(look(fake)))
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    return {
        "loss_d": loss_d.item(),
        "loss_g": loss_g.item(),
        "d_real": torch.sigmoid(real_logits).mean().item(),
        "d_fake": torch.sigmoid(fake_logits).mean().item(),
        **({"r1": penalty.item()} if r1 > 0 else {}),
    }


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between latent vectors (nz,) for weights ``t`` (T,) -> (T, nz).

    Gaussian latents concentrate near a sphere, so walking on its great circle keeps every point
    typical, unlike the straight line (White 2016).
    """
    t = torch.as_tensor(t, dtype=z0.dtype, device=z0.device)[:, None]  # (T, 1)
    cos = F.cosine_similarity(z0, z1, dim=0).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    if omega.abs() < 1e-6:  # parallel vectors: the straight line
        return (1 - t) * z0 + t * z1
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)
