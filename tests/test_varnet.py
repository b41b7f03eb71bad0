"""E2E VarNet: shapes, the SME module, soft data consistency, overfitting, and parity with
``fastmri.models.VarNet`` (same weights, same outputs)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

import mricourse as mc
from mricourse.models.varnet import (
    NormUNet,
    SensitivityModel,
    VarNet,
    VarNetBlock,
    VarNetConfig,
    acs_mask,
    sens_expand,
    sens_reduce,
    state_dict_from_fastmri,
    varnet_step,
)


def _data(b=2, coils=4, h=32, w=40, accel=4, cf=0.08, seed=0, dtype=torch.complex64):
    g = torch.Generator().manual_seed(seed)
    k = torch.randn(b, coils, h, w, dtype=dtype, generator=g)
    mask = torch.cat([mc.random_mask(w, accel, cf, seed=seed + i) for i in range(b)])  # (B, 1, 1, W)
    return k * mask, mask


@pytest.mark.parametrize("b,coils,h,w", [(1, 1, 32, 32), (2, 4, 33, 27), (1, 3, 50, 64)])
def test_shapes(b, coils, h, w):
    torch.manual_seed(0)
    net = VarNet(VarNetConfig.smoke())
    k, mask = _data(b, coils, h, w)
    out = net(k, mask)
    assert out.shape == (b, 1, h, w) and out.dtype == torch.float32 and torch.isfinite(out).all()
    assert net(k, mask, crop_size=(16, 20)).shape == (b, 1, 16, 20)
    assert net.sens_maps(k, mask).shape == (b, coils, h, w)


def test_norm_unet_multi_channel_and_odd_sizes():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 21, 35, dtype=torch.complex64)
    net = NormUNet(chans=4, num_pools=2, coils=3)
    y = net(x)
    assert y.shape == x.shape and y.is_complex()


def test_acs_mask_matches_fastmri_centre_block():
    w = 128
    for accel, cf in [(4, 0.08), (8, 0.04)]:
        n = round(w * cf)
        mask = mc.equispaced_mask(w, accel, cf, offset=1)
        acs = acs_mask(mask, n).flatten()
        assert torch.equal(acs, torch.from_numpy(mc.masks.center_mask(w, n)))
        # without n, the fully sampled run around the centre, symmetric
        derived = acs_mask(mask).flatten()
        assert derived.sum() >= 1 and (derived <= mask.flatten()).all()
        assert derived.sum() % 2 == 0 or derived.sum() == 1


def test_sens_maps_have_unit_rss():
    torch.manual_seed(0)
    k, mask = _data(coils=6)
    maps = SensitivityModel(chans=4, num_pools=2)(k, mask)
    torch.testing.assert_close(mc.rss(maps), torch.ones(2, 1, 32, 40), rtol=1e-5, atol=1e-5)


def test_sens_expand_reduce_are_adjoint():
    g = torch.Generator().manual_seed(1)
    maps = torch.randn(2, 5, 12, 10, dtype=torch.complex128, generator=g)
    x = torch.randn(2, 1, 12, 10, dtype=torch.complex128, generator=g)
    y = torch.randn(2, 5, 12, 10, dtype=torch.complex128, generator=g)
    lhs = torch.vdot(sens_expand(x, maps).flatten(), y.flatten())
    rhs = torch.vdot(x.flatten(), sens_reduce(y, maps).flatten())
    assert abs(lhs - rhs) < 1e-10 * abs(lhs)
    # with the package's operator and a full mask they are A and A^H
    op = mc.MultiCoilMRI(maps, torch.ones(1, 1, 1, 10, dtype=torch.float64))
    torch.testing.assert_close(sens_expand(x, maps), op.A(x))


class _Zero(torch.nn.Module):
    def forward(self, x):
        return torch.zeros_like(x)


def test_soft_dc_with_unit_weight_restores_measured_kspace():
    """The cascade's defining property: with eta = 1 and no regulariser the sampled k-space
    becomes exactly the measurement, and the unsampled k-space is left alone."""
    k0, mask = _data()
    current = torch.randn_like(k0)
    block = VarNetBlock(chans=4, num_pools=2)
    block.model = _Zero()
    maps = torch.randn_like(k0)
    out = block(current, k0, mask, maps)
    torch.testing.assert_close(out * mask, k0 * mask)
    torch.testing.assert_close(out * (1 - mask), current * (1 - mask))
    # a smaller eta moves the sampled entries only part of the way: k - eta (k - k0)
    with torch.no_grad():
        block.dc_weight.fill_(0.25)
    out = block(current, k0, mask, maps)
    torch.testing.assert_close(out * mask, (0.75 * current + 0.25 * k0) * mask)


def test_config_presets():
    assert VarNetConfig.paper() == VarNetConfig(12, 18, 4, 8, 4)
    n = sum(p.numel() for p in VarNet(VarNetConfig.paper()).parameters())
    assert 29e6 < n < 31e6  # about 30M, as in the paper
    assert VarNetConfig.for_profile(mc.profile("smoke")) == VarNetConfig.smoke()
    assert VarNetConfig.for_profile(mc.profile("cpu")) == VarNetConfig.cpu()


def test_bad_inputs():
    net = VarNet(VarNetConfig.smoke())
    k, mask = _data()
    with pytest.raises(TypeError, match="complex k-space"):
        net(k.abs(), mask)
    with pytest.raises(ValueError, match="mask"):
        net(k, mask[..., :-1])
    with pytest.raises(ValueError, match="crop"):
        net(k, mask, crop_size=(64, 64))


def test_overfits_one_batch():
    torch.manual_seed(0)
    h = w = 32
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    img = 0.8 * ((xx / 0.7) ** 2 + (yy / 0.85) ** 2 < 1).float()  # a head-like phantom
    img += 0.5 * ((xx - 0.2) ** 2 / 0.05 + (yy + 0.1) ** 2 / 0.1 < 1).float()
    img -= 0.4 * ((xx + 0.3) ** 2 / 0.02 + (yy - 0.2) ** 2 / 0.08 < 1).float()
    img = img.to(torch.complex64)[None, None]  # (1, 1, H, W)
    maps = mc.coil_maps(4, (h, w), seed=0)
    mask = mc.random_mask(w, 4, 0.16, seed=0)
    k = mask * mc.fft2c(maps * img)
    target = mc.rss(maps * img)
    net = VarNet(VarNetConfig.smoke())
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    for _ in range(60):
        loss = 1 - mc.ssim_tensor(target, net(k, mask))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        out = net(k, mask)
    zf = mc.zero_filled(k)
    assert float(mc.ssim(target, out)) > 0.85 > float(mc.ssim(target, zf)) + 0.15  # zero-filled: 0.63
    assert mc.nmse(target, out) < 0.5 * mc.nmse(target, zf)


# ---------------------------------------------------------------- parity with fastmri
@pytest.fixture
def fastmri_models():
    return pytest.importorskip("fastmri.models", reason="fastmri (the reference implementation) is not installed")


def _pair(fastmri_models, cfg: VarNetConfig, seed: int = 0):
    ref = fastmri_models.VarNet(
        num_cascades=cfg.num_cascades,
        sens_chans=cfg.sens_chans,
        sens_pools=cfg.sens_pools,
        chans=cfg.chans,
        pools=cfg.num_pools,
        mask_center=cfg.mask_center,
    )
    torch.manual_seed(seed)
    for p in ref.parameters():  # random, not the initial, weights; dc_weight != 1 too
        p.data = torch.randn_like(p) * 0.3
    ours = VarNet(cfg)
    ours.load_state_dict(state_dict_from_fastmri(ref.state_dict()), strict=True)
    return ours.eval(), ref.eval()


def _ref_inputs(k, mask):
    return torch.view_as_real(k), mask.bool().reshape(mask.shape[0], 1, 1, -1, 1)  # fastmri's layout


@pytest.mark.parametrize(
    "cfg,shape,nlf",
    [
        (VarNetConfig(2, 6, 2, 4, 2), (2, 4, 32, 48), None),
        (VarNetConfig(3, 4, 3, 3, 2, mask_center=False), (1, 3, 37, 29), None),
        (VarNetConfig(2, 5, 4, 4, 4), (2, 5, 64, 64), 5),
    ],
)
def test_parity_with_fastmri(fastmri_models, cfg, shape, nlf):
    ours, ref = _pair(fastmri_models, cfg)
    b, coils, h, w = shape
    k, mask = _data(b, coils, h, w, accel=4, cf=0.08, seed=3)
    with torch.no_grad():
        kr, mr = _ref_inputs(k, mask)
        expected = ref(kr, mr, nlf)  # (B, H, W)
        got = ours(k, mask, nlf)  # (B, 1, H, W)
        torch.testing.assert_close(got[:, 0], expected, rtol=1e-4, atol=1e-5 * float(expected.abs().max()))
        maps_ref = torch.view_as_complex(ref.sens_net(kr, mr, nlf))
        torch.testing.assert_close(ours.sens_maps(k, mask, nlf), maps_ref, rtol=1e-4, atol=1e-5)


def test_parity_of_gradients(fastmri_models):
    cfg = VarNetConfig(2, 4, 2, 3, 2)
    ours, ref = _pair(fastmri_models, cfg, seed=1)
    k, mask = _data(1, 3, 32, 32, accel=8, cf=0.04, seed=5)
    target = torch.rand(1, 32, 32)
    kr, mr = _ref_inputs(k, mask)
    (1 - mc.ssim_tensor(target, ref(kr, mr))).backward()
    (1 - mc.ssim_tensor(target[:, None], ours(k, mask))).backward()
    ref_grads = state_dict_from_fastmri({n: p.grad for n, p in ref.named_parameters()})
    for name, p in ours.named_parameters():
        scale = float(ref_grads[name].abs().max()) + 1e-12
        torch.testing.assert_close(p.grad, ref_grads[name], rtol=1e-3, atol=1e-4 * scale, msg=name)


# ---------------------------------------------------------------- the fastMRI data pipeline
@pytest.mark.parametrize(
    "kind,ref_name",
    [("random", "RandomMaskFunc"), ("equispaced", "EquiSpacedMaskFunc"), ("equispaced_fraction", "EquispacedMaskFractionFunc")],
)
def test_mask_func_parity_with_fastmri(kind, ref_name):
    """Two (centre fraction, acceleration) pairs: the pair and the mask come from one stream."""
    sub = pytest.importorskip("fastmri.data.subsample")
    ours, ref = mc.MaskFunc(kind, (0.08, 0.04), (4, 8)), getattr(sub, ref_name)([0.08, 0.04], [4, 8])
    for seed in [0, 1, 2, 3, tuple(map(ord, "file_brain_AXT2_200_6001.h5"))]:
        mask, nlf = ours(128, seed=seed)
        ref_mask, ref_nlf = ref((1, 15, 128, 2), seed=seed)
        assert torch.equal(mask.flatten(), ref_mask.flatten()) and nlf == ref_nlf
    ours, ref = mc.MaskFunc(kind, (0.08, 0.04), (4, 8), seed=5), getattr(sub, ref_name)([0.08, 0.04], [4, 8], seed=5)
    for _ in range(4):  # the functions' own streams, call after call
        mask, nlf = ours(96)
        ref_mask, ref_nlf = ref((1, 15, 96, 2))
        assert torch.equal(mask.flatten(), ref_mask.flatten()) and nlf == ref_nlf


def test_mask_func_picks_both_pairs():
    f = mc.MaskFunc("random", (0.08, 0.04), (4, 8), seed=0)
    lows = {f(128)[1] for _ in range(20)}
    assert lows == {round(128 * 0.08), round(128 * 0.04)}
    with pytest.raises(ValueError, match="kind"):
        mc.MaskFunc("poisson")
    with pytest.raises(ValueError, match="as many"):
        mc.MaskFunc("random", (0.08,), (4, 8))


def _write_volumes(folder, n=2, slices=3, coils=4, size=32, oversample=1):
    torch.manual_seed(0)
    for i in range(n):
        yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
        images = torch.stack([((xx / (0.6 + 0.1 * s)) ** 2 + (yy / 0.8) ** 2 < 1).float() for s in range(slices)])
        sim = mc.multicoil_kspace(images, num_coils=coils, snr=50.0, seed=i, oversample=oversample)
        mc.write_fastmri(folder / f"file_brain_AXT2_200_{6000 + i}.h5", sim["kspace"], sim["target"], acquisition="AXT2")


def test_crop_readout_is_exact():
    g = torch.Generator().manual_seed(0)
    k = torch.randn(3, 40, 24, dtype=torch.complex64, generator=g)  # (coils, 2H, W): read-out oversampled
    cropped = mc.data.crop_readout(k, 20)
    assert cropped.shape == (3, 20, 24)
    torch.testing.assert_close(mc.ifft2c(cropped), mc.data.center_crop(mc.ifft2c(k), (20, 24)))


def test_varnet_transform(tmp_path):
    _write_volumes(tmp_path, oversample=2)
    masks = mc.MaskFunc("equispaced", (0.08, 0.04), (4, 8))
    seeded = mc.FastMRISlices(tmp_path, transform=mc.VarNetTransform(masks))
    a, b = seeded[0], seeded[1]  # same volume: same mask
    assert torch.equal(a["mask"], b["mask"]) and a["mask"].shape == (1, 1, 32)
    assert a["masked_kspace"].shape == (4, 64, 32) and a["target"].shape == (32, 32)
    assert (a["masked_kspace"] * (1 - a["mask"]) == 0).all()
    cropped = mc.FastMRISlices(tmp_path, transform=mc.VarNetTransform(masks, readout_crop=True))[0]
    assert cropped["masked_kspace"].shape == (4, 32, 32)
    # the fully sampled RSS of the cropped k-space is the stored target
    raw = mc.FastMRISlices(tmp_path)[0]
    full = mc.data.crop_readout(raw["kspace"], 32)
    torch.testing.assert_close(mc.zero_filled(full[None])[0, 0], raw["target"], rtol=1e-4, atol=1e-5)
    batch = next(iter(torch.utils.data.DataLoader(seeded, batch_size=2)))
    assert batch["masked_kspace"].shape == (2, 4, 64, 32) and batch["mask"].shape == (2, 1, 1, 32)


def test_varnet_transform_band_is_an_exact_smaller_problem(tmp_path):
    """A training band: the k-space of a band of the image's rows (the read-out is fully sampled)
    and the same rows of the target, at a height drawn from torch's generator."""
    _write_volumes(tmp_path, oversample=2)
    masks = mc.MaskFunc("equispaced", (0.08,), (4,))
    raw = mc.FastMRISlices(tmp_path)[0]
    full = mc.data.crop_readout(raw["kspace"], 32)  # (coils, 32, 32)
    banded = mc.FastMRISlices(tmp_path, transform=mc.VarNetTransform(masks, readout_crop=True, band=16))
    torch.manual_seed(3)
    s = banded[0]
    torch.manual_seed(3)
    top = int(torch.randint(32 - 16 + 1, ()))
    assert s["masked_kspace"].shape == (4, 16, 32) and s["target"].shape == (16, 32)
    torch.testing.assert_close(s["target"], raw["target"][top : top + 16])
    band = mc.fft2c(mc.ifft2c(full)[:, top : top + 16])  # the k-space of those rows, by 2D transforms
    torch.testing.assert_close(s["masked_kspace"], band * s["mask"][0], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="band"):
        mc.VarNetTransform(masks, band=16)  # needs readout_crop
    with pytest.raises(ValueError, match="band"):
        mc.VarNetTransform(masks, readout_crop=True, band=4)


