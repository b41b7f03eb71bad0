"""Image-quality and overlap metrics with the fastMRI definitions.

NMSE ``||gt - pred||^2 / ||gt||^2``; PSNR with ``data_range = gt.max()``; SSIM as the mean over
slices of a 7x7 uniform-window SSIM (k1 0.01, k2 0.03, sample covariance), identical to
``skimage.metrics.structural_similarity`` and to fastMRI's evaluation. All functions take torch
tensors or numpy arrays; ``ssim`` is differentiable (use ``1 - ssim`` as a loss).

Registration: ``jacobian_determinant`` of ``x -> x + u(x)``, ``folding`` (% of voxels with
det J <= 0) and ``displacement_error`` (mean end-point error against a true displacement).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .fft import warn_nonfinite

__all__ = [
    "nmse",
    "psnr",
    "ssim",
    "ssim_tensor",
    "dice",
    "dice_per_label",
    "evaluate",
    "jacobian_determinant",
    "folding",
    "displacement_error",
    "hd95",
    "brats_scores",
    "BRATS_REGIONS",
]


def _t(x) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


def _pair(gt, pred, name: str):
    gt, pred = _t(gt), _t(pred)
    if gt.shape != pred.shape:
        raise ValueError(f"{name}: expected gt and pred of the same shape, got {tuple(gt.shape)} and {tuple(pred.shape)}")
    if gt.is_complex() or pred.is_complex():
        raise TypeError(f"{name}: expected real (magnitude) images, got {gt.dtype} and {pred.dtype}")
    warn_nonfinite(gt, f"{name}: gt") or warn_nonfinite(pred, f"{name}: pred")
    return gt.double(), pred.double()


def nmse(gt, pred) -> float:
    """Normalised mean squared error ``||gt - pred||^2 / ||gt||^2``."""
    gt, pred = _pair(gt, pred, "nmse")
    return float(((gt - pred) ** 2).sum() / (gt**2).sum())


def psnr(gt, pred, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB, ``data_range = gt.max()`` by default (fastMRI)."""
    gt, pred = _pair(gt, pred, "psnr")
    data_range = float(gt.max()) if data_range is None else data_range
    mse = float(((gt - pred) ** 2).mean())
    return float("inf") if mse == 0 else 10 * math.log10(data_range**2 / mse)


def ssim(gt, pred, data_range: float | None = None, win_size: int = 7, k1: float = 0.01, k2: float = 0.03) -> float:
    """Mean SSIM over the slices of (..., H, W) images (fastMRI's definition), a float like
    :func:`psnr`; :func:`ssim_tensor` is the same number as a differentiable 0-dim tensor and
    :func:`mricourse.losses.ssim_loss` the training loss.

    ``data_range`` defaults to ``gt.max()`` over the whole input (fastMRI: per volume).
    """
    with torch.no_grad():
        return float(ssim_tensor(gt, pred, data_range, win_size, k1, k2))


