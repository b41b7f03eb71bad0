"""RED-Net denoising autoencoder: shapes, the identity start, noise conditioning, overfitting, the\nweighted update step and its noisy crops."""

from __future__ import annotations

import math

import pytest
import torch

import mricourse as mc


@pytest.mark.parametrize("shape", [(2, 1, 32, 32), (3, 1, 37, 41), (1, 2, 16, 9)])
@pytest.mark.parametrize("conditional", [True, False])
@pytest.mark.parametrize("down", [(), (2,), (1, 3)])
def test_shapes_any_size(shape, conditional, down):
    cfg = mc.DAEConfig(num_layers=4, chans=8, in_chans=shape[1], noise_conditional=conditional, down_layers=down)
    y = torch.randn(shape)
    out = mc.DAE(cfg)(y, sigma=0.1 if conditional else None)
    assert out.shape == shape


def test_untrained_network_is_the_identity():
    # the outermost skip adds the input to a residual branch that starts at zero
    y = torch.randn(2, 1, 24, 24)
    torch.testing.assert_close(mc.DAE(mc.DAEConfig.smoke())(y, sigma=0.1), y)


def test_skips_every_two_layers():
    # with skip_every=2 and 4 layers, h_2 is added to its mirror; h_1 and h_3 are not
    torch.manual_seed(0)
    net = mc.DAE(mc.DAEConfig(num_layers=4, chans=4, noise_conditional=False))
    seen = []
    for i, layer in enumerate(net.encoder):
        layer.register_forward_hook(lambda m, inp, out, i=i: seen.append(i))
    y = torch.randn(1, 1, 8, 8, requires_grad=True)
    # zero every decoder map except the skip targets' sources: a skip lets h_2 reach the output
    with torch.no_grad():
        for i in (2, 3):
            net.decoder[i].weight.zero_()
            net.decoder[i].bias.zero_()
        net.decoder[0].weight.normal_()
    out = net(y)
    assert seen == [0, 1, 2, 3]
    grads = torch.autograd.grad(out.sum(), [net.encoder[1].weight, net.encoder[2].weight], allow_unused=True)
    assert grads[0].abs().sum() > 0  # h_2 = relu(conv_2(h_1)) reaches the output through its skip
    assert grads[1] is None or grads[1].abs().sum() == 0  # h_3's path was cut: no skip at level 3


def test_strided_layers_halve_the_size():
    net = mc.DAE(mc.DAEConfig(num_layers=3, chans=4, down_layers=(2,)))
    sizes = []
    for layer in net.encoder:
        layer.register_forward_hook(lambda m, inp, out: sizes.append(tuple(out.shape[-2:])))
    net(torch.randn(1, 1, 21, 20), sigma=0.1)
    assert sizes == [(21, 20), (11, 10), (11, 10)]
    with pytest.raises(ValueError, match="down_layers"):
        mc.DAEConfig(num_layers=3, down_layers=(4,))


def test_sigma_is_required_and_used():
    net = mc.DAE(mc.DAEConfig(num_layers=3, chans=8))
    y = torch.randn(2, 1, 16, 16)
    with pytest.raises(ValueError, match="sigma"):
        net(y)
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        net(torch.randn(16, 16), sigma=0.1)
    with torch.no_grad():
        net.decoder[0].weight.normal_()
    assert not torch.allclose(net(y, 0.05), net(y, torch.tensor([0.2, 0.2])))


@pytest.mark.parametrize("name", ["smoke", "cpu", "gpu", "paper"])
def test_presets(name):
    cfg = getattr(mc.DAEConfig, name)()
    assert cfg.skip_every == 2
    assert mc.DAE(cfg)(torch.zeros(1, 1, 8, 8), sigma=0.1).shape == (1, 1, 8, 8)


def test_rician_noise_levels_in_the_background_and_on_bright_tissue():
    sigma = torch.tensor([0.1, 0.3])
    y = mc.add_rician_noise(torch.zeros(2, 1, 64, 64), sigma, generator=torch.Generator().manual_seed(0))
    for s, yi in zip(sigma.tolist(), y):  # no signal: Rayleigh
        assert float(yi.mean()) == pytest.approx(s * math.sqrt(math.pi / 2), rel=0.05)
        assert float(yi.std()) == pytest.approx(s * math.sqrt(2 - math.pi / 2), rel=0.05)
    bright = mc.add_rician_noise(torch.full((2, 1, 64, 64), 10.0), sigma, generator=torch.Generator().manual_seed(1))
    for s, yi in zip(sigma.tolist(), bright):  # x >> sigma: nearly Gaussian
        assert float(yi.std()) == pytest.approx(s, rel=0.06)
    with pytest.raises(TypeError, match="real magnitude"):
        mc.add_rician_noise(torch.zeros(1, 4, dtype=torch.complex64), 0.1)