def test_pipeline_parity_with_fastmri(tmp_path):
    """Our files through FastMRISlices + VarNetTransform and through fastmri's SliceDataset +
    VarNetDataTransform give the same masked k-space, mask, centre width and target."""
    mri_data = pytest.importorskip("fastmri.data.mri_data")
    transforms = pytest.importorskip("fastmri.data.transforms")
    subsample = pytest.importorskip("fastmri.data.subsample")
    _write_volumes(tmp_path)
    ours = mc.FastMRISlices(tmp_path, transform=mc.VarNetTransform(mc.MaskFunc("equispaced", (0.08, 0.04), (4, 8))))
    ref_mask = subsample.EquiSpacedMaskFunc([0.08, 0.04], [4, 8])
    ref = mri_data.SliceDataset(tmp_path, "multicoil", transform=transforms.VarNetDataTransform(ref_mask))
    assert len(ours) == len(ref)
    for i in range(len(ours)):
        a, r = ours[i], ref[i]
        torch.testing.assert_close(torch.view_as_real(a["masked_kspace"]), r.masked_kspace)
        assert torch.equal(a["mask"].flatten().bool(), r.mask.flatten())
        assert a["num_low_frequencies"] == r.num_low_frequencies and a["max_value"] == pytest.approx(r.max_value)
        torch.testing.assert_close(a["target"], r.target)


