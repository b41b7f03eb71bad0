"""DCGAN: shapes, input checks, the losses, one alternating update on a fixed batch, and the\nslices it trains on."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

import mricourse as mc


@pytest.mark.parametrize("upsample", ["nearest", "transposed"])
@pytest.mark.parametrize("size", [8, 32, 64, 128])
def test_generator_and_discriminator_shapes(size, upsample):
    cfg = mc.DCGANConfig(image_size=size, nz=16, ngf=4, ndf=4, upsample=upsample)
    G, D = mc.DCGANGenerator(cfg), mc.models.dcgan.DCGANDiscriminator(cfg)
    x = G(torch.randn(3, 16))
    assert x.shape == (3, 1, size, size)
    assert x.min() >= -1 and x.max() <= 1  # tanh output
    assert D(x).shape == (3,)
    assert G.sample(5).shape == (5, 1, size, size)


def test_paper_layout_starts_at_4x4x256():
    G = mc.DCGANGenerator(mc.DCGANConfig.paper())
    first = G.net[0]
    assert (first.in_channels, first.out_channels) == (100, 256)
    assert sum(isinstance(m, torch.nn.ConvTranspose2d) for m in G.net) == 5  # 1 -> 4 -> 8 -> ... -> 64
    assert G(torch.randn(2, 100)).shape == (2, 1, 64, 64)


@pytest.mark.parametrize("name", ["smoke", "cpu", "gpu", "paper"])
def test_presets(name):
    cfg = getattr(mc.DCGANConfig, name)()
    if name == "paper":  # DCGAN's training: one learning rate, batch norm, no augmentation, no average
        assert (cfg.lr_g, cfg.lr_d, cfg.beta1, cfg.d_norm, cfg.augment, cfg.r1, cfg.ema, cfg.mbstd) == (2e-4, 2e-4, 0.5, "batch", "", 0.0, 0.0, 0)
        assert cfg.upsample == "transposed"
        return
    assert mc.DCGANConfig.for_profile(mc.profile(name)) == cfg
    # the presets train data-efficiently: spectral norm, D faster than G with SAGAN's Adam, minibatch std, G averaged
    assert dataclasses.replace(cfg, **mc.models.dcgan.DATA_EFFICIENT) == cfg
    assert cfg.d_norm == "spectral" and cfg.lr_d > cfg.lr_g and cfg.mbstd >= 2 and 0 < cfg.ema < 1 and (cfg.beta1, cfg.beta2) == (0.0, 0.9)


def test_the_recipe_averages_the_generator_and_uses_two_learning_rates(tiny_data):
    r = mc.recipe("dcgan", "smoke", data=tiny_data["slices"], seed=0, overrides={"augment": "color,translation", "r1": "1"})
    cfg = r.config
    assert cfg.d_norm == "spectral" and cfg.augment
    assert set(r.averages) == {"G"} and r.averages["G"].decay == cfg.ema
    assert r.optimizers["opt_g"].param_groups[0]["lr"] == cfg.lr_g and r.optimizers["opt_d"].param_groups[0]["lr"] == cfg.lr_d
    assert r.update.keywords["augment"] == cfg.augment and r.update.keywords["r1"] == cfg.r1
    r.fit(progress=False)
    averaged = [p.clone() for p in r.modules["G"].parameters()]  # after fit, G holds the average ...
    r.use_averages(False)
    last = list(r.modules["G"].parameters())  # ... of the training weights, which differ from it
    assert r.averages["G"].updates == r.steps and any(not torch.equal(a, b) for a, b in zip(averaged, last))


def test_wrong_inputs_raise():
    cfg = mc.DCGANConfig.smoke()
    with pytest.raises(ValueError, match="power of two"):
        mc.DCGANConfig(image_size=48)
    with pytest.raises(ValueError, match="upsample"):
        mc.DCGANConfig(upsample="bilinear")
    with pytest.raises(ValueError, match="label_smoothing"):
        mc.DCGANConfig(label_smoothing=0.7)
    with pytest.raises(ValueError, match="mbstd"):
        mc.DCGANConfig(mbstd=1)
    with pytest.raises(ValueError, match=r"\(B, 32\)"):
        mc.DCGANGenerator(cfg)(torch.randn(2, 7))
    with pytest.raises(ValueError, match=r"\(B, 1, 32, 32\)"):
        mc.models.dcgan.DCGANDiscriminator(cfg)(torch.randn(2, 1, 64, 64))


def test_losses_match_the_value_function():
    r, f = torch.randn(10), torch.randn(10)
    expected_d = -(torch.log(torch.sigmoid(r)).mean() + torch.log(1 - torch.sigmoid(f)).mean())
    torch.testing.assert_close(mc.discriminator_loss(r, f), expected_d)
    torch.testing.assert_close(mc.generator_loss(f), -torch.log(torch.sigmoid(f)).mean())


def test_label_smoothing_moves_the_optimum():
    # with real target 0.9, the real-logit gradient vanishes where D(x) = 0.9, not at D(x) -> 1
    logit = torch.logit(torch.tensor([0.9]), eps=0).requires_grad_()
    mc.discriminator_loss(logit, torch.full((1,), -30.0), real_label=0.9).backward()
    assert abs(float(logit.grad)) < 1e-6


def _gan(cfg):
    G, D = mc.DCGANGenerator(cfg), mc.models.dcgan.DCGANDiscriminator(cfg)
    opts = {
        "opt_g": torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2)),
        "opt_d": torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2)),
    }
    return {"G": G, "D": D}, opts


def test_one_gan_step_lowers_each_players_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    cfg = mc.DCGANConfig(image_size=32, nz=16, ngf=8, ndf=8, lr_g=1e-4, lr_d=1e-4)
    modules, opts = _gan(cfg)
    G, D = modules["G"], modules["D"]
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 32), torch.linspace(-1, 1, 32), indexing="ij")
    real = (2 * (xx**2 + yy**2 < 0.6).float() - 1).expand(16, 1, 32, 32).contiguous()
    for seed in range(3):
        torch.manual_seed(seed)
        z = torch.randn(16, cfg.nz)  # the z that the step draws with this seed
        G_old, D_old = copy.deepcopy(G), copy.deepcopy(D)
        with torch.no_grad():
            fake_old = G_old(z)
            d_before = mc.discriminator_loss(D_old(real), D_old(fake_old))
        torch.manual_seed(seed)
        losses = mc.gan_step(modules, opts, real, nz=cfg.nz)
        assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
        assert losses["loss_d"] == pytest.approx(float(d_before), rel=1e-5)
        with torch.no_grad():
            # D's update lowered D's loss on the same real and generated images ...
            assert mc.discriminator_loss(D(real), D(fake_old)) < d_before
            # ... and G's update lowered G's loss against the updated D
            assert mc.generator_loss(D(G(z))) < mc.generator_loss(D(fake_old))


def test_the_step_takes_smoothing_and_instance_noise_and_draws_from_the_seed():
    cfg = mc.DCGANConfig.smoke()
    real = torch.rand(4, 1, 32, 32) * 2 - 1
    out = []
    for _ in range(2):
        torch.manual_seed(1)
        modules, opts = _gan(cfg)
        torch.manual_seed(2)
        out.append(mc.gan_step(modules, opts, (real,), nz=cfg.nz, label_smoothing=0.1, instance_noise=0.05))
    assert out[0] == out[1] and all(torch.isfinite(torch.tensor(v)) for v in out[0].values())


def test_fit_runs_the_gan_step():
    cfg = mc.DCGANConfig.smoke()
    modules, opts = _gan(cfg)
    data = [torch.rand(4, 1, 32, 32) * 2 - 1]
    hist = mc.fit(
        lambda batch: mc.gan_step(modules, opts, batch, nz=cfg.nz),
        data,
        mc.training.fit.TrainConfig(steps=4, log_every=2, progress=False),
    )
    assert set(hist) >= {"loss_d", "loss_g", "d_real", "d_fake"} and len(hist["loss_d"]) == 2


def test_gan_slices_average_and_map_to_the_gan_range():
    images = torch.rand(3, 1, 16, 16) * 2
    ds = mc.GANSlices(images, 8, vmax=1.5)
    assert len(ds) == 3 and ds[0].shape == (1, 8, 8)
    expected = mc.to_gan_range(torch.nn.functional.avg_pool2d(images, 2), vmax=1.5)  # 2x2 means, [0, 1.5] -> [-1, 1]
    torch.testing.assert_close(torch.stack([ds[i] for i in range(3)]), expected)
    assert torch.equal(ds[1], ds[1])  # no random draws
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        mc.GANSlices(torch.rand(3, 2, 16, 16), 8)


def test_slerp_endpoints_and_norm():
    torch.manual_seed(0)
    z0, z1 = torch.randn(100), torch.randn(100)
    z1 = z1 / z1.norm() * z0.norm()
    path = mc.slerp(z0, z1, torch.linspace(0, 1, 7))
    assert path.shape == (7, 100)
    torch.testing.assert_close(path[0], z0)
    torch.testing.assert_close(path[-1], z1)
    torch.testing.assert_close(path.norm(dim=1), z0.norm().expand(7))  # stays on the sphere
    torch.testing.assert_close(mc.slerp(z0, z0, torch.tensor([0.5]))[0], z0)


# ------------------------------------------------------------------ data-efficient training

diff_augment = mc.models.diffaugment.diff_augment


def _ramp(n=4, size=16):
    """Distinct, non-constant images (n, 1, size, size) in [-1, 1]."""
    x = torch.linspace(-1, 1, size * size).reshape(1, 1, size, size)
    return torch.cat([x * (0.5 + 0.1 * i) for i in range(n)])


def test_brightness_and_contrast_draw_one_setting_per_image():
    x = _ramp()
    torch.manual_seed(0)
    b = diff_augment(x, "brightness") - x  # one offset per image
    assert torch.allclose(b, b[:, :, :1, :1].expand_as(b)) and b.abs().max() <= 0.5
    assert len(set(b[:, 0, 0, 0].tolist())) == len(x)  # each image its own offset
    torch.manual_seed(0)
    mean = x.mean((1, 2, 3), keepdim=True)
    scale = (diff_augment(x, "contrast") - mean) / (x - mean)  # one factor per image, about its mean
    assert torch.allclose(scale, scale[:, :, :1, :1].expand_as(scale), atol=1e-5)
    assert scale.min() >= 0.5 and scale.max() < 1.5


def test_translation_shifts_each_image_and_fills_with_the_background():
    x = _ramp(8)
    torch.manual_seed(1)
    y = diff_augment(x, "translation")
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2), value=-1.0)  # shifts of up to 16 / 8 = 2 pixels
    shifts = []
    for i in range(len(x)):
        found = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if torch.equal(y[i, 0], padded[i, 0, 2 + dy : 18 + dy, 2 + dx : 18 + dx])
        ]
        assert len(found) == 1, f"image {i} is not a shifted copy"
        shifts += found
    assert len(set(shifts)) > 1  # the shift is drawn per image


def test_cutout_blanks_one_square_per_image():
    x = _ramp(6) + 3.0  # nothing equals the fill before
    torch.manual_seed(2)
    y = diff_augment(x, "cutout", fill=-1.0)
    cut = y == -1.0
    assert torch.equal(y[~cut], x[~cut])
    for m in cut[:, 0]:
        rows, cols = m.any(1).nonzero().flatten(), m.any(0).nonzero().flatten()
        assert 1 <= len(rows) <= 8 and 1 <= len(cols) <= 8  # a square of half the side, clipped at the border
        assert m[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()  # a full rectangle


def test_diff_augment_is_differentiable_and_follows_the_seed():
    x = _ramp().requires_grad_()
    torch.manual_seed(3)
    y = diff_augment(x, "color,translation,cutout")
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    torch.manual_seed(3)
    assert torch.equal(diff_augment(x.detach(), "color,translation,cutout"), y.detach())  # the same seed, the same draws
    assert torch.equal(diff_augment(x.detach(), ""), x.detach())
    with pytest.raises(ValueError, match="unknown"):
        diff_augment(x, "rotation")
    with pytest.raises(ValueError, match="augment"):
        mc.DCGANConfig(augment="colour")


class _Recorder(torch.nn.Module):
    """A discriminator that remembers the images it was shown."""

    def __init__(self, D):
        super().__init__()
        self.D, self.seen = D, []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return self.D(x)


@pytest.mark.parametrize("augment", ["", "translation,cutout"])
def test_the_step_augments_every_image_d_sees(augment):
    cfg = mc.DCGANConfig.smoke()
    torch.manual_seed(0)
    modules, opts = _gan(cfg)
    modules["D"] = _Recorder(modules["D"])
    real = torch.rand(4, 1, 32, 32) * 2 - 1
    torch.manual_seed(1)
    z = torch.randn(4, cfg.nz)
    with torch.no_grad():
        fake = modules["G"].train()(z)
    torch.manual_seed(1)
    mc.gan_step(modules, opts, real, nz=cfg.nz, augment=augment)
    seen_real, seen_fake, seen_by_g = modules["D"].seen
    if augment:  # real and generated images both pass through the augmentation, in both players' steps
        assert not torch.equal(seen_real, real) and not torch.allclose(seen_fake, fake, atol=1e-4)
        assert (seen_fake == -1.0).any() and (seen_by_g == -1.0).any()  # cut out (or shifted in)
    else:
        assert torch.equal(seen_real, real) and torch.allclose(seen_fake, fake, atol=1e-5)


def test_spectral_norm_discriminator_has_unit_spectral_norms_and_no_batch_norm():
    cfg = mc.DCGANConfig.smoke(d_norm="spectral")
    D = mc.models.dcgan.DCGANDiscriminator(cfg).train()
    assert len(D(torch.randn(2, 1, 32, 32))) == 2
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in D.modules())
    convs = [m for m in D.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(torch.nn.utils.parametrize.is_parametrized(m, "weight") for m in convs)
    with torch.no_grad():
        for _ in range(30):  # power iterations, one per training forward pass
            D(torch.randn(2, 1, 32, 32))
    for m in convs:
        sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2)
        assert sigma == pytest.approx(1.0, abs=0.05)
    assert not any(
        isinstance(m, torch.nn.utils.parametrize.ParametrizationList)
        for m in mc.models.dcgan.DCGANDiscriminator(mc.DCGANConfig.smoke(d_norm="batch")).modules()
    )


def test_r1_penalty_is_the_squared_gradient_norm_on_real_images():
    w = torch.randn(1, 1, 8, 8)

    class Linear(torch.nn.Module):
        def forward(self, x):
            return (x * w).sum((1, 2, 3)) + (x**2).sum((1, 2, 3))  # gradient w + 2 x

    x = torch.randn(3, 1, 8, 8)
    expected = (w + 2 * x).pow(2).sum((1, 2, 3)).mean()
    torch.testing.assert_close(mc.models.dcgan.r1_penalty(Linear(), x), expected)
    cfg = mc.DCGANConfig.smoke()
    modules, opts = _gan(cfg)
    losses = mc.gan_step(modules, opts, torch.rand(4, 1, 32, 32) * 2 - 1, nz=cfg.nz, r1=10.0)
    assert losses["r1"] > 0 and "r1" not in mc.gan_step(modules, opts, torch.rand(4, 1, 32, 32) * 2 - 1, nz=cfg.nz)


def test_minibatch_stddev_sees_how_alike_a_group_is():
    layer = mc.models.dcgan.MinibatchStdDev(group=4)
    x = torch.randn(8, 3, 4, 4)
    out = layer(x)
    assert out.shape == (8, 4, 4, 4) and torch.equal(out[:, :3], x)
    # images 0, 2, 4, 6 form one group and 1, 3, 5, 7 the other: copies within a group give ~0
    x[0::2] = x[0]
    out = layer(x)
    assert out[0::2, 3].abs().max() < 1e-3 and out[1::2, 3].min() > 0.5
    assert layer(torch.randn(6, 3, 4, 4)).shape == (6, 4, 4, 4)  # a group of 3 when 4 does not divide 6
    D = mc.models.dcgan.DCGANDiscriminator(mc.DCGANConfig.smoke())
    assert any(isinstance(m, mc.models.dcgan.MinibatchStdDev) for m in D.net) and D(torch.randn(5, 1, 32, 32)).shape == (5,)
