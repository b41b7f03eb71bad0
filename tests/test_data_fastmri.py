"""Multi-coil k-space simulation and fastMRI HDF5 files (round trips, fastmri's own loader, errors)."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest
import torch

import mricourse as mc
from mricourse.data.fastmri import check_fastmri_file, read_fastmri, write_fastmri
from mricourse.data.kspace import center_crop, multicoil_kspace, noise_covariance


@pytest.fixture(scope="module")
def volume():
    images = mc.brain_slices(1, contrasts=("T2w",), size=48, slices_per_subject=3, seed=4)["images"][:, 0]  # (3, 48, 48)
    return images, multicoil_kspace(images, num_coils=4, snr=40.0, seed=1)


def test_kspace_shapes_and_rss_target(volume):
    images, sim = volume
    assert sim["kspace"].shape == (3, 4, 96, 48) and sim["kspace"].dtype == torch.complex64
    assert sim["sens_maps"].shape == (1, 4, 96, 48) and sim["target"].shape == (3, 48, 48)
    # the target is the RSS of the fully sampled k-space, centre-cropped
    rss = center_crop(mc.rss(mc.ifft2c(sim["kspace"]))[:, 0], (48, 48))
    assert torch.allclose(rss, sim["target"], atol=1e-6)
    assert sim["kspace_sc"].shape == (3, 96, 48) and sim["target_sc"].shape == (3, 48, 48)


def test_noise_free_kspace_is_the_sense_model(volume):
    images, _ = volume
    sim = multicoil_kspace(images, num_coils=4, snr=math.inf, seed=1)
    padded = torch.zeros(3, 96, 48, dtype=torch.complex64)
    padded[:, 24:72] = sim["image"]
    expected = mc.MultiCoilMRI(sim["sens_maps"], torch.ones(1, 1, 1, 48)).A(padded[:, None])
    assert torch.allclose(sim["kspace"], expected, atol=1e-5)
    assert torch.allclose(sim["image"].abs(), images, atol=1e-5)  # phase only, magnitude kept
    # noise is present and correlated in the noisy version
    noisy = multicoil_kspace(images, num_coils=4, snr=40.0, seed=1)["kspace"]
    assert 0 < float((noisy - sim["kspace"]).abs().pow(2).mean().sqrt()) < 0.1 * float(sim["kspace"].abs().pow(2).mean().sqrt())


def test_noise_covariance_is_hermitian_positive_definite():
    cov = noise_covariance(8, np.random.default_rng(0))
    assert torch.allclose(cov, cov.conj().T)
    assert torch.linalg.eigvalsh(cov.to(torch.complex128)).min() > 0
    assert cov[0, 1].abs() > 0.05  # neighbours couple


def test_hdf5_round_trip(tmp_path, volume):
    _, sim = volume
    path = write_fastmri(tmp_path / "file_brain_AXT2_001.h5", sim["kspace"], sim["target"], acquisition="AXT2", patient_id="s1")
    back = read_fastmri(path)
    assert torch.equal(back["kspace"], sim["kspace"]) and torch.equal(back["target"], sim["target"])
    assert back["multicoil"] and back["mask"] is None
    a = back["attrs"]
    assert a["acquisition"] == "AXT2" and a["patient_id"] == "s1"
    assert a["max"] == pytest.approx(float(sim["target"].max())) and a["norm"] == pytest.approx(
        float(sim["target"].norm()), rel=1e-5
    )
    assert a["recon_size"] == (48, 48, 1) and a["encoding_size"] == (96, 48, 1)
    assert check_fastmri_file(path)["coils"] == 4
    assert not list(tmp_path.glob(".*.tmp"))  # nothing half-written left behind
    # a test file: masked k-space with its mask
    mask = mc.random_mask(48, 4, 0.08, seed=0).reshape(-1)
    test = write_fastmri(tmp_path / "t.h5", sim["kspace"] * mask, sim["target"], mask=mask, acceleration=4, num_low_frequencies=4)
    assert read_fastmri(test)["mask"].shape == (48,)


@pytest.mark.parametrize("challenge", ["multicoil", "singlecoil"])
def test_fastmri_package_loads_our_files(tmp_path, volume, challenge):
    mri_data = pytest.importorskip("fastmri.data.mri_data")
    _, sim = volume
    k, t = (sim["kspace"], sim["target"]) if challenge == "multicoil" else (sim["kspace_sc"], sim["target_sc"])
    write_fastmri(tmp_path / "file_brain_AXT2_002.h5", k, t)
    ds = mri_data.SliceDataset(tmp_path, challenge=challenge)
    assert len(ds) == 3
    kspace, mask, target, attrs, fname, dataslice = ds[2]
    assert np.array_equal(kspace, k[2].numpy()) and np.array_equal(target, t[2].numpy())
    assert attrs["recon_size"] == (48, 48, 1) and attrs["padding_left"] == 0 and attrs["padding_right"] == 48


def test_bad_files_give_clear_errors(tmp_path, volume):
    _, sim = volume
    with pytest.raises(FileNotFoundError, match="make_data.py"):
        read_fastmri(tmp_path / "missing.h5")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(ValueError, match="text.h5.*not a readable HDF5"):
        read_fastmri(tmp_path / "text.h5")
    with h5py.File(tmp_path / "foreign.h5", "w") as f:
        f["data"] = np.zeros(3)
    with pytest.raises(ValueError, match="foreign.h5.*not a fastMRI file"):
        read_fastmri(tmp_path / "foreign.h5")
    good = write_fastmri(tmp_path / "good.h5", sim["kspace"], sim["target"])
    raw = good.read_bytes()
    (tmp_path / "cut.h5").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="cut.h5"):
        check_fastmri_file(tmp_path / "cut.h5")
    with pytest.raises(TypeError, match="complex"):
        write_fastmri(tmp_path / "x.h5", sim["target"], sim["target"])
    with pytest.raises(TypeError, match="real images"):
        multicoil_kspace(sim["kspace"][:, 0])
