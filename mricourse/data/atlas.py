"""The digital brain's atlas: tissue fractions from the MNI152 2009a template plus a synthetic head.

The template (Fonov et al. 2011) ships inside the ``nilearn`` wheel: a skull-stripped T1 and GM/WM
probability maps at 1 mm (197 x 233 x 189). We read them from the installed package, reorient
them to arrays (D, H, W) = (inferior->superior, anterior->posterior, right->left) so that
``volume[d]`` is an axial slice in radiological view, and add what the average lacks:

- sharper tissue boundaries and a cortical thickness that varies across the brain;
- sulci: thin CSF sheets lined with grey matter that run radially into the cortex;
- a head: extra-axial CSF, skull (inner and outer tables, fatty diploe), temporalis muscle,
  galea, subcutaneous fat and skin, as shells of random thickness around the brain.

Tissues (channel order of ``Atlas.fractions``): csf, gm, wm, fat, muscle, bone.
Labels: 0 background (air and head), 1 CSF, 2 GM, 3 WM.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from ..spatial import gaussian_blur
from ..utils import atomic_write
from .fields import smooth_noise
from .store import data_dir

__all__ = ["TISSUE_NAMES", "CONCENTRATION", "Atlas", "load_atlas", "mni_dir"]

TISSUE_NAMES = ("csf", "gm", "wm", "fat", "muscle", "bone")
#: gadolinium concentration (mM) at the time of a post-contrast T1w scan; the blood-brain barrier
#: keeps it out of normal brain (only its blood volume), muscle and skin enhance.
CONCENTRATION: dict[str, float] = {"csf": 0.0, "gm": 0.03, "wm": 0.015, "fat": 0.0, "muscle": 0.25, "bone": 0.0}
_SHAPE_1MM = (184, 240, 208)  # (D, H, W): z -72..111, y 104..-135, x 103..-104 (mm, MNI)
#: voxel (d, h, w) -> MNI world (x, y, z) in mm at 1 mm
_AFFINE_1MM = np.array([[0, 0, -1, 103], [0, -1, 0, 104], [1, 0, 0, -72], [0, 0, 0, 1]], dtype=np.float64)
_ATLAS_SEED = 20090  # the atlas's own folding pattern is fixed


def mni_dir() -> Path:
    """Folder of the MNI152 2009a maps inside the installed ``nilearn`` package."""
    try:
        import nilearn
    except ImportError:
        raise ImportError("the digital brain needs the MNI152 template inside nilearn: pip install nilearn") from None
    return Path(nilearn.__file__).parent / "datasets" / "data"


def _load_mni(name: str) -> torch.Tensor:
    """One template map, reoriented and cropped to the atlas box, in [0, 1]: (D, H, W)."""
    path = mni_dir() / f"mni_icbm152_{name}_tal_nlin_sym_09a_converted.nii.gz"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: reinstall nilearn (pip install --force-reinstall nilearn)")
    a = np.asarray(nib.load(path).dataobj, dtype=np.float32) / 255.0  # (x, y, z): index = mm + (98, 134, 72)
    a = np.pad(a, 16).transpose(2, 1, 0)  # (z, y, x), index = mm + (88, 150, 114)
    d, h, w = _SHAPE_1MM
    a = a[16 : 16 + d, 104 + 150 : 104 + 150 - h : -1, 103 + 114 : 103 + 114 - w : -1]  # (z, -y, -x) on the atlas box
    return torch.from_numpy(np.ascontiguousarray(a))


@dataclass(eq=False)
class Atlas:
    """Tissue fractions of the digital brain on a regular grid.

    Attributes:
        fractions: (6, D, H, W) float32 partial-volume fractions, channels :data:`TISSUE_NAMES`.
        labels: (D, H, W) int16, 0 background, 1 CSF, 2 GM, 3 WM.
        mask: (D, H, W) bool brain mask (``labels > 0``).
        affine: (4, 4) voxel -> MNI world (mm), as in NIfTI.
        resolution: voxel size in mm.
    """

    fractions: np.ndarray
    labels: np.ndarray
    mask: np.ndarray
    affine: np.ndarray
    resolution: float

    def __getattr__(self, name: str) -> np.ndarray:
        if name in TISSUE_NAMES:
            return self.fractions[TISSUE_NAMES.index(name)]
        raise AttributeError(name)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.fractions.shape[1:])


def tissue_labels(fractions: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Labels 0-3 from fractions (6, *spatial) (tissues on ``dim``): argmax of (not brain, CSF, GM, WM)."""
    brain = fractions.narrow(dim, 0, 3)
    rest = (1 - brain.sum(dim, keepdim=True)).clamp(min=0)
    stacked = torch.cat([rest, brain], dim).movedim(dim, -1).contiguous()  # (..., 4): argmax on the last dim is fast
    return stacked.argmax(-1).to(torch.int16)


