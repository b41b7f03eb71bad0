"""mricourse.inference: batched eval-mode prediction (the same numbers as one call on the whole
batch, the batch size kept, the modes restored, clear errors) and the [-1, 1] range of ``tanh``
generators (round trip, clipping)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import mricourse as mc
from mricourse.inference import from_gan_range, predict, to_gan_range

pytestmark = pytest.mark.usefixtures("one_thread")


class Recorder(nn.Module):
    """Doubles its input plus ``shift`` (times ``scale``) and records, per call, the batch size,
    its mode, whether gradients were on, and the inputs' device."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, x, scale=1.0, shift=0.0):
        self.calls.append({"n": len(x), "training": self.training, "grad": torch.is_grad_enabled(), "device": x.device})
        return (2 * x + shift) * scale


def _net(seed=0):
    """A small net whose output depends on its mode: batch norm (running statistics set away from
    0 and 1) and dropout."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5), nn.Conv2d(4, 1, 1))
    net[1].running_mean.uniform_(-1, 1)
    net[1].running_var.uniform_(0.5, 2)
    return net


def test_predict_equals_one_eval_call_on_the_whole_batch():
    net, x = _net(), torch.randn(11, 2, 8, 8)
    net.train()
    out = predict(net, x, batch_size=4)
    net.eval()
    with torch.no_grad():
        expected = net(x)
    assert out.shape == (11, 1, 8, 8) and out.device.type == "cpu" and not out.requires_grad
    torch.testing.assert_close(out, expected)


def test_predict_runs_in_eval_mode_without_gradients_and_in_batches():
    net, x = Recorder(), torch.randn(10, 3, requires_grad=True)
    net.train()
    out = predict(net, x, batch_size=4)
    assert [c["n"] for c in net.calls] == [4, 4, 2]
    assert not any(c["training"] or c["grad"] for c in net.calls)
    torch.testing.assert_close(out, 2 * x.detach())
    net.calls.clear()
    predict(net, x)  # the default: 16 per call
    assert [c["n"] for c in net.calls] == [10]
    net.calls.clear()
    predict(net, x, batch_size=1)
    assert [c["n"] for c in net.calls] == [1] * 10


def test_predict_passes_the_extra_arguments_to_every_call():
    net, x = Recorder(), torch.arange(5.0)[:, None]
    out = predict(net, x, torch.tensor(3.0), shift=1.0, batch_size=2)
    torch.testing.assert_close(out, (2 * x + 1) * 3)
    assert len(net.calls) == 3


def test_predict_uses_the_given_device_or_the_nets():
    net = Recorder()
    predict(net, torch.ones(2, 1), device="cpu")
    predict(net, torch.ones(2, 1))  # no parameters: the CPU
    assert [c["device"].type for c in net.calls] == ["cpu", "cpu"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_predict_runs_on_the_nets_gpu_and_returns_on_the_cpu():
    net, x = _net().cuda(), torch.randn(5, 2, 8, 8)
    out = predict(net, x, batch_size=2)
    assert out.device.type == "cpu"
    torch.testing.assert_close(out, predict(net.cpu(), x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", [True, False])
def test_predict_restores_the_mode(mode):
    net = _net().train(mode)
    predict(net, torch.randn(3, 2, 8, 8))
    assert all(m.training == mode for m in net.modules())


def test_predict_restores_a_submodules_own_mode_also_after_an_error():
    net = _net().train()
    net[1].eval()  # a frozen batch norm inside a training net
    predict(net, torch.randn(3, 2, 8, 8))
    assert [m.training for m in net.modules()] == [True, True, False, True, True, True]
    with pytest.raises(RuntimeError):
        predict(net, torch.randn(3, 5, 8, 8))  # wrong channels: the conv fails
    assert [m.training for m in net.modules()] == [True, True, False, True, True, True]


def test_the_models_inference_helpers_restore_the_mode():
    G = mc.DCGANGenerator(mc.DCGANConfig(image_size=8, nz=4, ngf=2, ndf=2)).train()
    fake = G.sample(3, generator=torch.Generator().manual_seed(0))
    assert G.training and fake.shape == (3, 1, 8, 8) and fake.device.type == "cpu"
    z = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(fake, G.eval()(z).detach())  # the same z, one eval call


@pytest.mark.parametrize("batch_size", [0, -1, 1.5, True, None])
def test_predict_refuses_a_bad_batch_size(batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        predict(Recorder(), torch.ones(2, 1), batch_size=batch_size)


@pytest.mark.parametrize("x", [torch.ones(0, 3), torch.tensor(1.0)])
def test_predict_refuses_no_items(x):
    with pytest.raises(ValueError, match=r"at least one input item"):
        predict(Recorder(), x)


def test_predict_refuses_what_it_cannot_batch():
    with pytest.raises(TypeError, match="one tensor"):
        predict(Recorder(), [torch.ones(1, 2)])
    with pytest.raises(TypeError, match="nn.Module"):
        predict(lambda x: x, torch.ones(2, 1))

    class Pair(nn.Module):
        def forward(self, x):
            return x, x

    net = Pair().train()
    with pytest.raises(TypeError, match="return a tensor"):
        predict(net, torch.ones(2, 1))
    assert net.training


def test_gan_range_maps_0_vmax_to_minus_1_1_with_clipping():
    x = torch.tensor([-0.3, 0.0, 0.75, 1.5, 2.0])
    y = to_gan_range(x, 1.5)
    torch.testing.assert_close(y, torch.tensor([-1.0, -1.0, 0.0, 1.0, 1.0]))
    torch.testing.assert_close(from_gan_range(y, 1.5), torch.tensor([0.0, 0.0, 0.75, 1.5, 1.5]))
    torch.testing.assert_close(
        from_gan_range(torch.tensor([-1.5, -1.0, 0.5, 1.0, 3.0]), 2.0), torch.tensor([0.0, 0.0, 1.5, 2.0, 2.0])
    )
    torch.testing.assert_close(to_gan_range(torch.tensor([0.0, 0.5, 1.0])), torch.tensor([-1.0, 0.0, 1.0]))  # vmax 1


def test_gan_range_round_trip():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 1, 8, 8, generator=g) * 1.5
    torch.testing.assert_close(from_gan_range(to_gan_range(x, 1.5), 1.5), x)
    y = torch.rand(4, 1, 8, 8, generator=g) * 2 - 1
    torch.testing.assert_close(to_gan_range(from_gan_range(y, 1.5), 1.5), y)


@pytest.mark.parametrize("vmax", [0.0, -1.0])
def test_gan_range_refuses_a_non_positive_vmax(vmax):
    for fn in (to_gan_range, from_gan_range):
        with pytest.raises(ValueError, match="vmax > 0"):
            fn(torch.ones(2), vmax)


def test_one_gan_range_in_the_package():
    assert mc.to_gan_range is to_gan_range and mc.from_gan_range is from_gan_range and mc.predict is predict
    assert "to_gan_range" not in mc.models.dcgan.__all__ and not hasattr(mc.models.dcgan, "to_gan_range")
