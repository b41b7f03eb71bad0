import pytest
import torch

import mricourse as mc


@pytest.mark.parametrize("dims,shape", [(2, (33, 40)), (2, (64, 64)), (3, (12, 17, 16))])
def test_unet_shapes(dims, shape):
    net = mc.UNet(2, 3, chans=4, num_pools=2, dims=dims)
    assert net(torch.randn(2, 2, *shape)).shape == (2, 3, *shape)


def test_unet_overfits_one_batch():
    torch.manual_seed(0)
    net = mc.UNet(1, 1, chans=8, num_pools=2)
    x, y = torch.randn(2, 1, 16, 16), torch.randn(2, 1, 16, 16)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    first = None
    for _ in range(150):
        loss = torch.nn.functional.mse_loss(net(x), y)
        first = first or loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.2 * first


@pytest.mark.parametrize("dims,size,grid", [(2, 70, 6), (2, 64, 6), (3, 32, 2)])
def test_patch_discriminator_grid(dims, size, grid):
    d = mc.PatchDiscriminator(2, ndf=8, n_layers=3, dims=dims)
    out = d(torch.randn(1, 2, *([size] * dims)))
    assert out.shape == (1, 1, *([grid] * dims))


def test_grids_are_not_saved():
    st = mc.SpatialTransformer((8, 8))
    assert "grid" not in st.state_dict()
