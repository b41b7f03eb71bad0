"""Write the course data sets to ``$MRICOURSE_DATA`` in the real formats, sized per profile.

Data sets (one folder each, with a ``manifest.json``):

- ``slices``: digital-brain axial slices (npz: images float16, labels, subject), train and test.
- ``ixi``: volumes in the IXI layout (``IXI-T1/IXI002-Guys-0828-T1.nii.gz``, T2, PD; HH is 3 T,
  Guys and IOP 1.5 T) plus ``ground_truth/`` tissue labels and displacements from the atlas.
- ``brats``: skull-stripped tumour cases in the BraTS 2021 layout (t1, t1ce, t2, flair, seg).
- ``fastmri``: multi-coil brain k-space in fastMRI HDF5 (``multicoil_train``, ``multicoil_val``).
- ``cine``: single-coil cardiac cine k-space in fastMRI HDF5, one file per subject, frames along
  the first axis (``singlecoil_train``, ``_val``, ``_test``), plus ``ground_truth/`` labels.

Each profile has its own folder, ``$MRICOURSE_DATA/<profile>/<name>``, so that a smoke run does not
overwrite the cpu-profile data (or the other way round). ``ensure_dataset(name)`` returns the
folder, generating it first if it is missing or was made with other parameters;
``data_scripts/make_data.py`` is the command line over the same functions.
Other modules add data sets by registering in :data:`DATASETS`.

A data set is reused only when its manifest matches and its files pass
:func:`~mricourse.data.store.verify` (checksums, trusted by size and mtime once verified);
otherwise it is regenerated, saying which files changed. Generation holds a lock
(``.<name>.lock``), so two processes (two notebooks, the ranks of ``torchrun``) never build the
same data set at once; whoever holds it removes the partial folders that killed runs left.
Under ``torchrun``, :func:`ensure_dataset` lets rank 0 generate while the other ranks wait at a
barrier, then reuse its copy.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..files import file_lock
from ..profiles import profile as get_profile
from .brain import make_subject
from .cine import CINE_ACQUISITION, FOV_MM, cine_subject
from .fastmri import ACQUISITIONS, write_fastmri
from .kspace import brain_acquisition, draw_acquisition
from .nifti import ixi_name, write_brats_case, write_nifti
from .slices import brain_slices
from .store import data_dir, manifest_is_valid, read_manifest, verify, write_manifest

__all__ = ["DATASETS", "dataset_params", "make_dataset", "ensure_dataset", "profile_root"]

#: per data set: sizes per profile, and the function that writes it into a folder
DATASETS: dict[str, dict] = {}
#: bump when the simulator changes what it writes, so that data sets on disk are regenerated
GENERATOR_VERSION = 2


def register(name: str, sizes: dict[str, dict]) -> Callable:
    """Decorator: register ``fn(folder, **params) -> list of files`` with per-profile ``sizes``."""

    def deco(fn):
        DATASETS[name] = {"sizes": sizes, "make": fn}
        return fn

    return deco


def dataset_params(name: str, profile: str | None = None, seed: int = 0, **overrides) -> dict:
    """The parameters of data set ``name`` in ``profile`` (default: the active profile)."""
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; expected one of {sorted(DATASETS)}")
    prof = get_profile(profile).name
    return {**DATASETS[name]["sizes"][prof], "seed": int(seed), "generator": GENERATOR_VERSION, **overrides}


def make_dataset(name: str, params: dict, root=None, force: bool = False, verbose: bool = True) -> Path:
    """Write data set ``name`` with ``params`` to ``root/name`` (reused if its manifest matches
    and its files are intact; ``root`` defaults to the active profile's :func:`profile_root`).

    The data set is built in a hidden sibling folder, under a lock, and renamed into place when
    complete, so an interrupted run leaves nothing that looks finished.
    """
    root = Path(root) if root is not None else profile_root()
    folder = root / name
    if not force and _intact(name, folder, params, verbose):
        with file_lock(root / f".{name}.lock", blocking=False) as held:
            if held:  # nobody is generating: leftovers of killed runs can go
                _remove_partials(root, name)
        return folder
    with file_lock(root / f".{name}.lock"):
        if not force and _intact(name, folder, params, verbose, quiet_changes=True):
            return folder  # made by another process while this one waited
        _remove_partials(root, name)  # the lock holder is the only writer: every partial is stale
        partial = root / f".{name}.partial-{os.getpid()}"
        partial.mkdir(parents=True)
        try:
            t0 = time.perf_counter()
            files = DATASETS[name]["make"](partial, **{k: v for k, v in params.items() if k != "generator"})
            seconds = time.perf_counter() - t0
            write_manifest(partial, name, params, files, extra={"seconds": round(seconds, 2)})
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)
    if verbose:
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        print(f"{name}: wrote {len(files)} files, {size / 1e6:.1f} MB in {seconds:.1f} s to {folder}")
    return folder


def _intact(name: str, folder: Path, params: dict, verbose: bool, quiet_changes: bool = False) -> bool:
    """True (and "reusing" said) if ``folder`` holds data set ``name`` made with ``params`` and its
    files match their checksums; says which files changed otherwise."""
    if not manifest_is_valid(folder, params):
        return False
    bad = verify(folder)
    if bad:
        if not quiet_changes:
            shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
            print(f"{name}: {shown} changed since written (checksum mismatch): regenerating {folder}", file=sys.stderr)
        return False
    if verbose:
        print(f"{name}: reusing {folder}")
    return True


def _remove_partials(root: Path, name: str) -> None:
    for p in root.glob(f".{name}.partial-*"):
        shutil.rmtree(p, ignore_errors=True)


def _rank_world() -> tuple[int, int]:
    """(rank, world size) of a started ``torch.distributed`` process group, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _barrier() -> None:
    import torch.distributed as dist

    dist.barrier()


def profile_root(profile: str | None = None) -> Path:
    """Where the data sets of ``profile`` (default: the active one) live: ``$MRICOURSE_DATA/<profile>``."""
    return data_dir(get_profile(profile).name)


def ensure_dataset(name: str, profile: str | None = None, root=None, seed: int = 0, **overrides) -> Path:
    """The folder of data set ``name`` for ``profile`` (under ``root``, default
    :func:`profile_root`), generated first if it is missing or changed. Under ``torchrun`` rank 0
    generates it while the others wait at a barrier, then check (and reuse) rank 0's copy."""
    params = dataset_params(name, profile, seed, **overrides)
    root = root if root is not None else profile_root(profile)
    rank, world = _rank_world()
    if world > 1 and rank != 0:
        _barrier()  # rank 0 is making it
        return make_dataset(name, params, root, verbose=False)  # reused (or made, on a node with its own disk)
    folder = make_dataset(name, params, root)
    if world > 1:
        _barrier()
    return folder


def manifest(name: str, root=None, profile: str | None = None) -> dict | None:
    """The manifest of a data set on disk (None if absent)."""
    return read_manifest((Path(root) if root else profile_root(profile)) / name)


# ---------------------------------------------------------------------------------- data sets


@register(
    "slices",
    {
        "smoke": dict(train=16, test=8, size=64, contrasts=["T1w", "T2w", "PDw", "FLAIR"]),
        "cpu": dict(train=528, test=64, size=128, contrasts=["T1w", "T2w", "PDw", "FLAIR"]),
        "gpu": dict(train=2000, test=200, size=128, contrasts=["T1w", "T2w", "PDw", "FLAIR"]),
    },
)
def _slices(folder: Path, train: int, test: int, size: int, contrasts, seed: int) -> list[Path]:
    files = []
    for split, n, start in (("train", train, 0), ("test", test, train)):  # distinct subjects
        d = brain_slices(n, contrasts=tuple(contrasts), size=size, seed=seed, start=start)
        path = folder / f"{split}.npz"
        np.savez_compressed(
            path,
            images=d["images"].numpy().astype(np.float16),
            labels=d["labels"].numpy().astype(np.uint8),
            subject=d["subject"].numpy(),
            contrasts=np.array(contrasts),
        )
        files.append(path)
    return files


_IXI_SITES = (("Guys", 1.5), ("HH", 3.0), ("IOP", 1.5))


@register(
    "ixi",
    {
        "smoke": dict(subjects=2, resolution=4.0, noise=0.02),
        "cpu": dict(subjects=16, resolution=2.0, noise=0.02),
        "gpu": dict(subjects=100, resolution=1.0, noise=0.02),
    },
)
def _ixi(folder: Path, subjects: int, resolution: float, noise: float, seed: int) -> list[Path]:
    files = []
    for i in range(subjects):
        site, field = _IXI_SITES[i % 3]
        s = make_subject(seed * 100003 + i, resolution=resolution, field=field)
        sid, scan = 2 + i, 1000 + (seed * 7919 + i * 37) % 9000
        for contrast, tag in (("T1w", "T1"), ("T2w", "T2"), ("PDw", "PD")):
            img = s.image(contrast, noise=noise)
            path = folder / f"IXI-{tag}" / ixi_name(sid, site, scan, tag)
            files.append(write_nifti(path, img / np.percentile(img[s.mask], 99.5) * 1000, s.affine))
        stem = ixi_name(sid, site, scan, "T1").replace("-T1.nii.gz", "")
        files.append(write_nifti(folder / "ground_truth" / f"{stem}-labels.nii.gz", s.labels, s.affine, np.uint8))
        path = folder / "ground_truth" / f"{stem}-displacement.npz"
        np.savez_compressed(path, displacement=s.displacement, affine=s.affine)
        files.append(path)
    return files


@register(
    "brats",
    {
        "smoke": dict(cases=2, resolution=4.0, noise=0.02),
        "cpu": dict(cases=24, resolution=2.0, noise=0.02),
        "gpu": dict(cases=200, resolution=1.0, noise=0.02),
    },
)
def _brats(folder: Path, cases: int, resolution: float, noise: float, seed: int) -> list[Path]:
    files = []
    for i in range(cases):
        s = make_subject(seed * 100003 + 50000 + i, resolution=resolution, tumour=True, field=(1.5, 3.0)[i % 2])
        mask = s.mask
        images = {}
        for m, contrast in (("t1", "T1w"), ("t1ce", "T1w+c"), ("t2", "T2w"), ("flair", "FLAIR")):
            img = s.image(contrast, noise=noise)
            images[m] = np.where(mask, img / np.percentile(img[mask], 99.5) * 1000, 0)  # skull-stripped like BraTS
        case = f"BraTS2021_{i:05d}"
        d = write_brats_case(folder, case, images, np.where(mask, s.brats, 0), s.affine)
        files += sorted(d.iterdir())
    return files


#: the scanners of the fastMRI-style data: coil arrays and SNRs drawn per subject (log-uniform SNR)
FASTMRI_ACQUISITION = dict(coils=[6, 8, 12], snr=[20.0, 60.0], finer=2)


@register(
    "fastmri",
    {
        "smoke": dict(train=2, val=1, slices=4, size=64, oversample=2, contrasts=["T1w", "T2w"], **FASTMRI_ACQUISITION),
        "cpu": dict(train=24, val=6, slices=8, size=128, oversample=1, contrasts=["T1w", "T2w", "FLAIR"], **FASTMRI_ACQUISITION),
        "gpu": dict(
            train=80, val=20, slices=8, size=160, oversample=2, contrasts=["T1w", "T1w+c", "T2w", "FLAIR"], **FASTMRI_ACQUISITION
        ),
    },
)
def _fastmri(
    folder: Path, train: int, val: int, slices: int, size: int, coils, oversample: int, snr, contrasts, seed: int, finer: int = 1
) -> list[Path]:
    """Subject ``i`` has contrast ``contrasts[i % len(contrasts)]`` and its own coil array and SNR
    (:func:`~mricourse.data.kspace.draw_acquisition`); its slices are rendered ``finer`` times
    finer than the acquisition (:func:`~mricourse.data.kspace.brain_acquisition`)."""
    files = []
    for split, n, start in (("multicoil_train", train, 0), ("multicoil_val", val, train)):
        for i in range(start, start + n):
            contrast = contrasts[i % len(contrasts)]
            scanner = draw_acquisition(seed, i, coils, snr)
            sim = brain_acquisition(i, contrast, size, slices, scanner["coils"], scanner["snr"], oversample, finer, seed)
            acq = ACQUISITIONS[contrast]
            path = folder / split / f"file_brain_{acq}_{200 + i % 7}_{6000 + i}.h5"
            files.append(
                write_fastmri(
                    path,
                    sim["kspace"],
                    sim["target"],
                    acquisition=acq,
                    patient_id=f"sim{seed:03d}{i:05d}",
                    attrs={"contrast": contrast, "snr": scanner["snr"]},
                )
            )
    return files


@register(
    "cine",
    {
        "smoke": dict(train=4, val=1, test=2, size=32, frames=8, fov=0.6, **CINE_ACQUISITION),
        "cpu": dict(train=40, val=2, test=6, size=64, frames=16, fov=0.6, **CINE_ACQUISITION),
        "gpu": dict(train=300, val=10, test=20, size=128, frames=20, fov=0.7, **CINE_ACQUISITION),
    },
)
def _cine(
    folder: Path, train: int, val: int, test: int, size: int, frames: int, fov: float, seed: int, oversample: int = 1, noise=0.0
) -> list[Path]:
    """Fully sampled single-coil cine k-space (T, H, W) per subject, acquired with
    ``oversample`` and ``noise`` (:func:`~mricourse.data.cine.cine_subject`; the profiles use
    :data:`~mricourse.data.cine.CINE_ACQUISITION`: from a finer grid, with complex noise);
    undersample it with ``mc.kt_mask``."""
    from ..fft import fft2c

    files, start = [], 0
    for split, n in (("singlecoil_train", train), ("singlecoil_val", val), ("singlecoil_test", test)):
        for i in range(start, start + n):  # distinct subjects per split
            s = cine_subject(seed, i, size, frames, fov, oversample=oversample, noise=noise)
            name = f"file_cine_{seed:03d}{i:05d}"
            attrs = {"frames": frames, "heart_rate": s.heart_rate, "rr_ms": s.rr, "subject": i, "noise": s.params.get("noise", 0.0)}
            files.append(
                write_fastmri(
                    folder / split / f"{name}.h5",
                    fft2c(s.image),
                    s.image.abs(),
                    acquisition="CINE_BSSFP",
                    patient_id=f"sim{seed:03d}{i:05d}",
                    fov_mm=FOV_MM * fov,
                    attrs=attrs,
                )
            )
            path = folder / "ground_truth" / f"{name}-labels.npz"
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(path, labels=s.labels.numpy().astype(np.uint8))
            files.append(path)
        start += n
    return files
