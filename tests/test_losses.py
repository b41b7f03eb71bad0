"""Every loss of the course (mricourse.losses): adversarial, image to image, segmentation and
registration, each on inputs whose value is known."""

import math

import pytest
import torch
from conftest import blobs, smooth_field

import mricourse as mc

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# ---------------------------------------------------------------- adversarial
def test_bce_gan_losses_on_known_logits():
    zero = torch.zeros(4)  # D(x) = 1/2: each term is log 2
    assert float(mc.losses.discriminator_loss(zero, zero)) == pytest.approx(2 * math.log(2))
    assert float(mc.losses.generator_loss(zero)) == pytest.approx(math.log(2))
    sure = torch.full((4,), 20.0)  # D is sure: real right, fake wrong
    assert float(mc.losses.discriminator_loss(sure, -sure)) < 1e-6
    assert float(mc.losses.generator_loss(-sure)) == pytest.approx(20.0, rel=1e-3)  # non-saturating: large, not 0
    smoothed = float(mc.losses.discriminator_loss(sure, -sure, real_label=0.9))
    assert smoothed == pytest.approx(0.1 * 20.0, rel=1e-2)  # one-sided label smoothing penalises certainty


def test_lsgan_loss_is_the_squared_distance_to_the_target_label():
    logits = torch.tensor([0.0, 0.5, 1.0, 2.0])
    assert float(mc.losses.lsgan_loss(logits, True)) == pytest.approx((1 + 0.25 + 0 + 1) / 4)
    assert float(mc.losses.lsgan_loss(logits, False)) == pytest.approx((0 + 0.25 + 1 + 4) / 4)


# ---------------------------------------------------------------- image to image
def test_cycle_loss_is_the_mean_absolute_difference():
    a = torch.zeros(2, 1, 4, 4)
    assert float(mc.losses.cycle_loss(a, a + 0.25)) == pytest.approx(0.25)
    assert float(mc.losses.cycle_loss(a, a)) == 0


def test_gradient_difference_loss():
    x = blobs((24, 24))
    assert mc.losses.gradient_difference_loss(x, x).item() == 0
    blurred = mc.gaussian_blur(x, 2.0)
    assert mc.losses.gradient_difference_loss(blurred, x).item() > 1e-5


# ---------------------------------------------------------------- registration
def test_ncc_of_an_image_with_itself_is_the_minimum():
    x = blobs((32, 32)) + 0.05 * torch.rand(1, 1, 32, 32)
    self_loss = mc.ncc_loss(x, x)
    assert self_loss < -0.95  # -1 up to the eps that guards flat windows
    assert abs(mc.ncc_loss(x, x + 0.3) - self_loss) < 1e-4  # blind to an intensity offset
    assert mc.ncc_loss(x, 2.5 * x) < -0.95  # and (up to eps) to a scaling
    for other in (blobs((32, 32), seed=3), mc.warp(x, smooth_field((32, 32), 2.0)), torch.rand(1, 1, 32, 32)):
        assert mc.ncc_loss(x, other) > self_loss + 0.05
    x3 = blobs((12, 14, 16))
    assert mc.ncc_loss(x3, x3) < -0.99 and mc.ncc_loss(x3, x3, win=5) < -0.99


def test_gradient_loss_zero_for_translation_positive_otherwise():
    shift = torch.ones(1, 2, 16, 16) * 3.0
    assert mc.losses.gradient_loss(shift) == 0
    u = smooth_field((16, 16), 1.0)
    assert mc.losses.gradient_loss(u) > 0 and mc.losses.gradient_loss(u, "l1") > 0
    assert torch.isclose(mc.losses.gradient_loss(2 * u), 4 * mc.losses.gradient_loss(u))  # quadratic
    with pytest.raises(ValueError):
        mc.losses.gradient_loss(torch.zeros(1, 3, 8, 8))


def test_dice_loss_and_mse():
    labels = torch.randint(0, 4, (2, 1, 16, 16))
    oh = mc.losses.one_hot(labels, 4)
    assert oh.shape == (2, 4, 16, 16) and torch.equal(oh.sum(1), torch.ones(2, 16, 16))
    assert float(mc.losses.dice_loss(oh, oh)) == pytest.approx(0.0, abs=1e-6)
    other = mc.losses.one_hot((labels + 1) % 4, 4)
    assert float(mc.losses.dice_loss(oh, other)) == pytest.approx(1.0, abs=1e-4)
    x = torch.rand(1, 1, 8, 8)
    assert mc.losses.mse(x, x) == 0 and mc.losses.mse(x, x + 0.5) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="integer labels"):
        mc.losses.one_hot(oh, 4)
