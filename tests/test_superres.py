"""Super-resolution: degradation, sub-pixel shuffle, nearest-neighbour init, models, training."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import mricourse as mc
from mricourse.models.superres import MultiScaleUnit, ResidualBlock


def blob(shape, sigma=5.0):
    """A smooth test image: an anisotropic Gaussian bump, off-centre."""
    axes = torch.meshgrid(*[torch.arange(n, dtype=torch.float64) for n in shape], indexing="ij")
    r2 = sum(((a - 0.45 * n) / (sigma * (1 + 0.2 * i))) ** 2 for i, (a, n) in enumerate(zip(axes, shape)))
    return torch.exp(-0.5 * r2).float()


def blob_at_centres(shape, f, sigma=5.0):
    """The blob evaluated at the low-resolution voxel centres f j + (f - 1) / 2."""
    axes = torch.meshgrid(*[torch.arange(n // r, dtype=torch.float64) * r + (r - 1) / 2 for n, r in zip(shape, f)], indexing="ij")
    r2 = sum(((a - 0.45 * n) / (sigma * (1 + 0.2 * i))) ** 2 for i, (a, n) in enumerate(zip(axes, shape)))
    return torch.exp(-0.5 * r2).float()


# ------------------------------------------------------------------------------ degradation


@pytest.mark.parametrize(
    "dims,factor,shape", [(2, 2, (2, 32, 40)), (2, 4, (32, 40)), (3, 2, (16, 20, 12)), (3, (2, 1, 1), (16, 10, 12))]
)
def test_degrade_shapes_and_constant(dims, factor, shape):
    f = mc.degradation.factors(factor, dims)
    x = torch.full(shape, 0.7)
    for lr in (mc.degrade(x, factor, dims, sigma=0), mc.kspace_truncate(x, factor, dims)):
        assert lr.shape == (*shape[:-dims], *(n // r for n, r in zip(shape[-dims:], f)))
        torch.testing.assert_close(lr, torch.full_like(lr, 0.7), atol=1e-5, rtol=0)
    up = mc.interpolate(mc.degrade(x, factor, dims), factor, dims)
    assert up.shape == x.shape
    inner = (...,) + (slice(2, -2),) * dims  # the blur pads with zeros: a darker border
    torch.testing.assert_close(mc.degrade(x, factor, dims)[inner], lr[inner], atol=1e-5, rtol=0)


def test_degradation_is_deterministic_per_seed():
    x = blob((32, 32))
    for fn in (mc.degrade, mc.kspace_truncate):
        a, b = fn(x, 2, noise=0.05, seed=3), fn(x, 2, noise=0.05, seed=3)
        c = fn(x, 2, noise=0.05, seed=4)
        assert torch.equal(a, b)
        assert not torch.equal(a, c)
        assert (a - fn(x, 2)).std() > 0.01  # the noise is really there


@pytest.mark.parametrize("dims,shape", [(2, (2, 128, 96)), (3, (32, 32, 48))])
def test_kspace_truncate_noise_is_rician(dims, shape):
    """``noise`` is the std per real and imaginary part of the complex noise (the Rician sigma, as
    in mc.add_rician_noise): Rayleigh where there is no signal, Gaussian of std sigma where it is bright."""
    sigma = 0.05
    dark = mc.kspace_truncate(torch.zeros(shape), 2, dims, noise=sigma, seed=0)
    assert dark.min() >= 0
    assert abs(dark.mean().item() / (sigma * math.sqrt(math.pi / 2)) - 1) < 0.02  # Rayleigh mean
    assert abs(dark.pow(2).mean().item() / (2 * sigma**2) - 1) < 0.03  # mean(y^2) = 2 sigma^2
    bright = mc.kspace_truncate(torch.full(shape, 10.0), 2, dims, noise=sigma, seed=1)
    assert abs(bright.std().item() / sigma - 1) < 0.03 and abs(bright.mean().item() - 10.0) < 0.01


def test_recipes_make_the_same_noise_level_either_way():
    """The recipes' two degradations carry noise of the same std in bright tissue."""
    from mricourse.training.recipes.msfusion import NOISE, low_resolution

    hr = torch.full((4, 1, 64, 64), 0.8)
    for degradation in ("kspace", "image"):
        lr = low_resolution(hr, 2, 2, degradation, seed=0)[..., 4:-4, 4:-4]  # away from the blur's zero padding
        assert abs(lr.std().item() / NOISE - 1) < 0.05, degradation
    with pytest.raises(ValueError, match="degradation"):
        low_resolution(hr, 2, 2, "blur")


