"""Synthetic lesions and their contrast: one definition for every chapter.

The chapters ask the radiologist's question, "is the small lesion still there?", of
reconstructions (chapters 1 and 3), denoisers (4), translations (5) and super-resolution (7).
They all place and measure a lesion with these functions:

- :func:`lesion_centre`: where to put it, the pixel (voxel) of a tissue farthest from any other
  tissue, or the one of that tissue nearest a given point;
- :func:`disc_and_ring`: a disc (an N-D ball) of ``radius`` pixels and the ring of tissue around
  it, from ``radius + gap`` to ``radius + gap + width`` pixels from the centre;
  :func:`ring_around` gives the same kind of ring around a lesion of any shape (a tumour mask);
- :func:`add_lesion`: ``image * (1 + contrast * lesion)``, bright for ``contrast > 0``, dark for
  ``contrast < 0`` (multiplicative, so the lesion keeps the tissue's texture and bias field);
- :func:`lesion_contrast`: the lesion's contrast against the ring around it::

      C = (mean over the lesion - mean over the ring) / mean over the ring

  It is 0 for an invisible lesion, > 0 for a bright one, < 0 for a dark one. A method's **contrast
  kept** is ``lesion_contrast(output, ...) / lesion_contrast(reference, ...)`` with the same
  masks: 1 when the lesion is as visible as in the reference, 0 when it is gone, negative when
  it turned over.

Masks are boolean ``torch`` tensors; shapes are spatial (``(H, W)`` or ``(D, H, W)``), and an
image may carry leading axes (``(N, C, H, W)``) on which the masks are repeated.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import ndimage

__all__ = ["lesion_centre", "disc_and_ring", "ring_around", "add_lesion", "lesion_contrast"]


def _array(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def lesion_centre(labels, tissue: int = 3, near=None) -> tuple[int, ...]:
    """Where to put a lesion: a pixel (voxel) of ``tissue`` in the label map ``labels``.

    Args:
        labels: integer label map, (H, W) or (D, H, W) (tensor or array; in the course 1 CSF,
            2 GM, 3 WM).
        tissue: the label the lesion goes into (default 3, white matter).
        near: ``None``, or a point (one coordinate per axis of ``labels``, need not lie in the
            tissue).
    Returns:
        the centre as a tuple of ints, one per axis of ``labels``. With ``near=None`` it is the
        tissue pixel farthest from any other label (the maximum of the Euclidean distance
        transform of ``labels == tissue``; pixels beyond the array's edge do not count as other
        tissue); otherwise the tissue pixel nearest ``near``. Ties go to the first pixel in
        C (row-major) order.
    """
    lab = _array(labels)
    if lab.ndim < 1 or lab.size == 0:
        raise ValueError(f"lesion_centre: expected a non-empty label map (H, W) or (D, H, W), got shape {lab.shape}")
    inside = lab == tissue
    if not inside.any():
        raise ValueError(f"lesion_centre: no pixel has label {tissue} (labels present: {sorted(np.unique(lab).tolist())})")
    if near is None:
        depth = ndimage.distance_transform_edt(inside)
        return tuple(int(v) for v in np.unravel_index(int(np.argmax(depth)), lab.shape))
    point = np.asarray(_array(near), dtype=float).reshape(-1)
    if point.shape != (lab.ndim,):
        raise ValueError(
            f"lesion_centre: near must have {lab.ndim} coordinates for labels of shape {lab.shape}, got {point.tolist()}"
        )
    where = np.argwhere(inside)  # (n, ndim), in C order
    return tuple(int(v) for v in where[int(np.argmin(((where - point) ** 2).sum(1)))])


def disc_and_ring(shape, centre, radius: float, gap: float = 1.0, width: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean masks of a disc (an N-D ball) and of the ring around it.

    With ``r`` a pixel's Euclidean distance (in pixels) from ``centre``:
    disc ``r <= radius``; ring ``radius + gap < r <= radius + gap + width``. The ``gap`` keeps
    the ring clear of the disc's partial-volume edge (and of a blurred lesion's shoulder); the
    ring never touches the disc for ``gap >= 0``.

    Args:
        shape: the spatial shape, ``(H, W)`` or ``(D, H, W)``.
        centre: one coordinate per axis (e.g. from :func:`lesion_centre`); may be fractional.
        radius: the disc's radius in pixels, > 0 (a radius of 2.5 gives a disc 5 pixels across).
        gap, width: where the ring starts beyond the disc (>= 0) and how wide it is (> 0), in pixels.
    Returns:
        ``(disc, ring)``, two bool tensors of ``shape``, both non-empty.
    """
    shape = tuple(int(s) for s in shape)
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"disc_and_ring: expected a spatial shape of positive sizes, e.g. (H, W), got {shape}")
    c = [float(v) for v in np.asarray(_array(centre), dtype=float).reshape(-1)]
    if len(c) != len(shape):
        raise ValueError(f"disc_and_ring: centre must have {len(shape)} coordinates for shape {shape}, got {c}")
    for name, value, ok, rule in (
        ("radius", radius, radius > 0, "> 0"),
        ("gap", gap, gap >= 0, ">= 0"),
        ("width", width, width > 0, "> 0"),
    ):
        if not (math.isfinite(value) and ok):
            raise ValueError(f"disc_and_ring: {name} must be finite and {rule} pixels, got {value}")
    axes = torch.meshgrid(*[torch.arange(s, dtype=torch.float64) - ci for s, ci in zip(shape, c)], indexing="ij")
    r = torch.stack(axes).square().sum(0).sqrt()
    disc = r <= radius
    ring = (r > radius + gap) & (r <= radius + gap + width)
    if not disc.any():
        raise ValueError(
            f"disc_and_ring: the disc of radius {radius} at {c} holds no pixel of shape {shape}: put the centre inside the image"
        )
    if not ring.any():
        raise ValueError(
            f"disc_and_ring: the ring {radius + gap}-{radius + gap + width} px around {c} holds no pixel of shape {shape}"
        )
    return disc, ring


