"""DC-CNN: data consistency, data sharing, shapes (2D / 2D+t, odd sizes) and one-batch overfitting
through the update step; the recipe's dims override."""

from __future__ import annotations

import pytest
import torch

import mricourse as mc
from mricourse.models.cascade import (
    CascadeConfig,
    CascadeNet,
    DataConsistency,
    SpaceTimeConv,
    cascade_step,
    data_consistency,
    data_sharing,
)


def _randc(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.complex(torch.randn(*shape, generator=g), torch.randn(*shape, generator=g))


def _problem(b=2, t=6, h=12, w=10, accel=3, seed=0):
    image = _randc(b, t, h, w, seed=seed)
    mask = mc.kt_mask(t, w, accel, center_lines=2, seed=seed)  # (1, T, 1, W)
    return image, mask, mask * mc.fft2c(image)


def test_hard_dc_keeps_sampled_kspace_exactly():
    k, k0 = _randc(2, 5, 8, 9, seed=1), _randc(2, 5, 8, 9, seed=2)
    mask = mc.kt_mask(5, 9, 3, center_lines=1, seed=0)
    k0 = mask * k0
    out = data_consistency(k, k0, mask)
    sampled = mask.expand_as(k) > 0
    assert torch.equal(out[sampled], k0[sampled])
    assert torch.equal(out[~sampled], k[~sampled])


def test_soft_dc_follows_its_formula_and_tends_to_hard():
    k, k0 = _randc(1, 3, 6, 8, seed=3), _randc(1, 3, 6, 8, seed=4)
    mask = mc.kt_mask(3, 8, 2, center_lines=2, seed=1)
    k0 = mask * k0
    sampled = mask.expand_as(k) > 0
    for v in (0.0, 0.5, 4.0):
        out = data_consistency(k, k0, mask, v)
        assert torch.allclose(out[sampled], ((k + v * k0) / (1 + v))[sampled], atol=1e-6)
        assert torch.equal(out[~sampled], k[~sampled])
    assert torch.allclose(data_consistency(k, k0, mask, 0.0), k)  # v = 0: the data are ignored
    assert torch.allclose(data_consistency(k, k0, mask, 1e8), data_consistency(k, k0, mask), atol=1e-5)


def test_dc_layer_in_image_space():
    image, mask, k0 = _problem()
    x = _randc(*image.shape, seed=9)
    out = DataConsistency()(x, k0, mask)
    sampled = mask.expand_as(k0) > 0
    assert torch.allclose(mc.fft2c(out)[sampled], k0[sampled], atol=1e-5)
    assert torch.allclose(mc.fft2c(out)[~sampled], mc.fft2c(x)[~sampled], atol=1e-5)
    learn = DataConsistency(2.0, learnable=True)
    assert abs(float(learn.noise_lvl.detach().exp()) - 2.0) < 1e-6 and learn.noise_lvl.requires_grad
    with pytest.raises(ValueError):
        DataConsistency(None, learnable=True)


def _share_by_loop(k, mask, d, circular):
    b, t, h, w = k.shape
    m = mask.expand(b, t, h, w)
    out = k.clone()
    for i in range(t):
        frames = [(i + s) % t for s in range(-d, d + 1)] if circular else [i + s for s in range(-d, d + 1) if 0 <= i + s < t]
        num = sum(m[:, j] * k[:, j] for j in frames)
        cnt = sum(m[:, j] for j in frames)
        fill = (m[:, i] == 0) & (cnt > 0)
        out[:, i][fill] = (num / cnt.clamp_min(1))[fill]
    return out


@pytest.mark.parametrize("circular", [True, False])
@pytest.mark.parametrize("dist", [0, 1, 2, 7])
def test_data_sharing_fills_only_unsampled_entries(dist, circular):
    k = _randc(2, 5, 4, 11, seed=5)
    mask = mc.kt_mask(5, 11, 4, center_lines=1, seed=2)
    out = data_sharing(k, mask, dist, circular)
    sampled = mask.expand_as(k) > 0
    assert torch.equal(out[sampled], k[sampled])  # measured entries are never touched
    assert torch.allclose(out, _share_by_loop(k, mask, dist, circular), atol=1e-6)
    if dist == 0:
        assert torch.equal(out, k)


def test_data_sharing_keeps_entries_no_neighbour_sampled():
    k = _randc(1, 4, 2, 6, seed=6)
    mask = torch.zeros(1, 4, 1, 6)
    mask[0, 0, 0, 1] = 1  # column 1 only in frame 0; column 5 never
    out = data_sharing(k, mask, 1, circular=False)
    assert torch.equal(out[0, 1, :, 1], k[0, 0, :, 1])  # frame 1 borrows frame 0's column 1
    assert torch.equal(out[0, 2:, :, 1], k[0, 2:, :, 1])  # frames 2, 3 are too far away
    assert torch.equal(out[..., 5], k[..., 5])
    circ = data_sharing(k, mask, 1, circular=True)
    assert torch.equal(circ[0, 3, :, 1], k[0, 0, :, 1])  # frame 3 is frame 0's neighbour in a cycle


def test_data_sharing_rejects_bad_input():
    k = _randc(1, 4, 3, 5)
    with pytest.raises(TypeError):
        data_sharing(k.abs(), torch.ones(1, 4, 1, 5), 1)
    with pytest.raises(ValueError):
        data_sharing(k, torch.ones(1, 3, 1, 5), 1)
    with pytest.raises(ValueError):
        data_sharing(k, torch.ones(1, 4, 1, 5), -1)


@pytest.mark.parametrize("dims,sharing", [(2, ()), (3, ()), (3, (0, 1, 3))])
@pytest.mark.parametrize("shape", [(1, 5, 15, 17), (2, 4, 16, 9), (1, 1, 11, 12)])
def test_shapes_and_output_consistency(dims, sharing, shape):
    torch.manual_seed(0)
    net = CascadeNet(CascadeConfig(dims=dims, num_cascades=2, num_convs=3, chans=4, sharing=sharing))
    image, mask, k0 = _problem(*shape, accel=2)
    out = net(k0, mask)
    assert out.shape == image.shape and out.dtype == torch.complex64
    sampled = mask.expand_as(k0) > 0
    assert torch.allclose(mc.fft2c(out)[sampled], k0[sampled], atol=1e-4)  # hard DC last


def test_frames_are_independent_in_2d_but_not_in_3d():
    image, mask, k0 = _problem(1, 4, 12, 12)
    for dims, independent in ((2, True), (3, False)):
        torch.manual_seed(0)
        net = CascadeNet(CascadeConfig(dims=dims, num_cascades=1, num_convs=3, chans=4))
        k1 = k0.clone()
        k1[:, 1] = k1[:, 1] * 2  # change frame 1's data only
        a, b = net(k0, mask), net(k1, mask)
        assert torch.allclose(a[:, 0], b[:, 0], atol=1e-6) == independent


def test_config_presets_and_errors():
    assert CascadeConfig.d5_c5().dims == 2 and CascadeConfig.d5_c5().num_cascades == 5
    paper = CascadeConfig.d5_c10_s()
    assert (paper.num_cascades, paper.num_convs, paper.chans, paper.sharing) == (10, 5, 64, (0, 1, 2, 3, 4))
    n = sum(p.numel() for p in CascadeNet(CascadeConfig(dims=2, num_cascades=5, num_convs=5, chans=32)).parameters())
    assert 140_000 < n < 150_000  # "D5-C5 nf 32: about 145k parameters"
    for name in ("smoke", "cpu", "gpu"):
        for dims in (2, 3):
            assert CascadeConfig.for_profile(mc.profile(name), dims=dims).dims == dims
    with pytest.raises(ValueError):
        CascadeConfig(dims=1)
    with pytest.raises(ValueError):
        CascadeConfig(dims=2, sharing=(0, 1))
    with pytest.raises(TypeError):
        CascadeNet(CascadeConfig.smoke())(torch.zeros(1, 2, 8, 8), torch.ones(1, 2, 1, 8))


@pytest.mark.parametrize("dims", [2, 3])
def test_overfits_one_batch(dims):
    torch.manual_seed(0)
    t, h, w = 4, 16, 16
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    r = torch.linspace(0.3, 0.6, t).view(t, 1, 1)
    image = ((xx**2 + yy**2).sqrt() < r).to(torch.complex64).unsqueeze(0)  # (1, T, H, W): a pulsing disc
    mask = mc.kt_mask(t, w, 4, center_lines=2, seed=0)
    k0 = mask * mc.fft2c(image)
    net = CascadeNet(CascadeConfig(dims=dims, num_cascades=2, num_convs=3, chans=8, sharing=(0, 1) if dims == 3 else ()))
    modules, optimizers = {"model": net}, {"opt": torch.optim.Adam(net.parameters(), lr=5e-3)}
    batch = ((k0, mask), image)  # the recipe's batch: ((masked k-space, masks), images)
    start = float((mc.ifft2c(k0) - image).abs().pow(2).mean())
    for _ in range(60):
        losses = cascade_step(modules, optimizers, batch)
    assert set(losses) == {"loss"} and isinstance(losses["loss"], float)
    assert losses["loss"] < 0.1 * start
    with torch.no_grad():
        assert float((net(k0, mask) - image).abs().pow(2).mean()) < 0.1 * start  # the loss is the complex MSE


@pytest.mark.parametrize("circular", [True, False])
@pytest.mark.parametrize("frames", [1, 2, 5])
def test_space_time_conv_is_a_3d_convolution(circular, frames):
    torch.manual_seed(0)
    conv = SpaceTimeConv(3, 4, circular)
    x = torch.randn(2, 3, frames, 7, 6)
    if circular:
        padded = torch.cat([x[:, :, -1:], x, x[:, :, :1]], 2)  # wrap the time axis
        ref = torch.nn.functional.conv3d(padded, conv.weight, conv.bias, padding=(0, 1, 1))
    else:
        ref = torch.nn.functional.conv3d(x, conv.weight, conv.bias, padding=1)
    assert conv(x).shape == (2, 4, frames, 7, 6)
    assert torch.allclose(conv(x), ref, atol=1e-5)


def test_iterates_start_zero_filled_and_end_with_the_output():
    torch.manual_seed(0)
    net = CascadeNet(CascadeConfig.smoke(dims=3))
    image, mask, k0 = _problem(1, 4, 10, 12)
    steps = net.iterates(k0, mask)
    assert len(steps) == net.cfg.num_cascades + 1
    assert torch.allclose(steps[0], mc.ifft2c(k0)) and torch.allclose(steps[-1], net(k0, mask))


def test_the_recipe_picks_the_preset_of_dims(tiny_data):
    """``overrides={"dims": "2"}`` is the profile's 2D preset, not the 2D+t one with its data sharing
    dropped; other overrides apply on top; a bad dims is a config error."""
    r2 = mc.recipe("cascade", "smoke", data=tiny_data["cine"], overrides={"dims": "2"})
    r3 = mc.recipe("cascade", "smoke", data=tiny_data["cine"])  # dims=3 by default
    assert r2.config == CascadeConfig.smoke(dims=2) and r3.config == CascadeConfig.smoke(dims=3)
    r = mc.recipe("cascade", "smoke", data=tiny_data["cine"], overrides={"dims": "3", "num_cascades": "1"})
    assert r.config.num_cascades == 1 and r.config.sharing == CascadeConfig.smoke(dims=3).sharing
    assert r.schedules["opt"].lr_at(0) == r.settings["lr"] and r.schedules["opt"].lr_at(r.steps) == 0
    with pytest.raises(ValueError, match="dims = 2 or 3"):
        mc.recipe("cascade", "smoke", data=tiny_data["cine"], overrides={"dims": "4"})
    with pytest.raises(ValueError, match="needs dims = 3"):
        mc.recipe("cascade", "smoke", data=tiny_data["cine"], overrides={"dims": "2", "sharing": "0,1"})


def test_circular_data_sharing_counts_each_frame_once():
    """With T = 4 frames and dist = 2, frames t - 2 and t + 2 are one frame: it must count once."""
    k = torch.zeros(1, 4, 1, 1, dtype=torch.complex64)
    k[0, :, 0, 0] = torch.tensor([0, 1, 10, 100], dtype=torch.complex64)
    mask = torch.tensor([0.0, 1.0, 1.0, 1.0]).view(1, 4, 1, 1)  # frame 0 is not sampled
    out = mc.data_sharing(k, mask, 2)
    assert out[0, 0, 0, 0].real == pytest.approx((1 + 10 + 100) / 3)  # not (1 + 10 + 10 + 100) / 4
