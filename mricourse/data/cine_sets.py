"""The ``cine`` data set as chapter 2 and the ``cascade`` recipe read it: the sequences of one
split (:func:`load_cine`) and the training samples of the deep cascade (:class:`CineCrops`).

The data set (``ensure_dataset("cine")``, ``data_scripts/make_data.py cine``) holds one fastMRI
HDF5 file of fully sampled single-coil k-space (T, H, W) per subject, frames along the first axis,
in ``singlecoil_train``, ``singlecoil_val`` and ``singlecoil_test`` (distinct subjects), and the
labels of each subject in ``ground_truth/<file>-labels.npz``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..fft import fft2c, ifft2c
from ..masks import kt_mask
from .fastmri import read_fastmri

__all__ = ["CINE_SPLITS", "load_cine", "CineCrops"]

#: split name -> the data set's folder
CINE_SPLITS = {"train": "singlecoil_train", "val": "singlecoil_val", "test": "singlecoil_test"}


def load_cine(root, split: str = "train") -> dict:
    """Every sequence of one split of a ``cine`` data set folder, in the layout of
    :func:`~mricourse.data.cine.cine_sequences`.

    Args:
        root: the data set's folder (e.g. ``ensure_dataset("cine")``).
        split: ``"train"``, ``"val"`` or ``"test"``.

    Returns:
        ``dict(images=(N, T, H, W) complex64`` (the inverse FFT of the stored k-space),
        ``labels=(N, T, H, W) int16`` or None when the folder has no ``ground_truth``,
        ``subject=(N,) int64, heart_rate=(N,) float32)``, files in name order.
    """
    if split not in CINE_SPLITS:
        raise ValueError(f"load_cine: expected split 'train', 'val' or 'test', got {split!r}")
    root = Path(root)
    files = sorted((root / CINE_SPLITS[split]).glob("*.h5"))
    if not files:
        raise FileNotFoundError(
            f"{root / CINE_SPLITS[split]}: no cine .h5 files; make them with python data_scripts/make_data.py cine"
        )
    images, labels, subject, heart_rate = [], [], [], []
    for i, f in enumerate(files):
        d = read_fastmri(f)
        if d["multicoil"] or d["kspace"].ndim != 3:
            raise ValueError(f"{f}: expected single-coil cine k-space (T, H, W), got {tuple(d['kspace'].shape)}")
        images.append(ifft2c(d["kspace"]))  # (T, H, W)
        subject.append(int(d["attrs"].get("subject", i)))
        heart_rate.append(float(d["attrs"].get("heart_rate", float("nan"))))
        gt = root / "ground_truth" / f"{f.stem}-labels.npz"
        if gt.exists():
            with np.load(gt) as z:
                labels.append(torch.from_numpy(z["labels"].astype(np.int16)))
    return dict(
        images=torch.stack(images),
        labels=torch.stack(labels) if len(labels) == len(files) else None,
        subject=torch.tensor(subject, dtype=torch.int64),
        heart_rate=torch.tensor(heart_rate, dtype=torch.float32),
    )


class CineCrops(Dataset):
    """The deep cascade's training samples from cine sequences (N, T, H, W) complex, one per
    sequence: the heart beat rolled to start at a random frame, a random band of ``crop`` fully
    sampled read-out rows (an exact smaller reconstruction problem: the read-out is fully sampled,
    so its rows are independent after an inverse FFT along it), and a new k-t mask
    (:func:`~mricourse.masks.kt_mask`, ``center_lines`` always sampled) at an acceleration drawn
    uniformly in ``accel``.

    Item ``i``: ``((masked k-space (T, crop, W) complex, mask (T, 1, W)), image (T, crop, W) complex)``.
    Every draw comes from torch's global generator (seeded and checkpointed by ``fit``): the same
    seed gives the same samples.
    """

    def __init__(self, images: torch.Tensor, crop: int, center_lines: int, accel: tuple[float, float] = (4.0, 8.0)):
        if images.ndim != 4 or not images.is_complex():
            raise TypeError(f"CineCrops: expected complex sequences (N, T, H, W), got {images.dtype} {tuple(images.shape)}")
        if crop < 1 or not 1 <= accel[0] <= accel[1]:
            raise ValueError(f"CineCrops: expected crop >= 1 and 1 <= accel[0] <= accel[1], got crop {crop}, accel {accel}")
        self.images, self.crop, self.center_lines, self.accel = images, min(crop, images.shape[-2]), center_lines, accel

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        x = self.images[i]  # (T, H, W)
        t, h, w = x.shape
        x = x.roll(int(torch.randint(t, ())), dims=0)  # start the heart beat anywhere
        top = int(torch.randint(h - self.crop + 1, ()))
        x = x[:, top : top + self.crop]  # (T, crop, W): a band of read-out rows
        accel = self.accel[0] + (self.accel[1] - self.accel[0]) * float(torch.rand(()))
        mask = kt_mask(t, w, accel, self.center_lines, seed=int(torch.randint(1 << 30, ())))[0]  # (T, 1, W)
        return (mask * fft2c(x), mask), x
