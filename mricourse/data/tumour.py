"""BraTS-like brain tumours for the digital brain (2D slices or 3D volumes).

A lesion is a lumpy ball: a necrotic core (BraTS label 1) inside an enhancing rim (label 4),
surrounded by vasogenic oedema (label 2) that spreads along white matter and spares the cortex.
Its growth pushes the surrounding brain away (mass effect: a radial velocity field integrated by
scaling and squaring, so it stays diffeomorphic). The lesion tissues get their own (teaching)
relaxation times and contrast uptake, so that T1w shows a dark core, T1w+c an enhancing ring,
T2w and FLAIR bright oedema. Labels follow BraTS 2017-2021: 1 necrotic core, 2 oedema,
4 enhancing tumour; regions WT = {1, 2, 4}, TC = {1, 4}, ET = {4}.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..signal import Tissue
from ..spatial import VecInt, gaussian_blur, warp
from .atlas import CONCENTRATION, TISSUE_NAMES
from .fields import smooth_noise, torch_generator

__all__ = [
    "TUMOUR_TISSUES",
    "LESION_NAMES",
    "LESION_CONCENTRATION",
    "TumourSpec",
    "random_tumour",
    "add_tumour",
    "brats_labels",
    "concentrations",
    "BRATS_LABELS",
    "labels_to_classes",
    "classes_to_labels",
]

#: Teaching values: oedema has long T1/T2, the necrotic core is almost fluid, the enhancing
#: tumour is cellular (moderately long T1/T2) and takes up the contrast agent.
TUMOUR_TISSUES: dict[float, dict[str, Tissue]] = {
    1.5: {"necrosis": Tissue(2300, 250, 0.95), "oedema": Tissue(1100, 130, 0.9), "enhancing": Tissue(1000, 100, 0.88)},
    3.0: {"necrosis": Tissue(3400, 300, 0.95), "oedema": Tissue(1700, 150, 0.9), "enhancing": Tissue(1550, 120, 0.88)},
}
LESION_NAMES = ("necrosis", "oedema", "enhancing")
#: gadolinium (mM) after injection: the broken blood-brain barrier lets it into the rim.
LESION_CONCENTRATION = (0.05, 0.05, 0.5)
#: class index -> BraTS label (0 background, 1 necrotic core, 2 oedema, 4 enhancing tumour)
BRATS_LABELS = (0, 1, 2, 4)


@dataclass(frozen=True)
class TumourSpec:
    """A lesion in voxels: centre, outer radius of the enhancing rim, core radius, oedema extent,
    mass-effect strength, and the seed of its lumpy shape."""

    centre: tuple[float, ...]
    radius: float
    core: float
    oedema: float
    push: float
    seed: int


def random_tumour(fractions: torch.Tensor, voxel_mm: float, rng: np.random.Generator) -> TumourSpec:
    """Draw a lesion centred in deep white matter of ``fractions`` (6, *spatial)."""
    wm = fractions[2]
    radius = rng.uniform(7.0, 16.0) / voxel_mm
    brain = fractions[:3].sum(0)[None, None]
    interior = gaussian_blur(brain, max(radius, 1.0) / 2)[0, 0] > 0.97
    candidates = torch.nonzero((wm > 0.85) & interior)
    if len(candidates) == 0:
        candidates = torch.nonzero(wm >= wm.max() * 0.9)
    centre = candidates[int(rng.integers(len(candidates)))].float() + torch.from_numpy(rng.uniform(-0.5, 0.5, wm.ndim)).float()
    return TumourSpec(
        centre=tuple(centre.tolist()),
        radius=float(radius),
        core=float(radius * rng.uniform(0.35, 0.7)),
        oedema=float(rng.uniform(10.0, 22.0) / voxel_mm),
        push=float(rng.uniform(0.4, 0.7)),
        seed=int(rng.integers(0, 2**31)),
    )


def _offsets(shape, centre) -> torch.Tensor:
    """(dims, *shape) voxel offsets from ``centre``."""
    axes = [torch.arange(s, dtype=torch.float32) - c for s, c in zip(shape, centre)]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"))


def mass_effect(spec: TumourSpec, shape) -> torch.Tensor:
    """Displacement (1, dims, *shape) that pushes tissue away from the lesion centre:
    the sampling field pulls toward the centre, ``v = -push (x - c) exp(-r^2 / 2 s^2)``,
    integrated by scaling and squaring in a box around the lesion (zero outside)."""
    s = 1.3 * spec.radius
    half = int(np.ceil(4 * s))
    lo = [max(0, int(c) - half) for c in spec.centre]
    hi = [min(n, int(c) + half + 1) for c, n in zip(spec.centre, shape)]
    box = tuple(h - l for l, h in zip(lo, hi))
    x = _offsets(box, [c - l for c, l in zip(spec.centre, lo)])
    v = -spec.push * x * torch.exp(-(x**2).sum(0, keepdim=True) / (2 * s**2))
    m = torch.zeros(1, len(shape), *shape)
    m[(slice(None), slice(None)) + tuple(slice(l, h) for l, h in zip(lo, hi))] = VecInt(box, nsteps=6)(v[None])
    return m


def _ramp(x: torch.Tensor) -> torch.Tensor:
    return (x + 0.5).clamp(0, 1)


def add_tumour(fractions: torch.Tensor, spec: TumourSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """Grow ``spec`` in tissue fractions (B, 6, *spatial) (atlas space, same lesion for every item).

    Returns the fractions with the lesion (B, 9, *spatial), channels csf, gm, wm, fat, muscle,
    bone, necrosis, oedema, enhancing, and the mass-effect displacement (1, dims, *spatial):
    ``with_lesion(x) = fractions(x + m(x))`` outside the lesion.
    """
    shape = fractions.shape[2:]
    m = mass_effect(spec, shape)
    fr = warp(fractions, m.expand(len(fractions), *m.shape[1:]), padding_mode="zeros")
    gen = torch_generator(np.random.default_rng(spec.seed))
    lumps = smooth_noise(tuple(shape), spacing=max(spec.radius * 0.8, 2.0), generator=gen)[0, 0]
    r = _offsets(shape, spec.centre).norm(dim=0) / (1 + 0.22 * lumps)  # lumpy radius (voxels)
    tumour = _ramp(spec.radius - r)
    necrosis = _ramp(spec.core - r)
    enhancing = tumour - necrosis
    reach = torch.exp(-(r - spec.radius).clamp(min=0) / spec.oedema)  # 1 at the rim, decays outward
    gm, wm = fr[:, 1], fr[:, 2]
    o = ((1.6 * reach - 0.45) * (1 + 0.3 * lumps)).clamp(0, 1)  # oedema strength
    o_wm, o_gm = o * wm, 0.25 * o * gm  # along white matter, sparing the cortex
    normal = fr * (1 - tumour)
    normal[:, 1] = (gm - o_gm) * (1 - tumour)
    normal[:, 2] = (wm - o_wm) * (1 - tumour)
    oedema = (o_wm + o_gm) * (1 - tumour)
    b = len(fr)
    lesion = torch.stack([necrosis.expand(b, *shape), oedema, enhancing.expand(b, *shape)], 1)  # (B, 3, *spatial)
    return torch.cat([normal, lesion], 1), m


def brats_labels(lesion: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """BraTS labels (0, 1, 2, 4) from lesion fractions (necrosis, oedema, enhancing) on ``dim``."""
    rest = (1 - lesion.sum(dim, keepdim=True)).clamp(min=0)
    idx = torch.cat([rest, lesion], dim).argmax(dim)
    return torch.tensor(BRATS_LABELS, dtype=torch.int16)[idx]


def concentrations(tumour: bool = True) -> torch.Tensor:
    """Gadolinium concentration (mM) of each tissue channel: the atlas tissues
    (:data:`~mricourse.data.atlas.CONCENTRATION`), then the lesion's three when ``tumour``."""
    return torch.tensor([CONCENTRATION[n] for n in TISSUE_NAMES] + (list(LESION_CONCENTRATION) if tumour else []))


