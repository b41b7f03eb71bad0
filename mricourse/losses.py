"""Every training loss of the course, N-dimensional where it makes sense. Each is to be
*minimised*; all are differentiable.

- adversarial: ``discriminator_loss`` and ``generator_loss`` (the DCGAN's binary cross-entropy on
  logits, non-saturating for the generator; also SRGAN's), ``lsgan_loss`` (least squares:
  CycleGAN, Vox2Vox);
- image to image: ``ssim_loss`` (VarNet, fastMRI's), ``cycle_loss`` (CycleGAN's L1 cycle
  consistency), ``gradient_difference_loss`` (edges; the 3D SRGAN);
- segmentation: ``generalised_dice_loss`` (Vox2Vox), ``dice_loss`` (soft Dice; VoxelMorph's
  auxiliary label loss), ``one_hot``;
- registration (VoxelMorph, Balakrishnan et al. 2019): ``mse`` and ``ncc_loss`` (local normalised
  cross-correlation) between the fixed and the warped image, ``gradient_loss`` (smoothness of a
  displacement field).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .metrics import ssim_tensor

__all__ = [
    "discriminator_loss",
    "generator_loss",
    "lsgan_loss",
    "cycle_loss",
    "gradient_difference_loss",
    "generalised_dice_loss",
    "ssim_loss",
    "mse",
    "ncc_loss",
    "gradient_loss",
    "dice_loss",
    "one_hot",
]


def _same(a: torch.Tensor, b: torch.Tensor, name: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name}: expected two tensors of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")


def mse(fixed: torch.Tensor, warped: torch.Tensor) -> torch.Tensor:
    """Mean squared intensity difference ``mean((f - m o phi)^2)``."""
    _same(fixed, warped, "mse")
    return ((fixed - warped) ** 2).mean()


def ncc_loss(fixed: torch.Tensor, warped: torch.Tensor, win: int = 9, eps: float = 1e-5) -> torch.Tensor:
    """Minus the local (squared) normalised cross-correlation over ``win^n`` windows.

    For every voxel ``p`` with window means ``f_bar``, ``m_bar``::

        cc(p) = (sum (f - f_bar)(m - m_bar))^2 / (sum (f - f_bar)^2 * sum (m - m_bar)^2)

    and the loss is ``-mean_p cc(p)``, in [-1, 0]: -1 when ``warped`` is a positive or negative
    affine function of ``fixed`` in every window. Windows are cut at the image border (the sums
    run over the voxels inside). Images (B, 1, *spatial), 2D or 3D.
    """
    _same(fixed, warped, "ncc_loss")
    dims = fixed.ndim - 2
    if dims not in (2, 3) or fixed.shape[1] != 1:
        raise ValueError(f"ncc_loss: expected images (B, 1, H, W) or (B, 1, D, H, W), got {tuple(fixed.shape)}")
    conv = F.conv2d if dims == 2 else F.conv3d
    kernel = torch.ones(1, 1, *([win] * dims), device=fixed.device, dtype=fixed.dtype)

    def box(x):  # window sums, same size as x (windows are cut at the border)
        return conv(x, kernel, padding=win // 2)

    n = box(torch.ones_like(fixed[:1]))  # voxels per window (fewer at the border)
    f_sum, m_sum = box(fixed), box(warped)
    ff, mm, fm = box(fixed * fixed), box(warped * warped), box(fixed * warped)
    cross = fm - f_sum * m_sum / n  # sum (f - f_bar)(m - m_bar)
    f_var = ff - f_sum * f_sum / n  # sum (f - f_bar)^2
    m_var = mm - m_sum * m_sum / n
    cc = cross * cross / (f_var * m_var + eps)
    return -cc.mean()


def gradient_loss(flow: torch.Tensor, penalty: str = "l2") -> torch.Tensor:
    """Smoothness ``mean over axes of mean |d u / d x_i|^p`` with forward differences (p = 2 or 1).

    ``flow`` (B, dims, *spatial); a constant field (a translation) costs 0.
    """
    dims = flow.ndim - 2
    if dims not in (2, 3) or flow.shape[1] != dims:
        raise ValueError(f"gradient_loss: expected a flow (B, dims, *spatial) with dims 2 or 3, got {tuple(flow.shape)}")
    if penalty not in ("l1", "l2"):
        raise ValueError(f"gradient_loss: expected penalty 'l1' or 'l2', got {penalty!r}")
    total = 0.0
    for ax in range(2, 2 + dims):
        d = torch.diff(flow, dim=ax)
        total = total + (d * d if penalty == "l2" else d.abs()).mean()
    return total / dims


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Integer label maps (B, 1, *spatial) -> float one-hot maps (B, num_classes, *spatial)."""
    if labels.ndim < 3 or labels.shape[1] != 1 or labels.is_floating_point():
        raise ValueError(f"one_hot: expected integer labels (B, 1, *spatial), got {labels.dtype} {tuple(labels.shape)}")
    oh = F.one_hot(labels[:, 0].long(), num_classes)  # (B, *spatial, K)
    return oh.movedim(-1, 1).float()


