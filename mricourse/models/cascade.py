"""Deep cascade of CNNs with data consistency (DC-CNN), 2D frame by frame and 2D+t.

Reference: J. Schlemper, J. Caballero, J. V. Hajnal, A. N. Price and D. Rueckert, A deep cascade
of convolutional neural networks for dynamic MR image reconstruction, IEEE Transactions on
Medical Imaging 37(2), 491-503 (2018).

Each cascade is a small CNN (``num_convs`` 3x3 or 3x3x3 convolutions with ``chans`` filters and
LeakyReLU, the last one back to the 2 channels of a complex image) with a residual connection,
followed by a data-consistency layer that puts the measured k-space back::

    x <- x + CNN(x)                                   (denoise / de-alias in image space)
    k = F x;  k <- (1 - m) k + m (k + v k0) / (1 + v)  (trust the data; v -> inf: replace)
    x <- F^-1 k

Dynamic data are (B, T, H, W) complex, T frames along dim 1; masks (B|1, T, 1, W). ``dims=2``
reconstructs every frame on its own (2D convolutions over (H, W), frames folded into the batch);
``dims=3`` convolves over (T, H, W) and, with ``sharing``, feeds each cascade the data-sharing
images: frame t's unsampled k-space filled with the mean of the samples of frames t-d..t+d.
:func:`cascade_step` is the update step: the mean squared error of the complex image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..fft import fft2c, from_channels, ifft2c, to_channels
from ..profiles import Presets

__all__ = [
    "CascadeConfig",
    "CascadeNet",
    "DataConsistency",
    "SpaceTimeConv",
    "cascade_step",
    "data_consistency",
    "data_sharing",
]


def data_consistency(
    kspace: torch.Tensor, k0: torch.Tensor, mask: torch.Tensor, noise_lvl: float | torch.Tensor | None = None
) -> torch.Tensor:
    """Data consistency in k-space: ``(1 - m) k + m (k + v k0) / (1 + v)``; ``v = None``: ``(1 - m) k + m k0``.

    Args:
        kspace: predicted k-space (..., H, W) complex.
        k0: measured k-space, same shape (zeros where not sampled).
        mask: 0/1, broadcastable against ``kspace``.
        noise_lvl: v, how much the measurement is trusted over the prediction (None: exactly).
    """
    if noise_lvl is None:
        return (1 - mask) * kspace + mask * k0
    return (1 - mask) * kspace + mask * (kspace + noise_lvl * k0) / (1 + noise_lvl)


def data_sharing(kspace: torch.Tensor, mask: torch.Tensor, dist: int, circular: bool = True) -> torch.Tensor:
    """Fill the unsampled k-space of each frame with the mean of the sampled entries of its neighbours.

    For frame t, an entry that frame t did not sample becomes the mean of ``kspace`` over the
    frames ``s`` in ``t - dist .. t + dist`` that sampled it; sampled entries, and entries that no
    neighbour sampled, are left as they are. ``circular``: the frames wrap around (a cine covers
    one periodic heart beat), each frame of the window counted once even where the window wraps
    onto itself (``2 dist + 1 > T``); otherwise the window is cut at the ends.

    Args:
        kspace: (B, T, H, W) complex, T frames.
        mask: (B|1, T, 1|H, W) 0/1.
        dist: half width of the window in frames (0 returns ``kspace``).
    """
    if kspace.ndim != 4 or not kspace.is_complex():
        raise TypeError(f"data_sharing: expected complex k-space (B, T, H, W), got {kspace.dtype} {tuple(kspace.shape)}")
    if mask.ndim != 4 or mask.shape[1] != kspace.shape[1]:
        raise ValueError(f"data_sharing: expected a mask (B|1, T, 1, W) with T = {kspace.shape[1]}, got {tuple(mask.shape)}")
    if dist < 0:
        raise ValueError(f"data_sharing: expected dist >= 0, got {dist}")
    mask = mask.to(kspace.real.dtype)
    total, count = torch.zeros_like(kspace), torch.zeros_like(mask)
    num_frames, sampled = kspace.shape[1], mask * kspace
    # every neighbour once: on a circle of T frames, t - s and t + s are one frame when s = T / 2
    shifts = sorted({s % num_frames for s in range(-dist, dist + 1)}) if circular else range(-dist, dist + 1)
    for s in shifts:
        if not circular and abs(s) >= num_frames:
            continue
        mk, m = sampled, mask
        if circular:
            mk, m = mk.roll(s, dims=1), m.roll(s, dims=1)  # frame t sees frame t - s
        elif s > 0:  # shift by s frames, zeros enter at the start
            mk = torch.cat([torch.zeros_like(mk[:, :s]), mk[:, :-s]], 1)
            m = torch.cat([torch.zeros_like(m[:, :s]), m[:, :-s]], 1)
        elif s < 0:
            mk = torch.cat([mk[:, -s:], torch.zeros_like(mk[:, :-s])], 1)
            m = torch.cat([m[:, -s:], torch.zeros_like(m[:, :-s])], 1)
        total, count = total + mk, count + m
    fill = (1 - mask) * (count > 0)  # unsampled here, sampled by a neighbour
    return torch.where(fill > 0, total / count.clamp_min(1), kspace)


class DataConsistency(nn.Module):
    """Image -> k-space -> :func:`data_consistency` -> image. ``noise_lvl`` None: hard replacement;
    a float v: soft; ``learnable``: v is trained (as log v)."""

    def __init__(self, noise_lvl: float | None = None, learnable: bool = False):
        super().__init__()
        if learnable and noise_lvl is None:
            raise ValueError("DataConsistency: a learnable noise level needs an initial value, e.g. noise_lvl=10.0")
        self.learnable = learnable
        self.noise_lvl = nn.Parameter(torch.tensor(math.log(noise_lvl))) if learnable else noise_lvl

    def forward(self, image: torch.Tensor, k0: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        v = self.noise_lvl.exp() if self.learnable else self.noise_lvl
        return ifft2c(data_consistency(fft2c(image), k0, mask, v))


class SpaceTimeConv(nn.Module):
    """3x3x3 convolution over (T, H, W): ``nn.Conv3d(in_chans, out_chans, 3, padding=1)`` with the
    time axis padded circularly (a periodic heart beat) or with zeros.

    It is computed as a 2D convolution of frames t-1, t, t+1 stacked as channels, the same numbers
    (weight (out, in, 3, 3, 3) as in ``nn.Conv3d``) several times faster on CPUs than ``conv3d``.
    Input and output (B, C, T, H, W).
    """

    def __init__(self, in_chans: int, out_chans: int, circular: bool = True):
        super().__init__()
        self.circular = circular
        ref = nn.Conv3d(in_chans, out_chans, 3)  # for its initialisation
        self.weight, self.bias = nn.Parameter(ref.weight.detach().clone()), nn.Parameter(ref.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        if self.circular:
            prev, nxt = x.roll(1, 2), x.roll(-1, 2)  # prev[t] = x[t - 1]
        else:
            prev, nxt = F.pad(x[:, :, :-1], (0, 0, 0, 0, 1, 0)), F.pad(x[:, :, 1:], (0, 0, 0, 0, 0, 1))
        stacked = torch.cat([prev, x, nxt], 1).transpose(1, 2).reshape(b * t, 3 * c, h, w)  # (B*T, [tap, C], H, W)
        weight = self.weight.transpose(1, 2).reshape(self.weight.shape[0], 3 * c, 3, 3)  # (out, [tap, C], 3, 3)
        y = F.conv2d(stacked, weight, self.bias, padding=1)  # (B*T, out, H, W)
        return y.reshape(b, t, -1, h, w).transpose(1, 2)  # (B, out, T, H, W)


def conv_stack(in_chans: int, out_chans: int, chans: int, num_convs: int, dims: int, circular: bool = True) -> nn.Sequential:
    """``num_convs`` convolutions (3x3, or 3x3x3 :class:`SpaceTimeConv`) with LeakyReLU between
    them: in -> chans -> ... -> chans -> out."""
    if num_convs < 2:
        raise ValueError(f"conv_stack: expected num_convs >= 2, got {num_convs}")
    widths = [in_chans] + [chans] * (num_convs - 1) + [out_chans]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Conv2d(a, b, 3, padding=1) if dims == 2 else SpaceTimeConv(a, b, circular))
        if i < num_convs - 1:
            layers.append(nn.LeakyReLU(0.01))
    return nn.Sequential(*layers)


@dataclass
class CascadeConfig(Presets):
    """DC-CNN settings; the paper names a model D<num_convs>-C<num_cascades>, (S) with data sharing.

    Attributes:
        dims: 2 reconstructs each frame independently; 3 convolves over (time, H, W).
        num_cascades: C, the number of CNN + data-consistency blocks.
        num_convs: D, convolution layers per CNN.
        chans: filters per convolution (nf).
        sharing: data-sharing window half widths in frames, e.g. (0, 1, 2, 3, 4) (0 = the current
            estimate itself); () for none. Needs dims = 3.
        noise_lvl: v of the data-consistency layers; None = hard replacement.
        learn_noise_lvl: train v (starting from ``noise_lvl``).
        circular: data sharing and the 3x3x3 convolutions wrap around in time (a periodic heart beat).
    """

    dims: int = 3
    num_cascades: int = 5
    num_convs: int = 5
    chans: int = 64
    sharing: tuple[int, ...] = ()
    noise_lvl: float | None = None
    learn_noise_lvl: bool = False
    circular: bool = True

    #: the profile presets (:class:`mricourse.profiles.Presets`): the fields each profile sets over the defaults
    PRESET_BY = "dims"
    PRESETS = {
        "smoke": {  # D3-C2 with 8 filters
            2: {"dims": 2, "num_cascades": 2, "num_convs": 3, "chans": 8, "sharing": ()},
            3: {"dims": 3, "num_cascades": 2, "num_convs": 3, "chans": 8, "sharing": (0, 1)},
        },
        "cpu": {  # D3-C6, 32 filters in 2D, 16 in 2D+t with data sharing (about the same parameters and operations)
            2: {"dims": 2, "num_cascades": 6, "num_convs": 3, "chans": 32},
            3: {"dims": 3, "num_cascades": 6, "num_convs": 3, "chans": 16, "sharing": (0, 1, 2, 4, 8)},
        },
        "gpu": {  # the paper's D5-C5 (2D) and D5-C10(S) (2D+t, data sharing over 0-4 frames)
            2: {"dims": 2, "num_cascades": 5, "num_convs": 5, "chans": 64},
            3: {"dims": 3, "num_cascades": 10, "num_convs": 5, "chans": 64, "sharing": (0, 1, 2, 3, 4)},
        },
    }

    def __post_init__(self):
        if self.dims not in (2, 3):
            raise ValueError(f"CascadeConfig: expected dims = 2 or 3, got {self.dims!r}")
        if self.sharing and self.dims != 3:
            raise ValueError("CascadeConfig: data sharing mixes frames, so it needs dims = 3")
        self.sharing = tuple(int(d) for d in self.sharing)

    @classmethod
    def d5_c5(cls) -> CascadeConfig:
        """The paper's 2D model: 5 cascades of 5 convolutions with 64 filters."""
        return cls.gpu(dims=2)

    @classmethod
    def d5_c10_s(cls) -> CascadeConfig:
        """The paper's dynamic model: 10 cascades of 5 3x3x3 convolutions (64 filters), data sharing over 0-4 frames."""
        return cls.gpu(dims=3)