def test_overfits_one_batch():
    torch.manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 24), torch.linspace(-1, 1, 24), indexing="ij")
    clean = torch.stack([((xx - c) ** 2 + yy**2 < 0.3).float() for c in (-0.3, 0.0, 0.3, 0.1)])[:, None]
    noisy = clean + 0.2 * torch.randn(
        clean.shape, generator=torch.Generator().manual_seed(1)
    )  # the network's capacity, not the noise model
    net = mc.DAE(mc.DAEConfig(num_layers=4, chans=12))
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    start = torch.mean((noisy - clean) ** 2).item()
    for _ in range(200):
        loss = torch.mean((net(noisy, 0.2) - clean) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05 * start


def _batch(n=4, size=24, seed=1):
    g = torch.Generator().manual_seed(seed)
    clean = torch.rand(n, 1, size, size, generator=g)
    sigma = torch.tensor([0.02, 0.05, 0.1, 0.2])[:n]
    return {"noisy": mc.add_rician_noise(clean, sigma, generator=g), "clean": clean, "sigma": sigma}


def test_the_update_step_weights_the_error_by_the_noise_level():
    torch.manual_seed(0)
    net = mc.DAE(mc.DAEConfig(num_layers=3, chans=8))
    with torch.no_grad():
        net.decoder[0].weight.normal_(0, 0.1)
    batch = _batch()
    with torch.no_grad():
        err = (net(batch["noisy"], batch["sigma"]) - batch["clean"]) / batch["sigma"].view(-1, 1, 1, 1)
    expected = float(err.pow(2).mean()) * 0.05**2
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    losses = mc.dae_step({"model": net}, {"opt": opt}, batch, sigma_ref=0.05)
    assert losses["loss"] == pytest.approx(expected, rel=1e-5)


def test_the_update_step_overfits_one_batch():
    torch.manual_seed(0)
    net = mc.DAE(mc.DAEConfig(num_layers=4, chans=12))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    batch = _batch(size=16)
    first = mc.dae_step({"model": net}, {"opt": opt}, batch)["loss"]
    for _ in range(150):
        last = mc.dae_step({"model": net}, {"opt": opt}, batch)["loss"]
    assert last < 0.3 * first


def test_noisy_crops_follow_the_seed():
    images = torch.rand(5, 1, 20, 24)
    ds = mc.NoisyCrops(images, 8, (0.02, 0.2))
    assert len(ds) == 5

    def draw(seed):
        torch.manual_seed(seed)
        return [ds[i] for i in (0, 3, 3)]

    a, b, c = draw(0), draw(0), draw(1)
    for x, y in zip(a, b):  # the same seed, the same crops, levels and noise
        assert all(torch.equal(x[k], y[k]) for k in ("noisy", "clean", "sigma"))
    assert not torch.equal(a[0]["noisy"], c[0]["noisy"])  # another seed, other items
    assert not torch.equal(a[1]["noisy"], a[2]["noisy"])  # every look at an image is a new draw


def test_noisy_crops_are_crops_with_noise_of_the_drawn_level():
    images = torch.arange(2 * 20 * 24, dtype=torch.float32).reshape(2, 1, 20, 24)
    ds = mc.NoisyCrops(images, 8, (0.05, 0.1))
    torch.manual_seed(0)
    for _ in range(20):
        item = ds[1]
        clean, sigma = item["clean"], float(item["sigma"])
        assert clean.shape == (1, 8, 8) and 0.05 <= sigma <= 0.1
        r, c = divmod(int(clean[0, 0, 0]) - 20 * 24, 24)  # the crop's corner, from the pixel values
        torch.testing.assert_close(clean, images[1, :, r : r + 8, c : c + 8])
    big = mc.NoisyCrops(torch.zeros(1, 1, 64, 64), 64, (0.1, 0.1))  # lo == hi: a fixed level
    torch.manual_seed(0)
    item = big[0]
    background = item["noisy"]  # no signal: Rayleigh, mean(y^2) = 2 sigma^2
    assert float(item["sigma"]) == pytest.approx(0.1) and float((background**2).mean() / 2) ** 0.5 == pytest.approx(0.1, rel=0.05)
    assert bool((background >= 0).all())  # a magnitude image
    with pytest.raises(ValueError, match="crop"):
        mc.NoisyCrops(images, 21)
    with pytest.raises(ValueError, match="noise levels"):
        mc.NoisyCrops(images, 8, (0.2, 0.1))


def test_noisy_crops_with_noise_varying_in_space():
    blank = torch.zeros(1, 1, 96, 96)  # no signal: y^2 / 2 estimates the local sigma^2
    varying = mc.NoisyCrops(blank, 96, (0.1, 0.1), varying=1.0)
    uniform = mc.NoisyCrops(blank, 96, (0.1, 0.1))
    torch.manual_seed(0)
    halves = []
    for ds in (varying, uniform):
        ratios, rms = [], []
        for _ in range(10):
            power = ds[0]["noisy"][0] ** 2 / 2  # (96, 96): about sigma^2 where it was drawn
            rms.append(float(power.mean().sqrt()))
            blocks = power.reshape(4, 24, 4, 24).mean((1, 3)).sqrt()  # the level per 24 x 24 block
            ratios.append(float(blocks.max() / blocks.min()))
        assert sum(rms) / len(rms) == pytest.approx(0.1, rel=0.05)  # the root mean square is the level reported
        halves.append(sum(ratios) / len(ratios))
    assert halves[0] > 1.5 > halves[1]  # the level varies over the crop only when asked to
    with pytest.raises(ValueError, match="varying"):
        mc.NoisyCrops(blank, 8, varying=1.5)
    with pytest.raises(ValueError, match="spread"):
        mc.NoisyCrops(blank, 8, varying=0.5, spread=-1)
    torch.manual_seed(3)
    plain = [uniform[0]["noisy"] for _ in range(2)]
    torch.manual_seed(3)
    assert all(torch.equal(a, mc.NoisyCrops(blank, 96, (0.1, 0.1), varying=0.0)[0]["noisy"]) for a in plain)  # varying=0 draws nothing more


def test_t1_slices_are_made_once_and_copied():
    train, test = mc.t1_slices("smoke")
    again, _ = mc.t1_slices("smoke")
    assert train["images"].shape == (48, 1, 64, 64) and len(test["images"]) == 24
    assert torch.equal(train["images"], again["images"]) and train["images"] is not again["images"]
    assert not torch.equal(train["images"][:24], test["images"])  # other subjects (seed 1) are held out


def test_noisy_crops_remap_the_intensities_when_asked():
    images = torch.rand(3, 1, 16, 16) + 0.5  # values in 0.5-1.5
    torch.manual_seed(0)
    fixed = mc.NoisyCrops(images, 16, (0.05, 0.05), remap=1.0, gammas=(2.0, 2.0), gains=(0.5, 0.5))
    torch.testing.assert_close(fixed[1]["clean"], 0.5 * images[1] ** 2)  # x -> g x^gamma
    ranged = mc.NoisyCrops(images, 16, (0.05, 0.05), remap=1.0)  # gamma in 0.5-2, gain in 0.25-1
    changed = 0
    for _ in range(20):
        clean = ranged[0]["clean"]
        changed += not torch.allclose(clean, images[0])
        lo = torch.minimum(0.25 * images[0] ** 2, 0.25 * images[0] ** 0.5)
        hi = torch.maximum(images[0] ** 2, images[0] ** 0.5)
        assert bool((clean >= lo - 1e-6).all() and (clean <= hi + 1e-6).all())
    assert changed == 20  # every crop remapped
    torch.manual_seed(5)
    plain = mc.NoisyCrops(images, 16, (0.05, 0.05))[2]["noisy"]
    torch.manual_seed(5)
    assert torch.equal(plain, mc.NoisyCrops(images, 16, (0.05, 0.05), remap=0.0)[2]["noisy"])  # remap=0 draws nothing more
    for bad in (dict(remap=1.5), dict(remap=0.5, gammas=(2.0, 1.0)), dict(remap=0.5, gains=(0.0, 1.0))):
        with pytest.raises(ValueError, match="remap"):
            mc.NoisyCrops(images, 8, **bad)


def test_the_dae_recipe_trains_on_several_contrasts_and_holds_t2w_out():
    r = mc.recipe("dae", "smoke", seed=0)
    assert r.settings["contrasts"] == ["T1w", "PDw", "FLAIR"] and "T2w" not in r.settings["contrasts"]
    n = len(mc.t1_slices("smoke")[0]["images"])
    assert len(r.train_set) == 3 * n  # every contrast of every training subject, one image each
    assert r.val_set.shape[1] == 1  # scored on the held-out T1w slices
    one = mc.recipe("dae", "smoke", seed=0, overrides={"contrasts": "T1w", "remap": "0"})
    assert len(one.train_set) == n and one.settings["remap"] == 0.0
    torch.testing.assert_close(one.val_set, r.val_set)  # the same held-out T1w slices whatever the training contrasts
    flair = mc.recipe("dae", "smoke", seed=0, overrides={"contrasts": "FLAIR"})
    torch.testing.assert_close(flair.val_set, r.val_set)
    for bad in ({"contrasts": ""}, {"contrasts": "T3w"}, {"remap": "often"}, {"remap": "1.5"}):
        with pytest.raises(ValueError, match="expected"):
            mc.recipe("dae", "smoke", seed=0, overrides=bad)
