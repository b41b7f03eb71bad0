import pytest
import torch

from mricourse.models.vox2vox import (
    Vox2Vox,
    Vox2VoxConfig,
    Vox2VoxGenerator,
    classes_to_labels,
    generalised_dice_loss,
    labels_to_classes,
    largest_component,
)


@pytest.mark.parametrize("size", [(16, 16, 16), (17, 15, 20), (24, 16, 32)])
def test_generator_shape_and_softmax(size):
    g = Vox2VoxGenerator(Vox2VoxConfig.smoke())
    p = g(torch.randn(1, 4, *size))
    assert p.shape == (1, 4, *size)
    assert torch.allclose(p.sum(1), torch.ones(1, *size), atol=1e-5) and (p >= 0).all()


def test_generator_paper_depth():
    g = Vox2VoxGenerator(Vox2VoxConfig(base=4, depth=4, bottleneck_blocks=4))
    assert g(torch.randn(1, 4, 32, 32, 32)).shape == (1, 4, 32, 32, 32)


def test_generalised_dice_loss():
    y = torch.zeros(1, 1, 4, 4, 4, dtype=torch.long)
    y[..., :2, :, :] = 1
    perfect = torch.nn.functional.one_hot(y.squeeze(1), 4).movedim(-1, 1).float()
    assert generalised_dice_loss(perfect, y).abs() < 1e-6
    # hand-computed: uniform probabilities 0.25 over 4 classes, 2 classes present with 32 voxels each;
    # the 2 absent classes get the largest weight of the present ones, 1 / 32^2
    p = torch.full((1, 4, 4, 4, 4), 0.25)
    w = 1 / 32**2
    num = 2 * w * (0.25 * 32) * 2
    den = w * (0.25 * 64 + 32) * 2 + w * (0.25 * 64) * 2
    assert torch.isclose(generalised_dice_loss(p, y), torch.tensor(1 - num / den), atol=1e-5)


def test_generalised_dice_loss_penalises_absent_classes():
    """Painting a class that is absent from the batch costs as much as a false positive of the
    rarest present class (with weight 0 it would be free)."""
    y = torch.zeros(1, 1, 8, 8, 8, dtype=torch.long)
    y[..., :2, :2, :2] = 1  # 8 voxels of class 1; classes 2 and 3 absent
    onehot = torch.nn.functional.one_hot(y.squeeze(1), 4).movedim(-1, 1).float()
    fp = onehot.clone()
    fp[:, 0, 4:, 4:, 4:], fp[:, 2, 4:, 4:, 4:] = 0, 1  # 64 background voxels called class 2
    fp1 = onehot.clone()
    fp1[:, 0, 4:, 4:, 4:], fp1[:, 1, 4:, 4:, 4:] = 0, 1  # the same voxels called class 1
    assert generalised_dice_loss(fp, y) > 0.5
    assert torch.isclose(generalised_dice_loss(fp, y), generalised_dice_loss(fp1, y), rtol=0.1)


def test_largest_component():
    seg = torch.zeros(10, 10, 10, dtype=torch.long)
    seg[1:5, 1:5, 1:5] = 2
    seg[2:4, 2:4, 2:4] = 4
    seg[7:9, 7:9, 7:9] = 1  # a smaller, separate island
    out = largest_component(seg)
    assert torch.equal(out[:6, :6, :6], seg[:6, :6, :6]) and not out[6:, 6:, 6:].any()
    assert torch.equal(largest_component(torch.zeros(4, 4, 4, dtype=torch.long)), torch.zeros(4, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError):
        largest_component(seg[None])


def test_label_conversion():
    seg = torch.tensor([0, 1, 2, 4])
    assert torch.equal(classes_to_labels(labels_to_classes(seg)), seg)


@pytest.mark.parametrize("adversarial", [True, False])
def test_one_batch_overfit(adversarial):
    torch.manual_seed(0)
    cfg = Vox2VoxConfig.smoke()
    cfg.dropout, cfg.lr = 0.0, 2e-3
    model = Vox2Vox(cfg, adversarial=adversarial)
    x = torch.randn(1, 4, 16, 16, 16)
    y = torch.zeros(1, 1, 16, 16, 16, dtype=torch.long)
    y[..., 4:12, 4:12, 4:12] = 2
    y[..., 6:10, 6:10, 6:10] = 3
    x[:, 0] += 2 * (y[:, 0] > 0)
    hist = [model.step((x, y)) for _ in range(60)]
    assert hist[-1]["gdl"] < 0.5 * hist[0]["gdl"]
    assert set(model.segment(x).unique().tolist()) <= {0, 1, 2, 4}
    assert model.segment(x, largest=True).shape == (1, 1, 16, 16, 16)