class CascadeNet(nn.Module):
    """DC-CNN: ``masked_kspace`` (B, T, H, W) complex and ``mask`` (B|1, T, 1, W) -> image (B, T, H, W) complex."""

    def __init__(self, cfg: CascadeConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or CascadeConfig()
        in_chans = 2 * max(len(cfg.sharing), 1)
        self.cnns = nn.ModuleList(
            [conv_stack(in_chans, 2, cfg.chans, cfg.num_convs, cfg.dims, cfg.circular) for _ in range(cfg.num_cascades)]
        )
        self.dcs = nn.ModuleList([DataConsistency(cfg.noise_lvl, cfg.learn_noise_lvl) for _ in range(cfg.num_cascades)])

    def cnn_input(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The CNN's real input: (B*T, 2, H, W) in 2D; (B, 2 * len(sharing), T, H, W) in 2D+t."""
        b, t, h, w = x.shape
        if self.cfg.dims == 2:
            return to_channels(x.reshape(b * t, 1, h, w))  # (B*T, 2, H, W): frames are independent
        if not self.cfg.sharing:
            return to_channels(x.unsqueeze(1))  # (B, 2, T, H, W)
        k = fft2c(x)
        shared = [x if d == 0 else ifft2c(data_sharing(k, mask, d, self.cfg.circular)) for d in self.cfg.sharing]
        return to_channels(torch.stack(shared, 1))  # (B, 2 * len(sharing), T, H, W)

    def iterates(self, masked_kspace: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        """The zero-filled image and the image after each cascade: ``num_cascades + 1`` of (B, T, H, W)."""
        if masked_kspace.ndim != 4 or not masked_kspace.is_complex():
            raise TypeError(
                f"CascadeNet: expected complex k-space (B, T, H, W), got {masked_kspace.dtype} {tuple(masked_kspace.shape)}"
            )
        b, t, h, w = masked_kspace.shape
        mask = mask.to(masked_kspace.real.dtype)
        x = ifft2c(masked_kspace)  # zero-filled start, (B, T, H, W)
        out = [x]
        for cnn, dc in zip(self.cnns, self.dcs):
            residual = from_channels(cnn(self.cnn_input(x, mask)))  # (B*T, 1, H, W) or (B, 1, T, H, W)
            x = x + residual.reshape(b, t, h, w)  # x <- x + CNN(x)
            x = dc(x, masked_kspace, mask)  # k-space of x <- the measurement where sampled
            out.append(x)
        return out

    def forward(self, masked_kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.iterates(masked_kspace, mask)[-1]


def cascade_step(modules: dict, optimizers: dict, batch) -> dict:
    """The update step: one step of ``optimizers["opt"]`` on the mean squared error of the complex
    image, ``mean |x_hat - x|^2``, of ``modules["model"]`` (a :class:`CascadeNet`).

    ``batch``: ``((masked k-space (B, T, H, W) complex, masks (B, T, 1, W)), images (B, T, H, W)
    complex)``, as :class:`mricourse.data.cine_sets.CineCrops` gives them; moved to the model's
    device here. Returns ``{"loss": value}``.
    """
    net, optimizer = modules["model"], optimizers["opt"]
    device = next(net.parameters()).device
    (k0, mask), target = batch
    net.train()
    pred = net(k0.to(device), mask.to(device))  # (B, T, H, W) complex
    loss = (pred - target.to(device)).abs().pow(2).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return {"loss": loss.item()}