@pytest.mark.parametrize("dims,factor", [(2, 2), (2, 4), (3, 2), (3, (1, 2, 1))])
def test_grid_convention(dims, factor):
    """Both degradations sample at the low-resolution voxel centres f j + (f - 1) / 2, and the
    interpolation baseline maps them back onto the HR grid."""
    shape, sigma = ((48, 40), 10.0) if dims == 2 else ((24, 24, 20), 6.0)
    f = mc.degradation.factors(factor, dims)
    x, centres = blob(shape, sigma), blob_at_centres(shape, f, sigma)
    inner = (slice(2, -2),) * dims  # away from the borders (k-space is periodic)
    assert (mc.degrade(x, factor, dims, sigma=0) - centres)[inner].abs().max() < 0.012  # a half-voxel shift gives ~0.03
    assert (mc.kspace_truncate(x, factor, dims) - centres)[inner].abs().max() < 0.006
    inner_hr = (slice(8, -8),) * dims
    assert (mc.interpolate(mc.kspace_truncate(x, factor, dims), factor, dims) - x)[inner_hr].abs().max() < 0.012


def test_interpolate_zooms_only_the_spatial_axes():
    """Batched input gives the per-item result, and linear order matches PyTorch's (align_corners=False)."""
    lr = torch.rand(2, 1, 5, 6, 4)
    up = mc.interpolate(lr, (2, 1, 3), dims=3, order=3)
    assert up.shape == (2, 1, 10, 6, 12)
    torch.testing.assert_close(up[1, 0], mc.interpolate(lr[1, 0], (2, 1, 3), dims=3, order=3))
    x = torch.rand(3, 1, 7, 9)
    torch.testing.assert_close(
        mc.interpolate(x, 2, order=1), F.interpolate(x, scale_factor=2, mode="bilinear"), atol=1e-5, rtol=0
    )


def test_thick_slices_only_touch_one_axis():
    x = torch.rand(8, 6, 5)
    lr = mc.degrade(x, (2, 1, 1), dims=3, sigma=0)
    torch.testing.assert_close(lr, 0.5 * (x[0::2] + x[1::2]))


def test_degrade_errors():
    with pytest.raises(ValueError, match="multiple"):
        mc.degrade(torch.rand(33, 32), 2)
    with pytest.raises(ValueError, match="factor"):
        mc.degrade(torch.rand(32, 32), 0)
    assert mc.degradation.crop_to_multiple(torch.rand(3, 33, 31), 4).shape == (3, 32, 28)


def test_sr_metrics():
    gt = blob((40, 40))
    m = mc.sr_metrics(gt, gt.clone(), gt > 0.1)
    assert m["psnr"] == float("inf") and abs(m["ssim"] - 1) < 1e-6
    noisy = gt + 0.01 * torch.randn(gt.shape, generator=torch.Generator().manual_seed(0))
    assert 35 < mc.sr_metrics(gt, noisy, gt > 0.1)["psnr"] < 45


# ------------------------------------------------------------------------------ sub-pixel


def test_pixel_shuffle_matches_torch_in_2d():
    x = torch.randn(2, 12, 5, 7)
    torch.testing.assert_close(mc.pixel_shuffle(x, 2), F.pixel_shuffle(x, 2))
    torch.testing.assert_close(mc.pixel_unshuffle(x, 1), x)


