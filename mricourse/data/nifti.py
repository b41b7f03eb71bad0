"""NIfTI volumes with correct affines, and the BraTS and IXI file layouts.

In memory the course uses arrays (D, H, W) = (inferior->superior, anterior->posterior,
right->left) so that ``volume[d]`` is an axial slice in radiological view; on disk volumes are
stored as NIfTI usually is, (x, y, z) with an affine to world millimetres. The reader reorients
any NIfTI (real BraTS/IXI files included) to the course's axes with nibabel's orientation tools.

BraTS 2017-2021: ``<case>/<case>_{t1,t1ce,t2,flair,seg}.nii.gz``, seg labels 0, 1 (necrotic
core), 2 (oedema), 4 (enhancing). IXI: ``IXI-T1/IXI012-HH-1211-T1.nii.gz`` (also T2, PD).
"""

from __future__ import annotations

import gzip
import re
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.orientations import apply_orientation, axcodes2ornt, inv_ornt_aff, io_orientation, ornt_transform

from ..utils import atomic_write

__all__ = [
    "COURSE_AXES",
    "write_nifti",
    "read_nifti",
    "BRATS_MODALITIES",
    "BRATS_CONTRASTS",
    "write_brats_case",
    "read_brats_case",
    "check_brats_case",
    "IXI_PATTERN",
    "ixi_name",
]

COURSE_AXES = ("S", "P", "L")  # nibabel axis codes of arrays (D, H, W)
BRATS_MODALITIES = ("t1", "t1ce", "t2", "flair")
#: our contrast for each BraTS modality
BRATS_CONTRASTS = {"t1": "T1w", "t1ce": "T1w+c", "t2": "T2w", "flair": "FLAIR"}
IXI_PATTERN = re.compile(r"^(IXI\d{3})-([A-Za-z]+)-(\d{4})-(T1|T2|PD)\.nii(\.gz)?$")
_FIX = "make it with python data_scripts/make_data.py {hint}, or check your download (prepare_{hint}.py validates it)"


def write_nifti(path, volume, affine, dtype=np.float32) -> Path:
    """Write a (D, H, W) volume with its (D, H, W)-voxel affine as NIfTI (x, y, z) atomically."""
    vol = np.asarray(volume)
    if vol.ndim != 3:
        raise ValueError(f"write_nifti: expected a volume (D, H, W), got shape {vol.shape}")
    affine = np.asarray(affine, dtype=np.float64)
    xyz = np.ascontiguousarray(vol.transpose(2, 1, 0)).astype(dtype)  # (W, H, D)
    aff = affine[:, [2, 1, 0, 3]]  # voxel (w, h, d) -> world
    img = nib.Nifti1Image(xyz, aff)
    img.set_qform(aff, code=1)
    img.set_sform(aff, code=1)
    img.header.set_xyzt_units("mm")
    path = Path(path)
    raw = img.to_bytes()
    if path.suffix == ".gz":
        raw = gzip.compress(raw, compresslevel=6, mtime=0)  # mtime 0: identical bytes for identical data
    with atomic_write(path) as tmp:
        tmp.write_bytes(raw)
    return path


