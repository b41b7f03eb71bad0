import numpy as np
import pytest
import torch

import mricourse as mc


@pytest.mark.parametrize("shape", [(4, 4), (5, 7), (2, 3, 16, 15), (1, 1, 9, 8)])
def test_fft2c_matches_numpy(shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    expected = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    got = mc.fft2c(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-10)


@pytest.mark.parametrize("shape", [(6, 6), (7, 5), (3, 8, 9)])
def test_ifft2c_matches_numpy(shape):
    rng = np.random.default_rng(1)
    k = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    expected = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    np.testing.assert_allclose(mc.ifft2c(torch.from_numpy(k)).numpy(), expected, atol=1e-10)


@pytest.mark.parametrize("shape,ndim", [((8, 8), 2), ((5, 6, 7), 3), ((2, 7, 9), 2)])
def test_round_trip_and_parseval(shape, ndim):
    x = torch.randn(*shape, dtype=torch.complex64)
    k = mc.fft.fftnc(x, ndim)
    assert torch.allclose(mc.ifftnc(k, ndim), x, atol=1e-5)
    assert torch.allclose(k.abs().pow(2).sum(), x.abs().pow(2).sum(), rtol=1e-5)


def test_dc_is_in_the_centre():
    x = torch.ones(8, 9, dtype=torch.complex64)
    k = mc.fft2c(x)
    assert k.abs().argmax() == 4 * 9 + 4  # (H // 2, W // 2)
    assert torch.isclose(k[4, 4].abs(), torch.tensor(np.sqrt(72.0), dtype=torch.float32))


def test_fft3c_round_trip():
    x = torch.randn(2, 5, 6, 7, dtype=torch.complex64)
    assert torch.allclose(mc.fft.ifft3c(mc.fft.fft3c(x)), x, atol=1e-5)


def test_channels_round_trip():
    x = torch.randn(2, 3, 5, 4, dtype=torch.complex64)
    c = mc.fft.to_channels(x)
    assert c.shape == (2, 6, 5, 4) and not c.is_complex()
    assert torch.equal(mc.fft.from_channels(c), x)


def test_real_input_is_refused_with_a_clear_message():
    with pytest.raises(TypeError, match="expected a complex tensor"):
        mc.fft2c(torch.randn(4, 4))
    with pytest.raises(ValueError, match="even channel count"):
        mc.fft.from_channels(torch.randn(1, 3, 4, 4))