def ring_around(lesion, gap: float = 1.0, width: float = 2.0, ndim: int | None = None) -> torch.Tensor:
    """The ring around a lesion of any shape: pixels whose Euclidean distance to the nearest
    lesion pixel is in ``(gap, gap + width]`` (for a disc, close to :func:`disc_and_ring`'s ring).

    Args:
        lesion: bool mask, ``(..., *spatial)``; leading axes are separate images.
        gap: >= 0, width: > 0, in pixels.
        ndim: how many trailing axes are spatial (default: all of them). For a batch of 2D
            slices (N, 1, H, W) pass ``ndim=2``, so that the ring of one slice does not reach
            into the next.
    Returns:
        a bool tensor of ``lesion``'s shape (empty around an image without lesion pixels).
    """
    m = torch.as_tensor(lesion).detach().cpu()
    if m.dtype != torch.bool:
        raise ValueError(f"ring_around: expected a boolean lesion mask, got {m.dtype}")
    ndim = m.ndim if ndim is None else int(ndim)
    if not 1 <= ndim <= m.ndim:
        raise ValueError(f"ring_around: ndim must be 1..{m.ndim} for a mask of shape {tuple(m.shape)}, got {ndim}")
    if not (math.isfinite(gap) and gap >= 0 and math.isfinite(width) and width > 0):
        raise ValueError(f"ring_around: expected gap >= 0 and width > 0 pixels, got gap {gap}, width {width}")
    if not m.any():
        raise ValueError("ring_around: the lesion mask is empty")
    flat = m.reshape(-1, *m.shape[m.ndim - ndim :]).numpy()
    out = np.zeros_like(flat)
    for k, one in enumerate(flat):
        if one.any():
            dist = ndimage.distance_transform_edt(~one)  # 0 inside the lesion
            out[k] = (dist > gap) & (dist <= gap + width)
    return torch.from_numpy(out).reshape(m.shape)


