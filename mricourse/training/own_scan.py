"""The course's models on a scan of your own: intensities on the course's scale, the noise level of
a magnitude image, and a VarNet reconstruction of your own multi-coil k-space or fastMRI file.

- :func:`scale_intensities`: a magnitude image of any scale -> the course's convention (the
  99.5th percentile of the head or brain at 1, as :func:`mricourse.data.brain_slices`, the NIfTI
  readers and the cine data have it), with no tissue labels: the head is found by Otsu's threshold.
- :func:`estimate_noise`: the Gaussian noise level ``sigma`` (per real and imaginary part) of a
  magnitude image from its background, where the magnitude is Rayleigh distributed.
- :func:`varnet_reconstruct`: a trained :class:`mricourse.VarNet` (``mc.pretrained("varnet")`` by
  default) on k-space (coils, H, W) or (slices, coils, H, W), or a fastMRI HDF5 file, with the
  inputs made as the data set's :class:`mricourse.data.VarNetTransform` makes them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from scipy import ndimage

from ..data.brain import brain_percentile
from ..data.datasets import crop_readout
from ..data.fastmri import read_fastmri
from ..masks import MaskFunc
from .recipes.varnet import ACCELERATIONS
from .runs import available_weights, pretrained

__all__ = ["Scaled", "Reconstruction", "head_mask", "scale_intensities", "estimate_noise", "varnet_reconstruct"]

#: the course's intensity convention: this quantile of the head (or brain) is 1
REFERENCE_QUANTILE = 0.995


class Scaled(NamedTuple):
    """What :func:`scale_intensities` returns: ``image`` = original / ``scale`` (undo: ``image * scale``)."""

    image: torch.Tensor
    scale: float
    foreground: torch.Tensor


class Reconstruction(NamedTuple):
    """What :func:`varnet_reconstruct` returns: ``image`` (slices, h, w) or (h, w) magnitude,
    ``mask`` (W,) the columns used (1 = sampled), ``num_low_frequencies`` (0: found by the VarNet)."""

    image: torch.Tensor
    mask: torch.Tensor
    num_low_frequencies: int


def _magnitude(image, what: str, nonnegative: bool = False) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(image) if not isinstance(image, torch.Tensor) else image)
    if x.is_complex():
        raise ValueError(f"{what}: expected a real magnitude image (2D or 3D), got complex {tuple(x.shape)}; take .abs() first")
    if x.ndim not in (2, 3) or min(x.shape) < 2:
        raise ValueError(f"{what}: expected a 2D (H, W) or 3D (D, H, W) magnitude image, got shape {tuple(x.shape)}")
    x = x.detach().cpu().float()
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{what}: the image has NaN or inf values")
    if nonnegative and bool((x < 0).any()):
        raise ValueError(f"{what}: expected a magnitude image (values >= 0), got a minimum of {float(x.min()):.3g}")
    return x


def otsu_threshold(x: torch.Tensor, bins: int = 256) -> float:
    """Otsu's threshold of the values of ``x``: the one that maximises the between-class variance."""
    hist, edges = np.histogram(x.numpy().ravel(), bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist).astype(np.float64)
    w1 = w0[-1] - w0
    s0 = np.cumsum(hist * centres)
    m0 = s0 / np.maximum(w0, 1)
    m1 = (s0[-1] - s0) / np.maximum(w1, 1)
    return float(centres[np.argmax(w0 * w1 * (m0 - m1) ** 2)])


def head_mask(image) -> torch.Tensor:
    """The head (foreground) of a magnitude image (H, W) or (D, H, W), without labels: the voxels
    above Otsu's threshold after a 3-voxel mean filter (so noise neither punches holes nor adds
    islands), the largest connected region, holes filled (in 3D, also slice by slice). Otsu's
    threshold may fall between dark and bright tissue (white matter in T2w): the filling then
    restores the inside of the head. Bool, same shape."""
    x = torch.from_numpy(ndimage.uniform_filter(_magnitude(image, "head_mask").numpy(), 3))
    raw = (x > otsu_threshold(x)).numpy()
    lab, n = ndimage.label(raw)
    if n > 1:
        raw = lab == np.argmax(np.bincount(lab.ravel())[1:]) + 1
    raw = ndimage.binary_fill_holes(raw)
    if raw.ndim == 3:  # dark tissue inside the head, open at the first or last slice: filled slice by slice
        raw = np.stack([ndimage.binary_fill_holes(s) for s in raw])
    return torch.from_numpy(raw)


