"""k-t compressed sensing (mc.kt_compressed_sensing) on small cine phantoms."""

from __future__ import annotations

import pytest
import torch

import mricourse as mc


@pytest.fixture(scope="module")
def cine():
    x = mc.data.cine_sequences(1, size=32, frames=8, seed=4, fov=0.6)["images"]  # (1, T, H, W)
    mask = mc.kt_mask(8, 32, 4, center_lines=4, seed=0)
    return x, mask, mask * mc.fft2c(x)


@pytest.mark.parametrize("reg", ["tv", "xf"])
def test_kt_cs_beats_zero_filling(cine, reg):
    x, mask, k0 = cine
    out = mc.kt_compressed_sensing(k0, mask, lamda=0.01 if reg == "tv" else 0.003, reg=reg)
    assert out.shape == x.shape and out.dtype == torch.complex64
    zf = mc.psnr(x.abs()[0], mc.ifft2c(k0).abs()[0])
    assert mc.psnr(x.abs()[0], out.abs()[0]) > zf + 3


def test_kt_cs_recovers_a_static_object_from_a_mask_per_frame():
    torch.manual_seed(0)
    frame = mc.cine_subject(1, 0, size=32, frames=1).image  # (1, H, W)
    x = frame.expand(8, -1, -1).unsqueeze(0)  # (1, 8, H, W): nothing moves
    mask = mc.kt_mask(8, 32, 4, center_lines=4, seed=1)
    k0 = mask * mc.fft2c(x)
    out = mc.kt_compressed_sensing(k0, mask, lamda=0.003, spatial=0.0)
    # temporal TV makes every frame the same: the k-space of all frames together, i.e. the lines
    # sampled by any frame (only those never sampled stay empty)
    union = mask.amax(1, keepdim=True)
    shared = union * k0.sum(1, keepdim=True) / mask.sum(1, keepdim=True).clamp_min(1)
    assert mc.nmse(mc.ifft2c(shared).abs()[0].expand(8, -1, -1), out.abs()[0]) < 1e-3
    assert mc.nmse(x.abs()[0], out.abs()[0]) < 0.25 * mc.nmse(x.abs()[0], mc.ifft2c(k0).abs()[0])


def test_kt_cs_rejects_bad_input(cine):
    x, mask, k0 = cine
    with pytest.raises(TypeError):
        mc.kt_compressed_sensing(k0.abs(), mask)
    with pytest.raises(ValueError):
        mc.kt_compressed_sensing(k0, mask, reg="wavelet")
    with pytest.raises(ValueError):
        mc.kt_compressed_sensing(k0, torch.ones(1, 3, 1, 32))


def _sigpy_kt_tv(k0, mask, lamda, spatial, max_iter):
    """The same problem solved by sigpy's own ADMM (LinearLeastSquares), one sequence at a time."""
    import numpy as np
    import sigpy as sp

    out = []
    weights = torch.broadcast_to(mask.float(), k0.shape)
    for y, m in zip(k0.numpy(), weights.numpy()):
        A = sp.linop.Multiply(y.shape, m) * sp.linop.FFT(y.shape, axes=(-2, -1))
        scale = float(np.abs(A.H(y)).max())
        G = sp.linop.FiniteDifference(y.shape, axes=(0,))
        if spatial > 0:
            G = sp.linop.Vstack([G, spatial * sp.linop.FiniteDifference(y.shape, axes=(1, 2))], axis=0)
        app = sp.app.LinearLeastSquares(A, y / scale, proxg=sp.prox.L1Reg(G.oshape, lamda), G=G, solver="ADMM",
                                        max_iter=max_iter, max_cg_iter=5, show_pbar=False)
        out.append(torch.from_numpy(np.asarray(app.run(), dtype=np.complex64)) * scale)
    return torch.stack(out)


@pytest.mark.parametrize(
    ("lamda", "spatial", "frames", "weights"),
    [(0.01, 0.1, 7, "lines"), (0.001, 0.0, 7, "lines"), (0.1, 0.3, 7, "lines"), (0.01, 0.1, 6, "graded"), (0.01, 0.1, 2, "lines"), (0.01, 0.1, 1, "lines")],
)
def test_kt_cs_tv_takes_sigpys_admm_steps(lamda, spatial, frames, weights):
    # the torch ADMM (all sequences at once, in k-space) against sigpy's, on two sequences of odd size;
    # "graded": one (1, T, H, W) mask of weights 0, 0.5 and 1 for both (A^H A weighs by its square)
    x = mc.data.cine_sequences(2, size=31, frames=frames, seed=5, fov=0.6)["images"]
    if weights == "graded":
        g = torch.Generator().manual_seed(7)
        mask = torch.randint(0, 3, (1, frames, 31, 31), generator=g).float() / 2
        mask[..., 13:18, 13:18] = 1
    else:
        mask = torch.stack([mc.kt_mask(frames, 31, 4, center_lines=4, seed=s) for s in (2, 3)]).squeeze(1)
    k0 = mask * mc.fft2c(x)
    ours = mc.kt_compressed_sensing(k0, mask, lamda=lamda, spatial=spatial, max_iter=12)
    ref = _sigpy_kt_tv(k0, mask, lamda, spatial, max_iter=12)
    assert (ours - ref).abs().max() < 1e-4 * ref.abs().max()
    assert not torch.allclose(ours, mc.ifft2c(k0), atol=1e-3)  # it did something


def test_kt_cs_tv_leaves_an_empty_sequence_empty(cine):
    x, mask, k0 = cine
    k = torch.cat([k0, torch.zeros_like(k0)])
    out = mc.kt_compressed_sensing(k, mask)
    assert torch.isfinite(out).all() and out[1].abs().max() == 0
    assert torch.allclose(out[:1], mc.kt_compressed_sensing(k0, mask), atol=1e-6)