def add_lesion(image: torch.Tensor, lesion, contrast: float) -> torch.Tensor:
    """``image * (1 + contrast * lesion)``: a lesion ``1 + contrast`` times as bright as the tissue
    it replaces (``contrast = 0.6``: 60 % brighter, a T2-bright plaque; ``-0.5``: half as bright,
    a T1 "black hole"). Returns a new tensor; ``image`` is not changed.

    Args:
        image: real tensor ``(..., *spatial)``.
        lesion: mask of ``spatial`` shape, equal to the trailing axes of ``image`` (or of the
            whole shape of ``image``): bool, or float weights in [0, 1] for a soft-edged lesion
            (a Gaussian spot).
        contrast: > -1 (a contrast of -1 or less would make the lesion zero or negative).
    """
    if not isinstance(image, torch.Tensor) or image.is_complex() or not image.is_floating_point():
        raise ValueError(
            f"add_lesion: expected a real floating-point tensor image, got {type(image).__name__} {getattr(image, 'dtype', '')}"
        )
    w = torch.as_tensor(lesion).to(device=image.device)
    if w.ndim > image.ndim or tuple(image.shape[image.ndim - w.ndim :]) != tuple(w.shape):
        raise ValueError(
            f"add_lesion: the lesion mask's shape {tuple(w.shape)} must equal the image's last axes, image {tuple(image.shape)}"
        )
    w = w.to(image.dtype)
    if w.numel() and (w.min() < 0 or w.max() > 1):
        raise ValueError(f"add_lesion: lesion weights must lie in [0, 1], got {float(w.min())}..{float(w.max())}")
    if not (math.isfinite(contrast) and contrast > -1):
        raise ValueError(f"add_lesion: contrast must be > -1 (a lesion of (1 + contrast) x the tissue), got {contrast}")
    return image * (1 + contrast * w)


def lesion_contrast(image, lesion, ring) -> float:
    """The lesion's contrast against its surroundings, the one measure of the course::

        C = (mean(image[lesion]) - mean(image[ring])) / mean(image[ring])

    0: the lesion is invisible; 0.6: 60 % brighter than the ring; -0.5: half as bright.
    The contrast *kept* by a method is ``lesion_contrast(output) / lesion_contrast(reference)``
    (same masks).

    Args:
        image: real tensor or array ``(..., *spatial)``.
        lesion, ring: disjoint, non-empty bool masks of the same shape, equal to the trailing
            axes of ``image`` (or its whole shape); with leading axes (several images) the
            means run over the masked pixels of all of them together.
    Returns:
        a float.
    """
    x = image if isinstance(image, torch.Tensor) else torch.as_tensor(np.asarray(image))
    if x.is_complex():
        raise ValueError(f"lesion_contrast: expected a real image (take .abs() of a complex one), got {x.dtype}")
    lesion, ring = torch.as_tensor(lesion), torch.as_tensor(ring)
    if lesion.dtype != torch.bool or ring.dtype != torch.bool:
        raise ValueError(f"lesion_contrast: expected boolean lesion and ring masks, got {lesion.dtype} and {ring.dtype}")
    if tuple(lesion.shape) != tuple(ring.shape):
        raise ValueError(f"lesion_contrast: lesion and ring masks differ in shape, {tuple(lesion.shape)} and {tuple(ring.shape)}")
    if lesion.ndim > x.ndim or tuple(x.shape[x.ndim - lesion.ndim :]) != tuple(lesion.shape):
        raise ValueError(
            f"lesion_contrast: the masks' shape {tuple(lesion.shape)} must equal the image's last axes, image {tuple(x.shape)}"
        )
    for name, m in (("lesion", lesion), ("ring", ring)):
        if not m.any():
            raise ValueError(f"lesion_contrast: the {name} mask is empty")
    if (lesion & ring).any():
        raise ValueError("lesion_contrast: the lesion and ring masks overlap; the ring must lie outside the lesion")
    x = x.detach().cpu().double()
    lesion, ring = lesion.cpu().expand(x.shape), ring.cpu().expand(x.shape)
    inside, around = x[lesion].mean(), x[ring].mean()
    if not torch.isfinite(around) or around == 0:
        raise ValueError(f"lesion_contrast: the ring's mean is {float(around)}; the contrast needs a finite, non-zero ring mean")
    return float((inside - around) / around)
