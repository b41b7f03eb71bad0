"""Training losses shared by the course's models, N-dimensional where it makes sense.

Registration (VoxelMorph, Balakrishnan et al. 2019): ``mse``, ``ncc_loss`` (local normalised
cross-correlation), ``gradient_loss`` (smoothness of a displacement field), ``dice_loss`` (soft
Dice of one-hot or probability maps). Every loss is to be *minimised*; all are differentiable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["mse", "ncc_loss", "gradient_loss", "dice_loss", "one_hot"]


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
