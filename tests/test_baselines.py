"""Classical reconstructions: ESPIRiT maps, CG-SENSE, compressed sensing; and BM3D, the strongest
classical denoiser of chapter 4 (mricourse.baselines)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import expit

import mricourse as mc
from mricourse.baselines import acs_width, bm3d_denoise, cg_sense, compressed_sensing, espirit_maps


def _phantom(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """A smooth-edged ellipse phantom with a few inner blobs and a smooth phase, (1, 1, H, W) complex64."""
    rng = np.random.default_rng(seed)
    y, x = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    img = expit(-((x / 0.75) ** 2 + (y / 0.85) ** 2 - 1) * 30)
    for _ in range(4):
        cy, cx, r = rng.uniform(-0.4, 0.4), rng.uniform(-0.4, 0.4), rng.uniform(0.08, 0.2)
        img += rng.uniform(-0.5, 0.5) * expit(-(((x - cx) ** 2 + (y - cy) ** 2) / r**2 - 1) * 10)
    phase = np.exp(1j * 0.6 * (x + 0.5 * y))
    return torch.from_numpy(img * phase).to(torch.complex64)[None, None]


def _normalised_maps(num_coils: int, shape, seed: int = 0) -> torch.Tensor:
    s = mc.coil_maps(num_coils, shape, seed=seed)
    return s / mc.rss(s)


@pytest.mark.parametrize("shape", [(48, 48), (45, 38)])
def test_espirit_recovers_true_maps_up_to_phase(shape):
    x = _phantom(*shape)
    maps = _normalised_maps(6, shape)
    kspace = mc.fft2c(maps * x)  # (1, 6, H, W)
    mask = mc.random_mask(shape[1], 2, 0.25, seed=0)
    est = espirit_maps(kspace * mask, mask)
    assert est.shape == kspace.shape and est.dtype == torch.complex64
    inside = x.abs()[0, 0] > 0.3
    # the maps agree with the truth up to one phase per pixel: |<S_true, S_est>| = 1
    agreement = (maps.conj() * est).sum(1).abs()[0]
    assert float(agreement[inside].min()) > 0.98
    # unit norm over coils inside the object, zero far outside it (eigenvalue crop)
    assert torch.allclose(mc.rss(est)[0, 0][inside], torch.ones(()), atol=1e-4)


def test_espirit_matches_sigpy_on_a_square_calibration_region():
    sigpy_mri = pytest.importorskip("sigpy.mri")
    x = _phantom(40, 40)
    kspace = mc.fft2c(_normalised_maps(4, (40, 40)) * x)
    ours = espirit_maps(kspace, calib_size=(16, 16), kernel_size=5, crop=0.95)[0].numpy()
    theirs = sigpy_mri.app.EspiritCalib(kspace[0].numpy(), calib_width=16, kernel_width=5, show_pbar=False).run()
    support = np.abs(theirs).sum(0) > 0
    assert ((np.abs(ours).sum(0) > 0) == support).mean() > 0.99
    assert np.abs((theirs.conj() * ours).sum(0))[support].min() > 0.999


def test_acs_width_reads_the_fastmri_centre_block():
    for w, n in [(128, 10), (128, 5), (37, 4)]:
        mask = torch.from_numpy(mc.masks.center_mask(w, n)).reshape(1, 1, 1, w)
        assert acs_width(mask) == n
    assert acs_width(mc.equispaced_mask(128, 4, 0.08, seed=0)) >= 10
    assert acs_width(torch.zeros(1, 1, 1, 16)) == 0


def test_cg_sense_is_exact_on_fully_sampled_noise_free_data():
    x = _phantom(32, 32)
    maps = _normalised_maps(4, (32, 32))
    kspace = mc.fft2c(maps * x)
    mask = torch.ones(1, 1, 1, 32)
    rec = cg_sense(kspace, maps, mask, max_iter=10)
    assert rec.shape == (1, 1, 32, 32) and rec.dtype == torch.complex64
    assert torch.allclose(rec, x, atol=1e-4)


@pytest.mark.parametrize("lamda", [0.0, 0.05])
def test_cg_sense_solves_the_normal_equations(lamda):
    """The defining property: (A^H A + lamda I) x = A^H y, checked with the package's operator."""
    torch.manual_seed(0)
    shape = (36, 30)
    maps = _normalised_maps(5, shape, seed=1).to(torch.complex64)
    mask = mc.equispaced_mask(shape[1], 3, 0.2, seed=0)
    x = _phantom(*shape)
    y = mc.add_noise(mc.fft2c(maps * x), 50, torch.Generator().manual_seed(0)) * mask
    op = mc.MultiCoilMRI(maps, mask)
    rec = cg_sense(y, maps, mask, lamda=lamda, max_iter=200)
    # cg_sense scales y by 1 / max |A^H y| and the solution back, so the equations hold unscaled
    lhs = op.A_adjoint(op.A(rec)) + lamda * rec
    rhs = op.A_adjoint(y)
    assert float((lhs - rhs).abs().max() / rhs.abs().max()) < 1e-3


