"""Bad input gets a clear error (naming the input and the fix), a warning, or the right result:
never a silently wrong answer nor a bare traceback from deep inside a library."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import mricourse as mc
from mricourse.data.datasets import SliceData
from mricourse.data.fastmri import check_fastmri_file, read_fastmri, write_fastmri
from mricourse.data.nifti import ixi_name, read_nifti, write_nifti
from mricourse.data.prepare import index_fastmri, index_ixi, prepare_main
from mricourse.masks import equispaced_mask, poisson_disc_mask, random_mask, variable_density_mask
from mricourse.models.varnet import VarNet, VarNetConfig, acs_mask

pytestmark = pytest.mark.usefixtures("one_thread")


def _fastmri_file(path, slices=3, coils=2, size=16, kspace=None, target=None):
    g = torch.Generator().manual_seed(0)
    k = torch.randn(slices, coils, size, size, dtype=torch.complex64, generator=g) if kspace is None else kspace
    t = torch.rand(slices, size, size, generator=g) if target is None else target
    return write_fastmri(path, k, t)


# ------------------------------------------------------------------------------- fastMRI files


def test_nan_kspace_is_refused_with_the_file(tmp_path):
    k = torch.randn(2, 2, 16, 16, dtype=torch.complex64)
    k[1, 0, 3, 3] = complex(float("nan"), 0)
    path = _fastmri_file(tmp_path / "nan.h5", slices=2, kspace=k)
    with pytest.raises(ValueError, match=r"nan\.h5.*(NaN|non-finite)"):
        read_fastmri(path)
    assert torch.isfinite(read_fastmri(path, slices=0)["kspace"]).all()  # the good slice still reads
    assert read_fastmri(path, allow_nonfinite=True)["kspace"].isnan().any()
    index = index_fastmri(tmp_path)
    assert index["summary"]["bad_files"] == 1 and "nan.h5" in index["errors"][0]


def test_target_with_fewer_slices_than_kspace(tmp_path):
    path = _fastmri_file(tmp_path / "short.h5")
    with h5py.File(path, "r+") as f:
        t = f["reconstruction_rss"][:2]
        del f["reconstruction_rss"]
        f["reconstruction_rss"] = t
    with pytest.raises(ValueError, match=r"short\.h5.*2 slices.*3"):
        read_fastmri(path)


def test_garbage_header_names_the_file_and_prepare_skips_it(tmp_path, capsys):
    good = _fastmri_file(tmp_path / "multicoil_val" / "good.h5")
    bad = _fastmri_file(tmp_path / "multicoil_val" / "bad.h5")
    with h5py.File(bad, "r+") as f:
        del f["ismrmrd_header"]
        f["ismrmrd_header"] = np.bytes_(b"<not xml")
    for fn in (read_fastmri, check_fastmri_file):
        with pytest.raises(ValueError, match=r"bad\.h5.*header"):
            fn(bad)
    assert prepare_main(index_fastmri, "", [str(tmp_path), "--out", str(tmp_path / "index.json")]) == 1
    out = capsys.readouterr().out
    assert "bad.h5" in out and '"files": 1' in out and good.exists()


def test_slice_out_of_range(tmp_path):
    path = _fastmri_file(tmp_path / "f.h5")
    with pytest.raises(IndexError, match=r"f\.h5.*slice 5.*3 slices"):
        read_fastmri(path, slices=5)


# ---------------------------------------------------------------------------------- NIfTI, npz


def test_nan_nifti_is_refused_and_counted_bad(tmp_path, capsys):
    vol = np.ones((8, 9, 10), np.float32)
    vol[2, 3, 4] = np.nan
    path = write_nifti(tmp_path / "IXI-T1" / ixi_name(2, "HH", 1000, "T1"), vol, np.eye(4))
    write_nifti(tmp_path / "IXI-T1" / ixi_name(3, "HH", 1001, "T1"), np.ones((8, 9, 10)), np.eye(4))
    with pytest.raises(ValueError, match=r"IXI002.*(NaN|non-finite)"):
        read_nifti(path)
    assert np.isnan(read_nifti(path, allow_nonfinite=True)[0]).sum() == 1
    index = index_ixi(tmp_path)
    assert index["summary"]["subjects"] == 1 and index["summary"]["bad_files"] == 1


def test_prepare_ixi_on_an_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert prepare_main(index_ixi, "", [str(tmp_path / "empty"), "--out", str(tmp_path / "i.json")]) == 2
    assert "no IXI" in capsys.readouterr().out and not (tmp_path / "i.json").exists()


def test_npz_with_other_keys(tmp_path):
    path = tmp_path / "train.npz"
    np.savez(path, pictures=np.zeros((2, 1, 8, 8)))
    with pytest.raises(ValueError, match=r"train\.npz.*images.*make_data\.py slices"):
        SliceData(path)


# ---------------------------------------------------------------------------------------- masks


@pytest.mark.parametrize("accel", [50, 1000, math.inf, math.nan])
def test_unreachable_accelerations_name_the_range(accel):
    for fn in (random_mask, equispaced_mask):
        with pytest.raises(ValueError, match=r"(achievable|expected an acceleration)"):
            fn(96, accel, 0.08, seed=0)
    with pytest.raises(ValueError, match=r"(achievable|expected an acceleration)"):
        variable_density_mask(96, accel, center_lines=8, seed=0)
    with pytest.raises(ValueError, match=r"(achievable|expected an acceleration)"):
        poisson_disc_mask((32, 32), accel, seed=0)


def test_reachable_accelerations_are_met():
    assert mc.acceleration(random_mask(96, 12, 0.08, seed=0)) == pytest.approx(12, rel=0.3)
    assert mc.acceleration(variable_density_mask(96, 12, center_lines=8, seed=0)) == pytest.approx(12, rel=0.05)
    assert mc.acceleration(poisson_disc_mask((32, 32), 4, calib=6, seed=0)) == pytest.approx(4, rel=0.1)
    m = equispaced_mask(96, 2, 0.5, seed=0, exact=True)  # was ZeroDivisionError: the centre alone is 2x
    assert mc.acceleration(m) == pytest.approx(2, rel=0.05)
    assert random_mask(64, 1, 1.0, seed=0).sum() == 64  # everything sampled


@pytest.mark.parametrize(
    "mask, words",
    [
        (torch.full((1, 1, 1, 16), 2.0), "0 and 1"),
        (torch.ones(1, 1, 1, 16, dtype=torch.int64), "float"),
    ],
)
def test_masks_must_be_zero_one_floats(mask, words):
    k = torch.randn(1, 2, 16, 16, dtype=torch.complex64)
    with pytest.raises((ValueError, TypeError), match=words):
        mc.physics.SingleCoilMRI(mask).A_adjoint(k[:, :1])
    with pytest.raises((ValueError, TypeError), match=words):
        mc.MultiCoilMRI(torch.ones_like(k), mask)
    net = VarNet(VarNetConfig(num_cascades=1, chans=4, sens_chans=2, num_pools=1, sens_pools=1))
    with pytest.raises((ValueError, TypeError), match=words):
        net(k, mask, 4)


@pytest.mark.parametrize("nlf", [-3, 100])
def test_num_low_frequencies_in_range(nlf):
    with pytest.raises(ValueError, match="num_low_frequencies"):
        acs_mask(torch.ones(1, 1, 1, 16), nlf)


# ------------------------------------------------------------------------------ tensors in models


def test_wrong_precision_names_the_dtype():
    net = VarNet(VarNetConfig(num_cascades=1, chans=4, sens_chans=2, num_pools=1, sens_pools=1))
    k = torch.randn(1, 2, 16, 16, dtype=torch.complex128)
    with pytest.raises(TypeError, match="complex64"):
        net(k, torch.ones(1, 1, 1, 16), 4)
    unet = mc.UNet(1, 1, chans=4, num_pools=1)
    with pytest.raises(TypeError, match=r"float32.*float64"):
        unet(torch.randn(1, 1, 16, 16, dtype=torch.float64))


def test_empty_batch_into_the_fft():
    with pytest.raises(ValueError, match="empty"):
        mc.fft2c(torch.zeros(0, 1, 16, 16, dtype=torch.complex64))


def test_nan_inputs_warn():
    k = torch.randn(1, 2, 16, 16, dtype=torch.complex64)
    k[0, 0, 0, 0] = float("nan")
    with pytest.warns(RuntimeWarning, match="NaN"):
        mc.zero_filled(k)
    with pytest.warns(RuntimeWarning, match="NaN"):
        mc.MultiCoilMRI(torch.ones_like(k), torch.ones(1, 1, 1, 16)).A_adjoint(k)
    net = VarNet(VarNetConfig(num_cascades=1, chans=4, sens_chans=2, num_pools=1, sens_pools=1))
    with pytest.warns(RuntimeWarning, match="NaN"):
        net(k, torch.ones(1, 1, 1, 16), 4)
    x = torch.rand(8, 8)
    y = x.clone()
    y[0, 0] = float("nan")
    with pytest.warns(RuntimeWarning, match="NaN"):
        mc.psnr(x, y)


@pytest.mark.parametrize("snr", [math.nan, -1.0, 0.0])
def test_add_noise_needs_a_positive_snr(snr):
    with pytest.raises(ValueError, match="snr"):
        mc.add_noise(torch.ones(4, dtype=torch.complex64), snr)


def test_ssim_of_zero_images():
    with pytest.raises(ValueError, match="data_range"):
        mc.ssim(torch.zeros(8, 8), torch.zeros(8, 8))
    assert float(mc.ssim(torch.zeros(8, 8), torch.zeros(8, 8), data_range=1.0)) == pytest.approx(1.0)


def test_scripts_are_importable():  # the data scripts run from a checkout
    assert (Path(__file__).resolve().parents[1] / "data_scripts" / "prepare_ixi.py").exists() and sys.executable
