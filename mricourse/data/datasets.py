"""Torch datasets over generated or real files: slices, k-space, volumes, registration pairs.

Every item is a dict of tensors (plus names), so a chapter's step picks what it needs:

- :class:`SliceData`: 2D slices from :func:`~mricourse.data.slices.brain_slices` or a ``slices``
  npz file: ``image`` (C, H, W), ``label`` (1, H, W), ``subject``.
- :class:`FastMRISlices`: one slice of a fastMRI HDF5 file: ``kspace`` complex (coils, H, W),
  ``target`` (h, w), ``max``, ``mask`` if the file has one, ``fname``, ``slice``;
  :class:`VarNetTransform` turns it into a reconstruction network's inputs (fastMRI's
  ``VarNetDataTransform``), with :class:`mricourse.MaskFunc` masks.
- :class:`BratsVolumes`: a BraTS case: ``image`` (4, D, H, W) z-scored over the brain,
  ``seg`` (D, H, W) with BraTS labels mapped to classes 0-3 (4 -> 3), ``case``.
- :class:`NiftiVolumes`: any list of NIfTI files: ``image`` (1, D, H, W), ``name``.
- :class:`RegistrationPairs`: (moving, fixed) pairs of images with their labels: an atlas to
  every subject, or random pairs of subjects.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..fft import fftnc, ifftnc
from .crops import zscore_brain
from .fastmri import check_fastmri_file, read_fastmri
from .kspace import center_crop
from .nifti import read_brats_case, read_nifti

__all__ = ["SliceData", "FastMRISlices", "VarNetTransform", "crop_readout", "BratsVolumes", "NiftiVolumes", "RegistrationPairs"]


class SliceData(Dataset):
    """2D slices held in memory: a :func:`brain_slices` dict or the path of a ``slices`` npz."""

    def __init__(self, data):
        if isinstance(data, (str, Path)):
            path = Path(data)
            if not path.exists():
                raise FileNotFoundError(f"{path}: no slices file; make it with python data_scripts/make_data.py slices")
            keys = ("images", "labels", "subject")
            try:
                with np.load(path) as z:
                    missing = [k for k in keys if k not in z.files]
                    if missing:
                        raise ValueError(
                            f"{path}: not a slices file: no {missing} (it has {z.files}, expected {list(keys)}); "
                            "make it with python data_scripts/make_data.py slices"
                        )
                    data = {k: torch.from_numpy(z[k].astype(np.float32 if k == "images" else np.int64)) for k in keys}
            except (OSError, EOFError, zipfile.BadZipFile) as e:
                raise ValueError(
                    f"{path} is not a readable npz file (truncated or corrupt: {e}); regenerate it with "
                    "python data_scripts/make_data.py slices --force"
                ) from None
            if not torch.isfinite(data["images"]).all():
                raise ValueError(f"{path}: the images hold NaN or inf values; regenerate with make_data.py slices --force")
        self.images, self.labels, self.subject = data["images"].float(), data["labels"].long(), data["subject"].long()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "label": self.labels[i], "subject": self.subject[i]}


class FastMRISlices(Dataset):
    """Slices of the fastMRI HDF5 files in ``root`` (real or simulated), indexed once."""

    def __init__(self, root, transform=None):
        root = Path(root)
        files = sorted(root.glob("*.h5")) if root.is_dir() else []
        if not files:
            raise FileNotFoundError(f"{root}: no fastMRI .h5 files; make them with python data_scripts/make_data.py fastmri")
        self.samples = [(f, s) for f in files for s in range(check_fastmri_file(f)["slices"])]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict:
        fname, s = self.samples[i]
        d = read_fastmri(fname, slices=s)
        kspace = d["kspace"] if d["multicoil"] else d["kspace"][None]  # (coils, H, W)
        item = {"kspace": kspace, "max": float(d["attrs"].get("max", 0.0)), "fname": fname.name, "slice": s}
        if d["target"] is not None:
            item["target"] = d["target"]
        if d["mask"] is not None:
            item["mask"] = d["mask"]
        return self.transform(item) if self.transform else item


def crop_readout(kspace: torch.Tensor, rows: int) -> torch.Tensor:
    """Remove read-out oversampling: k-space (..., H, W) -> (..., rows, W), the k-space of the
    image's central ``rows`` rows (inverse FFT along the read-out, crop, FFT back). Exact, since the
    read-out (row) direction is always fully sampled."""
    image = ifftnc(kspace.transpose(-1, -2), 1)  # (..., W, H): a 1D transform along the rows
    image = center_crop(image, (image.shape[-2], rows))
    return fftnc(image, 1).transpose(-1, -2)


class VarNetTransform:
    """A :class:`FastMRISlices` item -> the VarNet's inputs (fastMRI's ``VarNetDataTransform``).

    Returns a dict: ``masked_kspace`` (coils, H, W) complex64, ``mask`` (1, 1, W) float,
    ``num_low_frequencies`` (int), ``target`` (h, w), ``max_value`` (the volume's maximum, SSIM's
    data range), ``fname``, ``slice``.

    Args:
        mask_func: a :class:`mricourse.MaskFunc`; without one, the file's own mask (test files).
        use_seed: seed the mask by the file name, so every slice of a volume, every epoch and
            every method gets the same mask (evaluation); False: a new mask each time (training),
            its seed drawn from torch's generator (seeded and checkpointed by ``fit``).
        readout_crop: remove the read-out oversampling first (:func:`crop_readout`): the network
            then works on the target's rows only, half the compute for fastMRI brain data.
        band: train on a band of this many rows at a random height (drawn from torch's
            generator) instead of the whole image: the k-space of those rows of the image (an
            inverse FFT along the fully sampled read-out, a crop, an FFT back) and the same rows of
            the target: an exact, smaller reconstruction problem, as chapter 2's cascade trains on
            bands of rows. Needs ``readout_crop`` (the rows must be the target's); None: whole images.
    """

    def __init__(self, mask_func=None, use_seed: bool = True, readout_crop: bool = False, band: int | None = None):
        if band is not None and (not readout_crop or int(band) < 8):
            raise ValueError(f"VarNetTransform: band needs readout_crop=True and at least 8 rows, got band={band!r}")
        self.mask_func, self.use_seed, self.readout_crop, self.band = mask_func, use_seed, readout_crop, band

    def __call__(self, item: dict) -> dict:
        kspace, target = item["kspace"], item.get("target")
        if kspace.ndim != 3 or not kspace.is_complex():
            raise TypeError(f"VarNetTransform: expected complex k-space (coils, H, W), got {kspace.dtype} {tuple(kspace.shape)}")
        if self.readout_crop and target is not None and kspace.shape[-2] > target.shape[-2]:
            kspace = crop_readout(kspace, target.shape[-2])
        if self.band is not None and target is not None and kspace.shape[-2] == target.shape[-2] > self.band:
            top = int(torch.randint(target.shape[-2] - self.band + 1, ()))
            image = ifftnc(kspace.transpose(-1, -2), 1)[..., top : top + self.band]  # (coils, W, band): hybrid space
            kspace = fftnc(image, 1).transpose(-1, -2)  # (coils, band, W)
            target = target[top : top + self.band]
        w = kspace.shape[-1]
        if self.mask_func is not None:
            seed = tuple(map(ord, item["fname"])) if self.use_seed else int(torch.randint(2**31 - 1, ()))
            mask, nlf = self.mask_func(w, seed=seed)
        elif "mask" in item:
            mask, nlf = item["mask"].reshape(1, 1, 1, w).float(), 0  # 0: the VarNet finds the centre itself
        else:
            raise ValueError(f"{item['fname']}: the file has no mask, so VarNetTransform needs a mask_func")
        return {
            "masked_kspace": kspace * mask[0] + 0.0,  # + 0.0: no negative zeros
            "mask": mask[0],  # (1, 1, W)
            "num_low_frequencies": nlf,
            "target": target if target is not None else torch.zeros(0),
            "max_value": float(item.get("max", 0.0)),
            "fname": item["fname"],
            "slice": item["slice"],
        }


class BratsVolumes(Dataset):
    """BraTS case folders under ``root``; ``seg`` classes 0 background, 1 necrosis, 2 oedema, 3 enhancing."""

    def __init__(self, root, normalize: bool = True):
        root = Path(root)
        self.cases = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []
        if not self.cases:
            raise FileNotFoundError(f"{root}: no BraTS case folders; make them with python data_scripts/make_data.py brats")
        self.normalize = normalize

    def __len__(self) -> int:
        return len(self.cases)

    def __getitem__(self, i: int) -> dict:
        c = read_brats_case(self.cases[i])
        image = torch.from_numpy(c["image"])
        if self.normalize:
            image = zscore_brain(image, image.abs().sum(0) > 0)
        item = {"image": image, "case": c["case"]}
        if c["seg"] is not None:
            seg = torch.from_numpy(c["seg"])
            item["seg"] = torch.where(seg == 4, torch.tensor(3), seg)
        return item


class NiftiVolumes(Dataset):
    """3D NIfTI files (e.g. one IXI contrast), scaled so the 99.5th percentile of non-zero voxels is 1."""

    def __init__(self, files):
        self.files = [Path(f) for f in files]
        if not self.files:
            raise FileNotFoundError("NiftiVolumes: no files given; make them with python data_scripts/make_data.py ixi")

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict:
        vol = torch.from_numpy(read_nifti(self.files[i], hint="ixi")[0])
        nz = vol[vol > 0]
        scale = torch.quantile(nz[:: max(1, nz.numel() // 100000)], 0.995) if nz.numel() else torch.tensor(1.0)
        return {"image": (vol / scale)[None], "name": self.files[i].name}


class RegistrationPairs(Dataset):
    """(moving, fixed) image pairs with their label maps, the training data of VoxelMorph.

    Args:
        images: (N, 1, *spatial) subjects; ``labels``: their (N, 1, *spatial) integer label maps
            (all zero where there are none).
        atlas: ``(image (1, *spatial), labels (1, *spatial))``: item ``i`` registers the atlas
            (moving) to subject ``i`` (fixed), atlas-to-subject registration as in chapter 8;
            the loader's shuffle is the only randomness.
        length: without ``atlas``, items per epoch (default N): item ``i`` registers subject
            ``i % N`` (moving) to another subject (fixed), drawn in ``__getitem__`` from torch's
            global generator (seeded and checkpointed by :func:`mricourse.fit`).

    Items: ``{"moving", "fixed"}`` images (1, *spatial) and ``{"moving_labels", "fixed_labels"}``
    (1, *spatial) int64, the batch keys of :func:`mricourse.voxelmorph_step`.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, atlas=None, length: int | None = None):
        if len(images) != len(labels) or len(images) < (1 if atlas is not None else 2):
            raise ValueError(
                f"RegistrationPairs: expected {'>= 1' if atlas is not None else '>= 2'} images with as many label maps, "
                f"got {len(images)} and {len(labels)}"
            )
        if images.shape[1] != 1 or labels.shape[1:] != images.shape[1:]:
            raise ValueError(
                "RegistrationPairs: expected images (N, 1, *spatial) and labels of the same shape, "
                f"got {tuple(images.shape)} and {tuple(labels.shape)}"
            )
        if atlas is not None and (atlas[0].shape != images.shape[1:] or atlas[1].shape != images.shape[1:]):
            raise ValueError(
                f"RegistrationPairs: expected an atlas image and labels of shape {tuple(images.shape[1:])}, "
                f"got {tuple(atlas[0].shape)} and {tuple(atlas[1].shape)}"
            )
        self.images, self.labels = images, labels.long()
        self.atlas = None if atlas is None else (atlas[0], atlas[1].long())
        self.length = len(images) if atlas is not None or length is None else int(length)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict:
        if self.atlas is not None:  # the atlas to subject i
            (moving, moving_labels), b = self.atlas, i
        else:  # subject i % N to another one
            n = len(self.images)
            a = i % n
            b = (a + int(torch.randint(1, n, ()))) % n
            moving, moving_labels = self.images[a], self.labels[a]
        return {"moving": moving, "fixed": self.images[b], "moving_labels": moving_labels, "fixed_labels": self.labels[b]}