def scale_intensities(image, foreground=None, quantile: float = REFERENCE_QUANTILE) -> Scaled:
    """Put a magnitude image (H, W) or (D, H, W), of any scale (a tensor or numpy array), on the
    course's intensity scale: ``image / scale`` with ``scale`` the ``quantile`` (99.5th percentile)
    of the foreground, the head found by :func:`head_mask` unless ``foreground`` is given. The
    course's data sets are scaled so (their brain's 99.5th percentile is 1); a high percentile, not
    the maximum, so that a few bright vessels or artefacts do not set the scale. The head includes
    the scalp: where it is brighter than the brain (fat in T1w) the scale comes out higher than the
    brain-only one (about 15 % for the course's T1w slices; within 1 % for T2w, PDw and FLAIR);
    give ``foreground`` (a brain mask) for a skull-stripped convention.

    Returns :class:`Scaled` (``image`` float32, ``scale``, ``foreground``); ``image * scale`` undoes it.
    """
    x = _magnitude(image, "scale_intensities")  # small negative values (interpolation) are allowed
    fg = head_mask(x) if foreground is None else torch.as_tensor(np.asarray(foreground)).bool()
    if fg.shape != x.shape:
        raise ValueError(f"scale_intensities: expected a foreground of the image's shape {tuple(x.shape)}, got {tuple(fg.shape)}")
    scale = float(brain_percentile(x[None], fg[None], quantile)[0])
    if not scale > 0:
        raise ValueError("scale_intensities: the foreground's percentile is 0 (an empty image?)")
    return Scaled(x / scale, scale, fg)


def _rayleigh_factor(t: float) -> float:
    """``E[M^2 | M < c sigma] / (2 sigma^2)`` for a Rayleigh ``M``, with ``t = c^2 / 2``."""
    return 1 - t * math.exp(-t) / (1 - math.exp(-t))


def estimate_noise(image, background=None, cutoff: float = 3.0, iterations: int = 20) -> float:
    """The noise level ``sigma`` (per real and imaginary part, as :func:`mricourse.add_rician_noise`
    and :func:`mricourse.complex_noise` take it) of a magnitude image (H, W) or (D, H, W).

    Uses the background (air) only, where a magnitude image is Rayleigh distributed and
    ``mean(M^2) = 2 sigma^2``. The background, unless given (bool, the image's shape), is what lies
    outside the :func:`head_mask` grown by 3 voxels. Tissue that leaks into it (edges, ghosts) is
    removed by keeping the values below ``cutoff`` x sigma and correcting for the truncation:
    ``sigma^2 = mean(M^2 | M < c sigma) / (2 (1 - t e^-t / (1 - e^-t)))``, ``t = c^2 / 2``, iterated
    from the Rayleigh median's estimate ``median(M) / sqrt(2 ln 2)``. For a single-coil (or SENSE) magnitude image; an RSS image of
    several coils is not Rayleigh in its background (non-central chi), and this underestimates it.
    """
    x = _magnitude(image, "estimate_noise", nonnegative=True)
    if background is None:
        background = ~torch.from_numpy(ndimage.binary_dilation(head_mask(x).numpy(), iterations=3))
    bg = torch.as_tensor(np.asarray(background)).bool()
    if bg.shape != x.shape:
        raise ValueError(
            f"estimate_noise: expected a background mask of the image's shape {tuple(x.shape)}, got {tuple(bg.shape)}"
        )
    m2 = x[bg].double() ** 2
    if m2.numel() < 100:
        raise ValueError(f"estimate_noise: the background has {m2.numel()} voxels; at least 100 are needed (give background=)")
    sigma = float(m2.median().sqrt()) / math.sqrt(2 * math.log(2))  # the Rayleigh median: robust start
    factor = _rayleigh_factor(cutoff**2 / 2)
    for _ in range(iterations):
        keep = m2 < (cutoff * sigma) ** 2
        if not bool(keep.any()):
            break
        sigma = math.sqrt(float(m2[keep].mean()) / (2 * factor))
    return sigma


def _kspace(kspace) -> tuple[torch.Tensor, bool]:
    k = torch.as_tensor(np.asarray(kspace)) if not isinstance(kspace, torch.Tensor) else kspace
    if not k.is_complex() or k.ndim not in (3, 4):
        raise ValueError(
            f"varnet_reconstruct: expected complex multi-coil k-space (coils, H, W) or (slices, coils, H, W), "
            f"got {k.dtype} {tuple(k.shape)}"
        )
    return (k if k.ndim == 4 else k[None]).detach().cpu().to(torch.complex64), k.ndim == 3