def ssim_tensor(gt, pred, data_range: float | None = None, win_size: int = 7, k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """:func:`ssim` as a 0-dim tensor that gradients flow through.

    ``data_range`` defaults to ``gt.max()`` over the whole input (fastMRI: per volume).
    """
    gt, pred = _t(gt), _t(pred)
    if gt.shape != pred.shape or gt.ndim < 2:
        raise ValueError(
            f"ssim: expected gt and pred of the same (..., H, W) shape, got {tuple(gt.shape)} and {tuple(pred.shape)}"
        )
    if min(gt.shape[-2:]) < win_size:
        raise ValueError(f"ssim: images must be at least {win_size}x{win_size}, got {tuple(gt.shape[-2:])}")
    warn_nonfinite(gt, "ssim: gt") or warn_nonfinite(pred, "ssim: pred")
    data_range = gt.max() if data_range is None else data_range
    if bool((torch.as_tensor(data_range) <= 0).any()):
        raise ValueError(
            f"ssim: data_range must be > 0, got {torch.as_tensor(data_range).min().item()} (gt.max() when not given: "
            "is gt all zeros?); pass data_range=, e.g. the volume's maximum"
        )
    x = gt.reshape(-1, 1, *gt.shape[-2:])
    y = pred.reshape(-1, 1, *pred.shape[-2:]).to(x.dtype)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    w = torch.ones(1, 1, win_size, win_size, dtype=x.dtype, device=x.device) / win_size**2
    n = win_size**2
    cov_norm = n / (n - 1)
    ux, uy = F.conv2d(x, w), F.conv2d(y, w)
    uxx, uyy, uxy = F.conv2d(x * x, w), F.conv2d(y * y, w), F.conv2d(x * y, w)
    vx, vy, vxy = cov_norm * (uxx - ux * ux), cov_norm * (uyy - uy * uy), cov_norm * (uxy - ux * uy)
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    return s.mean()


def _label_maps(pred, target, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    pred, target = _t(pred), _t(target)
    if pred.shape != target.shape:
        raise ValueError(f"{name}: expected label maps of the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    return pred, target


def _overlap(p: torch.Tensor, t: torch.Tensor) -> float:
    denom = float(p.sum() + t.sum())
    return 1.0 if denom == 0 else 2.0 * float((p & t).sum()) / denom


def dice(pred, target) -> float:
    """Dice overlap ``2 |P & T| / (|P| + |T|)`` of two binary masks (non-zero = inside); empty vs
    empty counts as 1. :func:`dice_per_label` scores each label of two label maps."""
    pred, target = _label_maps(pred, target, "dice")
    return _overlap(pred.bool(), target.bool())


def dice_per_label(pred, target, labels) -> dict[int, float]:
    """``{label: dice}`` of two label maps, for each value in ``labels`` (empty vs empty: 1)."""
    pred, target = _label_maps(pred, target, "dice_per_label")
    return {int(lab): _overlap(pred == lab, target == lab) for lab in labels}


def evaluate(gt, pred) -> dict[str, float]:
    """NMSE, PSNR and SSIM of one volume (slices, H, W) with fastMRI's definitions."""
    return {"nmse": nmse(gt, pred), "psnr": psnr(gt, pred), "ssim": float(ssim(gt, pred))}


def _flow(flow, name: str) -> torch.Tensor:
    """A displacement field (B, dims, *spatial) as float64."""
    flow = _t(flow).double()
    dims = flow.ndim - 2
    if dims not in (2, 3) or flow.shape[1] != dims:
        raise ValueError(f"{name}: expected a displacement field (B, dims, *spatial) with dims 2 or 3, got {tuple(flow.shape)}")
    return flow


def jacobian_determinant(flow) -> torch.Tensor:
    """``det(I + grad u)`` at every voxel of a displacement ``u`` (B, dims, *spatial) in voxels.

    Central differences inside, one-sided at the border (``numpy.gradient``). Returns
    (B, *spatial) float64: 1 for a translation, < 1 where the map compresses, <= 0 where it folds.
    """
    flow = _flow(flow, "jacobian_determinant")
    dims = flow.shape[1]
    # grads[i][j] = d u_i / d x_j, each (B, *spatial)
    grads = [torch.gradient(flow[:, i], dim=tuple(range(1, dims + 1))) for i in range(dims)]
    jac = torch.stack([torch.stack(g, dim=-1) for g in grads], dim=-2)  # (B, *spatial, dims, dims)
    jac = jac + torch.eye(dims, dtype=jac.dtype, device=jac.device)
    return torch.linalg.det(jac)


def folding(flow, mask=None) -> float:
    """Percentage of voxels (inside ``mask`` if given, shape (B|1, *spatial)) where det J <= 0."""
    det = jacobian_determinant(flow)
    folded = det <= 0
    if mask is None:
        return 100.0 * float(folded.double().mean())
    mask = _t(mask).bool().reshape(-1, *det.shape[1:]).expand_as(det)
    return 100.0 * float(folded[mask].double().mean()) if mask.any() else 0.0


def displacement_error(flow, true_flow, mask=None) -> float:
    """Mean end-point error ``mean_x |u(x) - u_true(x)|`` in voxels (inside ``mask`` if given)."""
    flow, true_flow = _flow(flow, "displacement_error"), _flow(true_flow, "displacement_error")
    if flow.shape != true_flow.shape:
        raise ValueError(
            f"displacement_error: expected fields of the same shape, got {tuple(flow.shape)} and {tuple(true_flow.shape)}"
        )
    err = (flow - true_flow).norm(dim=1)  # (B, *spatial)
    if mask is None:
        return float(err.mean())
    mask = _t(mask).bool().reshape(-1, *err.shape[1:]).expand_as(err)
    return float(err[mask].mean())


#: BraTS evaluation regions: whole tumour, tumour core, enhancing tumour
BRATS_REGIONS = {"WT": (1, 2, 4), "TC": (1, 4), "ET": (4,)}


def hd95(pred, target, spacing=1.0) -> float:
    """95th-percentile symmetric Hausdorff distance between two binary masks (2D or 3D), in the
    units of ``spacing``: ``max(P95 of d(surface P, surface T), P95 of d(surface T, surface P))``.
    Both empty: 0; exactly one empty: ``inf``."""
    from scipy import ndimage

    p, t = np.asarray(_t(pred)).astype(bool), np.asarray(_t(target)).astype(bool)
    if p.shape != t.shape:
        raise ValueError(f"hd95: expected masks of the same shape, got {p.shape} and {t.shape}")
    if not p.any() and not t.any():
        return 0.0
    if not p.any() or not t.any():
        return float("inf")
    sp = np.broadcast_to(np.asarray(spacing, dtype=float), (p.ndim,))
    surf_p = p & ~ndimage.binary_erosion(p)
    surf_t = t & ~ndimage.binary_erosion(t)
    # every distance runs between surface voxels: the box around both surfaces holds them all, and
    # the distance transforms inside it are exactly those of the whole image there
    box = tuple(slice(i.min(), i.max() + 1) for i in np.nonzero(surf_p | surf_t))
    surf_p, surf_t = surf_p[box], surf_t[box]
    d_to_t = ndimage.distance_transform_edt(~surf_t, sampling=sp)
    d_to_p = ndimage.distance_transform_edt(~surf_p, sampling=sp)
    return float(max(np.percentile(d_to_t[surf_p], 95), np.percentile(d_to_p[surf_t], 95)))


def brats_scores(pred, target, spacing=1.0) -> dict[str, float]:
    """Dice and HD95 of the BraTS regions WT {1,2,4}, TC {1,4}, ET {4} of two label maps
    (empty vs empty counts as Dice 1 and HD95 0)."""
    pred, target = _t(pred), _t(target)
    out = {}
    for name, labels in BRATS_REGIONS.items():
        p = torch.isin(pred, torch.tensor(labels))
        t = torch.isin(target, torch.tensor(labels))
        out[f"dice_{name}"] = dice(p, t)
        out[f"hd95_{name}"] = hd95(p, t, spacing)
    return out
