"""RED-Net denoising autoencoder: shapes, the identity start, noise conditioning, overfitting."""

from __future__ import annotations

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


def test_add_gaussian_noise_levels():
    x = torch.zeros(2, 1, 64, 64)
    y = mc.add_gaussian_noise(x, torch.tensor([0.1, 0.3]), generator=torch.Generator().manual_seed(0))
    assert y[0].std() == pytest.approx(0.1, rel=0.05)
    assert y[1].std() == pytest.approx(0.3, rel=0.05)


def test_overfits_one_batch():
    torch.manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 24), torch.linspace(-1, 1, 24), indexing="ij")
    clean = torch.stack([((xx - c) ** 2 + yy**2 < 0.3).float() for c in (-0.3, 0.0, 0.3, 0.1)])[:, None]
    noisy = mc.add_gaussian_noise(clean, 0.2, generator=torch.Generator().manual_seed(1))
    net = mc.DAE(mc.DAEConfig(num_layers=4, chans=12))
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    start = torch.mean((noisy - clean) ** 2).item()
    for _ in range(200):
        loss = torch.mean((net(noisy, 0.2) - clean) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05 * start
