"""VoxelMorph: network shapes, losses, registration metrics, a one-batch overfit, the training pairs
and the recipe."""

import pytest
import torch
from conftest import blobs, smooth_field

import mricourse as mc
from mricourse.models.voxelmorph import VoxelMorphConfig

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# ---------------------------------------------------------------- network
@pytest.mark.parametrize(
    "shape, diffeo", [((32, 32), False), ((29, 35), False), ((31, 33), True), ((16, 18, 20), False), ((15, 17, 19), True)]
)
def test_shapes_2d_3d_odd(shape, diffeo):
    cfg = VoxelMorphConfig.smoke(dims=len(shape), diffeomorphic=diffeo, flow_downsize=1)  # the paper's layout
    net = mc.VoxelMorph(cfg, shape)
    m, f = torch.rand(2, 1, *shape), torch.rand(2, 1, *shape)
    out = net(m, f)
    assert out.warped.shape == m.shape
    assert out.flow.shape == (2, len(shape), *shape)
    expected_field = tuple((s + 1) // 2 for s in shape) if diffeo else shape
    assert out.field.shape == (2, len(shape), *expected_field)
    assert out.flow.abs().max() < 1e-2  # initialised near the identity


@pytest.mark.parametrize("shape, diffeo", [((32, 32), False), ((29, 35), True), ((15, 17, 19), False)])
def test_half_resolution_flow(shape, diffeo):
    """flow_downsize=2 predicts the field at half size (fewer operations) and resizes it."""
    cfg = VoxelMorphConfig.smoke(dims=len(shape), diffeomorphic=diffeo, flow_downsize=2)
    net = mc.VoxelMorph(cfg, shape)
    out = net(torch.rand(1, 1, *shape), torch.rand(1, 1, *shape))
    assert out.flow.shape == (1, len(shape), *shape)
    assert out.field.shape == (1, len(shape), *[(s + 1) // 2 for s in shape])
    full = mc.VoxelMorph(VoxelMorphConfig.smoke(dims=len(shape), flow_downsize=1), shape)
    assert sum(p.numel() for p in net.parameters()) < sum(p.numel() for p in full.parameters())  # no input skip


def test_paper_preset_sizes():
    cfg = VoxelMorphConfig.paper(dims=3)
    assert cfg.enc_chans == (16, 32, 32, 32) and cfg.dec_chans == (32, 32, 32, 32, 32, 16, 16)
    assert cfg.similarity == "ncc" and cfg.lam == 1.0 and cfg.ncc_win == 9
    assert VoxelMorphConfig.paper(similarity="mse").lam == 0.01
    n2 = sum(p.numel() for p in mc.VoxelMorph(VoxelMorphConfig.paper(dims=2), (32, 32)).parameters())
    n3 = sum(p.numel() for p in mc.VoxelMorph(VoxelMorphConfig.paper(dims=3), (16, 16, 16)).parameters())
    assert 90_000 < n2 < 110_000 and 280_000 < n3 < 320_000
    for name in ("smoke", "cpu", "gpu"):
        assert VoxelMorphConfig.for_profile(name).dims == 2
    assert VoxelMorphConfig.for_profile("gpu").flow_downsize == 1 and VoxelMorphConfig.for_profile("cpu").flow_downsize == 2


def test_config_and_input_errors():
    with pytest.raises(ValueError, match="similarity"):
        VoxelMorphConfig(similarity="mi")
    with pytest.raises(ValueError, match="dims"):
        VoxelMorphConfig(dims=4)
    net = mc.VoxelMorph(VoxelMorphConfig.smoke(), (16, 16))
    with pytest.raises(ValueError, match=r"\(B, 1, 16, 16\)"):
        net(torch.rand(1, 1, 16, 17), torch.rand(1, 1, 16, 17))
    with pytest.raises(ValueError, match="2D size"):
        mc.VoxelMorph(VoxelMorphConfig.smoke(), (16, 16, 16))


def test_diffeomorphic_variant_does_not_fold():
    """Even with a large, random velocity the integrated field has no folds."""
    torch.manual_seed(0)
    cfg = VoxelMorphConfig.smoke(diffeomorphic=True, flow_downsize=1)
    net = mc.VoxelMorph(cfg, (40, 40))
    with torch.no_grad():
        net.flow.weight.normal_(std=20.0)  # a rough, large velocity
    out = net(blobs((40, 40)), blobs((40, 40), seed=1))
    assert out.flow.abs().max() > 5.0
    assert mc.folding(out.field) > 1.0  # used directly as a displacement, the velocity would fold
    assert mc.folding(out.flow) == 0.0


def test_warp_labels_keeps_labels():
    net = mc.VoxelMorph(VoxelMorphConfig.smoke(), (24, 24))
    labels = torch.randint(0, 4, (1, 1, 24, 24))
    out = net.warp_labels(labels, smooth_field((24, 24), 2.0))
    assert out.dtype == labels.dtype and set(out.unique().tolist()) <= {0, 1, 2, 3}


# ---------------------------------------------------------------- metrics
def test_jacobian_of_constructed_fields():
    shape = (12, 14)
    assert torch.allclose(mc.jacobian_determinant(torch.zeros(1, 2, *shape)), torch.ones(1, *shape, dtype=torch.float64))
    # linear field u(x) = A x: det J = det(I + A) everywhere
    A = torch.tensor([[0.2, -0.1], [0.3, -0.4]])
    grid = mc.spatial.identity_grid(shape)  # (1, 2, *shape)
    u = torch.einsum("ij,bj...->bi...", A, grid)
    det = mc.jacobian_determinant(u)
    assert torch.allclose(det, torch.linalg.det(torch.eye(2) + A).double().expand_as(det), atol=1e-6)
    # 3D: a uniform scaling by 1.1 has det 1.331
    g3 = mc.spatial.identity_grid((6, 7, 8))
    assert torch.allclose(mc.jacobian_determinant(0.1 * g3), torch.full((1, 6, 7, 8), 1.331, dtype=torch.float64))


def test_folding_of_constructed_fields():
    shape = (20, 20)
    assert mc.folding(torch.zeros(1, 2, *shape)) == 0.0
    # a reflection of the columns, u(x) = -2 x (col): det = -1 everywhere -> 100 % folded
    grid = mc.spatial.identity_grid(shape)
    flip = torch.zeros(1, 2, *shape)
    flip[:, 1] = -2 * grid[:, 1]
    assert mc.folding(flip) == 100.0
    # fold only a 4 x 5 block: 20 / 400 voxels = 5 % (within a mask of half the image: 10 %)
    part = torch.zeros(1, 2, *shape)
    part[:, 0, 4:8, 4:9] = -2 * grid[:, 0, 4:8, 4:9]  # du0/dx0 = -2 inside the block
    det = mc.jacobian_determinant(part)
    assert (det <= 0).sum() >= 20
    mask = torch.zeros(1, *shape, dtype=torch.bool)
    mask[:, :10] = True
    assert mc.folding(part, mask) == pytest.approx(2 * mc.folding(part))


def test_displacement_error():
    u = smooth_field((10, 10), 1.0)
    assert mc.displacement_error(u, u) == 0.0
    shifted = u.clone()
    shifted[:, 0] += 3.0
    shifted[:, 1] += 4.0
    assert mc.displacement_error(shifted, u) == pytest.approx(5.0)
    mask = torch.zeros(1, 10, 10, dtype=torch.bool)
    mask[0, :5] = True
    assert mc.displacement_error(shifted, u, mask) == pytest.approx(5.0)
    with pytest.raises(ValueError, match="displacement field"):
        mc.displacement_error(torch.zeros(2, 10, 10), torch.zeros(2, 10, 10))


# ---------------------------------------------------------------- training
@pytest.mark.parametrize("similarity, diffeo", [("mse", False), ("ncc", True)])
def test_one_batch_overfit(similarity, diffeo):
    """Training on one pair registers it: the similarity improves a lot and labels overlap better."""
    torch.manual_seed(0)
    shape = (32, 32)
    fixed = blobs(shape, seed=0)
    velocity = smooth_field(shape, 1.5, seed=2)
    moving = mc.warp(fixed, mc.VecInt(shape)(velocity))  # moving(x) = fixed(x + exp(v)(x))
    true_flow = mc.VecInt(shape)(-velocity)  # so moving(x + exp(-v)(x)) = fixed(x)
    fixed_lab, moving_lab = (fixed > 0.3).long(), (moving > 0.3).long()
    cfg = VoxelMorphConfig.smoke(similarity=similarity, diffeomorphic=diffeo, lam=0.01 if similarity == "mse" else 1.0)
    cfg.dice_weight, cfg.num_labels, cfg.lr = 0.1, 2, 3e-3
    net = mc.VoxelMorph(cfg, shape)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    batch = {"moving": moving, "fixed": fixed, "moving_labels": moving_lab, "fixed_labels": fixed_lab}
    first = mc.voxelmorph_step({"model": net}, {"opt": opt}, batch, cfg=cfg)
    for _ in range(150):
        last = mc.voxelmorph_step({"model": net}, {"opt": opt}, batch, cfg=cfg)
    if similarity == "ncc":  # distance to the optimum, -1
        assert 1 + last["sim"] < 0.7 * (1 + first["sim"])
    else:
        assert last["sim"] < 0.3 * first["sim"]
    with torch.no_grad():
        out = net(moving, fixed)
    before = mc.dice(moving_lab, fixed_lab)
    after = mc.dice(net.warp_labels(moving_lab, out.flow), fixed_lab)
    assert after > before + 0.02
    assert mc.folding(out.flow) < 1.0
    inside = fixed[:, 0] > 0.1  # where the images carry information
    assert mc.displacement_error(out.flow, true_flow, inside) < 0.7 * mc.displacement_error(0 * out.flow, true_flow, inside)


# ---------------------------------------------------------------- training data and recipe
def test_registration_pairs_atlas_to_subject_and_random_pairs():
    images, labels = torch.rand(5, 1, 12, 14), torch.randint(0, 4, (5, 1, 12, 14))
    atlas = (torch.rand(1, 12, 14), torch.randint(0, 4, (1, 12, 14)))
    pairs = mc.data.RegistrationPairs(images, labels, atlas=atlas)
    item = pairs[3]
    assert len(pairs) == 5 and set(item) == {"moving", "fixed", "moving_labels", "fixed_labels"}
    assert item["moving"] is atlas[0] and torch.equal(item["fixed"], images[3]) and torch.equal(item["fixed_labels"], labels[3])
    random_pairs = mc.data.RegistrationPairs(images, labels, length=12)
    assert len(random_pairs) == 12
    for i in range(12):
        p = random_pairs[i]
        assert torch.equal(p["moving"], images[i % 5]) and not torch.equal(p["fixed"], p["moving"])  # distinct subjects
    with pytest.raises(ValueError, match="label maps"):
        mc.data.RegistrationPairs(images, labels[:4])
    with pytest.raises(ValueError, match="atlas image"):
        mc.data.RegistrationPairs(images, labels, atlas=(torch.rand(1, 12, 12), atlas[1]))


def test_registration_pairs_draw_from_the_seeded_generator():
    """The partner of each subject comes from torch's global generator: the same seed, the same
    pairs (fit seeds and checkpoints that generator); no other source of randomness."""
    images, labels = torch.rand(6, 1, 8, 8), torch.zeros(6, 1, 8, 8, dtype=torch.long)
    pairs = mc.data.RegistrationPairs(images, labels, length=30)

    def draw(seed):
        torch.manual_seed(seed)
        return torch.stack([pairs[i]["fixed"] for i in range(len(pairs))])

    assert torch.equal(draw(0), draw(0)) and not torch.equal(draw(0), draw(1))


def test_recipe_trains_atlas_to_subject(tiny_data):
    """The chapter's recipe on a ``slices`` folder: the atlas (moving) to each training subject,
    a one-cycle schedule by the step, a finite loss and held-out scores."""
    r = mc.recipe("voxelmorph", "smoke", data=tiny_data["slices"], seed=0)
    assert r.settings["pairs"] == "atlas to subject" and len(r.train_set) == 6
    item = r.train_set[0]
    assert item["moving"].shape == item["fixed"].shape == (1, 32, 32) and item["moving_labels"].max() == 3
    history = r.fit(progress=False)
    assert history.steps_done == r.steps and all(torch.isfinite(torch.tensor(history["loss"])))
    scores = r.evaluate(r.modules, r.val_set)
    assert 0 <= scores["dice_before"] <= 1 and 0 <= scores["dice"] <= 1 and scores["mse"] >= 0


def test_diffeomorphic_recipe_fine_tunes_a_checkpoint(tiny_data, tmp_path):
    """``init`` starts the diffeomorphic variant from a trained run's weights, for fewer steps."""
    first = mc.recipe("voxelmorph", "smoke", data=tiny_data["slices"], seed=0)
    first.fit(progress=False, checkpoint=str(tmp_path / "vxm.pt"))
    overrides = {"diffeomorphic": "true", "init": str(tmp_path / "vxm.pt")}
    fine = mc.recipe("voxelmorph", "smoke", data=tiny_data["slices"], overrides=overrides, seed=1)
    assert fine.config.diffeomorphic and fine.steps < first.steps and fine.settings["init"] == overrides["init"]
    assert fine.weights_hash() == first.weights_hash()  # the same weights before the fine-tuning
    fine.fit(progress=False)
    assert fine.weights_hash() != first.weights_hash()
