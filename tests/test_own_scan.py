"""A scan of one's own: intensity scaling without labels, the noise level of a magnitude image, and
the VarNet on one's own k-space or fastMRI file (mricourse.training.own_scan)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

import mricourse as mc
from mricourse.data.datasets import FastMRISlices, VarNetTransform


def _phantom(size: int = 128, depth: int | None = None) -> torch.Tensor:
    """A head-like ellipse with a brighter inner ellipse and a smooth shading; air around it."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    head = ((xx / 0.7) ** 2 + (yy / 0.8) ** 2 < 1).float()
    inner = ((xx / 0.4) ** 2 + ((yy + 0.1) / 0.5) ** 2 < 1).float()
    image = head * (0.6 + 0.4 * inner) * (1 + 0.2 * xx)
    return image if depth is None else image.expand(depth, size, size).clone()


@pytest.mark.parametrize("sigma", [0.005, 0.02, 0.05, 0.1, 0.2])  # SNR 200 to 5 (tissue about 1)
def test_noise_estimate_of_rician_magnitude_images(sigma):
    g = torch.Generator().manual_seed(int(sigma * 1000))
    noisy = mc.add_rician_noise(_phantom()[None], sigma, generator=g)[0]
    est = mc.estimate_noise(noisy)
    assert abs(est / sigma - 1) < 0.03, (sigma, est)


@pytest.mark.parametrize("sigma", [0.01, 0.05, 0.15])
def test_noise_estimate_of_complex_noise_then_magnitude_in_3d(sigma):
    """Complex images with a phase, complex Gaussian noise added, then the magnitude: (D, H, W)."""
    g = torch.Generator().manual_seed(1)
    image = _phantom(64, depth=6) * torch.exp(1j * torch.linspace(0, 3, 64))  # (6, 64, 64) complex
    noisy = (image + mc.physics.complex_noise(image.shape, sigma, g)).abs()
    assert abs(mc.estimate_noise(noisy) / sigma - 1) < 0.03
    assert abs(mc.estimate_noise(noisy.numpy() * 1234.0) / (sigma * 1234.0) - 1) < 0.03  # any scale, numpy too


def test_noise_estimate_ignores_tissue_in_the_background():
    """A naive background RMS is pulled up by the head's rim left in a background mask that is too
    large; the truncated estimate is not."""
    sigma = 0.03
    image = _phantom()
    noisy = mc.add_rician_noise(image[None], sigma, generator=torch.Generator().manual_seed(2))[0]
    inner = torch.from_numpy(ndimage.binary_erosion((image > 0).numpy(), iterations=4))
    background = ~inner  # the air and a 4-pixel rim of the head
    assert float((image[background] > 0).float().mean()) > 0.05
    naive = float(noisy[background].pow(2).mean().div(2).sqrt())
    assert naive > 2 * sigma
    assert abs(mc.estimate_noise(noisy, background=background) / sigma - 1) < 0.05


def test_scale_intensities_matches_the_course_convention_and_undoes():
    image = _phantom()
    noisy = mc.add_rician_noise(image[None], 0.02, generator=torch.Generator().manual_seed(3))[0]
    head = mc.head_mask(noisy)
    truth = image > 0
    assert (head == truth).float().mean() > 0.99  # Otsu finds the head without labels
    for factor in (1.0, 3e-4, 2500.0):
        out = mc.scale_intensities(noisy.numpy() * factor)
        assert out.image.dtype == torch.float32 and out.image.shape == noisy.shape
        # the course's convention: the head's 99.5th percentile is 1 (as the data sets' brains)
        assert float(mc.data.brain.brain_percentile(out.image[None], head[None])[0]) == pytest.approx(1.0, abs=1e-4)
        assert out.scale == pytest.approx(factor * out.scale / factor, rel=1e-6)
        torch.testing.assert_close(out.image * out.scale, noisy * factor, rtol=1e-5, atol=1e-6 * factor)
    assert mc.scale_intensities(noisy * 10).scale == pytest.approx(10 * mc.scale_intensities(noisy).scale, rel=1e-5)


