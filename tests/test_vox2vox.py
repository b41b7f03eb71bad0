import pytest
import torch
import torch.nn.functional as F

import mricourse as mc
from mricourse.data.crops import RandomCrops3D
from mricourse.data.tumour import classes_to_labels, labels_to_classes
from mricourse.models.vox2vox import (
    Vox2VoxConfig,
    Vox2VoxGenerator,
    generalised_dice_loss,
    largest_component,
    segment,
    vox2vox_networks,
    vox2vox_step,
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


@pytest.mark.parametrize("adversarial, seg_loss", [(True, "dice_ce"), (False, "dice_ce"), (False, "gdl")])
def test_one_batch_overfit(adversarial, seg_loss):
    torch.manual_seed(0)
    cfg = Vox2VoxConfig.smoke()
    cfg.dropout = 0.0
    modules = vox2vox_networks(cfg)
    if not adversarial:
        modules = {"G": modules["G"]}
    opts = {f"opt_{k}": torch.optim.Adam(m.parameters(), lr=2e-3, betas=(0.5, 0.999)) for k, m in modules.items()}
    x = torch.randn(1, 4, 16, 16, 16)
    y = torch.zeros(1, 1, 16, 16, 16, dtype=torch.long)
    y[..., 4:12, 4:12, 4:12] = 2
    y[..., 6:10, 6:10, 6:10] = 3
    x[:, 0] += 2 * (y[:, 0] > 0)
    hist = [vox2vox_step(modules, opts, (x, y), alpha=cfg.alpha, adversarial=adversarial, seg_loss=seg_loss) for _ in range(60)]
    assert hist[-1]["seg"] < 0.5 * hist[0]["seg"]
    assert set(hist[0]) == ({"seg", "G_adv", "D"} if adversarial else {"seg"})
    assert set(segment(modules["G"], x).unique().tolist()) <= {0, 1, 2, 4}
    assert segment(modules["G"], x, largest=True).shape == (1, 1, 16, 16, 16)
    if adversarial:
        assert all(p.requires_grad for p in modules["D"].parameters())  # thawed after the generator's update


def test_segmentation_loss_is_dice_plus_cross_entropy_or_gdl():
    from mricourse.losses import generalised_dice_loss
    from mricourse.models.vox2vox import segmentation_loss

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 5, 6, 7, generator=g)
    y = torch.randint(0, 4, (2, 1, 5, 6, 7), generator=g)
    probs = logits.softmax(1)
    onehot = F.one_hot(y[:, 0], 4).movedim(-1, 1).float()
    inter, total = (probs * onehot)[:, 1:].sum((2, 3, 4)), (probs + onehot)[:, 1:].sum((2, 3, 4))
    dice = 1 - ((2 * inter + 1e-6) / (total + 1e-6)).mean()  # the tumour classes, per crop
    expected = dice + F.cross_entropy(logits, y[:, 0])
    assert torch.allclose(segmentation_loss(probs, y, "dice_ce"), expected, atol=1e-5)
    assert torch.allclose(segmentation_loss(probs, y, "gdl"), generalised_dice_loss(probs, onehot))
    perfect = F.one_hot(y[:, 0], 4).movedim(-1, 1).float()
    assert segmentation_loss(perfect, y, "dice_ce") < 1e-5  # no loss for a sure, right answer
    with pytest.raises(ValueError, match="dice_ce"):
        segmentation_loss(probs, y, "focal")


def test_random_crops_follow_their_seed():
    """The same seed draws the same crops (places, flips, intensity jitter); another seed others."""
    im = torch.randn(4, 20, 24, 22)
    cl = torch.zeros(1, 20, 24, 22, dtype=torch.long)
    cl[0, 5:12, 6:14, 8:12] = 2

    def draws(seed):
        ds = RandomCrops3D([im, im.flip(1)], [cl, cl.flip(1)], crop=8, samples_per_volume=3, seed=seed)
        return [ds[i] for i in range(len(ds))]

    a, b, c = draws(1), draws(1), draws(2)
    assert all(torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) for x, y in zip(a, b))
    assert not all(torch.equal(x[0], y[0]) for x, y in zip(a, c))


def test_recipes_share_the_generator_and_the_data():
    """vox2vox and unet3d_brats: the same initial generator, the same crops; only vox2vox has a
    discriminator. The chapter's cases are written in the BraTS layout and split by subject."""
    v, u = mc.recipe("vox2vox", "smoke", seed=1), mc.recipe("unet3d_brats", "smoke", seed=1)
    assert set(v.modules) == {"G", "D"} and set(u.modules) == {"G"}
    assert v.settings["seg_loss"] == u.settings["seg_loss"] == "dice_ce"  # the same segmentation loss
    assert set(v.averages) == set(u.averages) and v.config.ema == u.config.ema
    assert mc.training.recipes.weights_hash({"G": v.modules["G"]}) == u.weights_hash()
    assert all(torch.equal(a[0], b[0]) for a, b in zip((v.train_set[i] for i in range(4)), (u.train_set[i] for i in range(4))))
    sizes = mc.recipes.vox2vox.CASES["smoke"]
    assert len(v.train_set) == 8 * sizes["train"]
    assert (len(v.val_set["val"]), len(v.val_set["test"])) == (sizes["val"], sizes["test"])
    x, y = v.val_set["test"][0]
    assert x.shape[0] == 4 and y.dtype == torch.long and set(y.unique().tolist()) <= {0, 1, 2, 3}


def test_synthetic_cases_are_brats_folders(tmp_path):
    from mricourse.data.brats_cases import read_cases, synthetic_brats_cases
    from mricourse.data.nifti import check_brats_case

    folders = synthetic_brats_cases([7], resolution=6.0, root=tmp_path)
    assert [f.name for f in folders] == ["MRIC_00007"] and check_brats_case(folders[0])["case"] == "MRIC_00007"
    first = folders[0].joinpath("MRIC_00007_seg.nii.gz").stat().st_mtime_ns
    assert synthetic_brats_cases([7], resolution=6.0, root=tmp_path) == folders  # reused, not rewritten
    assert folders[0].joinpath("MRIC_00007_seg.nii.gz").stat().st_mtime_ns == first
    ((x, y),) = read_cases(folders)
    brain = x.abs().sum(0) > 0
    assert torch.allclose(x[:, brain].mean(1), torch.zeros(4), atol=1e-4) and (y > 0).any()
    assert not list(tmp_path.glob(".partial-*"))
