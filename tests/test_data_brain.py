"""The digital brain: atlas, subjects, contrasts, deformations and 2D slices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mricourse as mc
from mricourse.data.brain import synthesize, tissue_parameters

BRAIN = ("csf", "gm", "wm")


@pytest.fixture(scope="module")
def subject():
    return mc.make_subject(3, resolution=3.0)


def _pure_tissue_signals(contrast: str, field: float) -> dict[str, float]:
    params = tissue_parameters(BRAIN, field)[None]  # (1, 3, 3)
    fractions = torch.eye(3).view(1, 3, 3, 1)  # one pure voxel per tissue: (1, K, 3, 1)
    s = synthesize(fractions, params, contrast, field)[0, :, 0]
    return dict(zip(BRAIN, s.tolist()))


@pytest.mark.parametrize("field", [1.5, 3.0])
def test_contrast_ordering_of_pure_tissues(field):
    t1 = _pure_tissue_signals("T1w", field)
    assert t1["wm"] > t1["gm"] > t1["csf"]
    t2 = _pure_tissue_signals("T2w", field)
    assert t2["csf"] > t2["gm"] > t2["wm"]
    flair = _pure_tissue_signals("FLAIR", field)
    assert flair["gm"] > flair["wm"] > 3 * flair["csf"]
    pd = _pure_tissue_signals("PDw", field)
    assert pd["gm"] > pd["wm"]
    t1c = _pure_tissue_signals("T1w+c", field)
    assert t1c["wm"] > t1c["gm"] > t1c["csf"]


@pytest.mark.parametrize("field", [1.5, 3.0])
def test_contrast_ordering_in_subject_images(field):
    s = mc.make_subject(1, resolution=2.0, field=field)
    core = {k: s.fractions[s.tissues.index(k)] > 0.9 for k in BRAIN}  # nearly pure voxels
    for contrast, order in [("T1w", "wm gm csf"), ("T2w", "csf gm wm"), ("FLAIR", "gm wm csf")]:
        img = s.image(contrast, bias=False)
        means = [img[core[k]].mean() for k in order.split()]
        assert means[0] > means[1] > means[2], (contrast, field, means)


def test_atlas_labels_and_fractions():
    a = mc.data.load_atlas(2.0)
    assert a.csf.shape == a.gm.shape == a.wm.shape == a.labels.shape == a.mask.shape
    assert a.csf.dtype == np.float32 and a.labels.dtype == np.int16 and a.affine.shape == (4, 4)
    assert set(np.unique(a.labels)) == {0, 1, 2, 3}
    total = a.fractions.sum(0)
    assert total.max() <= 1.0 + 1e-5 and a.fractions.min() >= 0
    vol_ml = {k: float(getattr(a, k).sum()) * a.resolution**3 / 1000 for k in ("csf", "gm", "wm")}
    assert 400 < vol_ml["gm"] < 1200 and 300 < vol_ml["wm"] < 800 and 100 < vol_ml["csf"] < 700, vol_ml
    # world coordinates: the MNI origin (anterior commissure) lies inside the brain
    ijk = np.linalg.inv(a.affine) @ np.array([0, 0, 0, 1.0])
    assert a.mask[tuple(np.round(ijk[:3]).astype(int))]
    assert a.fat.sum() > 0 and a.bone.sum() > 0  # a head around the brain


def test_subject_is_deterministic(subject):
    again = mc.make_subject(3, resolution=3.0)
    other = mc.make_subject(4, resolution=3.0)
    for name in ("fractions", "labels", "displacement", "bias", "texture", "params"):
        assert np.array_equal(getattr(subject, name), getattr(again, name)), name
    assert np.array_equal(subject.image("T2w", noise=0.05), again.image("T2w", noise=0.05))
    assert not np.allclose(subject.displacement, other.displacement)
    assert not np.array_equal(subject.image("T1w"), other.image("T1w"))


def test_subject_maps_and_images(subject):
    shape = mc.data.load_atlas(3.0).shape
    assert subject.t1.shape == subject.t2.shape == subject.pd.shape == shape
    assert subject.displacement.shape == (3, *shape) and subject.displacement.dtype == np.float32
    wm = subject.labels == 3
    assert 400 < np.median(subject.t1[wm]) < 600 and 60 < np.median(subject.t2[wm]) < 80
    clean, noisy = subject.image("PDw", noise=0.0), subject.image("PDw", noise=0.1)
    assert clean.dtype == np.float32 and clean.shape == shape
    background = subject.fractions.sum(0) < 1e-3
    assert clean[background].max() < 1e-3 and noisy[background].mean() > 0.01  # Rician floor in air
    with pytest.raises(ValueError, match="contrast"):
        subject.image("T3w")


def test_deformation_is_diffeomorphic_and_maps_labels():
    s = mc.make_subject(7, resolution=2.0, deform=2.0)
    det = mc.jacobian_determinant(s.displacement[None])
    assert det.min() > 0, det.min()
    assert np.abs(s.displacement).max() > 2  # it really moves
    atlas = mc.data.load_atlas(2.0)
    src = torch.from_numpy(atlas.labels.astype(np.float32))[None, None]
    moved = mc.warp(src, torch.from_numpy(s.displacement)[None], mode="nearest", padding_mode="zeros")[0, 0].numpy()
    for label in (1, 2, 3):
        d = mc.dice(torch.from_numpy(moved == label), torch.from_numpy(s.labels == label))
        assert d > 0.85, (label, d)
    no_move = mc.make_subject(7, resolution=2.0, deform=0.0)
    assert np.abs(no_move.displacement).max() < 1e-4
    assert (no_move.labels == atlas.labels).mean() > 0.999  # up to ties between equal fractions


def test_brain_slices_contract():
    d = mc.brain_slices(3, contrasts=("T1w", "T2w", "FLAIR"), size=64, slices_per_subject=2, seed=5)
    assert d["images"].shape == (6, 3, 64, 64) and d["images"].dtype == torch.float32
    assert d["labels"].shape == (6, 1, 64, 64) and d["labels"].dtype == torch.int64
    assert d["subject"].tolist() == [0, 0, 1, 1, 2, 2]
    assert set(d["labels"].unique().tolist()) == {0, 1, 2, 3}
    brain = d["labels"][:, 0] > 0
    for n in range(6):
        for c in range(3):
            q = torch.quantile(d["images"][n, c][brain[n]], 0.995)
            assert abs(float(q) - 1) < 0.05
    # subject i depends only on (seed, i): a longer run and an index range agree
    more = mc.brain_slices(5, contrasts=("T1w", "T2w", "FLAIR"), size=64, slices_per_subject=2, seed=5)
    assert torch.equal(more["images"][:6], d["images"])
    part = mc.brain_slices(2, contrasts=("T2w",), size=64, slices_per_subject=2, seed=5, start=3)
    assert torch.equal(part["images"][:, 0], more["images"][6:10, 1])
    other = mc.brain_slices(3, contrasts=("T1w",), size=64, slices_per_subject=2, seed=6)
    assert not torch.equal(other["images"][:, 0], d["images"][:, 0])


def test_brain_slices_noise_and_sizes():
    clean = mc.brain_slices(2, size=(72, 56), seed=1)
    noisy = mc.brain_slices(2, size=(72, 56), seed=1, noise=0.1)
    assert clean["images"].shape == (2, 1, 72, 56)
    diff = (noisy["images"] - clean["images"])[clean["labels"] > 0]
    assert 0.05 < float(diff.std()) < 0.15
    with pytest.raises(ValueError, match="contrast"):
        mc.brain_slices(1, contrasts=("T3w",))
    with pytest.raises(ValueError, match="field"):
        mc.make_subject(0, field=2.0)
