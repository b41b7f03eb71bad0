"""Warping layers: SpatialTransformer, warp, VecInt (scaling and squaring), resize_flow."""

import math

import pytest
import torch

import mricourse as mc

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def smooth_image(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 1, *[max(2, s // 4) for s in shape], generator=g)
    mode = "bilinear" if len(shape) == 2 else "trilinear"
    return torch.nn.functional.interpolate(x, size=shape, mode=mode, align_corners=True)


def smooth_field(shape, amplitude, seed=0):
    """A smooth random field (1, dims, *shape) with values of about +-amplitude voxels."""
    g = torch.Generator().manual_seed(seed)
    dims = len(shape)
    coarse = torch.randn(1, dims, *[4] * dims, generator=g)
    mode = "bilinear" if dims == 2 else "trilinear"
    return amplitude * torch.nn.functional.interpolate(coarse, size=shape, mode=mode, align_corners=True)


@pytest.mark.parametrize("shape", [(16, 16), (15, 21), (7, 9, 11)])
def test_zero_flow_is_identity(shape):
    x = torch.randn(2, 3, *shape)
    flow = torch.zeros(2, len(shape), *shape)
    torch.testing.assert_close(mc.warp(x, flow), x, atol=1e-5, rtol=0)
    torch.testing.assert_close(mc.SpatialTransformer(shape)(x, flow), x, atol=1e-5, rtol=0)


@pytest.mark.parametrize("shape", [(20, 24), (10, 12, 14)])
def test_known_integer_shift(shape):
    """out(x) = src(x + s): an integer shift moves the image by -s, exactly inside."""
    dims = len(shape)
    x = torch.randn(1, 1, *shape)
    shift = [2, -3, 1][:dims]
    flow = torch.tensor(shift, dtype=torch.float32).view(1, dims, *([1] * dims)).expand(1, dims, *shape)
    out = mc.warp(x, flow)
    src = tuple(slice(max(s, 0), n + min(s, 0)) for s, n in zip(shift, shape))
    dst = tuple(slice(max(-s, 0), n + min(-s, 0)) for s, n in zip(shift, shape))
    torch.testing.assert_close(out[(0, 0) + dst], x[(0, 0) + src], atol=1e-5, rtol=0)


def test_half_voxel_shift_interpolates_linearly():
    x = torch.arange(10.0).view(1, 1, 1, 10).expand(1, 1, 4, 10).contiguous()
    flow = torch.zeros(1, 2, 4, 10)
    flow[:, 1] = 0.5
    out = mc.warp(x, flow)
    torch.testing.assert_close(out[0, 0, :, :-1], x[0, 0, :, :-1] + 0.5)


def test_labels_warped_with_nearest_stay_labels():
    labels = torch.randint(0, 4, (1, 1, 24, 20)).float()
    out = mc.warp(labels, smooth_field((24, 20), 2.5), mode="nearest")
    assert set(out.unique().tolist()) <= {0.0, 1.0, 2.0, 3.0}
    st = mc.SpatialTransformer((24, 20), mode="nearest")
    assert set(st(labels, smooth_field((24, 20), 2.5, seed=1)).unique().tolist()) <= {0.0, 1.0, 2.0, 3.0}


def test_spatial_transformer_matches_warp_and_checks_size():
    x, flow = smooth_image((18, 22)), smooth_field((18, 22), 1.5)
    st = mc.SpatialTransformer((18, 22))
    torch.testing.assert_close(st(x, flow), mc.warp(x, flow))
    assert "grid" not in st.state_dict()  # non-persistent buffer
    with pytest.raises(ValueError, match="SpatialTransformer"):
        st(torch.zeros(1, 1, 18, 21), torch.zeros(1, 2, 18, 21))
    with pytest.raises(ValueError, match="warp"):
        mc.warp(torch.zeros(1, 1, 18, 21), torch.zeros(1, 2, 18, 22))


def test_warp_gradients_flow_to_the_field():
    x = smooth_image((16, 16))
    flow = smooth_field((16, 16), 1.0).requires_grad_()
    mc.warp(x, flow).sum().backward()
    assert flow.grad is not None and flow.grad.abs().sum() > 0


@pytest.mark.parametrize("shape, amplitude", [((32, 32), 3.0), ((20, 18, 22), 2.0)])
def test_scaling_and_squaring_of_smooth_field_is_invertible(shape, amplitude):
    """exp(v) of a smooth field with large displacements has det J > 0 everywhere."""
    v = smooth_field(shape, amplitude)
    u = mc.VecInt(shape, nsteps=7)(v)
    assert u.abs().max() > 1.0  # a real deformation, not a tiny one
    det = mc.jacobian_determinant(u)
    assert det.min() > 0
    assert mc.folding(u) == 0.0


def test_scaling_and_squaring_constant_velocity_is_a_translation():
    v = torch.zeros(1, 2, 20, 20)
    v[:, 0], v[:, 1] = 1.5, -0.75
    u = mc.VecInt((20, 20), nsteps=7)(v)
    torch.testing.assert_close(u, v, atol=1e-4, rtol=0)
    assert torch.equal(mc.VecInt((20, 20), nsteps=0)(v), v)


def test_scaling_and_squaring_inverts_with_minus_velocity():
    """exp(-v) o exp(v) = id: composing the two fields gives (nearly) zero displacement."""
    shape = (40, 40)
    v = smooth_field(shape, 1.5)
    integrate = mc.VecInt(shape, nsteps=7)
    fwd, inv = integrate(v), integrate(-v)
    composed = fwd + mc.warp(inv, fwd)  # x -> x + fwd(x) -> + inv(x + fwd(x))
    inner = (slice(None), slice(None), slice(6, -6), slice(6, -6))
    assert composed[inner].abs().mean() < 0.01 and composed[inner].abs().max() < 0.15 < fwd.abs().max()


def test_resize_flow_rescales_vectors():
    flow = torch.ones(1, 2, 9, 17)
    out = mc.spatial.resize_flow(flow, (17, 33))
    assert out.shape == (1, 2, 17, 33)
    torch.testing.assert_close(out[:, 0], torch.full((1, 17, 33), 2.0))
    torch.testing.assert_close(out[:, 1], torch.full((1, 17, 33), 2.0))
    # a linear field u(x) = a x stays linear with the same slope on the new grid
    x = torch.arange(9.0).view(1, 9, 1).expand(1, 9, 17)
    lin = torch.stack([0.1 * x, torch.zeros_like(x)], 1)
    big = mc.spatial.resize_flow(lin, (17, 17))
    torch.testing.assert_close(big[0, 0, :, 0], 0.1 * torch.arange(17.0), atol=1e-5, rtol=0)


def test_resize_flow_round_trip_preserves_warp():
    """Warping with a half-size field resized up matches warping with the same field at full size."""
    u = smooth_field((33, 33), 2.0)
    down_up = mc.spatial.resize_flow(mc.spatial.resize_flow(u, (17, 17)), (33, 33))
    assert (down_up - u).abs().max() < 0.15 * u.abs().max()
    assert math.isclose(float(mc.spatial.resize_flow(u, (33, 33)).sub(u).abs().max()), 0.0, abs_tol=1e-5)


def test_agrees_with_the_voxelmorph_package():
    """Side by side with the reference package (voxelmorph 0.3.4, PyTorch): same warp, same
    scaling and squaring (with border padding), to float precision."""
    vxm = pytest.importorskip("voxelmorph")
    F = vxm.nn.functional
    img, u = smooth_image((32, 40)), smooth_field((32, 40), 2.0, seed=3)
    torch.testing.assert_close(F.spatial_transform(img, u[0], padding_mode="border"), mc.warp(img, u), atol=1e-5, rtol=0)
    ours = mc.VecInt((32, 40), nsteps=7)(u)[0]
    theirs = F.integrate_vec(
        u[0], steps=7, transformer=lambda x, trf: F.spatial_transform(x[None], trf, padding_mode="border")[0]
    )
    torch.testing.assert_close(theirs, ours, atol=1e-5, rtol=0)


def test_area_resize_averages_blocks_and_keeps_the_size_it_has():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    torch.testing.assert_close(mc.area_resize(x, 2), torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]]))  # 2 x 2 means
    assert mc.area_resize(x, 4) is x
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        mc.area_resize(x[0], 2)