def slice_tumours(fr: torch.Tensor, px: float, rngs, u: torch.Tensor, sps: int):
    """2D lesions for :func:`mricourse.data.slices.brain_slices`: one per subject (the same for its
    ``sps`` slices), grown in atlas space, then moved by the subject's displacement ``u``.

    Returns fractions (N, 9, h, w), BraTS labels (N, h, w), tissue names, concentrations (N, 9)."""
    out = []
    for j, rng in enumerate(rngs):
        block = fr[j * sps : (j + 1) * sps]
        spec = random_tumour(block[0], px, rng)
        with_lesion, _ = add_tumour(block, spec)
        uj = u[j * sps : (j + 1) * sps]
        out.append(warp(with_lesion, uj, padding_mode="zeros"))
    fr9 = torch.cat(out)
    names = TISSUE_NAMES + LESION_NAMES
    conc = concentrations(True)[None].expand(len(fr9), -1)
    return fr9, brats_labels(fr9[:, 6:], dim=1).long(), names, conc


def labels_to_classes(seg: torch.Tensor) -> torch.Tensor:
    """BraTS labels {0, 1, 2, 4} -> class indices {0, 1, 2, 3}."""
    out = torch.zeros_like(seg, dtype=torch.long)
    for c, lab in enumerate(BRATS_LABELS):
        out[seg == lab] = c
    return out


def classes_to_labels(cls: torch.Tensor) -> torch.Tensor:
    """Class indices {0, 1, 2, 3} -> BraTS labels {0, 1, 2, 4}."""
    return torch.tensor(BRATS_LABELS, device=cls.device)[cls]