@pytest.mark.parametrize(
    "factor,shape", [(2, (2, 3, 4, 6)), (3, (1, 2, 6, 9)), (2, (1, 2, 4, 6, 8)), ((2, 1, 3), (2, 1, 4, 5, 6))]
)
def test_pixel_unshuffle_inverts_shuffle(factor, shape):
    x = torch.randn(shape)
    dims = len(shape) - 2
    n = math.prod(mc.degradation.factors(factor, dims))
    y = mc.pixel_unshuffle(x, factor)
    assert y.shape[1] == shape[1] * n
    torch.testing.assert_close(mc.pixel_shuffle(y, factor), x)
    z = torch.randn(shape[0], shape[1] * n, *shape[2:])
    torch.testing.assert_close(mc.pixel_unshuffle(mc.pixel_shuffle(z, factor), factor), z)


@pytest.mark.parametrize("dims,factor", [(2, 2), (3, 2), (3, (2, 1, 1))])
def test_icnr_is_nearest_neighbour(dims, factor):
    """With ICNR the sub-pixel upsampler equals a conv followed by nearest-neighbour upsampling."""
    torch.manual_seed(0)
    up = mc.Upsampler(4, factor, dims, mode="icnr")
    x = torch.randn(1, 4, *([6] * dims))
    n = math.prod(mc.degradation.factors(factor, dims))
    base = up.conv(x)[:, ::n]  # one kernel per output channel
    nearest = F.interpolate(base, scale_factor=mc.degradation.factors(factor, dims), mode="nearest")
    torch.testing.assert_close(up(x), nearest)


@pytest.mark.parametrize("dims", [2, 3])
def test_nn_init_is_checkerboard_free_on_a_constant_input(dims):
    torch.manual_seed(0)
    interior = (slice(None), slice(None)) + (slice(4, -4),) * dims
    x = torch.ones(1, 4, *([8] * dims))
    stds = {
        mode: mc.Upsampler(4, 2, dims, mode)(x)[interior].std(dim=tuple(range(2, dims + 2))).max().item()
        for mode in ("icnr", "random", "transposed")
    }
    assert stds["icnr"] < 1e-5
    assert stds["random"] > 1e-2 and stds["transposed"] > 1e-2


@pytest.mark.parametrize("upsample", ["icnr", "random"])
def test_generator_on_a_constant_volume(upsample):
    """The whole generator maps a constant volume to a constant one (away from the zero padding)
    only with the nearest-neighbour initialisation."""
    torch.manual_seed(0)
    cfg = mc.models.superres.SRGANConfig(factor=2, chans=4, num_blocks=1, upsample=upsample)  # the paper's generator, smaller
    out = mc.SRGANGenerator(cfg).eval()(torch.full((1, 1, 16, 16, 16), 0.5))
    std = out[(0, 0) + (slice(12, -12),) * 3].std().item()
    assert std < 1e-5 if upsample == "icnr" else std > 1e-3


# ------------------------------------------------------------------------------ models


@pytest.mark.parametrize("factor,size", [(2, (16, 16)), (4, (9, 13)), ((2, 1), (7, 10))])
def test_multiscale_fusion_shapes(factor, size):
    net = mc.MultiScaleFusionSR(mc.models.superres.MultiScaleFusionConfig.smoke(factor=factor))
    f = mc.degradation.factors(factor, 2)
    assert net(torch.rand(2, 1, *size)).shape == (2, 1, *(s * r for s, r in zip(size, f)))


def test_multiscale_unit_paths():
    unit = MultiScaleUnit(8, (3, 5, 7))
    assert [p.kernel_size for p in unit.paths] == [(3, 3), (5, 5), (7, 7)]
    assert unit.fuse.kernel_size == (1, 1) and unit.fuse.in_channels == 24
    x = torch.rand(1, 8, 11, 9)
    assert unit(x).shape == x.shape


@pytest.mark.parametrize(
    "factor,size,upsample",
    [(2, (6, 7, 5), "icnr"), ((2, 1, 1), (5, 8, 8), "icnr"), (2, (4, 5, 6), "transposed"), (4, (3, 4, 3), "random")],
)
def test_srgan_shapes(factor, size, upsample):
    cfg = mc.models.superres.SRGANConfig.smoke(factor=factor)
    cfg.upsample = upsample
    gen, disc = mc.SRGANGenerator(cfg), mc.models.superres.SRGANDiscriminator(cfg)
    hr = gen(torch.rand(2, 1, *size))
    assert hr.shape == (2, 1, *(s * r for s, r in zip(size, mc.degradation.factors(factor, 3))))
    assert disc(hr).shape == (2,)
    assert isinstance(gen.blocks[0], ResidualBlock)


