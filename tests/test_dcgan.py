"""DCGAN: shapes, input checks, the losses, one alternating update on a fixed batch, and the\nslices it trains on."""

from __future__ import annotations

import copy

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
    assert cfg.lr == 2e-4 and cfg.beta1 == 0.5
    if name != "paper":
        assert mc.DCGANConfig.for_profile(mc.profile(name)) == cfg


def test_wrong_inputs_raise():
    cfg = mc.DCGANConfig.smoke()
    with pytest.raises(ValueError, match="power of two"):
        mc.DCGANConfig(image_size=48)
    with pytest.raises(ValueError, match="upsample"):
        mc.DCGANConfig(upsample="bilinear")
    with pytest.raises(ValueError, match="label_smoothing"):
        mc.DCGANConfig(label_smoothing=0.7)
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
        "opt_g": torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999)),
        "opt_d": torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999)),
    }
    return {"G": G, "D": D}, opts


def test_one_gan_step_lowers_each_players_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    cfg = mc.DCGANConfig(image_size=32, nz=16, ngf=8, ndf=8, lr=1e-4)
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
