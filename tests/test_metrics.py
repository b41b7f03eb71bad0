import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import mricourse as mc


@pytest.mark.parametrize("shape", [(32, 32), (3, 40, 33), (2, 17, 64)])
def test_ssim_and_psnr_match_skimage(shape):
    rng = np.random.default_rng(0)
    gt = rng.random(shape)
    pred = gt + 0.1 * rng.standard_normal(shape)
    rng_max = gt.max()
    gt3 = gt.reshape(-1, *shape[-2:])
    pred3 = pred.reshape(-1, *shape[-2:])
    ref = np.mean([structural_similarity(g, p, data_range=rng_max) for g, p in zip(gt3, pred3)])
    assert abs(float(mc.ssim(gt, pred)) - ref) < 1e-4
    assert abs(mc.psnr(gt, pred) - peak_signal_noise_ratio(gt, pred, data_range=rng_max)) < 1e-4


def test_nmse_and_identity():
    x = torch.rand(2, 16, 16)
    assert mc.nmse(x, x) == 0
    assert mc.nmse(x, torch.zeros_like(x)) == pytest.approx(1.0)
    assert float(mc.ssim(x, x)) == pytest.approx(1.0)
    assert mc.psnr(x, x) == float("inf")


def test_ssim_is_a_float_and_its_tensor_is_differentiable():
    gt = torch.rand(1, 1, 16, 16)
    pred = torch.rand(1, 1, 16, 16, requires_grad=True)
    value = mc.ssim(gt, pred, data_range=1.0)
    assert type(value) is float and type(mc.psnr(gt, pred.detach())) is float
    (1 - mc.ssim_tensor(gt, pred, data_range=1.0)).backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()
    assert float(mc.ssim_tensor(gt, pred, data_range=1.0)) == value


def test_ssim_loss_is_one_minus_the_mean_of_per_item_ssim():
    gt, pred = torch.rand(3, 1, 16, 16), torch.rand(3, 1, 16, 16)
    ranges = torch.tensor([1.0, 2.0, 0.5])
    expected = 1 - sum(mc.ssim(g, p, data_range=float(r)) for g, p, r in zip(gt, pred, ranges)) / 3
    assert float(mc.losses.ssim_loss(gt, pred, ranges)) == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError, match="a data range per item"):
        mc.losses.ssim_loss(gt, pred, ranges[:2])


def test_dice():
    a = torch.zeros(10, 10, dtype=torch.long)
    b = torch.zeros(10, 10, dtype=torch.long)
    a[2:6, 2:6] = 1
    b[4:8, 2:6] = 1
    assert mc.dice(a, b) == pytest.approx(2 * 8 / 32)
    assert type(mc.dice(a, b)) is float
    assert mc.metrics.dice_per_label(a, b, [1, 2]) == {1: pytest.approx(0.5), 2: 1.0}  # empty vs empty = 1


def test_metric_errors():
    with pytest.raises(ValueError, match="same shape"):
        mc.psnr(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(TypeError, match="magnitude"):
        mc.nmse(torch.zeros(4, 4, dtype=torch.complex64), torch.zeros(4, 4, dtype=torch.complex64))


def test_hd95_on_known_shapes():
    a = np.zeros((40, 40), bool)
    b = np.zeros((40, 40), bool)
    a[10:20, 10:20] = True
    b[10:20, 13:23] = True  # the same square shifted by 3 voxels
    assert mc.metrics.hd95(a, a) == 0
    assert mc.metrics.hd95(a, b) == pytest.approx(3.0)
    assert mc.metrics.hd95(a, b, spacing=2.0) == pytest.approx(6.0)
    assert mc.metrics.hd95(np.zeros_like(a), np.zeros_like(a)) == 0
    assert mc.metrics.hd95(a, np.zeros_like(a)) == float("inf")


def test_brats_regions_on_a_constructed_case():
    gt = torch.zeros(8, 8, 8, dtype=torch.long)
    gt[2:6, 2:6, 2:6] = 2  # oedema
    gt[3:5, 3:5, 3:5] = 1  # necrotic core
    pred = gt.clone()
    pred[pred == 1] = 4  # core predicted as enhancing
    s = mc.brats_scores(pred, gt)
    assert s["dice_WT"] == 1.0 and s["dice_TC"] == 1.0  # both regions contain labels 1 and 4
    assert s["dice_ET"] == 0.0  # ET: prediction has 8 voxels, truth none
    assert mc.brats_scores(gt, gt)["dice_ET"] == 1.0  # empty vs empty


def test_hd95_equals_a_brute_force_search_over_surface_pairs():
    # two blobs in a corner of a large volume, touching its border: the distances are those a
    # brute-force search over every pair of surface voxels finds
    from scipy import ndimage

    rng = np.random.default_rng(3)
    a = np.zeros((40, 36, 30), bool)
    b = np.zeros_like(a)
    a[:9, 2:12, 5:14] = rng.random((9, 10, 9)) > 0.3
    b[1:11, 4:13, 3:12] = rng.random((10, 9, 9)) > 0.4
    spacing = (1.0, 1.5, 2.0)
    sa, sb = (np.argwhere(m & ~ndimage.binary_erosion(m)) * spacing for m in (a, b))
    d = np.sqrt(((sa[:, None] - sb[None]) ** 2).sum(-1))
    expected = max(np.percentile(d.min(1), 95), np.percentile(d.min(0), 95))
    assert mc.metrics.hd95(a, b, spacing=spacing) == pytest.approx(expected)