def test_head_mask_fills_dark_tissue_open_at_the_volume_ends():
    """A bright rim around dark tissue that runs through every slice (no 3D hole): the mask is the
    whole head, not the rim."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 64), torch.linspace(-1, 1, 64), indexing="ij")
    r = (xx / 0.7) ** 2 + (yy / 0.8) ** 2
    image = torch.where(r < 0.7, 0.15, 1.0) * (r < 1)  # a dark inside (0.15) in a bright rim (1)
    volume = mc.add_rician_noise(image.expand(5, 64, 64)[None], 0.02, generator=torch.Generator().manual_seed(5))[0]
    head = mc.head_mask(volume)
    assert float((head == (r < 1)).float().mean()) > 0.99


@pytest.mark.parametrize("contrast, expected", [("T2w", 1.0), ("PDw", 1.0), ("FLAIR", 1.0), ("T1w", 1.15)])
def test_scale_intensities_on_brain_slices_gives_the_data_sets_scale(contrast, expected):
    """Data set slices (scaled so the noise-free brain's 99.5th percentile is 1), multiplied by an
    arbitrary factor, come back to that scale without their labels; in T1w the scalp's fat is
    brighter than the brain, so the head's percentile is higher (as documented)."""
    images = mc.brain_slices(1, contrasts=(contrast,), size=64, slices_per_subject=3, seed=0)["images"][:, 0]
    for image in images:
        assert mc.scale_intensities(image * 777.0).scale / 777.0 == pytest.approx(expected, rel=0.03)


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.zeros(4), "2D"),
        (torch.zeros(2, 3, 4, 5), "2D"),
        (torch.zeros(8, 8, dtype=torch.complex64), "complex"),
        (torch.full((8, 8), float("nan")), "NaN"),
    ],
)
def test_bad_images_are_named(bad, match):
    with pytest.raises(ValueError, match=match):
        mc.scale_intensities(bad)
    with pytest.raises(ValueError, match=match):
        mc.estimate_noise(bad)
    with pytest.raises(ValueError, match="values >= 0"):
        mc.estimate_noise(-torch.ones(8, 8))


@pytest.fixture(scope="module")
def fastmri_file(tmp_path_factory):
    """One volume written by the package's fastMRI writer (read-out oversampled 2x)."""
    folder = tmp_path_factory.mktemp("own") / "multicoil_val"
    images = mc.brain_slices(1, contrasts=("T2w",), size=32, slices_per_subject=2, seed=1)["images"][:, 0]
    sim = mc.multicoil_kspace(images, num_coils=4, snr=40.0, seed=0)
    path = mc.write_fastmri(folder / "file_brain_AXT2_200_6000.h5", sim["kspace"], sim["target"], acquisition="AXT2")
    return path, sim


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return mc.VarNet(mc.VarNetConfig.smoke()).eval()


@pytest.mark.parametrize("name", ["4x", "8x"])
def test_varnet_on_a_file_equals_the_data_set_pipeline(fastmri_file, model, name):
    path, _ = fastmri_file
    acc, cf = mc.training.recipes.varnet.ACCELERATIONS[name]
    ds = FastMRISlices(path.parent, VarNetTransform(mc.MaskFunc("equispaced", (cf,), (acc,)), readout_crop=True))
    out = mc.varnet_reconstruct(path, acceleration=acc, model=model)
    assert out.image.shape == (2, 32, 32) and out.num_low_frequencies == round(32 * cf)
    with torch.no_grad():
        for i, s in enumerate(ds):
            torch.testing.assert_close(out.mask.reshape(1, 1, -1), s["mask"])
            assert out.num_low_frequencies == s["num_low_frequencies"]
            expected = model(
                s["masked_kspace"][None], s["mask"][None], s["num_low_frequencies"], crop_size=tuple(s["target"].shape)
            )
            torch.testing.assert_close(out.image[i], expected[0, 0], rtol=0, atol=0)