def _ramp(x: torch.Tensor) -> torch.Tensor:
    """0 below -0.5, 1 above 0.5: a 1-voxel partial-volume edge."""
    return (x + 0.5).clamp(0, 1)


def _signed_distance(mask: torch.Tensor, voxel_mm: float) -> torch.Tensor:
    """Signed distance (mm) to the boundary of a binary mask, negative inside."""
    m = mask.numpy()
    out = ndimage.distance_transform_edt(~m, sampling=voxel_mm) - 0.5 * voxel_mm
    inside = ndimage.distance_transform_edt(m, sampling=voxel_mm) - 0.5 * voxel_mm
    return torch.from_numpy(np.where(m, -inside, out).astype(np.float32))


def _radial_noise(shape, centre, radii, channels: int, spacing: float, gen: torch.Generator) -> torch.Tensor:
    """Smooth noise that depends only on the direction from ``centre`` (ellipsoid ``radii``, voxels):
    constant along rays, so its zero sets are sheets normal to the brain surface. (C, *shape)."""
    noise = smooth_noise((48, 48, 48), spacing=spacing, channels=channels, generator=gen)  # on [-1, 1]^3
    axes = [torch.arange(s, dtype=torch.float32) for s in shape]
    q = torch.stack([(a - c) / r for a, c, r in zip(torch.meshgrid(*axes, indexing="ij"), centre, radii)], -1)
    q = 0.9 * q / q.norm(dim=-1, keepdim=True).clamp(min=1e-6)  # unit directions, (*shape, 3)
    grid = q.flip(-1).unsqueeze(0)  # grid_sample wants (x, y, z) = (w, h, d)
    return F.grid_sample(noise, grid, mode="bilinear", align_corners=True)[0]


_CACHE_VERSION = 1  # bump when the construction below changes


@functools.lru_cache(maxsize=1)
def _atlas_1mm() -> torch.Tensor:
    """The 1 mm tissue fractions (6, D, H, W), quantised to multiples of 1/255 (floor, so they
    still sum to <= 1): built once (seconds), then read from ``$MRICOURSE_DATA/atlas``."""
    path = data_dir("atlas") / f"digital_brain_1mm_v{_CACHE_VERSION}.npy"
    q = None
    if path.exists():
        try:
            q = np.load(path)
            q = q if q.shape == (len(TISSUE_NAMES), *_SHAPE_1MM) and q.dtype == np.uint8 else None
        except (OSError, ValueError):
            q = None
    if q is None:
        q = (_build_1mm() * 255).floor().clamp(0, 255).to(torch.uint8).numpy()
        try:
            with atomic_write(path) as tmp, open(tmp, "wb") as f:
                np.save(f, q)
        except OSError:
            pass  # a read-only data folder: rebuild next time
    return torch.from_numpy(q).float() / 255