def test_train_task_from_the_command_line(tmp_path):
    """``mricourse train varnet`` on a fastMRI-layout folder (read-out oversampled files)."""
    from mricourse.training.cli import main

    for split in ("multicoil_train", "multicoil_val"):
        (tmp_path / split).mkdir()
        _write_volumes(tmp_path / split, n=1, slices=2, oversample=2)
    main(["train", "varnet", "--data", str(tmp_path), "--profile", "smoke", "--steps", "3", "--out", str(tmp_path / "run")])
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["steps"] == 3 and 0 < metrics["metrics"]["ssim_4x"] <= 1 and 0 < metrics["metrics"]["ssim_8x"] <= 1
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    assert record["recipe"] == "varnet" and record["steps"] == 3 and record["config"] == dataclasses.asdict(VarNetConfig.smoke())


def test_one_cycle_schedule_anneals_by_the_step():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = mc.OneCycleSchedule(opt, max_lr=0.1, steps=100)
    lrs = []
    for _ in range(100):
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert max(lrs) == pytest.approx(0.1, rel=1e-3) and lrs[-1] == pytest.approx(0.001)
    assert lrs.index(max(lrs)) in (9, 10)  # warm-up over the first 10 %


def test_varnet_step_l1_term(tmp_path):
    """``l1_weight`` adds ``l1_weight * mean|output - target| / max`` to ``1 - SSIM``."""
    _write_volumes(tmp_path)
    ds = mc.FastMRISlices(tmp_path, transform=mc.VarNetTransform(mc.MaskFunc("equispaced", (0.08,), (4,))))
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    torch.manual_seed(0)
    net = VarNet(VarNetConfig.smoke())
    frozen = torch.optim.SGD(net.parameters(), lr=0.0)  # the weights stay as they are
    plain = varnet_step({"model": net}, {"opt": frozen}, batch)["loss"]
    mixed = varnet_step({"model": net}, {"opt": frozen}, batch, l1_weight=2.0)["loss"]
    with torch.no_grad():
        out = net(batch["masked_kspace"], batch["mask"], batch["num_low_frequencies"], crop_size=batch["target"].shape[-2:])[:, 0]
    l1 = torch.stack([(o - t).abs().mean() / m for o, t, m in zip(out, batch["target"], batch["max_value"])]).mean()
    ssim = sum(mc.ssim(t, o, data_range=float(m)) for o, t, m in zip(out, batch["target"], batch["max_value"])) / len(out)
    assert plain == pytest.approx(1 - ssim, rel=1e-5)
    assert mixed == pytest.approx(plain + 2 * float(l1), rel=1e-5)
