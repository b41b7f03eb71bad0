"""The out-of-distribution test data of chapters 5 and 6: the chapters' own held-out subjects,
acquired otherwise (noise, bias field, field strength), with the same anatomy and labels."""

from __future__ import annotations

import pytest
import torch

import mricourse as mc
from mricourse.data.brats_cases import read_cases, shifted_cases, synthetic_brats_cases
from mricourse.training.recipes import cyclegan, vox2vox

SEEDS = [vox2vox.FIRST_SEED + 5]  # one subject of the chapter's smoke cases
RES = vox2vox.CASES["smoke"]["resolution"]


@pytest.fixture(scope="module")
def on_disk(tmp_path_factory):
    return read_cases(synthetic_brats_cases(SEEDS, RES, root=tmp_path_factory.mktemp("brats")))


def test_shifted_cases_default_is_the_chapters_case(on_disk):
    (x, y), ((x0, y0),) = shifted_cases(SEEDS, RES, {"as trained": {}})["as trained"][0], on_disk
    assert x.shape == x0.shape and x.dtype == torch.float32
    assert torch.equal(y, y0) and set(y.unique().tolist()) <= {0, 1, 2, 3}
    torch.testing.assert_close(x, x0, atol=1e-4, rtol=1e-4)


@pytest.fixture(scope="module")
def shifted():
    return shifted_cases(
        SEEDS, RES, {"noise": dict(noise=0.06), "bias": dict(bias=3.0), "3 T": dict(field=3.0), "clean": dict(noise=0.0)}
    )


@pytest.mark.parametrize("name", ["noise", "bias", "3 T"])
def test_shifted_cases_keep_the_subject_and_change_the_images(on_disk, shifted, name):
    (x, y), ((x0, y0),) = shifted[name][0], on_disk
    assert torch.equal(y, y0)  # the same tumour, voxel for voxel
    assert torch.equal((x != 0).any(0), (x0 != 0).any(0))  # the same skull-stripped brain
    brain = (x0 != 0).any(0)
    for c in range(4):  # still z-scored over the brain, but other images
        assert abs(float(x[c][brain].mean())) < 1e-3 and abs(float(x[c][brain].std()) - 1) < 1e-2
    assert float((x - x0).abs()[:, brain].mean()) > 0.02


def test_stronger_noise_is_noisier(on_disk, shifted):
    (x0, _), (x1, _), (x2, _) = shifted["clean"][0], on_disk[0], shifted["noise"][0]
    brain = (x0 != 0).any(0)
    assert float((x2 - x0).abs()[:, brain].mean()) > 2 * float((x1 - x0).abs()[:, brain].mean())


def test_shifted_cases_refuse_an_unknown_setting():
    with pytest.raises(ValueError, match="unknown settings"):
        shifted_cases(SEEDS, RES, {"x": {"contrast": 2}})


def test_chapter5_shifted_slices_are_the_test_subjects():
    p, clip = cyclegan.SLICES["smoke"], cyclegan.CLIP
    make = dict(
        n_subjects=p["test"], contrasts=("T1w", "T2w"), size=p["size"], slices_per_subject=p["per_subject"], seed=p["test_seed"]
    )
    _, test = cyclegan.t1t2_slices(None, mc.profile("smoke"))
    plain, noisy, high = (mc.brain_slices(**make, **s) for s in ({}, dict(noise=0.05), dict(field=3.0)))
    assert torch.equal(plain["images"].clamp(0, clip), test["images"])  # the chapter's test slices
    assert torch.equal(noisy["labels"], plain["labels"]) and torch.equal(high["labels"], plain["labels"])
    assert float((noisy["images"] - plain["images"]).abs().mean()) > 0.02
    assert float((high["images"] - plain["images"]).abs().mean()) > 0.01
