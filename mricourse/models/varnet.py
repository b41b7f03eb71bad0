"""The end-to-end variational network (E2E VarNet) for multi-coil reconstruction.

Reference: A. Sriram, J. Zbontar, T. Murrell, A. Defazio, C. L. Zitnick, N. Yakubova, F. Knoll,
P. Johnson, "End-to-End Variational Networks for Accelerated MRI Reconstruction", MICCAI 2020.

From measured k-space ``k0`` (B, coils, H, W) and its mask ``M`` (B|1, 1, 1, W):

1. sensitivity-map estimation (SME): keep the auto-calibration (centre) columns of ``k0``,
   inverse FFT each coil, refine each coil image with a normalised U-Net, divide by the RSS
   over coils: ``S = U(F^-1 ACS(k0)) / RSS``;
2. ``T`` cascades, each a gradient step on the data term plus a learned image-space refinement
   seen through the coils, working in k-space (``k^0 = k0``)::

       k^{t+1} = k^t - eta_t M (k^t - k0) - F S UNet_t(sum_c conj(S_c) F^-1 k^t_c)

3. the image: RSS over coils of ``F^-1 k^T``, optionally centre-cropped.

Complex data stay complex64; they become 2-channel real only inside :class:`NormUNet`. The
layer names differ from ``fastmri.models.VarNet`` but the computation is the same:
:func:`state_dict_from_fastmri` maps its (and its pretrained checkpoints') weights onto ours.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data.kspace import center_crop
from ..fft import fft2c, from_channels, ifft2c, to_channels, warn_nonfinite
from ..layers import UNet
from ..losses import ssim_loss
from ..physics import require_mask, rss
from ..profiles import Presets

__all__ = [
    "VarNetConfig",
    "VarNet",
    "VarNetBlock",
    "SensitivityModel",
    "NormUNet",
    "acs_mask",
    "sens_expand",
    "sens_reduce",
    "varnet_step",
    "state_dict_from_fastmri",
]


@dataclass
class VarNetConfig(Presets):
    """Sizes of the E2E VarNet: cascades, their U-Nets, and the sensitivity U-Net."""

    num_cascades: int = 12
    chans: int = 18
    num_pools: int = 4
    sens_chans: int = 8
    sens_pools: int = 4
    mask_center: bool = True  # estimate the maps from the centre (ACS) columns only

    #: the profile presets (:class:`mricourse.profiles.Presets`): the fields each profile sets over the defaults
    PRESETS = {
        "smoke": {"num_cascades": 2, "chans": 4, "num_pools": 2, "sens_chans": 2, "sens_pools": 2},  # about 10k parameters
        "cpu": {"num_cascades": 5, "chans": 12, "num_pools": 2, "sens_chans": 4, "sens_pools": 3},  # 0.36M, minutes at 128 px
        "gpu": {"num_cascades": 8, "chans": 12, "num_pools": 4, "sens_chans": 8, "sens_pools": 4},  # 9M, one GPU, 160-320 px
    }

    @classmethod
    def paper(cls) -> VarNetConfig:
        """The paper's model (about 30M parameters): 12 cascades, chans 18, 4 pools, SME chans 8."""
        return cls(num_cascades=12, chans=18, num_pools=4, sens_chans=8, sens_pools=4)


def sens_expand(x: torch.Tensor, sens_maps: torch.Tensor) -> torch.Tensor:
    """Image (B, 1, H, W) -> coil k-space (B, coils, H, W): ``F(S_c x)``."""
    return fft2c(sens_maps * x)


def sens_reduce(kspace: torch.Tensor, sens_maps: torch.Tensor) -> torch.Tensor:
    """Coil k-space (B, coils, H, W) -> image (B, 1, H, W): ``sum_c conj(S_c) F^-1 k_c``."""
    return (sens_maps.conj() * ifft2c(kspace)).sum(1, keepdim=True)


def acs_mask(mask: torch.Tensor, num_low_frequencies: int | torch.Tensor | None = None) -> torch.Tensor:
    """The auto-calibration columns of a centred mask (B|1, 1, 1, W): (B|1, 1, 1, W) float.

    With ``num_low_frequencies`` (an int, or one per batch item) that many centre columns
    (fastMRI's centre block); without (or 0), the fully sampled run around the centre, made
    symmetric (``2 min(left, right)`` columns, as the reference implementation does).
    """
    w = mask.shape[-1]
    cols = mask.reshape(mask.shape[0], w) > 0  # (B, W)
    nlf = torch.as_tensor(0 if num_low_frequencies is None else num_low_frequencies, device=mask.device).reshape(-1)
    if bool(((nlf < 0) | (nlf > w)).any()):
        raise ValueError(
            f"acs_mask: num_low_frequencies must be in [0, {w}] (the centre columns; 0: found from the mask), got {nlf.tolist()}"
        )
    if bool((nlf > 0).all()):
        n = nlf.long().expand(cols.shape[0]) if len(nlf) == 1 else nlf.long()
    else:
        half = w // 2
        left = cols[:, :half].flip(1).long().cumprod(1).sum(1)  # sampled run left of the centre
        right = cols[:, half:].long().cumprod(1).sum(1)  # ... and from the centre rightwards
        n = (2 * torch.minimum(left, right)).clamp_min(1)
    start = (w - n + 1) // 2  # (B,)
    idx = torch.arange(w, device=mask.device)
    keep = (idx >= start[:, None]) & (idx < (start + n)[:, None])  # (B, W)
    return keep.to(torch.float32).reshape(-1, 1, 1, w)


