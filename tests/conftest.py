"""Shared fixtures: tiny data sets in the real on-disk formats, for the training-task tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mricourse.data.make import dataset_params, make_dataset
from mricourse.data.nifti import ixi_name, write_brats_case, write_nifti
from mricourse.spatial import identity_grid


def write_tiny_data(root: Path) -> dict[str, Path]:
    """``slices`` (6 + 2 subjects, 32 px, T1w, T2w, PDw and FLAIR), ``cine`` (2 + 1 + 1 subjects, 32 px,
        8 frames), ``fastmri`` (1 + 1 volumes of 2 slices, 32 px, 2 coils) written by the course's
        generators; ``brats``: 3 cases of random 20 x 24 x 20 volumes with a cubic lesion; ``ixi``: 3
    random T1 volumes of 24 x 28 x 24 in IXI naming."""
    root = Path(root)
    sizes = {
        "slices": dict(train=6, test=2, size=32),
        "cine": dict(train=2, val=1, test=1, size=32, frames=8),
        "fastmri": dict(train=1, val=1, slices=2, size=32, coils=2, oversample=1),
    }
    out = {name: make_dataset(name, dataset_params(name, "smoke", **kw), root, verbose=False) for name, kw in sizes.items()}
    rng = np.random.default_rng(0)
    for i in range(3):
        images = {m: rng.random((20, 24, 20)).astype(np.float32) * 100 + 10 for m in ("t1", "t1ce", "t2", "flair")}
        seg = np.zeros((20, 24, 20), np.int16)
        seg[6:14, 8:16, 6:14] = 2
        seg[8:12, 10:14, 8:12] = 1
        seg[9:11, 11:13, 9:11] = 4
        write_brats_case(root / "brats", f"BraTS2021_{i:05d}", images, seg, np.eye(4))
    out["brats"] = root / "brats"
    zz, yy, xx = np.meshgrid(*(np.linspace(-1, 1, n) for n in (24, 28, 24)), indexing="ij")
    head = (zz**2 + yy**2 + xx**2 < 0.8).astype(np.float32)
    for i in range(3):
        t1 = head * (500 + 100 * rng.random(head.shape).astype(np.float32))
        name, affine = ixi_name(2 + i, "Guys", 1000 + i, "T1"), np.diag([2.0, 2.0, 2.0, 1.0])
        write_nifti(root / "ixi" / "IXI-T1" / name, t1, affine)
        labels = head * (1 + (xx > 0.1 * i) + (zz > 0))  # three "tissues" that move between subjects
        write_nifti(root / "ixi" / "ground_truth" / name.replace("-T1.nii.gz", "-labels.nii.gz"), labels, affine, np.uint8)
    out["ixi"] = root / "ixi"
    return out


@pytest.fixture(scope="module")
def one_thread():
    """Small tensors: one torch thread is faster, and robust on a busy machine (use it with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> dict[str, Path]:
    """:func:`write_tiny_data` once per test session."""
    return write_tiny_data(tmp_path_factory.mktemp("tiny_data"))


# ---------------------------------------------------------------- test images
def blobs(shape, seed=0, n=6):
    """A smooth image with a few Gaussian blobs, values in [0, 1]: (1, 1, *shape)."""
    g = torch.Generator().manual_seed(seed)
    grid = identity_grid(shape)[0]  # (dims, *shape)
    img = torch.zeros(shape)
    for _ in range(n):
        c = torch.rand(len(shape), generator=g) * torch.tensor(shape) * 0.6 + torch.tensor(shape) * 0.2
        r = 2.0 + 3.0 * torch.rand(1, generator=g)
        img += torch.exp(-((grid - c.view(-1, *[1] * len(shape))) ** 2).sum(0) / (2 * r**2))
    return (img / img.max())[None, None]


def smooth_field(shape, amplitude, seed=0):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(1, len(shape), *[4] * len(shape), generator=g)
    mode = "bilinear" if len(shape) == 2 else "trilinear"
    return amplitude * torch.nn.functional.interpolate(coarse, size=shape, mode=mode, align_corners=True)
