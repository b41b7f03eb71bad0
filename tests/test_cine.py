"""The dynamic cardiac phantom: determinism, shapes, anatomy that moves as a heart does; the data set
on disk, read back by split, and the cascade's training samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mricourse as mc
from mricourse.data.cine import CINE_LABELS, cine_sequences, cine_subject, contraction

L = CINE_LABELS


@pytest.fixture(scope="module")
def subject():
    return cine_subject(seed=3, index=1, size=64, frames=12)


def test_shapes_types_and_normalisation(subject):
    assert subject.image.shape == (12, 64, 64) and subject.image.dtype == torch.complex64
    assert subject.labels.shape == (12, 64, 64) and subject.labels.dtype == torch.int16
    assert 0.9 < float(subject.image.abs().flatten().quantile(0.995)) < 1.1
    assert 50 <= subject.heart_rate <= 100 and abs(subject.rr - 60_000 / subject.heart_rate) < 1e-6
    present = set(subject.labels.unique().tolist())
    assert {L["rv"], L["myocardium"], L["lv"], L["lung"], L["liver"], L["spine"], L["aorta"], L["papillary"]} <= present


def test_odd_sizes_and_frame_counts():
    s = cine_subject(0, 0, size=(37, 45), frames=7)
    assert s.image.shape == (7, 37, 45) and s.labels.shape == (7, 37, 45)
    with pytest.raises(ValueError):
        cine_subject(0, 0, size=8)
    with pytest.raises(ValueError):
        cine_subject(0, 0, frames=0)


def test_deterministic_per_seed_and_index():
    a, b = cine_subject(5, 2, size=48, frames=6), cine_subject(5, 2, size=48, frames=6)
    assert torch.equal(a.image, b.image) and torch.equal(a.labels, b.labels)
    c, d = cine_subject(5, 3, size=48, frames=6), cine_subject(6, 2, size=48, frames=6)
    assert not torch.equal(a.image, c.image) and not torch.equal(a.image, d.image)
    batch = cine_sequences(3, size=48, frames=6, seed=5, start=1)
    assert torch.equal(batch["images"][1], a.image) and batch["subject"].tolist() == [1, 2, 3]
    assert batch["images"].shape == (3, 6, 48, 48) and batch["heart_rate"].unique().numel() == 3


def test_contraction_curve():
    phase = torch.linspace(0, 1, 201)[:-1]
    c = contraction(phase, systole=0.35)
    assert float(c[0]) == 0 and abs(float(c.max()) - 1) < 1e-6
    assert abs(float(phase[c.argmax()]) - 0.35) < 0.01  # end systole
    assert float(contraction(torch.tensor([0.999]), 0.35)) < 0.01  # periodic: back to end diastole
    assert (c >= 0).all() and (c <= 1).all()


def test_heart_contracts_with_constant_myocardial_area():
    s = cine_subject(1, 0, size=128, frames=20)
    lab = s.labels
    myo = ((lab == L["myocardium"]) | (lab == L["lesion"])).sum((1, 2)).float()
    lv = ((lab == L["lv"]) | (lab == L["papillary"])).sum((1, 2)).float()
    rv = (lab == L["rv"]).sum((1, 2)).float()
    assert float(myo.max() / myo.min()) < 1.08  # constant myocardial area (up to pixelisation)
    assert 0.4 < 1 - float(lv.min() / lv.max()) < 0.8  # ejection fraction by area
    assert int(lv.argmax()) in (0, 19) and 3 <= int(lv.argmin()) <= 12  # end diastole at frame 0
    assert float(rv.min() / rv.max()) < 0.8


def test_static_anatomy_moves_only_with_breathing():
    still = cine_subject(2, 0, size=64, frames=10)
    breathing = cine_subject(2, 0, size=64, frames=10, breathing=True)
    side = slice(0, 16)  # the patient's right quarter (x < -0.5): chest wall, lung, liver, far from the heart
    assert (still.image[:, :, side] - still.image[:1, :, side]).abs().max() < 1e-6
    assert (breathing.image[:, :, side] - breathing.image[:1, :, side]).abs().max() > 0.05
    liver = (breathing.labels == L["liver"]).float()
    rows = torch.arange(64).float().view(1, 64, 1)
    centre = (liver * rows).sum((1, 2)) / liver.sum((1, 2))  # the liver's centre row per frame
    assert float(centre.max() - centre.min()) > 0.5  # moves with the diaphragm


def test_lesion_lies_in_the_myocardium():
    s = cine_subject(4, 0, size=128, frames=8, lesion=True)
    lesion = s.labels == L["lesion"]
    assert (lesion.sum((1, 2)) > 0).all()
    plain = cine_subject(4, 0, size=128, frames=8)
    assert (plain.labels[lesion] == L["myocardium"]).float().mean() > 0.9
    assert float(s.image.abs()[lesion].mean()) > 1.2 * float(plain.image.abs()[lesion].mean())  # brighter (oedema)


def test_smooth_phase(subject):
    phase = subject.image[0].angle()
    body = subject.image[0].abs() > 0.2
    dy = (phase[1:] - phase[:-1]).remainder(2 * torch.pi)
    dy = torch.minimum(dy, 2 * torch.pi - dy)[body[1:] & body[:-1]]
    assert float(dy.max()) < 0.5 and float(phase[body].std()) > 0.05  # varies, but smoothly


def test_cine_data_set_on_disk(tmp_path):
    from mricourse.data import make
    from mricourse.data.fastmri import read_fastmri

    params = dict(train=2, val=1, test=1, size=32, frames=6, fov=0.6, seed=3)
    folder = make.make_dataset("cine", params, tmp_path, verbose=False)
    files = sorted((folder / "singlecoil_train").glob("file_cine_*.h5"))
    assert len(files) == 2 and len(list((folder / "singlecoil_test").glob("*.h5"))) == 1
    d = read_fastmri(files[1])
    s = cine_subject(3, 1, size=32, frames=6, fov=0.6)
    assert not d["multicoil"] and d["kspace"].shape == (6, 32, 32) and d["attrs"]["acquisition"] == "CINE_BSSFP"
    assert torch.allclose(d["target"], s.image.abs(), atol=1e-5)  # fully sampled: the ESC target is |F^-1 k|
    assert torch.allclose(mc.ifft2c(d["kspace"]).abs(), d["target"], atol=1e-4)
    labels = np.load(folder / "ground_truth" / f"{files[1].stem}-labels.npz")["labels"]
    assert (labels == s.labels.numpy()).all()


def test_load_cine_reads_back_the_subjects_of_each_split(tmp_path):
    from mricourse.data import make

    params = dict(train=2, val=1, test=2, size=32, frames=6, fov=0.6, seed=3)
    folder = make.make_dataset("cine", params, tmp_path, verbose=False)
    start = 0
    for split, n in (("train", 2), ("val", 1), ("test", 2)):
        d = mc.load_cine(folder, split)
        ref = cine_sequences(n, size=32, frames=6, seed=3, fov=0.6, start=start)  # the subjects of the split
        assert d["images"].shape == (n, 6, 32, 32) and d["images"].dtype == torch.complex64
        assert torch.allclose(d["images"], ref["images"], atol=1e-5)
        assert torch.equal(d["labels"], ref["labels"]) and torch.equal(d["subject"], ref["subject"])
        assert torch.allclose(d["heart_rate"], ref["heart_rate"])
        start += n
    with pytest.raises(ValueError, match="split"):
        mc.load_cine(folder, "validation")
    with pytest.raises(FileNotFoundError, match="make_data.py cine"):
        mc.load_cine(tmp_path / "nowhere")


def test_cine_crops_draw_from_torchs_generator():
    """Same seed, same samples (the recipe's runs repeat and resume exactly); another seed, others.
    A sample is a band of rows of the rolled sequence and its k-t undersampled k-space."""
    images = cine_sequences(3, size=32, frames=6, seed=0, fov=0.6)["images"]
    ds = mc.CineCrops(images, crop=8, center_lines=2)
    assert len(ds) == 3

    def draw(seed):
        torch.manual_seed(seed)
        return [ds[i] for i in (0, 2, 1, 0)]

    a, b, c = draw(0), draw(0), draw(1)
    flat = [[t for (k, m), x in items for t in (k, m, x)] for items in (a, b, c)]
    assert all(torch.equal(u, v) for u, v in zip(flat[0], flat[1]))
    assert not all(torch.equal(u, v) for u, v in zip(flat[0], flat[2]))
    (k0, mask), x = a[0]
    assert k0.shape == x.shape == (6, 8, 32) and mask.shape == (6, 1, 32)
    assert torch.equal(k0, mask * mc.fft2c(x)) and 4 <= mc.acceleration(mask) <= 9
    rows = [images[0].roll(s, 0)[:, top : top + 8] for s in range(6) for top in range(32 - 8 + 1)]
    assert any(torch.equal(x, r) for r in rows)  # a band of read-out rows, the heart beat rolled
    with pytest.raises(TypeError):
        mc.CineCrops(images.abs(), crop=8, center_lines=2)


def test_acquisition_from_a_finer_grid_with_complex_noise():
    """The data set's acquisition: k-space of an object rendered on a finer grid (not the
    reconstruction's grid), truncated; complex noise of the requested level; labels on the output
    grid; still deterministic."""
    plain = cine_subject(3, 1, size=48, frames=4, fov=0.6)
    fine = cine_subject(3, 1, size=48, frames=4, fov=0.6, oversample=2)
    assert fine.image.shape == plain.image.shape and fine.labels.shape == plain.labels.shape
    assert 0.9 < float(fine.labels.eq(plain.labels).float().mean())  # the same anatomy on the same grid
    # truncated, not band-limited by construction: the finer object's k-space has energy beyond the grid's
    k = mc.fft2c(cine_subject(3, 1, size=96, frames=1, fov=0.6).image[0]).abs() ** 2
    assert float(k.sum() - k[24:72, 24:72].sum()) > 1e-4 * float(k.sum())
    noisy = cine_subject(3, 1, size=48, frames=4, fov=0.6, oversample=2, noise=0.02)
    assert noisy.params["noise"] == 0.02
    diff = noisy.image - fine.image
    assert abs(float(diff.real.std()) - 0.02) < 0.002 and abs(float(diff.imag.std()) - 0.02) < 0.002
    drawn = [cine_subject(3, i, size=32, frames=2, fov=0.6, noise=(0.01, 0.03)).params["noise"] for i in range(4)]
    assert all(0.01 <= d <= 0.03 for d in drawn) and len(set(drawn)) == 4
    again = cine_subject(3, 1, size=48, frames=4, fov=0.6, oversample=2, noise=0.02)
    assert torch.equal(noisy.image, again.image)
    with pytest.raises(ValueError, match="oversample"):
        cine_subject(0, 0, size=32, oversample=0)
    with pytest.raises(ValueError, match="noise"):
        cine_subject(0, 0, size=32, noise=(0.03, 0.01))