def test_varnet_on_a_test_file_uses_its_own_mask(fastmri_file, model, tmp_path):
    """A challenge test file (undersampled k-space with its mask): no acceleration needed, and the
    result is the data set pipeline's (its own mask, the centre found by the VarNet)."""
    _, sim = fastmri_file
    mask, _ = mc.MaskFunc("equispaced", (0.08,), (4,))(32, seed=3)
    path = mc.write_fastmri(
        tmp_path / "file_brain_AXT2_200_6001.h5", sim["kspace"] * mask, sim["target"], mask=mask.reshape(-1), acceleration=4
    )
    out = mc.varnet_reconstruct(path, model=model)
    torch.testing.assert_close(out.mask, mask.reshape(-1))
    s = FastMRISlices(tmp_path, VarNetTransform(readout_crop=True))[1]
    with torch.no_grad():
        expected = model(s["masked_kspace"][None], s["mask"][None], s["num_low_frequencies"], crop_size=(32, 32))
    torch.testing.assert_close(out.image[1], expected[0, 0], rtol=0, atol=0)


def test_varnet_on_arrays_finds_the_undersampling(fastmri_file, model):
    path, sim = fastmri_file
    k = sim["kspace"]  # (2, 4, 64, 32): read-out oversampled
    applied = mc.varnet_reconstruct(k.numpy(), acceleration=4, model=model, shape=(32, 32))
    assert applied.image.shape == (2, 32, 32)
    # the same undersampling already in the data (zero columns): found, same result
    masked = k * applied.mask
    found = mc.varnet_reconstruct(masked, model=model, shape=(32, 32))
    torch.testing.assert_close(found.mask, applied.mask)
    assert found.num_low_frequencies == 0  # the VarNet finds the centre block from the mask, as for a test file
    # a given mask of the same columns: the same result
    given = mc.varnet_reconstruct(k, mask=applied.mask.numpy(), model=model, shape=(32, 32))
    torch.testing.assert_close(given.image, found.image, rtol=0, atol=0)
    # one slice (coils, H, W) gives one image (h, w); without shape, the whole (H, W)
    one = mc.varnet_reconstruct(masked[1], model=model, shape=(32, 32))
    torch.testing.assert_close(one.image, found.image[1])
    assert mc.varnet_reconstruct(masked[1], model=model).image.shape == (64, 32)


def test_varnet_reconstruct_bad_inputs(fastmri_file, model):
    _, sim = fastmri_file
    k = sim["kspace"]
    cases = [
        (dict(kspace=k.abs()), "complex multi-coil k-space"),
        (dict(kspace=k[0, 0]), "complex multi-coil k-space"),
        (dict(kspace=k, mask=np.ones(31)), "a mask of 32"),
        (dict(kspace=k, mask=np.zeros(32)), "no column"),
        (dict(kspace=k, acceleration=4, mask=np.ones(32)), "not both"),
        (dict(kspace=k, acceleration=6), "center_fraction"),
        (dict(kspace=k, shape=(80, 32)), "shape"),
    ]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            mc.varnet_reconstruct(model=model, **kwargs)


def test_varnet_reconstruct_without_a_model_uses_the_pretrained_one_or_says_so(fastmri_file, monkeypatch):
    _, sim = fastmri_file
    if "varnet" in mc.available_weights():
        assert mc.varnet_reconstruct(sim["kspace"][0], acceleration=4, shape=(32, 32)).image.shape == (32, 32)
    monkeypatch.setattr(mc.training.own_scan, "available_weights", lambda: [])
    with pytest.raises(ValueError, match="pass model="):
        mc.varnet_reconstruct(sim["kspace"][0], acceleration=4)