def read_nifti(path, dtype=np.float32, hint: str = "brats", allow_nonfinite: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Read a 3D NIfTI and reorient it to the course's (D, H, W) axes.

    Returns ``(volume, affine)``: the volume (D, H, W) as ``dtype`` and the affine of its voxels.
    Raises FileNotFoundError or ValueError naming the file and the fix, also for NaN or inf
    voxels unless ``allow_nonfinite``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such NIfTI file; " + _FIX.format(hint=hint))
    try:
        img = nib.load(path)
        data = np.asarray(img.dataobj)
    except (nib.filebasedimages.ImageFileError, EOFError, OSError, zlib.error, gzip.BadGzipFile, ValueError) as e:
        raise ValueError(f"{path} is not a readable NIfTI file (truncated or corrupt?): {e}; " + _FIX.format(hint=hint)) from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ValueError(f"{path}: expected a 3D volume, got shape {data.shape}")
    if not allow_nonfinite and np.issubdtype(data.dtype, np.inexact):
        bad = int(data.size - np.isfinite(data).sum())
        if bad:
            raise ValueError(
                f"{path}: {bad} of {data.size} voxels are NaN or inf (non-finite data); "
                + _FIX.format(hint=hint)
                + ", or read it with allow_nonfinite=True and replace them (np.nan_to_num)"
            )
    ornt = ornt_transform(io_orientation(img.affine), axcodes2ornt(COURSE_AXES))
    vol = apply_orientation(data, ornt)  # axes now (S, P, L) = (D, H, W)
    affine = img.affine @ inv_ornt_aff(ornt, data.shape)
    return np.ascontiguousarray(vol).astype(dtype, copy=False), affine


def write_brats_case(root, case: str, images: dict, seg, affine) -> Path:
    """Write one BraTS case: ``root/case/case_{t1,t1ce,t2,flair}.nii.gz`` and ``case_seg.nii.gz``.

    ``images`` maps BraTS modalities (or our contrast names) to (D, H, W) volumes; ``seg`` holds
    BraTS labels (0, 1, 2, 4).
    """
    folder = Path(root) / case
    by_modality = {m: images.get(m, images.get(BRATS_CONTRASTS[m])) for m in BRATS_MODALITIES}
    missing = [m for m, v in by_modality.items() if v is None]
    if missing:
        raise ValueError(f"write_brats_case: missing modalities {missing}; expected keys {BRATS_MODALITIES}")
    for m, vol in by_modality.items():
        write_nifti(folder / f"{case}_{m}.nii.gz", vol, affine, np.float32)
    write_nifti(folder / f"{case}_seg.nii.gz", seg, affine, np.uint8)
    return folder


def read_brats_case(folder) -> dict:
    """Read a BraTS case folder: ``image`` (4, D, H, W) float32 in the order t1, t1ce, t2, flair,
    ``seg`` (D, H, W) int64 with labels 0/1/2/4 (or None for a validation case), ``affine``, ``case``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such BraTS case folder; " + _FIX.format(hint="brats"))
    case = folder.name
    vols, affine = [], None
    for m in BRATS_MODALITIES:
        vol, aff = read_nifti(folder / f"{case}_{m}.nii.gz")
        if affine is not None and (vol.shape != vols[0].shape or not np.allclose(aff, affine, atol=1e-3)):
            raise ValueError(f"{folder}: {case}_{m}.nii.gz is not on the same grid as {case}_t1.nii.gz")
        vols.append(vol)
        affine = aff
    seg_path = folder / f"{case}_seg.nii.gz"
    seg = read_nifti(seg_path, np.int64)[0] if seg_path.exists() else None
    return {"image": np.stack(vols), "seg": seg, "affine": affine, "case": case}


def check_brats_case(folder) -> dict:
    """Validate a BraTS case without keeping the data; a summary for an index, or ValueError."""
    c = read_brats_case(folder)
    labels = sorted(int(v) for v in np.unique(c["seg"])) if c["seg"] is not None else []
    if not set(labels) <= {0, 1, 2, 4}:
        hint = " (BraTS 2023 uses 3 for enhancing tumour: map 3 -> 4)" if 3 in labels else ""
        raise ValueError(f"{folder}: segmentation labels {labels}, expected a subset of 0, 1, 2, 4{hint}")
    spacing = np.sqrt((c["affine"][:3, :3] ** 2).sum(0))
    return {
        "case": c["case"],
        "shape": list(c["image"].shape[1:]),
        "spacing_mm": [round(float(s), 3) for s in spacing],
        "labels": labels,
    }


def ixi_name(subject: int, site: str, scan: int, contrast: str) -> str:
    """IXI file name, e.g. ``ixi_name(12, 'HH', 1211, 'T1') == 'IXI012-HH-1211-T1.nii.gz'``."""
    return f"IXI{subject:03d}-{site}-{scan:04d}-{contrast}.nii.gz"
