"""The fastMRI-style acquisition: rendered finer than the scanner's matrix (no inverse crime), and
each subject's own scanner (coil count, SNR)."""

from __future__ import annotations

import pytest
import torch

import mricourse as mc
from mricourse.data.make import dataset_params


def _disc(n, radius):
    yy, xx = torch.meshgrid(torch.arange(n) - n / 2 + 0.5, torch.arange(n) - n / 2 + 0.5, indexing="ij")
    return (yy**2 + xx**2 <= radius**2).float()


def test_a_finer_rendering_keeps_intensities_and_shows_gibbs_ringing():
    fine = _disc(64, 20.0)[None]  # a flat disc on a grid twice as fine
    acq = mc.multicoil_kspace(fine, num_coils=1, snr=float("inf"), oversample=1, finer=2, phase=0.0)
    assert acq["kspace"].shape == (1, 1, 32, 32) and acq["target"].shape == (1, 32, 32)
    image = acq["target"][0]
    assert image[12:20, 12:20].mean() == pytest.approx(1.0, abs=0.05)  # the disc's intensity is kept
    assert image.max() > 1.05  # the truncated k-space rings at the edge (Gibbs)
    same_grid = mc.multicoil_kspace(_disc(32, 10.0)[None], num_coils=1, snr=float("inf"), oversample=1, phase=0.0)
    assert same_grid["target"].max() <= 1.0 + 1e-5  # on its own grid: no ringing, the inverse crime
    with pytest.raises(ValueError, match="finer"):
        mc.multicoil_kspace(fine, num_coils=1, finer=3)


def test_each_subject_draws_its_own_scanner_from_the_seed():
    draws = [mc.draw_acquisition(0, i, [6, 8, 12], [20.0, 60.0]) for i in range(40)]
    assert {d["coils"] for d in draws} == {6, 8, 12}
    assert all(20.0 <= d["snr"] <= 60.0 for d in draws)
    assert draws[3] == mc.draw_acquisition(0, 3, [6, 8, 12], [20.0, 60.0]) != mc.draw_acquisition(1, 3, [6, 8, 12], [20.0, 60.0])
    assert mc.draw_acquisition(0, 0, 8, 40.0) == {"coils": 8, "snr": 40.0}
    with pytest.raises(ValueError, match="SNR range"):
        mc.draw_acquisition(0, 0, 8, [60.0, 20.0])


def test_brain_acquisition_gives_the_kept_slices_with_labels_on_both_grids():
    acq = mc.brain_acquisition(3, "T1w", size=32, slices=4, coils=3, snr=30.0, oversample=2, finer=2, keep=[1, 2])
    assert acq["kspace"].shape == (2, 3, 64, 32) and acq["target"].shape == (2, 32, 32)
    assert acq["labels"].shape == (2, 32, 32) and acq["fine_labels"].shape == (2, 64, 64)
    lesion = mc.brain_acquisition(
        3, "T1w", size=32, slices=4, coils=3, snr=float("inf"), oversample=2, finer=2, keep=[1], edit=lambda im, lab: im * 2
    )
    plain = mc.brain_acquisition(3, "T1w", size=32, slices=4, coils=3, snr=float("inf"), oversample=2, finer=2, keep=[1])
    assert torch.allclose(lesion["target"], 2 * plain["target"], rtol=1e-4, atol=1e-5)


def test_the_course_data_mixes_contrasts_and_scanners():
    params = dataset_params("fastmri", "cpu")
    assert len(params["contrasts"]) >= 3 and params["finer"] == 2
    assert isinstance(params["coils"], list) and len(params["coils"]) > 1 and params["snr"][0] < params["snr"][1]