def dice_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6, include_background: bool = False) -> torch.Tensor:
    """Soft Dice loss ``1 - mean_k 2 sum(p_k t_k) / (sum p_k + sum t_k)``.

    ``pred`` and ``target`` are (B, K, *spatial) probabilities or one-hot maps (e.g. warped one-hot
    labels); channel 0 (background) is left out unless ``include_background``.
    """
    _same(pred, target, "dice_loss")
    if not include_background:
        pred, target = pred[:, 1:], target[:, 1:]
    axes = tuple(range(2, pred.ndim))
    inter = (pred * target).sum(axes)
    denom = pred.sum(axes) + target.sum(axes)
    return 1.0 - ((2 * inter + eps) / (denom + eps)).mean()


# ---------------------------------------------------------------------------- adversarial


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, real_label: float = 1.0) -> torch.Tensor:
    """``-[log D(x) + log(1 - D(G(z)))]`` as binary cross-entropy on logits (real target ``real_label``)."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_label))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss ``-log D(G(z))`` (strong gradients while D wins)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def lsgan_loss(logits: torch.Tensor, target_is_real: bool) -> torch.Tensor:
    """Least-squares GAN loss: mean of (D(x) - 1)^2 for real targets, D(x)^2 for fake."""
    return F.mse_loss(logits, torch.full_like(logits, 1.0 if target_is_real else 0.0))


# ------------------------------------------------------------------------- image to image


def ssim_loss(target: torch.Tensor, pred: torch.Tensor, data_range) -> torch.Tensor:
    """``1 - mean_i SSIM(target_i, pred_i)`` over a batch, each item with its own data range
    (``data_range``: one value per item, e.g. the volume's maximum; fastMRI's SSIM loss)."""
    if len(target) != len(pred) or len(target) != len(data_range):
        raise ValueError(
            f"ssim_loss: expected a data range per item, got {len(target)} targets, {len(pred)} predictions "
            f"and {len(data_range)} ranges"
        )
    return 1 - torch.stack([ssim_tensor(t, o, data_range=float(m)) for t, o, m in zip(target, pred, data_range)]).mean()


def cycle_loss(real: torch.Tensor, reconstructed: torch.Tensor) -> torch.Tensor:
    """Cycle consistency: mean |F(G(x)) - x|."""
    return (reconstructed - real).abs().mean()


def gradient_difference_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Gradient difference loss (Mathieu et al. 2016), squared, over all spatial axes:
    ``sum_axes mean( (|d_a target| - |d_a pred|)^2 )``: penalises blurred or invented edges."""
    loss = pred.new_zeros(())
    for axis in range(2, pred.ndim):
        loss = loss + ((target.diff(dim=axis).abs() - pred.diff(dim=axis).abs()) ** 2).mean()
    return loss


# --------------------------------------------------------------------------- segmentation


def generalised_dice_loss(probs: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Generalised Dice loss (Sudre et al. 2017) of probabilities (B, K, ...) and one-hot or
    class-index targets: ``1 - 2 sum_k w_k sum_i p_ki r_ki / sum_k w_k sum_i (p_ki + r_ki)`` with
    ``w_k = 1 / (sum_i r_ki)^2``, background included as a class. A class absent from the batch
    (``w_k`` infinite) gets the largest weight of the present classes, as in NiftyNet and MONAI:
    predicting it anywhere is then penalised like a false positive of the rarest class present."""
    if target.dtype == torch.long:
        target = F.one_hot(target.squeeze(1), probs.shape[1]).movedim(-1, 1).to(probs.dtype)
    if target.shape != probs.shape:
        raise ValueError(
            f"generalised_dice_loss: expected targets of shape {tuple(probs.shape)} (one-hot) or class indices, got {tuple(target.shape)}"
        )
    dims = [0, *range(2, probs.ndim)]
    ref = target.sum(dims)
    w = 1.0 / ref.clamp_min(1.0) ** 2
    w = torch.where(ref > 0, w, w[ref > 0].max() if (ref > 0).any() else torch.ones_like(w))
    num = (w * (probs * target).sum(dims)).sum()
    den = (w * (probs + target).sum(dims)).sum()
    return 1 - 2 * num / den.clamp_min(eps)
