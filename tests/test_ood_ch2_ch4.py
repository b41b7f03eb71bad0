"""The out-of-distribution tests of chapters 2 and 4: the data they are built from (free-breathing
cines of the same test subjects, T2-weighted slices of the same held-out subjects, Rician noise
whose level varies in space), and the layout of their results, which the results page reads."""

import math

import torch

import mricourse as mc
from mricourse.course.report import ood_table


def test_rician_noise_with_a_map_of_levels():
    x = torch.zeros(2, 1, 64, 64)
    level = torch.full((1, 1, 64, 64), 0.1)
    level[..., 32:] = 0.4  # the right half four times noisier
    y = mc.add_rician_noise(x, level, generator=torch.Generator().manual_seed(0))
    assert y.shape == x.shape and bool((y >= 0).all())
    # no signal: Rayleigh, mean(y^2) = 2 sigma^2 on each side
    assert math.isclose(float(y[..., :32].square().mean().div(2).sqrt()), 0.1, rel_tol=0.05)
    assert math.isclose(float(y[..., 32:].square().mean().div(2).sqrt()), 0.4, rel_tol=0.05)


def test_a_constant_map_is_the_scalar_level():
    x = torch.rand(3, 1, 16, 16)
    scalar = mc.add_rician_noise(x, 0.1, generator=torch.Generator().manual_seed(1))
    mapped = mc.add_rician_noise(x, torch.full((1, 1, 16, 16), 0.1), generator=torch.Generator().manual_seed(1))
    per_image = mc.add_rician_noise(x, torch.tensor([0.1, 0.1, 0.1]), generator=torch.Generator().manual_seed(1))
    assert torch.equal(scalar, mapped) and torch.equal(scalar, per_image)


def test_free_breathing_cine_is_the_same_subject():
    kw = dict(size=32, frames=6, fov=0.6, **mc.CINE_ACQUISITION)
    still = mc.cine_subject(0, 3, **kw)
    breathing = mc.cine_subject(0, 3, breathing=True, **kw)
    assert still.heart_rate == breathing.heart_rate and still.params["noise"] == breathing.params["noise"]
    assert float((still.image - breathing.image).abs().mean()) > 1e-3  # the anatomy moves


def test_t2_slices_are_the_same_held_out_subjects():
    t1 = mc.brain_slices(2, size=48, seed=1)
    t2 = mc.brain_slices(2, contrasts=("T2w",), size=48, seed=1)
    assert torch.equal(t1["labels"], t2["labels"])
    assert not torch.allclose(t1["images"], t2["images"])


def _metrics(model, baseline, offset=0.0):
    return {model: {"psnr": 30.0 + offset, "ssim": 0.9}, baseline: {"psnr": 29.0, "ssim": 0.88}}


def test_the_results_page_finds_both_chapters_models_out_of_distribution():
    ch2 = {  # chapter 2: f"{method} {acceleration}x" -> metrics
        "metrics": _metrics("2D+t cascade 6x", "k-t CS 6x"),
        "headline": {"metric": "psnr", "setting": "6x", "model": "2D+t cascade", "baseline": "k-t CS", "higher_is_better": True},
        "ood": {
            "what": "more noise; free breathing",
            "metrics": {"free breathing": _metrics("2D+t cascade 6x", "k-t CS 6x", -3.0)},
        },
    }
    ch4 = {  # chapter 4: f"sigma {s}: {method}" -> metrics
        "metrics": _metrics("sigma 0.1: RED-Net", "sigma 0.1: BM3D"),
        "headline": {"metric": "psnr", "setting": "sigma 0.1", "model": "sigma 0.1: RED-Net", "baseline": "sigma 0.1: BM3D"},
        "ood": {"what": "T2w", "metrics": {"T2-weighted, sigma 0.1": _metrics("sigma 0.1: RED-Net", "sigma 0.1: BM3D", -2.5)}},
    }
    rows = ood_table({"02": ch2, "04": ch4}).rows
    gains = [r[-1] for r in rows if isinstance(r[-1], float)]
    assert gains == [1.0, -2.0, 1.0, -1.5]  # in distribution, then out of it, for each chapter
