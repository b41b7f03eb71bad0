"""Chapter 6's tumour cases: digital-brain subjects with a BraTS-like tumour, four skull-stripped
contrasts with noise, written in the BraTS layout (``<case>/<case>_{t1,t1ce,t2,flair,seg}.nii.gz``)
and read back by the reader of the real BraTS data, each contrast z-scored over the brain."""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
from pathlib import Path

import numpy as np
import torch

from ..files import file_lock
from .brain import make_subject
from .crops import zscore_brain
from .nifti import read_brats_case, write_brats_case
from .store import data_dir

__all__ = ["synthetic_brats_cases", "read_cases", "shifted_cases"]

#: BraTS modality -> the digital brain's contrast
MODALITIES = {"t1": "T1w", "t1ce": "T1w+c", "t2": "T2w", "flair": "FLAIR"}


def synthetic_brats_cases(seeds, resolution: float, noise: float = 0.02, root=None) -> list[Path]:
    """The case folders ``MRIC_<seed>`` of the subjects ``seeds`` (with a tumour) at ``resolution``
    mm, under ``root`` (default ``$MRICOURSE_DATA/brats_synthetic_<resolution>mm``), each
    written first if it is missing or unreadable (in a temporary folder, then renamed, under a
    lock: never half-written). Rician noise ``noise`` (of the brain's bright end) before
    skull-stripping, as in BraTS."""
    root = Path(root) if root is not None else data_dir(f"brats_synthetic_{resolution:g}mm", create=True)
    folders = [root / f"MRIC_{int(seed):05d}" for seed in seeds]
    for seed, folder in zip(seeds, folders):
        if _readable(folder):
            continue
        with file_lock(root / ".lock"):
            if _readable(folder):  # written by another process meanwhile
                continue
            s = make_subject(int(seed), resolution=resolution, tumour=True)
            partial = root / f".partial-{os.getpid()}"
            shutil.rmtree(partial, ignore_errors=True)
            images = {m: s.image(c, noise=noise) * s.mask for m, c in MODALITIES.items()}  # skull-stripped
            write_brats_case(partial, folder.name, images, s.brats, s.affine)
            shutil.rmtree(folder, ignore_errors=True)
            (partial / folder.name).rename(folder)
            shutil.rmtree(partial, ignore_errors=True)
    return folders


def _readable(folder: Path) -> bool:
    try:
        read_brats_case(folder)
        return True
    except (FileNotFoundError, ValueError, EOFError, OSError):
        return False


def read_cases(folders) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each labelled BraTS case folder as ``(images (4, D, H, W) float32, each contrast z-scored
    over the brain (voxels non-zero in some contrast), classes (1, D, H, W) int64: 0 background,
    1 necrotic core, 2 oedema, 3 enhancing tumour (BraTS label 4))``.

    A case read before in this process, unchanged on disk, is not read again: two recipes of the
    same cases (``vox2vox`` and ``unet3d_brats``) share the tensors (treat them as read-only)."""
    out = []
    for folder in folders:
        folder = Path(folder).resolve()
        stamp = tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in sorted(folder.glob("*.nii*")))
        out.append(_read_case(str(folder), stamp))
    return out


@functools.lru_cache(maxsize=512)
def _read_case(folder: str, stamp: tuple) -> tuple[torch.Tensor, torch.Tensor]:
    case = read_brats_case(folder)
    if case["seg"] is None:
        raise ValueError(f"{folder}: expected a labelled case ({case['case']}_seg.nii.gz), found none")
    x = torch.from_numpy(case["image"])
    seg = torch.from_numpy(case["seg"])[None]
    return zscore_brain(x, x.abs().sum(0) > 0), torch.where(seg == 4, torch.tensor(3), seg).long()


def shifted_cases(seeds, resolution: float, acquisitions: dict[str, dict]) -> dict[str, list[tuple[torch.Tensor, torch.Tensor]]]:
    """The cases of the subjects ``seeds`` as :func:`read_cases` gives them, acquired otherwise (in
    memory, nothing written): an out-of-distribution test on the same subjects and tumours.

    ``acquisitions`` maps a name to the settings that differ from the chapter's cases, any of
    ``noise`` (Rician, as in :func:`synthetic_brats_cases`, whose cases have 0.02), ``bias`` (the
    power the subject's own bias field ``exp(0.2 n)`` is raised to: 1 as in the chapter's cases, 3
    gives ``exp(0.6 n)``) and ``field`` (1.5 or 3.0 T tissue relaxation; the chapter's cases are
    1.5 T). ``{}`` gives the cases of :func:`synthetic_brats_cases` (up to float32 rounding).
    Returns ``{name: [(images (4, D, H, W) z-scored over the brain, classes (1, D, H, W))]}``.
    """
    unknown = {k for a in acquisitions.values() for k in a} - {"noise", "bias", "field"}
    if unknown:
        raise ValueError(f"shifted_cases: unknown settings {sorted(unknown)}; expected noise, bias or field")
    out = {name: [] for name in acquisitions}
    for seed in seeds:
        subjects = {}  # one subject per field strength, shared by the acquisitions
        for name, a in acquisitions.items():
            field = float(a.get("field", 1.5))
            if field not in subjects:
                subjects[field] = make_subject(int(seed), resolution=resolution, tumour=True, field=field)
            s = subjects[field]
            if a.get("bias", 1.0) != 1.0:
                s = dataclasses.replace(s, bias=(s.bias.astype(np.float64) ** a["bias"]).astype(np.float32))
            noise = a.get("noise", 0.02)
            x = torch.from_numpy(np.stack([s.image(c, noise=noise) * s.mask for c in MODALITIES.values()]))  # (4, D, H, W)
            seg = torch.from_numpy(s.brats.astype(np.int64))[None]  # (1, D, H, W) BraTS labels 0/1/2/4
            out[name].append((zscore_brain(x, x.abs().sum(0) > 0), torch.where(seg == 4, torch.tensor(3), seg)))
    return out