def test_untrained_generator_with_interp_skip_is_trilinear():
    lr = torch.rand(1, 1, 5, 6, 7)
    out = mc.SRGANGenerator(mc.models.superres.SRGANConfig.smoke(factor=(2, 1, 2)))(lr)
    torch.testing.assert_close(out, F.interpolate(lr, size=(10, 6, 14), mode="trilinear", align_corners=False))


def test_models_reject_wrong_input():
    with pytest.raises(ValueError, match="expected"):
        mc.MultiScaleFusionSR(mc.models.superres.MultiScaleFusionConfig.smoke())(torch.rand(1, 8, 8))
    with pytest.raises(ValueError, match="expected"):
        mc.SRGANGenerator(mc.models.superres.SRGANConfig.smoke())(torch.rand(1, 2, 4, 4, 4))
    with pytest.raises(ValueError, match="mode"):
        mc.Upsampler(4, 2, 3, mode="bicubic")


def test_multiscale_fusion_overfits_one_batch():
    torch.manual_seed(0)
    hr = blob((16, 16), 3.0).expand(2, 1, 16, 16).clone()
    hr[1] = hr[1].flip(-1)
    lr = mc.degrade(hr, 2, sigma=1.0)
    net = mc.MultiScaleFusionSR(mc.models.superres.MultiScaleFusionConfig(factor=2, chans=8, num_units=1))
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    step = mc.training.fit.supervised_step(net, opt, F.mse_loss)
    first = F.mse_loss(net(lr), hr).item()  # the untrained network is bicubic interpolation
    torch.testing.assert_close(net(lr), F.interpolate(lr, scale_factor=2, mode="bicubic", align_corners=False))
    for _ in range(60):
        step((lr, hr))
    assert F.mse_loss(net(lr), hr).item() < 0.1 * first


def test_srgan_overfits_one_batch_and_gan_step_runs():
    torch.manual_seed(0)
    hr = blob((8, 8, 8), 2.0).expand(2, 1, 8, 8, 8).clone()
    lr = mc.degrade(hr, 2, dims=3, sigma=1.0)
    cfg = mc.models.superres.SRGANConfig(factor=2, chans=8, num_blocks=1, norm=False, disc_chans=4, disc_layers=2, lr=3e-3)
    modules = {"G": mc.SRGANGenerator(cfg), "D": mc.models.superres.SRGANDiscriminator(cfg)}
    opts = {
        "opt_g": torch.optim.Adam(modules["G"].parameters(), cfg.lr),
        "opt_d": torch.optim.Adam(modules["D"].parameters(), cfg.lr),
    }
    d_before = [p.clone() for p in modules["D"].parameters()]
    first = mc.srgan_step(modules, opts, (lr, hr), cfg=cfg, adversarial=False)["mse"]
    for _ in range(60):
        last = mc.srgan_step(modules, opts, (lr, hr), cfg=cfg, adversarial=False)
    assert last["mse"] < 0.01 * first and set(last) == {"mse", "grad_diff"}
    assert all(torch.equal(a, b) for a, b in zip(d_before, modules["D"].parameters()))  # the content phase leaves D alone
    losses = mc.srgan_step(modules, opts, (lr, hr), cfg=cfg)
    assert set(losses) == {"mse", "grad_diff", "adv", "d_loss"} and all(math.isfinite(v) for v in losses.values())
    assert not all(torch.equal(a, b) for a, b in zip(d_before, modules["D"].parameters()))


@pytest.mark.parametrize("dims,factor", [(2, 2), (3, (2, 1, 1))])
def test_sr_patches_align_and_follow_the_seed(dims, factor):
    """Each item is a low-resolution patch and the high-resolution window it was made from; the
    positions come from torch's global generator only (fit seeds and checkpoints it)."""
    hr = torch.rand(3, 1, *([16] * dims))
    lr = mc.degrade(hr, factor, dims, sigma=0)
    f = mc.degradation.factors(factor, dims)
    patches = mc.SRPatches(lr, hr, 4, factor, samples_per_image=2)
    assert len(patches) == 6
    x, y = patches[4]  # a patch of image 1
    assert x.shape == (1, *([4] * dims)) and y.shape == (1, *(4 * r for r in f))
    torch.testing.assert_close(mc.degrade(y, factor, dims, sigma=0), x)

    def draw(seed):
        torch.manual_seed(seed)
        return torch.stack([patches[i][1] for i in range(len(patches))])

    assert torch.equal(draw(0), draw(0)) and not torch.equal(draw(0), draw(1))


