"""Fast 2D digital-brain slices for the chapters that learn from images (GANs, denoising,
translation, super-resolution, registration, reconstruction).

Each "subject" takes an axial slice near the middle of the 1 mm atlas, resampled to the output
grid (240 mm field of view), and moves it by its own 2D affine + diffeomorphic deformation; tissue
jitter, texture, bias and Rician noise follow as in 3D. Subject ``i`` depends only on
``(seed, i)``, so disjoint seeds or index ranges give train/test splits by subject.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from ..spatial import gaussian_blur, warp
from .atlas import CONCENTRATION, TISSUE_NAMES, load_atlas, tissue_labels
from .brain import CONTRASTS, brain_percentile, subject_parameters, synthesize
from .fields import bias_field, random_deformation, rng_for, torch_generator

__all__ = ["brain_slices", "FOV_MM", "Z_RANGE_MM"]

FOV_MM = 240.0  # field of view along the longer image side
Z_RANGE_MM = (-4.0, 24.0)  # MNI z of the axial slices: basal ganglia to the top of the ventricles


def _size2(size) -> tuple[int, int]:
    h, w = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if min(h, w) < 16:
        raise ValueError(f"brain_slices: expected a size of at least 16 pixels, got {size!r}")
    return int(h), int(w)


@functools.lru_cache(maxsize=8)
def _slab(h: int, w: int) -> tuple[torch.Tensor, float]:
    """Atlas fractions of the axial slices in :data:`Z_RANGE_MM`, resampled to (h, w) pixels of
    ``FOV_MM / max(h, w)`` mm: (Z, 6, h, w), and the pixel size (mm)."""
    atlas = load_atlas(1.0)
    d_lo, d_hi = (int(round(z - atlas.affine[2, 3])) for z in Z_RANGE_MM)
    fr = torch.from_numpy(atlas.fractions[:, d_lo : d_hi + 1]).permute(1, 0, 2, 3)  # (Z, 6, H, W)
    px = FOV_MM / max(h, w)
    if px > 1.0:  # anti-alias before sampling on the coarser grid
        fr = gaussian_blur(fr, 0.45 * px)
    mask = torch.from_numpy(atlas.mask[d_lo : d_hi + 1]).float()
    rows = torch.arange(mask.shape[1], dtype=torch.float32)
    cols = torch.arange(mask.shape[2], dtype=torch.float32)
    ch = float((mask.sum((0, 2)) * rows).sum() / mask.sum())  # centre of the brain, (row, col)
    cw = float((mask.sum((0, 1)) * cols).sum() / mask.sum())
    yy = ch + (torch.arange(h, dtype=torch.float32) - (h - 1) / 2) * px
    xx = cw + (torch.arange(w, dtype=torch.float32) - (w - 1) / 2) * px
    gy, gx = torch.meshgrid(2 * yy / (fr.shape[2] - 1) - 1, 2 * xx / (fr.shape[3] - 1) - 1, indexing="ij")
    grid = torch.stack([gx, gy], -1).expand(fr.shape[0], h, w, 2)  # grid_sample wants (x, y)
    out = F.grid_sample(fr, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return out.contiguous(), px


def brain_slices(
    n_subjects: int,
    contrasts=("T1w",),
    size=128,
    slices_per_subject: int = 1,
    seed: int = 0,
    field: float = 1.5,
    noise: float = 0.0,
    tumour: bool = False,
    deform: float = 1.0,
    start: int = 0,
    z_mm: float | None = None,
    displacement: bool = False,
) -> dict[str, torch.Tensor]:
    """Axial digital-brain slices from distinct random subjects.

    Args:
        n_subjects: number of subjects (indices ``start .. start + n_subjects - 1``).
        contrasts: any of 'T1w', 'T2w', 'PDw', 'FLAIR', 'T1w+c' (paired: same anatomy).
        size: output size in pixels, int or (H, W); the longer side spans 240 mm.
        slices_per_subject: distinct axial positions per subject (same 2D deformation).
        seed: data-set seed; subject ``i`` depends only on ``(seed, i)``.
        field: 1.5 or 3.0 T. noise: Rician sigma as a fraction of the brain's 99.5th percentile.
        tumour: add a BraTS-like lesion to every slice; labels are then BraTS labels (0, 1, 2, 4).
        deform: strength of the random affine + diffeomorphic deformation.
        z_mm: put every subject's slice at this MNI z (within :data:`Z_RANGE_MM`; needs
            ``slices_per_subject=1``): pairs of subjects then show the same anatomy (registration).
            A subject's deformation and tissue parameters do not depend on it.
        displacement: also return each slice's 2D displacement (registration ground truth).
    Returns:
        dict with ``images`` float32 (N, len(contrasts), H, W), each image scaled so that the
        noise-free brain's 99.5th percentile is 1; ``labels`` int64 (N, 1, H, W) (0 background,
        1 CSF, 2 GM, 3 WM); ``subject`` int64 (N,); with ``displacement=True`` also
        ``displacement`` float32 (N, 2, H, W) in pixels, ``slice(x) = atlas slice(x + u(x))``
        (convention of :func:`mricourse.spatial`). N = n_subjects x slices_per_subject.
    """
    contrasts = (contrasts,) if isinstance(contrasts, str) else tuple(contrasts)
    for c in contrasts:
        if c not in CONTRASTS:
            raise ValueError(f"brain_slices: unknown contrast {c!r}; expected some of {CONTRASTS}")
    if n_subjects < 1 or slices_per_subject < 1:
        raise ValueError(f"brain_slices: expected n_subjects, slices_per_subject >= 1, got {n_subjects}, {slices_per_subject}")
    h, w = _size2(size)
    slab, px = _slab(h, w)
    if slices_per_subject > slab.shape[0]:
        raise ValueError(f"brain_slices: at most {slab.shape[0]} slices per subject, got {slices_per_subject}")
    level = None
    if z_mm is not None:
        if not Z_RANGE_MM[0] <= z_mm <= Z_RANGE_MM[1] or slices_per_subject != 1:
            raise ValueError(
                f"brain_slices: z_mm needs a z in {Z_RANGE_MM} mm and slices_per_subject=1, got {z_mm!r}, {slices_per_subject}"
            )
        level = int(round(z_mm - Z_RANGE_MM[0]))
    out = [
        _chunk(
            list(range(i, min(i + _CHUNK, start + n_subjects))),
            slab,
            px,
            contrasts,
            slices_per_subject,
            seed,
            field,
            noise,
            tumour,
            deform,
            level,
        )
        for i in range(start, start + n_subjects, _CHUNK)
    ]
    keys = ("images", "labels", "subject") + (("displacement",) if displacement else ())
    return {k: torch.cat([o[k] for o in out]) for k in keys}


_CHUNK = 32  # subjects processed together (vectorised)


def _chunk(idx, slab, px, contrasts, sps, seed, field, noise, tumour, deform, level=None) -> dict[str, torch.Tensor]:
    """Slices of the subjects ``idx`` (see :func:`brain_slices`)."""
    h, w = slab.shape[-2:]
    rngs = [rng_for(seed, i, 11) for i in idx]
    zs = torch.from_numpy(np.concatenate([np.sort(r.choice(slab.shape[0], sps, replace=False)) for r in rngs]))
    if level is not None:  # the same axial level for everyone (the draw above keeps the streams)
        zs = torch.full_like(zs, level)
    u = random_deformation((h, w), px, rngs, strength=deform).repeat_interleave(sps, 0)  # (N, 2, h, w)
    fr = slab[zs]
    if tumour:
        from .tumour import slice_tumours

        fr, lab, names, conc = slice_tumours(fr, px, [rng_for(seed, i, 13) for i in idx], u, sps)
    else:
        fr = warp(fr, u, padding_mode="zeros")  # (N, 6, h, w)
        lab = tissue_labels(fr, dim=1).long()
        names = TISSUE_NAMES
        conc = torch.tensor([CONCENTRATION[n] for n in names])[None].expand(len(fr), -1)
    params = torch.stack([subject_parameters(names, field, r) for r in rngs]).repeat_interleave(sps, 0)  # (N, K, 3)
    gens = [torch_generator(r) for r in rngs]
    texture = gaussian_blur(torch.cat([torch.randn(sps, 2, h, w, generator=g) for g in gens]), 0.5)
    texture = texture / texture.std(dim=(2, 3), keepdim=True)
    bias = bias_field((h, w), 0.2, gens)[:, 0].repeat_interleave(sps, 0)  # (N, h, w)
    brain = fr[:, :3].sum(1) + fr[:, 6:].sum(1) > 0.5  # CSF, GM, WM and lesion
    images = []
    for c in contrasts:
        img = synthesize(fr, params, c, field, texture, conc) * bias  # (N, h, w)
        img = img / brain_percentile(img, brain).view(-1, 1, 1)
        if noise > 0:
            gens_c = [torch_generator(rng_for(seed, i, 12, CONTRASTS.index(c))) for i in idx]
            n = torch.cat([torch.randn(sps, 2, h, w, generator=g) for g in gens_c]) * noise  # (N, 2, h, w)
            img = torch.sqrt((img + n[:, 0]) ** 2 + n[:, 1] ** 2)  # Rician
        images.append(img)
    subject = torch.tensor(idx, dtype=torch.int64).repeat_interleave(sps)
    return {
        "images": torch.stack(images, 1).float(),
        "labels": lab[:, None].long(),
        "subject": subject,
        "displacement": u.float(),
    }