class NormUNet(nn.Module):
    """A U-Net on complex images: (B, C, H, W) complex -> (B, C, H, W) complex.

    The 2C real channels (``to_channels``) are normalised by the mean and standard deviation of
    the real group and of the imaginary group, zero-padded to a multiple of 16 (at least
    ``2^num_pools``), refined by :class:`mricourse.UNet`, unpadded and un-normalised.
    """

    def __init__(self, chans: int, num_pools: int, coils: int = 1, drop_prob: float = 0.0):
        super().__init__()
        self.multiple = max(16, 2**num_pools)
        self.unet = UNet(2 * coils, 2 * coils, chans=chans, num_pools=num_pools, drop_prob=drop_prob)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        x = to_channels(x)  # (B, 2C, H, W): [re_1..re_C, im_1..im_C]
        groups = x.reshape(b, 2, c * h * w)  # real group, imaginary group
        mean = groups.mean(2).reshape(b, 2, 1, 1)
        std = groups.std(2).reshape(b, 2, 1, 1)
        std = torch.where(std > 0, std, torch.ones_like(std))  # an all-zero input (no signal) stays finite
        x = ((x.reshape(b, 2, c, h, w) - mean[..., None]) / std[..., None]).reshape(b, 2 * c, h, w)
        ph, pw = -h % self.multiple, -w % self.multiple
        x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])  # centre in (H + ph, W + pw)
        x = self.unet(x)
        x = x[..., ph // 2 : ph // 2 + h, pw // 2 : pw // 2 + w]  # (B, 2C, H, W)
        x = x.reshape(b, 2, c, h, w) * std[..., None] + mean[..., None]
        return from_channels(x.reshape(b, 2 * c, h, w))


class SensitivityModel(nn.Module):
    """Coil maps from the measured k-space: ``S = NormUNet(F^-1 ACS(k0)) / RSS``, per coil.

    (B, coils, H, W) complex k-space and (B|1, 1, 1, W) mask -> (B, coils, H, W) complex maps
    with RSS = 1 at every pixel.
    """

    def __init__(self, chans: int, num_pools: int, mask_center: bool = True):
        super().__init__()
        self.mask_center = mask_center
        self.norm_unet = NormUNet(chans, num_pools)

    def forward(
        self, masked_kspace: torch.Tensor, mask: torch.Tensor, num_low_frequencies: int | torch.Tensor | None = None
    ) -> torch.Tensor:
        if self.mask_center:
            masked_kspace = masked_kspace * acs_mask(mask, num_low_frequencies).to(masked_kspace.device)
        images = ifft2c(masked_kspace)  # (B, coils, H, W) low-resolution coil images
        b, c, h, w = images.shape
        maps = self.norm_unet(images.reshape(b * c, 1, h, w)).reshape(b, c, h, w)  # one coil at a time
        return maps / rss(maps)


class VarNetBlock(nn.Module):
    """One cascade: ``k <- k - eta M (k - k0) - F S UNet(S^H F^-1 k)`` (eta learnable, init 1)."""

    def __init__(self, chans: int, num_pools: int):
        super().__init__()
        self.model = NormUNet(chans, num_pools)
        self.dc_weight = nn.Parameter(torch.ones(1))

    def forward(
        self, kspace: torch.Tensor, ref_kspace: torch.Tensor, mask: torch.Tensor, sens_maps: torch.Tensor
    ) -> torch.Tensor:
        soft_dc = self.dc_weight * mask * (kspace - ref_kspace)
        model_term = sens_expand(self.model(sens_reduce(kspace, sens_maps)), sens_maps)
        return kspace - soft_dc - model_term


class VarNet(nn.Module):
    """E2E VarNet: (B, coils, H, W) complex masked k-space, (B|1, 1, 1, W) mask -> (B, 1, H, W)
    RSS magnitude image (cropped to ``crop_size`` if given)."""

    def __init__(self, cfg: VarNetConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or VarNetConfig()
        self.sens_net = SensitivityModel(cfg.sens_chans, cfg.sens_pools, cfg.mask_center)
        self.cascades = nn.ModuleList([VarNetBlock(cfg.chans, cfg.num_pools) for _ in range(cfg.num_cascades)])

    def forward(
        self,
        masked_kspace: torch.Tensor,
        mask: torch.Tensor,
        num_low_frequencies: int | torch.Tensor | None = None,
        crop_size: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        if not (isinstance(masked_kspace, torch.Tensor) and masked_kspace.is_complex() and masked_kspace.ndim == 4):
            got = (
                f"{masked_kspace.dtype} {tuple(masked_kspace.shape)}"
                if isinstance(masked_kspace, torch.Tensor)
                else type(masked_kspace).__name__
            )
            raise TypeError(f"VarNet: expected complex k-space of shape (B, coils, H, W), got {got}")
        expected = {torch.float64: torch.complex128}.get(next(self.parameters()).dtype, torch.complex64)
        if masked_kspace.dtype != expected:
            raise TypeError(
                f"VarNet: expected {expected} k-space (the model's precision), got {masked_kspace.dtype}; "
                f"use kspace.to({expected})"
            )
        require_mask(mask, "VarNet mask")
        warn_nonfinite(masked_kspace, "VarNet: the masked k-space")
        if mask.ndim != 4 or mask.shape[1:3] != (1, 1) or mask.shape[-1] != masked_kspace.shape[-1]:
            raise ValueError(f"VarNet: expected a mask of shape (B|1, 1, 1, {masked_kspace.shape[-1]}), got {tuple(mask.shape)}")
        mask = mask.to(masked_kspace.real.dtype)
        sens_maps = self.sens_net(masked_kspace, mask, num_low_frequencies)
        kspace = masked_kspace
        for cascade in self.cascades:
            kspace = cascade(kspace, masked_kspace, mask, sens_maps)
        image = rss(ifft2c(kspace))  # (B, 1, H, W)
        return center_crop(image, crop_size) if crop_size else image

    def sens_maps(
        self, masked_kspace: torch.Tensor, mask: torch.Tensor, num_low_frequencies: int | torch.Tensor | None = None
    ) -> torch.Tensor:
        """The estimated coil maps (B, coils, H, W) of the SME module."""
        return self.sens_net(masked_kspace, mask.to(masked_kspace.real.dtype), num_low_frequencies)


def varnet_step(modules: dict, optimizers: dict, batch: dict, l1_weight: float = 0.0) -> dict:
    """The update step: loss ``1 - SSIM`` between the cropped output of ``modules["model"]`` and
    the target, with each slice's data range the maximum of its volume (fastMRI); one step of
    ``optimizers["opt"]``.

    ``l1_weight > 0`` adds ``l1_weight * mean|output - target| / max``: SSIM hardly sees a smooth
    error of the intensity (its luminance term changes by only ``(a - 1)^2 / 2`` for a factor
    ``a``), which PSNR and NMSE do see; the L1 term (fastMRI's loss for its U-Net) pins it down.

    Batches are dicts from :class:`mricourse.VarNetTransform`: ``masked_kspace``, ``mask``,
    ``num_low_frequencies``, ``target`` (B, h, w), ``max_value`` (B,).
    """
    model, optimizer = modules["model"], optimizers["opt"]
    device = next(model.parameters()).device
    target = batch["target"].to(device)[:, None]  # (B, 1, h, w)
    model.train()
    out = model(
        batch["masked_kspace"].to(device), batch["mask"].to(device), batch["num_low_frequencies"], crop_size=target.shape[-2:]
    )
    loss = ssim_loss(target, out, batch["max_value"])
    if l1_weight:
        l1 = torch.stack([(o - t).abs().mean() / float(m) for t, o, m in zip(target, out, batch["max_value"])])
        loss = loss + l1_weight * l1.mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return {"loss": loss.item()}


def _unet_key(key: str) -> str:
    # fastmri.models.Unet names -> mricourse.UNet names
    for old, new in (("down_sample_layers", "down"), ("up_transpose_conv", "up_transpose"), ("up_conv", "up")):
        key = key.replace(f"{old}.", f"{new}.")
    key = key.replace("unet.conv.", "unet.bottleneck.")
    return key.replace(".layers.", ".")


def state_dict_from_fastmri(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a ``fastmri.models.VarNet`` state dict (e.g. a fastMRI pretrained checkpoint) to ours.

    The modules correspond one to one; only the names change (``down_sample_layers`` ->
    ``down``, ``conv`` -> ``bottleneck``, ``up_conv`` -> ``up``, no ``.layers``).
    """
    out = {}
    for key, value in state.items():
        key = key.removeprefix("varnet.")  # the Lightning module's prefix
        if not key.startswith(("sens_net.", "cascades.")):
            raise ValueError(f"state_dict_from_fastmri: unexpected key {key!r}; expected a fastmri VarNet state dict")
        out[_unet_key(key)] = value
    return out