@pytest.mark.parametrize("reg", ["wavelet", "tv"])
def test_compressed_sensing_beats_zero_filling_and_keeps_shapes(reg):
    shape = (48, 48)
    maps = _normalised_maps(4, shape)
    x = torch.cat([_phantom(*shape, seed=0), _phantom(*shape, seed=1)])  # (2, 1, H, W)
    kspace = mc.fft2c(maps * x)  # (2, 4, H, W)
    mask = torch.cat([mc.random_mask(48, 4, 0.08, seed=s) for s in (0, 1)])  # a mask per slice
    rec = compressed_sensing(kspace * mask, maps.expand(2, -1, -1, -1), mask, lamda=0.002, reg=reg, max_iter=100)
    assert rec.shape == (2, 1, 48, 48) and rec.dtype == torch.complex64
    target = x.abs()
    zf = (maps.conj() * mc.ifft2c(kspace * mask)).sum(1, keepdim=True).abs()
    assert mc.nmse(target, rec.abs()) < 0.7 * mc.nmse(target, zf)


def test_bad_inputs_name_what_was_expected():
    maps = _normalised_maps(4, (16, 16))
    k = torch.zeros(1, 4, 16, 16, dtype=torch.complex64)
    with pytest.raises(TypeError, match="complex"):
        cg_sense(k.real, maps, torch.ones(1, 1, 1, 16))
    with pytest.raises(ValueError, match="sens_maps"):
        cg_sense(k, maps[:, :3], torch.ones(1, 1, 1, 16))
    with pytest.raises(ValueError, match="broadcast"):
        cg_sense(k, maps, torch.ones(1, 1, 1, 15))
    with pytest.raises(ValueError, match="reg"):
        compressed_sensing(k, maps, torch.ones(1, 1, 1, 16), reg="l2")
    with pytest.raises(ValueError, match="centre"):
        espirit_maps(k, torch.zeros(1, 1, 1, 16))


def test_bm3d_reduces_the_error_of_a_noisy_smooth_image():
    clean = _phantom(48, 40).abs()  # (1, 1, 48, 40) real, smooth edges
    clean = torch.cat([clean, clean.flip(-1)])  # two images, one sigma each
    sigma = torch.tensor([0.05, 0.1])
    noisy = clean + sigma[:, None, None, None] * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    den = bm3d_denoise(noisy, sigma)
    assert den.shape == clean.shape and den.dtype == clean.dtype
    for c, y, d in zip(clean, noisy, den):
        assert mc.psnr(c, d) > mc.psnr(c, y) + 3
    # the same through the denoisers' common interface, sigma_psd = strength x sigma; one thread: exactly the same
    assert torch.equal(mc.classical_denoise(noisy, "bm3d", 1.0, sigma=sigma), den)
    assert mc.bm3d_denoise is bm3d_denoise
    # images shared among threads, each on one: the same result, in the same order
    assert torch.equal(bm3d_denoise(noisy, sigma, workers=2), bm3d_denoise(noisy, sigma, workers=1))
    assert torch.equal(bm3d_denoise(noisy, sigma, workers=1), den)


def test_bm3d_rejects_bad_input_naming_what_it_expected():
    x = torch.rand(2, 1, 32, 32)
    with pytest.raises(TypeError, match=r"real images \(N, 1, H, W\)"):
        bm3d_denoise(x[0, 0], 0.1)  # (H, W): no batch and channel dims
    with pytest.raises(TypeError, match=r"\(N, 1, H, W\)"):
        bm3d_denoise(torch.rand(2, 3, 32, 32), 0.1)  # three channels
    with pytest.raises(TypeError, match="real images"):
        bm3d_denoise(x.to(torch.complex64), 0.1)
    with pytest.raises(TypeError, match="tensor"):
        bm3d_denoise(x.numpy(), 0.1)
    with pytest.raises(ValueError, match="at least 16 x 16"):
        bm3d_denoise(torch.rand(1, 1, 8, 8), 0.1)  # the library itself crashes on 8 x 8
    for workers in (0, 1.5, True):
        with pytest.raises(ValueError, match="workers a positive int"):
            bm3d_denoise(x, 0.1, workers=workers)
    nan = x.clone()
    nan[1, 0, 5, 5] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        bm3d_denoise(nan, 0.1)
    for bad in (0.0, -0.1, float("nan"), [0.1, 0.1, 0.1]):
        with pytest.raises(ValueError, match="sigma > 0"):
            bm3d_denoise(x, bad)