def _build_1mm() -> torch.Tensor:
    """Build the 1 mm tissue fractions (6, D, H, W) in [0, 1]."""
    gen = torch.Generator().manual_seed(_ATLAS_SEED)
    t1, gm, wm = _load_mni("t1"), _load_mni("gm"), _load_mni("wm")
    brain = gaussian_blur((t1 > 0).float()[None, None], 0.5)[0, 0]
    tissue = gm + wm
    tissue = torch.minimum(tissue, brain)
    ratio = wm / (gm + wm).clamp(min=1e-3)  # share of WM in the tissue
    del t1, gm, wm
    shape = tuple(brain.shape)

    # the skull's inner surface: a smooth hull of the brain (at 2 mm, then upsampled)
    b2 = F.avg_pool3d(brain[None, None], 2)
    hull = (gaussian_blur(b2, 2.0) > 0.3)[0, 0] | (b2[0, 0] > 0.5)
    sd = _signed_distance(hull, 2.0)
    sd = F.interpolate(sd[None, None], size=shape, mode="trilinear", align_corners=False)[0, 0]
    inside = 1 - _ramp(sd)

    # sharper boundaries and a cortical thickness that varies (low-frequency field)
    thick = smooth_noise(shape, spacing=25.0, generator=gen)[0, 0]
    ratio = torch.sigmoid((ratio - 0.5 + 0.12 * thick) / 0.08)
    tissue = brain * torch.sigmoid((tissue / brain.clamp(min=1e-3) - 0.5) / 0.12)

    # sulci: radial CSF sheets lined with grey matter, of random depth
    idx = torch.nonzero(brain > 0.5).float()
    centre = idx.mean(0).tolist()
    radii = ((idx.amax(0) - idx.amin(0)) / 2).tolist()
    del idx
    n = _radial_noise(shape, centre, radii, 2, spacing=3.0, gen=gen)
    depth_max = (11 + 4 * n[1]).clamp(4, 20)
    depth = -sd
    sulcus = torch.exp(-((n[0] / 0.10) ** 2)) * torch.sigmoid(depth_max - depth)
    lining = torch.exp(-((n[0] / 0.35) ** 2)) * torch.sigmoid(depth_max + 2.5 - depth)
    del n, depth_max, depth
    tissue = tissue * (1 - 0.9 * sulcus) * inside
    g = torch.maximum(1 - ratio, lining)
    gm_f, wm_f = tissue * g, tissue * (1 - g)
    csf_f = inside - tissue
    del g, ratio, sulcus, lining, tissue

    # head: shells outside the hull, with random thickness and a temporalis muscle
    k = 1 + 0.25 * smooth_noise(shape, spacing=40.0, generator=gen)[0, 0]
    d_ax, h_ax, w_ax = (torch.arange(s, dtype=torch.float32) for s in shape)
    lateral = ((w_ax - centre[2]).abs() - 45).clamp(0, 25) / 25  # (W,)
    low = ((95 - d_ax) / 40).clamp(0, 1)  # below z = +23 mm, (D,)
    front = ((h_ax - 48) / 40).clamp(0, 1) * ((208 - h_ax) / 40).clamp(0, 1)  # y from +16 to -64 mm, (H,)
    temporal = low[:, None, None] * front[None, :, None] * lateral[None, None, :]
    bounds = torch.cumsum(torch.stack([2.0 * k, 1.8 * k, 2.5 * k, 1.5 * k, (1.5 + 7 * temporal) * k, 4.0 * k, 1.5 + 0 * k]), 0)
    shells = [_ramp(sd - a) - _ramp(sd - b) for a, b in zip([torch.zeros_like(sd)] + list(bounds[:-1]), bounds)]
    csf_f = csf_f + shells[0]
    fat_f = shells[2] + shells[5]
    muscle_f = shells[4] + shells[6]
    bone_f = shells[1] + shells[3]
    return torch.stack([csf_f, gm_f, wm_f, fat_f, muscle_f, bone_f]).clamp(0, 1)


def _resample(fr: torch.Tensor, resolution: float) -> tuple[torch.Tensor, np.ndarray]:
    """Area-average the 1 mm fractions to ``resolution`` mm; returns fractions and affine."""
    if resolution == 1.0:
        return fr, _AFFINE_1MM.copy()
    size = tuple(max(1, round(s / resolution)) for s in fr.shape[1:])
    mode = "area" if resolution > 1 else "trilinear"
    out = F.interpolate(fr[None], size=size, mode=mode, **({} if mode == "area" else {"align_corners": False}))[0]
    step = np.array([a / b for a, b in zip(fr.shape[1:], size)])
    scale = np.diag(list(step) + [1.0])
    scale[:3, 3] = (step - 1) / 2  # centre of output voxel 0 in 1 mm voxels
    return out, _AFFINE_1MM @ scale


@functools.lru_cache(maxsize=4)
def load_atlas(resolution: float = 2.0) -> Atlas:
    """The digital brain's atlas at ``resolution`` mm (cached).

    Returns an :class:`Atlas` with ``.csf .gm .wm .fat .muscle .bone`` fractions (D, H, W),
    ``.labels``, ``.mask`` and ``.affine``; at 2 mm the grid is 88 x 112 x 96.
    """
    if not (isinstance(resolution, (int, float)) and 0.5 <= resolution <= 8):
        raise ValueError(f"load_atlas: expected a resolution in mm between 0.5 and 8, got {resolution!r}")
    fr, affine = _resample(_atlas_1mm(), float(resolution))
    labels = tissue_labels(fr)
    return Atlas(
        fractions=fr.numpy().astype(np.float32, copy=False),
        labels=labels.numpy(),
        mask=(labels > 0).numpy(),
        affine=affine,
        resolution=float(resolution),
    )


def atlas_world_to_voxel(atlas: Atlas, xyz_mm) -> np.ndarray:
    """MNI world coordinates (..., 3) in mm -> voxel indices (d, h, w) of ``atlas``."""
    inv = np.linalg.inv(atlas.affine)
    xyz = np.asarray(xyz_mm, dtype=np.float64)
    return xyz @ inv[:3, :3].T + inv[:3, 3]
