"""Data sets on disk: make_data (manifest, reuse, atomic folders), prepare_* validators on
simulator-made files in the real layouts, and the torch Datasets."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import mricourse as mc
from mricourse.data import make
from mricourse.data.prepare import index_brats, index_fastmri, index_ixi
from mricourse.data.store import manifest_is_valid, read_manifest

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "slices": dict(train=4, test=2, size=32, contrasts=["T1w", "T2w"]),
    "ixi": dict(subjects=2, resolution=6.0, noise=0.02),
    "brats": dict(cases=2, resolution=4.0, noise=0.02),
    "fastmri": dict(train=2, val=1, slices=2, size=32, coils=2, oversample=2, snr=40.0, contrasts=["T2w"]),
}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mricourse_data")
    for name, sizes in TINY.items():
        make.make_dataset(name, {**sizes, "seed": 0}, root, verbose=False)
    return root


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "data_scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_layouts_and_manifests(root):
    listed = sorted(p.name for p in (root / "fastmri").iterdir())
    assert listed == [".verified.json", "manifest.json", "multicoil_train", "multicoil_val"]  # the checksum stamp
    assert len(list((root / "fastmri" / "multicoil_train").glob("file_brain_AXT2_*.h5"))) == 2
    assert sorted(p.name for p in (root / "ixi").iterdir() if p.name != ".verified.json") == [
        "IXI-PD",
        "IXI-T1",
        "IXI-T2",
        "ground_truth",
        "manifest.json",
    ]
    assert (root / "brats" / "BraTS2021_00001" / "BraTS2021_00001_t1ce.nii.gz").exists()
    m = read_manifest(root / "brats")
    assert m["dataset"] == "brats" and m["params"]["seed"] == 0 and len(m["files"]) == 10
    assert all(len(f["sha256"]) == 64 for f in m["files"].values())
    assert not list(root.glob(".*partial"))


def test_reuse_regenerate_and_verify(root):
    params = {**TINY["slices"], "seed": 0}
    train = root / "slices" / "train.npz"
    stamp = train.stat().st_mtime_ns
    make.make_dataset("slices", params, root, verbose=False)
    assert train.stat().st_mtime_ns == stamp  # reused
    assert manifest_is_valid(root / "slices", params, checksums=True)
    assert not manifest_is_valid(root / "slices", {**params, "seed": 1})
    raw = bytearray(train.read_bytes())
    raw[100] ^= 0xFF
    train.write_bytes(bytes(raw))  # corrupted in place, same size
    assert manifest_is_valid(root / "slices", params) and not manifest_is_valid(root / "slices", params, checksums=True)
    train.write_bytes(bytes(raw[:-10]))  # truncated: regenerated on the next call
    make.make_dataset("slices", params, root, verbose=False)
    assert manifest_is_valid(root / "slices", params, checksums=True)


def test_interrupted_generation_leaves_nothing_finished(tmp_path, monkeypatch):
    def broken(folder, **params):
        (folder / "half.npz").write_bytes(b"123")
        raise KeyboardInterrupt

    monkeypatch.setitem(make.DATASETS, "broken", {"sizes": {}, "make": broken})
    with pytest.raises(KeyboardInterrupt):
        make.make_dataset("broken", {"seed": 0}, tmp_path, verbose=False)
    assert not (tmp_path / "broken").exists()


def test_make_data_script(tmp_path, capsys):
    script = _script("make_data")
    assert script.main(["--list"]) == 0 and "fastmri" in capsys.readouterr().out
    assert script.main(["slices", "--profile", "smoke", "--out", str(tmp_path)]) == 0
    assert script.main(["slices", "--profile", "smoke", "--out", str(tmp_path), "--verify"]) == 0
    assert script.main(["ixi", "--profile", "smoke", "--out", str(tmp_path), "--verify"]) == 1  # not made yet


def test_prepare_indexes_simulated_downloads(root, tmp_path):
    f = index_fastmri(root / "fastmri")
    assert f["summary"]["files"] == 3 and f["summary"]["slices"] == 6 and not f["errors"]
    assert f["summary"]["splits"] == {"multicoil_train": 2, "multicoil_val": 1}
    i = index_ixi(root / "ixi")
    assert i["summary"]["subjects"] == 2 and i["summary"]["T1_T2_pairs"] == 2 and not i["errors"]
    b = index_brats(root / "brats")
    assert b["summary"]["cases"] == 2 and b["items"][0]["labels"] == [0, 1, 2, 4] and not b["errors"]
    out = tmp_path / "brats.json"
    assert _script("prepare_brats").prepare_main(index_brats, "", [str(root / "brats"), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["summary"]["cases"] == 2


def test_prepare_reports_bad_files(root, tmp_path):
    bad = tmp_path / "fastmri" / "multicoil_val"
    bad.mkdir(parents=True)
    good = next((root / "fastmri" / "multicoil_train").glob("*.h5")).read_bytes()
    (bad / "file_brain_AXT2_200_1.h5").write_bytes(good[: len(good) // 3])
    (bad / "file_brain_AXT2_200_2.h5").write_bytes(good)
    f = index_fastmri(tmp_path / "fastmri")
    assert f["summary"]["files"] == 1 and len(f["errors"]) == 1 and "file_brain_AXT2_200_1.h5" in f["errors"][0]
    with pytest.raises(FileNotFoundError, match="no such folder.*download"):
        index_ixi(tmp_path / "IXI")
    assert _script("prepare_ixi").prepare_main(index_ixi, "", [str(tmp_path / "IXI")]) == 2


def test_datasets_read_the_files(root):
    ks = mc.FastMRISlices(root / "fastmri" / "multicoil_train")
    item = ks[3]
    assert len(ks) == 4 and item["kspace"].shape == (2, 64, 32) and item["kspace"].is_complex()
    assert item["target"].shape == (32, 32) and item["max"] > 0
    brats = mc.data.BratsVolumes(root / "brats")
    case = brats[0]
    assert case["image"].shape[0] == 4 and case["seg"].shape == case["image"].shape[1:]
    assert set(case["seg"].unique().tolist()) <= {0, 1, 2, 3} and 3 in case["seg"]
    brain = case["image"].abs().sum(0) > 0
    assert abs(float(case["image"][0][brain].mean())) < 1e-3
    slices = mc.data.SliceData(root / "slices" / "train.npz")
    assert len(slices) == 4 and slices[0]["image"].shape == (2, 32, 32) and slices[0]["label"].dtype == torch.int64
    vols = mc.data.NiftiVolumes(sorted((root / "ixi" / "IXI-T1").glob("*.nii.gz")))
    assert vols[0]["image"].ndim == 4
    pairs = mc.data.RegistrationPairs(slices.images[:, :1], slices.labels, length=6)
    p = pairs[5]
    assert len(pairs) == 6 and p["moving"].shape == p["fixed"].shape == (1, 32, 32)
    assert p["moving_labels"].shape == (1, 32, 32) and p["fixed_labels"].dtype == torch.int64
    with pytest.raises(FileNotFoundError, match="make_data.py brats"):
        mc.data.BratsVolumes(root / "nothing")


def test_ixi_ground_truth_matches_volumes(root):
    t1 = sorted((root / "ixi" / "IXI-T1").glob("*.nii.gz"))[0]
    vol, affine = mc.read_nifti(t1)
    stem = t1.name.replace("-T1.nii.gz", "")
    labels, aff2 = mc.read_nifti(root / "ixi" / "ground_truth" / f"{stem}-labels.nii.gz", np.int64)
    with np.load(root / "ixi" / "ground_truth" / f"{stem}-displacement.npz") as z:
        disp = z["displacement"]
    assert vol.shape == labels.shape == disp.shape[1:] and np.allclose(affine, aff2)
    assert vol[labels == 3].mean() > vol[labels == 1].mean()  # T1: white matter brighter than CSF


def test_each_profile_keeps_its_own_copy(tmp_path, monkeypatch):
    # a smoke run must not overwrite (or be handed) the cpu-profile data set, and the reverse
    monkeypatch.setenv("MRICOURSE_DATA", str(tmp_path))
    smoke, cpu = make.profile_root("smoke"), make.profile_root("cpu")
    assert (smoke, cpu) == (tmp_path / "smoke", tmp_path / "cpu")
    small = make.ensure_dataset("slices", "smoke", train=2, test=1, size=16)
    assert small == tmp_path / "smoke" / "slices" and manifest_is_valid(
        small, make.dataset_params("slices", "smoke", train=2, test=1, size=16)
    )
    assert not (tmp_path / "cpu" / "slices").exists()
    assert make.manifest("slices", profile="smoke")["params"]["size"] == 16
    assert not list(tmp_path.glob("**/.slices.partial*"))  # nothing half-written left behind