def varnet_reconstruct(
    kspace,
    acceleration: int | None = None,
    center_fraction: float | None = None,
    mask=None,
    model=None,
    shape: tuple[int, int] | None = None,
    seed=None,
) -> Reconstruction:
    """A VarNet reconstruction of your own multi-coil k-space.

    Args:
        kspace: complex (coils, H, W) or (slices, coils, H, W), numpy or torch, centred (fastMRI's
            layout: phase encoding on the last dim), or the path of a fastMRI HDF5 file.
        acceleration: undersample with fastMRI's equispaced brain mask at this acceleration (the
            centre fraction of :data:`~mricourse.training.recipes.varnet.ACCELERATIONS` for 4 and 8,
            else ``center_fraction``). None: use ``mask`` or, without one, the data's own
            undersampling (the columns that are zero in every slice, coil and row are unsampled).
        mask: (W,) the sampled columns (1 = sampled), to apply to the data.
        model: a :class:`mricourse.VarNet`; default ``mc.pretrained("varnet")``.
        shape: (h, w) of the image to return; the read-out oversampling (rows beyond h) is removed
            first, as the data set does. Default: a file's target (or header) size, else (H, W).
        seed: the mask's seed; default the file's name (the data set's mask for that file) or 0.

    Returns :class:`Reconstruction`: ``image`` (slices, h, w), or (h, w) for (coils, H, W) input,
    the ``mask`` (W,) used and ``num_low_frequencies``. The inputs are those of
    :class:`~mricourse.data.VarNetTransform` with ``readout_crop=True`` (it does not rescale: the
    VarNet normalises its U-Nets' inputs, so the output has the k-space's own scale).
    """
    single, nlf = False, 0
    if isinstance(kspace, (str, Path)):
        d = read_fastmri(kspace)
        if not d["multicoil"]:
            raise ValueError(f"varnet_reconstruct: {kspace} is single-coil; the VarNet needs multi-coil k-space")
        k = d["kspace"]
        if shape is None:
            shape = tuple(d["target"].shape[-2:]) if d["target"] is not None else tuple(d["attrs"]["recon_size"][:2])
        if mask is None and acceleration is None and d["mask"] is not None:
            mask = d["mask"]  # a test file: its own mask; the VarNet finds the centre (as the data set)
        seed = tuple(map(ord, Path(kspace).name)) if seed is None else seed
    else:
        k, single = _kspace(kspace)
    h, w = k.shape[-2:]
    shape = (h, w) if shape is None else tuple(int(s) for s in shape)
    if len(shape) != 2 or not (0 < shape[0] <= h and 0 < shape[1] <= w):
        raise ValueError(f"varnet_reconstruct: expected shape (h, w) within the k-space's ({h}, {w}), got {shape}")
    if acceleration is not None:
        if mask is not None:
            raise ValueError("varnet_reconstruct: give an acceleration or a mask, not both")
        cf = center_fraction if center_fraction is not None else {a: c for a, c in ACCELERATIONS.values()}.get(acceleration)
        if cf is None:
            raise ValueError(f"varnet_reconstruct: give center_fraction for acceleration {acceleration} (known: 4, 8)")
        m, nlf = MaskFunc("equispaced", (cf,), (acceleration,))(w, seed=0 if seed is None else seed)
    elif mask is not None:
        m = torch.as_tensor(np.asarray(mask, dtype=np.float32)).reshape(-1)
        if m.numel() != w or bool(((m != 0) & (m != 1)).any()):
            raise ValueError(
                f"varnet_reconstruct: expected a mask of {w} zeros and ones (one per column), got {tuple(np.shape(mask))}"
            )
    else:
        m = (k.abs().amax(dim=(0, 1, 2)) > 0).float()  # (W,): a column is sampled if any value is non-zero
    m = m.reshape(1, 1, 1, w).float()
    if not bool(m.any()):
        raise ValueError("varnet_reconstruct: the mask samples no column")
    if model is None:
        if "varnet" not in available_weights():
            raise ValueError(
                "varnet_reconstruct: the package has no long-run VarNet weights; pass model= (e.g. mc.load_run(folder) "
                "of `mricourse train varnet --out folder`)"
            )
        model = pretrained("varnet")
    device, training = next(model.parameters()).device, model.training
    images = []
    with torch.no_grad():
        for s in k:  # (coils, H, W), one slice at a time
            s = crop_readout(s, shape[0]) if h > shape[0] else s
            masked = (s * m[0] + 0.0)[None].to(device)  # + 0.0: no negative zeros, as the data set
            images.append(model.eval()(masked, m.to(device), nlf, crop_size=shape)[0, 0].cpu())
    model.train(training)  # the model's mode as it came
    image = torch.stack(images)
    return Reconstruction(image[0] if single else image, m.reshape(w), nlf)
