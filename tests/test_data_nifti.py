"""NIfTI and BraTS files: round trips with correct affines, reorientation, errors."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from mricourse.data.atlas import _AFFINE_1MM
from mricourse.data.nifti import check_brats_case, ixi_name, read_brats_case, read_nifti, write_brats_case, write_nifti


@pytest.fixture
def volume():
    rng = np.random.default_rng(0)
    return rng.random((5, 7, 6)).astype(np.float32), _AFFINE_1MM.copy()


def test_nifti_round_trip_and_world_coordinates(tmp_path, volume):
    vol, affine = volume
    path = write_nifti(tmp_path / "v.nii.gz", vol, affine)
    back, aff = read_nifti(path)
    assert np.array_equal(back, vol) and np.allclose(aff, affine)
    img = nib.load(path)  # on disk: (x, y, z) with an affine that maps each voxel to the same world point
    assert img.shape == (6, 7, 5)
    d, h, w = 3, 2, 4
    assert np.allclose(img.affine @ [w, h, d, 1], affine @ [d, h, w, 1])
    assert img.get_fdata()[w, h, d] == pytest.approx(vol[d, h, w])
    assert nib.aff2axcodes(img.affine) == ("L", "P", "S")
    assert write_nifti(tmp_path / "w.nii.gz", vol, affine).read_bytes() == path.read_bytes()  # deterministic bytes


def test_reader_reorients_any_nifti(tmp_path, volume):
    vol, affine = volume
    xyz = vol.transpose(2, 1, 0)[::-1, ::-1, :]  # stored RAS+ like many real files
    ras_affine = affine[:, [2, 1, 0, 3]] @ np.array([[-1, 0, 0, 5], [0, -1, 0, 6], [0, 0, 1, 0], [0, 0, 0, 1.0]])
    nib.save(nib.Nifti1Image(np.ascontiguousarray(xyz), ras_affine), tmp_path / "ras.nii")
    back, aff = read_nifti(tmp_path / "ras.nii")
    assert nib.aff2axcodes(ras_affine) == ("R", "A", "S")
    assert np.array_equal(back, vol) and np.allclose(aff, affine)


def test_brats_case_round_trip(tmp_path, volume):
    vol, affine = volume
    seg = np.zeros(vol.shape, np.int16)
    seg[2, 3, 3], seg[2, 3, 2], seg[1, 1, 1] = 1, 4, 2
    images = {"T1w": vol, "T1w+c": vol * 2, "T2w": vol * 3, "FLAIR": vol * 4}
    folder = write_brats_case(tmp_path, "BraTS2021_00042", images, seg, affine)
    names = sorted(p.name for p in folder.iterdir())
    assert names == [f"BraTS2021_00042_{m}.nii.gz" for m in ("flair", "seg", "t1", "t1ce", "t2")]
    case = read_brats_case(folder)
    assert case["image"].shape == (4, *vol.shape) and np.allclose(case["image"][3], vol * 4)
    assert np.array_equal(case["seg"], seg) and case["case"] == "BraTS2021_00042"
    assert check_brats_case(folder)["labels"] == [0, 1, 2, 4]
    write_nifti(folder / "BraTS2021_00042_seg.nii.gz", np.where(seg == 4, 3, seg), affine, np.uint8)
    with pytest.raises(ValueError, match="BraTS 2023"):
        check_brats_case(folder)


def test_nifti_errors(tmp_path, volume):
    vol, affine = volume
    with pytest.raises(FileNotFoundError, match="make_data.py"):
        read_nifti(tmp_path / "missing.nii.gz")
    good = write_nifti(tmp_path / "good.nii.gz", vol, affine).read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="cut.nii.gz.*not a readable NIfTI"):
        read_nifti(tmp_path / "cut.nii.gz")
    (tmp_path / "text.nii.gz").write_text("hello")
    with pytest.raises(ValueError, match="text.nii.gz"):
        read_nifti(tmp_path / "text.nii.gz")
    with pytest.raises(ValueError, match="expected a volume"):
        write_nifti(tmp_path / "x.nii.gz", vol[0], affine)
    with pytest.raises(FileNotFoundError, match="BraTS case folder"):
        read_brats_case(tmp_path / "nope")
    assert ixi_name(12, "HH", 1211, "T1") == "IXI012-HH-1211-T1.nii.gz"
