"""Shared fixtures: tiny data sets in the real on-disk formats, for the training-task tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mricourse.data.make import dataset_params, make_dataset
from mricourse.data.nifti import write_brats_case


def write_tiny_data(root: Path) -> dict[str, Path]:
    """``slices`` (6 + 2 subjects, 32 px, T1w and T2w), ``cine`` (2 + 1 + 1 subjects, 32 px,
    8 frames), ``fastmri`` (1 + 1 volumes of 2 slices, 32 px, 2 coils) written by the course's
    generators, and ``brats``: 3 cases of random 20 x 24 x 20 volumes with a cubic lesion."""
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
    return out


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> dict[str, Path]:
    """:func:`write_tiny_data` once per test session."""
    return write_tiny_data(tmp_path_factory.mktemp("tiny_data"))
