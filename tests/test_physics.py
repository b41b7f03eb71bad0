import pytest
import torch

import mricourse as mc

MASKS = {
    "random": lambda: mc.random_mask(32, 4, 0.08, seed=0),
    "equispaced": lambda: mc.equispaced_mask(32, 4, 0.08, seed=0),
    "variable_density": lambda: mc.variable_density_mask(32, 4, seed=0),
    "poisson": lambda: mc.poisson_disc_mask((24, 32), 4, calib=6, seed=0),
    "full": lambda: torch.ones(1, 1, 1, 32),
}


@pytest.mark.parametrize("mask", MASKS)
def test_single_coil_adjoint(mask):
    op = mc.physics.SingleCoilMRI(MASKS[mask]())
    assert mc.adjointness_error(op, (2, 1, 24, 32), (2, 1, 24, 32)) < 1e-5


@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize("coils", [1, 4, 8])
def test_multi_coil_adjoint(mask, coils):
    op = mc.MultiCoilMRI(mc.coil_maps(coils, (24, 32), seed=coils), MASKS[mask]())
    assert mc.adjointness_error(op, (1, 1, 24, 32), (1, coils, 24, 32)) < 1e-5


def test_adjointness_error_detects_a_wrong_adjoint():
    class Wrong(mc.physics.SingleCoilMRI):
        def A_adjoint(self, k):
            return mc.ifft2c(k)  # forgets the mask

    assert mc.adjointness_error(Wrong(mc.random_mask(32, 4, 0.08, seed=0)), (1, 1, 8, 32), (1, 1, 8, 32)) > 1e-2


def test_dynamic_single_coil_adjoint():
    op = mc.physics.SingleCoilMRI(mc.kt_mask(5, 32, 4, center_lines=4, seed=0))
    assert mc.adjointness_error(op, (2, 5, 16, 32), (2, 5, 16, 32)) < 1e-5


def test_fully_sampled_multicoil_is_invertible_with_normalised_maps():
    maps = mc.coil_maps(6, (16, 16), seed=0)
    maps = maps / mc.rss(maps)  # sum_c |S_c|^2 = 1 -> A^H A = I
    op = mc.MultiCoilMRI(maps, torch.ones(1, 1, 1, 16))
    x = torch.randn(1, 1, 16, 16, dtype=torch.complex64)
    assert torch.allclose(op.A_adjoint(op.A(x)), x, atol=1e-5)


def test_coil_maps_are_realistic():
    maps = mc.coil_maps(8, (64, 64), seed=0)
    assert maps.shape == (1, 8, 64, 64) and maps.dtype == torch.complex64
    r = mc.rss(maps)[0, 0]
    assert r.max() / r[28:36, 28:36].mean() > 1.5  # centre shaded, not RSS = 1
    assert torch.allclose(maps, mc.coil_maps(8, (64, 64), seed=0))


def test_rss_and_zero_filled():
    x = torch.randn(2, 4, 8, 8, dtype=torch.complex64)
    assert torch.allclose(mc.rss(x), x.abs().pow(2).sum(1, keepdim=True).sqrt())
    assert torch.allclose(mc.zero_filled(mc.fft2c(x)), mc.rss(x), atol=1e-5)


def test_noise_has_the_requested_snr():
    k = mc.fft2c(torch.randn(1, 1, 128, 128, dtype=torch.complex64))
    noisy = mc.add_noise(k, snr=10, generator=torch.Generator().manual_seed(0))
    sigma = (noisy - k).real.std()
    rms = k.abs().pow(2).mean().sqrt()
    assert abs(float(rms / sigma) - 10) < 0.5


def test_bad_inputs_name_what_was_expected():
    op = mc.MultiCoilMRI(mc.coil_maps(4, (16, 16)), torch.ones(1, 1, 1, 16))
    with pytest.raises(TypeError, match="expected complex multi-coil k-space"):
        op.A_adjoint(torch.randn(1, 4, 16, 16))
    with pytest.raises(ValueError, match="does not broadcast"):
        mc.MultiCoilMRI(mc.coil_maps(4, (16, 16)), torch.ones(1, 1, 1, 20))
    with pytest.raises(ValueError, match=r"expected multi-coil k-space of shape \(B, 4, 16, 16\)"):
        op.A_adjoint(torch.zeros(1, 3, 16, 16, dtype=torch.complex64))
    with pytest.raises(TypeError, match="expected complex"):
        mc.zero_filled(torch.randn(4, 320, 320))


def _unfold(folded, maps, accel):
    """SENSE by least squares per pixel: coil images (trials, C, H, W) of an acquisition keeping
    every accel-th column -> (trials, H, W)."""
    t, c, h, w = folded.shape
    n = w // accel
    s = maps.reshape(c, h, accel, n).permute(1, 3, 0, 2)  # (H, n, C, R)
    y = (accel * folded[..., :n]).permute(0, 2, 3, 1)[..., None]  # (T, H, n, C, 1)
    rho = torch.linalg.lstsq(s.expand(t, *s.shape), y).solution[..., 0]  # (T, H, n, R)
    return rho.permute(0, 1, 3, 2).reshape(t, h, w)


def test_g_factor_is_the_noise_amplification_of_sense():
    """Monte Carlo: the noise of a SENSE unfolding at R, over its noise at R = 1 and sqrt(R), is g."""
    torch.manual_seed(0)
    h, w, accel, trials = 8, 32, 4, 600
    maps = mc.coil_maps(6, (h, w), seed=1)[0].to(torch.complex128)
    noise = torch.randn(trials, 6, h, w, dtype=torch.complex128)  # white, the same level in every coil (k-space = image)
    mask = torch.zeros(1, 1, 1, w, dtype=torch.float64)
    mask[..., ::accel] = 1
    std_r = _unfold(mc.ifft2c(mc.fft2c(noise) * mask), maps, accel).std(0)
    std_1 = _unfold(noise, maps, 1).std(0)
    g = mc.g_factor(maps, accel).double()
    ratio = std_r / (std_1 * accel**0.5)
    assert (g >= 1).all() and g.max() > 1.2  # the coils are not perfect: some pixels lose
    assert torch.allclose(ratio, g, rtol=0.12), (ratio / g).abs().max()


def test_g_factor_is_one_without_folding_or_for_disjoint_coils():
    maps = mc.coil_maps(4, (6, 8), seed=0)[0]
    assert torch.allclose(mc.g_factor(maps, 1), torch.ones(6, 8))
    disjoint = torch.zeros(2, 6, 8, dtype=torch.complex64)
    disjoint[0, :, :4], disjoint[1, :, 4:] = 1, 1  # each coil sees one half: R = 2 unfolds perfectly
    assert torch.allclose(mc.g_factor(disjoint, 2), torch.ones(6, 8))
    with pytest.raises(ValueError, match="divides the width 8"):
        mc.g_factor(maps, 3)
    with pytest.raises(TypeError, match=r"\(coils, H, W\)"):
        mc.g_factor(maps.abs(), 2)