def test_sr_patches_stay_inside_the_mask():
    hr = torch.arange(32 * 32, dtype=torch.float32).view(1, 1, 32, 32).repeat(2, 1, 1, 1)  # value: 32 row + column
    mask = torch.zeros(2, 1, 32, 32, dtype=torch.bool)
    mask[..., :16, :] = True  # the top half is "brain"

    def first_rows(m):
        patches = mc.SRPatches(hr[..., ::2, ::2], hr, 4, 2, mask=m, min_inside=0.5, samples_per_image=20)
        torch.manual_seed(0)
        return [int(patches[i][1][0, 0, 0]) // 32 for i in range(len(patches))]

    assert max(first_rows(mask)) <= 12  # at least half of each 8-row window in the top 16 rows
    assert max(first_rows(None)) > 12
    with pytest.raises(ValueError, match="low-resolution size"):
        mc.SRPatches(hr, hr, 4, 2)


def test_srgan_schedule_follows_the_phases():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    phases = mc.recipes.srgan.ContentThenAdversarial(opt, 1e-3, 10, 8, 1e-4)
    seen = []
    for _ in range(10):
        seen.append((phases.adversarial, opt.param_groups[0]["lr"]))
        phases.step()
    assert [a for a, _ in seen] == [False] * 8 + [True] * 2
    assert max(lr for _, lr in seen[:8]) == pytest.approx(1e-3, rel=0.05) and seen[9][1] == 1e-4
    phases.steps, phases.count = 20, 0  # stretched by Recipe.set_steps: both phases alike
    assert phases.content_steps == 16


def test_msfusion_recipe_factor_and_degradation(tiny_data):
    """By default the pairs are made by k-space truncation with Rician noise; ``degradation=image``
    makes them by blur, box average and Gaussian noise; ``noise=`` sets the level of either."""
    from mricourse.training.recipes.msfusion import NOISE, low_resolution

    r = mc.recipe("msfusion", "smoke", data=tiny_data["slices"], overrides={"factor": "4"})
    x, y = r.train_set[0]
    assert r.config.factor == 4 and x.shape == (1, 8, 8) and y.shape == (1, 32, 32)
    assert r.settings["degradation"] == "kspace" and r.settings["noise"] == NOISE
    assert r.val_set["lr"].shape[-1] * 4 == r.val_set["hr"].shape[-1]
    torch.testing.assert_close(r.val_set["lr"], mc.kspace_truncate(r.val_set["hr"], 4, noise=NOISE, seed=1))
    blur = mc.recipe("msfusion", "smoke", data=tiny_data["slices"], overrides={"degradation": "image", "noise": "0.05"})
    assert blur.settings == {**blur.settings, "degradation": "image", "noise": 0.05}
    torch.testing.assert_close(blur.val_set["lr"], low_resolution(blur.val_set["hr"], 2, 2, "image", 0.05, seed=1))
    torch.testing.assert_close(blur.val_set["lr"], mc.degrade(blur.val_set["hr"], 2, sigma=1.0, noise=0.05, seed=1))
    with pytest.raises(ValueError, match="degradation"):
        mc.recipe("msfusion", "smoke", data=tiny_data["slices"], overrides={"degradation": "blur"})
    with pytest.raises(ValueError, match="noise"):
        mc.recipe("msfusion", "smoke", data=tiny_data["slices"], overrides={"noise": "-0.1"})


def test_srgan_recipe_trains_content_then_adversarial(tiny_data):
    """The run's first steps train the generator alone; the discriminator joins at the switch."""
    r = mc.recipe("srgan", "smoke", data=tiny_data["ixi"], seed=0)
    content = r.schedules["opt_g"].content_steps
    assert r.steps == content + 2 and r.settings["content_steps"] == content
    history = r.fit(progress=False, log_every=1)
    assert len(history["mse"]) == r.steps and len(history["d_loss"]) == r.steps - content
    scores = r.evaluate(r.modules, r.val_set)
    assert all(math.isfinite(v) for v in scores.values()) and {"psnr", "psnr_cubic", "ssim_linear"} <= set(scores)
    two_d = mc.recipe("srgan", "smoke", data=tiny_data["slices"], overrides={"dims": "2", "adv_weight": "0"})
    assert two_d.steps == two_d.schedules["opt_g"].content_steps  # no adversarial phase
    assert two_d.train_set[0][0].shape == (1, 16, 16)


def test_srgan_recipe_degradation(tiny_data):
    """The 3D pairs are made like the 2D ones: k-space truncation by default, blur with ``degradation=image``."""
    from mricourse.training.recipes.msfusion import NOISE

    r = mc.recipe("srgan", "smoke", data=tiny_data["ixi"])
    hr, lr = r.val_set["hr"][0], r.val_set["lr"][0]  # the first held-out volume (1, D, H, W)
    assert r.settings["degradation"] == "kspace"
    torch.testing.assert_close(lr, mc.kspace_truncate(hr, 2, 3, noise=NOISE, seed=3000))
    b = mc.recipe("srgan", "smoke", data=tiny_data["ixi"], overrides={"degradation": "image"})
    assert b.settings["degradation"] == "image"
    torch.testing.assert_close(b.val_set["lr"][0], mc.degrade(b.val_set["hr"][0], 2, 3, sigma=1.0, noise=NOISE, seed=3000))
    with pytest.raises(ValueError, match="degradation"):
        mc.recipe("srgan", "smoke", data=tiny_data["ixi"], overrides={"degradation": "blur"})


def test_sr_metrics_averages_items():
    gt = torch.stack([blob((32, 32)), 2 * blob((32, 32), 3.0)])[:, None]  # (2, 1, 32, 32)
    pred = gt + 0.01 * torch.randn(gt.shape, generator=torch.Generator().manual_seed(0))
    both = mc.sr_metrics(gt, pred)
    each = [mc.sr_metrics(g[0], p[0]) for g, p in zip(gt, pred)]
    assert abs(both["psnr"] - (each[0]["psnr"] + each[1]["psnr"]) / 2) < 1e-9


def test_msfusion_trains_on_every_contrast_and_holds_out_t1w(tiny_data):
    from mricourse.training.recipes.msfusion import CONTRASTS, chapter_sizes

    r = mc.recipe("msfusion", "smoke", seed=0)
    n = chapter_sizes(mc.profile("smoke"))
    assert r.settings["contrasts"] == list(CONTRASTS) and len(CONTRASTS) == 4
    assert len(r.train_set.hr) == len(CONTRASTS) * n["train"] * n["slices"]  # a pair per slice and contrast
    assert r.val_set["hr"].shape[:2] == (n["test"], 1)
    held_out = mc.brain_slices(n["test"], size=128, seed=1)["images"]  # T1w
    torch.testing.assert_close(r.val_set["hr"], held_out[..., : r.val_set["hr"].shape[-2], : r.val_set["hr"].shape[-1]])
    one = mc.recipe("msfusion", "smoke", seed=0, overrides={"contrasts": "FLAIR"})
    assert len(one.train_set.hr) == n["train"] * n["slices"]
    folder = mc.recipe("msfusion", "smoke", data=tiny_data["slices"], seed=0, overrides={"contrasts": "PDw,T2w"})
    assert folder.val_set["hr"].shape[1] == 1 and len(folder.train_set.hr) == 2 * 6  # 6 training subjects in the tiny set
    for bad in ("", "T3w", "T1w,,nosuch"):
        with pytest.raises(ValueError, match="expected contrasts"):
            mc.recipe("msfusion", "smoke", seed=0, overrides={"contrasts": bad})
    with pytest.raises(ValueError, match="expected noise"):
        mc.recipe("msfusion", "smoke", seed=0, overrides={"noise": "-1"})
