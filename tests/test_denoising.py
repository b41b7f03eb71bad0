"""Classical denoisers (mricourse.baselines.classical_denoise, tune_denoiser): shapes, checks,
that each one removes noise, and that tuning picks the strength with the best validation PSNR
and widens a grid whose best value lies at an edge. BM3D on its own: tests/test_baselines.py."""

from __future__ import annotations

import pytest
import torch

import mricourse as mc


def _slices(n=3, size=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    out = []
    for _ in range(n):
        a, b = 0.6 + 0.2 * torch.rand(2, generator=g)
        head = ((xx / a) ** 2 + (yy / b) ** 2 < 1).float()
        vent = ((xx / 0.2) ** 2 + (yy / 0.3) ** 2 < 1).float()
        out.append(head * 0.8 - 0.5 * vent)
    return torch.stack(out)[:, None]  # (n, 1, size, size)


def _gaussian(clean, sigma, generator):
    """Additive Gaussian noise, the model the classical denoisers assume."""
    s = torch.as_tensor(sigma, dtype=clean.dtype).reshape(-1, *([1] * (clean.ndim - 1)))
    return clean + s * torch.randn(clean.shape, generator=generator)


@pytest.mark.parametrize("method", sorted(mc.baselines.DENOISERS))
def test_each_denoiser_removes_noise_and_keeps_the_shape(method):
    clean = _slices(size=37)
    noisy = _gaussian(clean, 0.1, generator=torch.Generator().manual_seed(1))
    strength = {"gaussian": 0.5, "tv": 1.0, "nlm": 1.0, "bm3d": 1.0}[method]  # the phantom's edges are sharp: little blur
    den = mc.classical_denoise(noisy, method, strength, sigma=0.1)
    assert den.shape == clean.shape and den.dtype == clean.dtype
    assert mc.psnr(clean, den) > mc.psnr(clean, noisy) + 2


def test_one_sigma_per_image_and_a_weak_filter_changes_little():
    clean = _slices(2)
    noisy = _gaussian(clean, torch.tensor([0.05, 0.2]), generator=torch.Generator().manual_seed(2))
    den = mc.classical_denoise(noisy, "tv", 1.0, sigma=torch.tensor([0.05, 0.2]))
    # the noisier image is smoothed more: its change is larger
    change = (den - noisy).flatten(1).norm(dim=1)
    assert change[1] > 2 * change[0]
    weak = mc.classical_denoise(noisy, "gaussian", 0.01)
    torch.testing.assert_close(weak, noisy, atol=1e-5, rtol=0)


def test_wrong_inputs_raise():
    x = torch.rand(2, 1, 16, 16)
    with pytest.raises(ValueError, match="method"):
        mc.classical_denoise(x, "median", 1.0, sigma=0.1)
    with pytest.raises(ValueError, match="patch_size"):
        mc.classical_denoise(x, "tv", 1.0, sigma=0.1, patch_size=5)  # an option of non-local means only
    with pytest.raises(ValueError, match="sigma > 0"):
        mc.classical_denoise(x, "nlm", 1.0, sigma=-0.1)
    nan = x.clone()
    nan[0, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        mc.classical_denoise(nan, "nlm", 1.0, sigma=0.1)
    with pytest.raises(ValueError, match="sigma"):
        mc.classical_denoise(x, "nlm", 1.0)
    with pytest.raises(TypeError, match=r"\(N, 1, H, W\)"):
        mc.classical_denoise(torch.rand(16, 16), "gaussian", 1.0)
    with pytest.raises(ValueError, match="one shape"):
        mc.tune_denoiser(x, x[:1], "gaussian", (1.0,))
    with pytest.raises(ValueError, match="at least 2"):
        mc.tune_denoiser(x, x, "gaussian", (1.0,), widen=2)


def test_tuning_picks_the_best_validation_psnr():
    clean = _slices(3, seed=3)
    noisy = _gaussian(clean, 0.1, generator=torch.Generator().manual_seed(4))
    grid = (0.2, 0.6, 1.0, 3.0)
    best, scores = mc.tune_denoiser(noisy, clean, "nlm", grid, sigma=0.1)
    assert set(scores) == set(grid) and best == max(scores, key=scores.get)
    den = mc.classical_denoise(noisy, "nlm", best, sigma=0.1)
    expected = sum(mc.psnr(c, d) for c, d in zip(clean, den)) / len(clean)
    assert scores[best] == pytest.approx(expected)
    # a mask restricts the score to its pixels
    masks = clean > 0.1
    _, masked = mc.tune_denoiser(noisy, clean, "gaussian", (1.0,), masks=masks)
    den = mc.classical_denoise(noisy, "gaussian", 1.0)
    expected = sum(mc.psnr(c[m], d[m], data_range=float(c.max())) for c, d, m in zip(clean, den, masks)) / len(clean)
    assert masked[1.0] == pytest.approx(expected)


def test_a_best_strength_at_the_edge_widens_the_grid():
    clean = _slices(2, seed=5)
    noisy = _gaussian(clean, 0.1, generator=torch.Generator().manual_seed(6))
    # non-local means' h = 0.05 sigma and 0.1 sigma hardly smooth: the best lies above the grid
    best, scores = mc.tune_denoiser(noisy, clean, "nlm", (0.05, 0.1), sigma=0.1, widen=3)
    assert list(scores) == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.8][: len(scores)])
    assert len(scores) > 2 and best == max(scores, key=scores.get)
    # without widening the grid stays as given; an interior best stops the widening at once
    _, fixed = mc.tune_denoiser(noisy, clean, "nlm", (0.05, 0.1), sigma=0.1)
    assert list(fixed) == [0.05, 0.1]
    _, interior = mc.tune_denoiser(noisy, clean, "nlm", (0.1, 1.0, 10.0), sigma=0.1, widen=3)
    assert list(interior) == [0.1, 1.0, 10.0]


def test_nlm_options_reach_the_filter():
    clean = _slices(1, seed=7)
    noisy = _gaussian(clean, 0.1, generator=torch.Generator().manual_seed(8))
    small = mc.classical_denoise(noisy, "nlm", 1.0, sigma=0.1, patch_size=3)
    default = mc.classical_denoise(noisy, "nlm", 1.0, sigma=0.1)
    assert not torch.allclose(small, default)
    torch.testing.assert_close(default, mc.classical_denoise(noisy, "nlm", 1.0, sigma=0.1, patch_size=5, patch_distance=6))
