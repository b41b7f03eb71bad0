"""The iterative baselines (SimpleITK, elastix, ANTs): conventions, known transforms, improvement, errors."""

from dataclasses import replace

import numpy as np
import pytest
import SimpleITK as sitk
import torch

import mricourse as mc

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def phantom(shape=(48, 48)):
    """Two overlapping ellipses and a small blob, smooth edges: (H, W) float32, labels 0-2."""
    yy, xx = torch.meshgrid(*[torch.arange(s, dtype=torch.float32) for s in shape], indexing="ij")
    cy, cx = (shape[0] - 1) / 2, (shape[1] - 1) / 2
    big = ((yy - cy) / (0.36 * shape[0])) ** 2 + ((xx - cx) / (0.28 * shape[1])) ** 2 < 1
    small = ((yy - cy + 4) / 5) ** 2 + ((xx - cx - 5) / 3.5) ** 2 < 1
    labels = big.long() + (small & big).long()
    img = torch.nn.functional.avg_pool2d(labels[None, None].float(), 3, 1, 1)[0, 0] * 0.5
    return img, labels


def shift_field(shape, shift):
    return torch.tensor(shift, dtype=torch.float32).view(1, len(shape), *([1] * len(shape))).expand(1, len(shape), *shape)


def test_rigid_recovers_a_known_translation():
    img, _ = phantom()
    moving = mc.warp(img[None, None], shift_field(img.shape, (-3.0, 2.0)))[0, 0]  # moving(x) = img(x - (3, -2))
    res = mc.iterative_register(img, moving, mc.IterativeConfig(linear="rigid", deformable=False))
    centre = res.flow[:, 12:-12, 12:-12]
    torch.testing.assert_close(centre.mean((1, 2)), torch.tensor([3.0, -2.0]), atol=0.15, rtol=0)
    assert set(res.flows) == {"rigid"} and res.seconds["rigid"] > 0
    assert res.flow.shape == (2, 48, 48) and res.flow.dtype == torch.float32


def test_flow_matches_simpleitk_resampling():
    """Our warp with the returned field reproduces SimpleITK's own resampling (axis order, sign)."""
    img, _ = phantom((40, 44))
    moving = mc.warp(img[None, None], shift_field(img.shape, (1.5, -2.5)))[0, 0]
    cfg = mc.IterativeConfig(linear="affine", metric="mse", linear_iterations=30, bspline_iterations=10)
    res = mc.iterative_register(img, moving, cfg)
    f, m = sitk.GetImageFromArray(img.numpy()), sitk.GetImageFromArray(moving.numpy())
    theirs = sitk.GetArrayFromImage(sitk.Resample(m, f, res.transform, sitk.sitkLinear, 0.0))
    ours = mc.warp(moving[None, None], res.flow[None])[0, 0].numpy()
    np.testing.assert_allclose(ours[4:-4, 4:-4], theirs[4:-4, 4:-4], atol=1e-4)
    assert res.seconds["bspline"] >= res.seconds["affine"] > 0


def test_bspline_improves_a_deformed_pair():
    img, labels = phantom((48, 48))
    g = torch.Generator().manual_seed(0)
    v = 2.0 * torch.nn.functional.interpolate(
        torch.randn(1, 2, 4, 4, generator=g), size=(48, 48), mode="bilinear", align_corners=True
    )
    u = mc.VecInt((48, 48))(v)
    moving = mc.warp(img[None, None], u)[0, 0]
    moving_labels = mc.warp(labels[None, None].float(), u, mode="nearest")[0, 0].long()
    res = mc.iterative_register(img, moving, mc.IterativeConfig(metric="mse", mesh_size=4))

    def overlap(flow):
        warped = mc.warp(moving_labels[None, None].float(), flow[None], mode="nearest")[0, 0].long()
        return np.mean(list(mc.metrics.dice_per_label(warped, labels, [1, 2]).values()))

    before, affine, bspline = overlap(torch.zeros(2, 48, 48)), overlap(res.flows["affine"]), overlap(res.flows["bspline"])
    assert bspline > before + 0.05 and bspline > affine
    assert mc.folding(res.flow[None]) < 1.0


def test_3d_affine_runs():
    g = torch.Generator().manual_seed(1)
    vol = torch.nn.functional.interpolate(torch.rand(1, 1, 5, 5, 5, generator=g), size=(20, 20, 20), mode="trilinear")[0, 0]
    moving = mc.warp(vol[None, None], shift_field((20, 20, 20), (1.0, 0.0, -1.0)))[0, 0]
    res = mc.iterative_register(vol, moving, mc.IterativeConfig(metric="mse", deformable=False, shrink=(2, 1), sigmas=(1.0, 0.0)))
    assert res.flow.shape == (3, 20, 20, 20)
    torch.testing.assert_close(res.flow[:, 8:12, 8:12, 8:12].mean((1, 2, 3)), torch.tensor([-1.0, 0.0, 1.0]), atol=0.3, rtol=0)


def test_errors_and_options():
    with pytest.raises(ValueError, match="linear"):
        mc.IterativeConfig(linear="similarity")
    with pytest.raises(ValueError, match="metric"):
        mc.IterativeConfig(metric="mi")
    with pytest.raises(ValueError, match="one entry per level"):
        mc.IterativeConfig(shrink=(4, 2, 1), sigmas=(1.0, 0.0))
    with pytest.raises(ValueError, match="same size"):
        mc.iterative_register(np.zeros((10, 10)), np.zeros((10, 12)))
    with pytest.raises(ValueError, match="2D or 3D"):
        mc.iterative_register(np.zeros(10), np.zeros(10))
    assert mc.elastix_available()  # a dependency of the course


def test_brain_slices_give_registration_ground_truth():
    """Atlas slice labels warped by a subject's displacement land on the subject's labels."""
    atlas = mc.brain_slices(1, size=64, seed=3, z_mm=10.0, deform=0.0)
    subj = mc.brain_slices(3, size=64, seed=4, z_mm=10.0, displacement=True)
    assert subj["displacement"].shape == (3, 2, 64, 64) and "displacement" not in atlas
    warped = mc.warp(atlas["labels"].float().expand(3, -1, -1, -1), subj["displacement"], mode="nearest").long()
    for i in range(3):
        after = np.mean(list(mc.metrics.dice_per_label(warped[i], subj["labels"][i], [1, 2, 3]).values()))
        before = np.mean(list(mc.metrics.dice_per_label(atlas["labels"][0], subj["labels"][i], [1, 2, 3]).values()))
        assert after > 0.85 and after > before + 0.1
    # a subject's deformation does not depend on the level chosen
    other = mc.brain_slices(3, size=64, seed=4, z_mm=20.0, displacement=True)
    assert torch.equal(other["displacement"], subj["displacement"])
    with pytest.raises(ValueError, match="z_mm"):
        mc.brain_slices(1, size=64, z_mm=40.0)


def test_score_registration():
    img, labels = phantom((32, 32))
    lab = labels[None, None].expand(2, 1, 32, 32)
    zero = torch.zeros(2, 2, 32, 32)
    s = mc.score_registration(zero, lab[:1], lab, true_flow=zero, structures={1: "outer", 2: "inner"})
    assert s == {"dice outer": 1.0, "dice inner": 1.0, "dice": 1.0, "folding %": 0.0, "error px": 0.0}
    shifted = mc.warp(lab.float(), shift_field((32, 32), (2.0, 0.0)).expand(2, -1, -1, -1), mode="nearest").long()
    worse = mc.score_registration(zero, shifted[:1], lab, structures={1: "outer", 2: "inner"})
    fixed = mc.score_registration(
        shift_field((32, 32), (-2.0, 0.0)).expand(2, -1, -1, -1), shifted[:1], lab, structures={1: "outer", 2: "inner"}
    )
    assert worse["dice"] < 0.95 and fixed["dice"] > 0.99 and "error px" not in worse
    ignore = torch.zeros_like(lab, dtype=torch.bool)
    ignore[..., :16, :] = True  # leave out the top half
    half = mc.score_registration(zero, shifted[:1], lab, structures={1: "outer", 2: "inner"}, ignore=ignore)
    assert half["dice"] != worse["dice"]


# elastix (itk-elastix) and ANTs (antspyx): the same contract as iterative_register
TOOLS = {
    # the phantom's few flat intensities suit a correlation better than mutual information
    "elastix": (mc.elastix_register, mc.ElastixConfig(metric="ncc", affine_iterations=64, bspline_iterations=64), "bspline"),
    "ants": (mc.ants_register, mc.AntsConfig(iterations=(20, 10, 5)), "syn"),
}


def deformed_pair(shape=(48, 48)):
    """The phantom (fixed) and the phantom warped by a smooth random diffeomorphism (moving)."""
    img, labels = phantom(shape)
    g = torch.Generator().manual_seed(0)
    v = 2.0 * torch.nn.functional.interpolate(
        torch.randn(1, 2, 4, 4, generator=g), size=shape, mode="bilinear", align_corners=True
    )
    u = mc.VecInt(shape)(v)
    moving = mc.warp(img[None, None], u)[0, 0]
    moving_labels = mc.warp(labels[None, None].float(), u, mode="nearest")[0, 0].long()
    return img, labels, moving, moving_labels


@pytest.fixture(scope="module")
def deformed_results():
    img, labels, moving, moving_labels = deformed_pair()
    return (img, labels, moving, moving_labels), {name: fn(img, moving, cfg) for name, (fn, cfg, _) in TOOLS.items()}


@pytest.mark.parametrize("name", TOOLS)
def test_tools_recover_a_known_translation(name):
    fn, cfg, last = TOOLS[name]
    img, _ = phantom()
    moving = mc.warp(img[None, None], shift_field(img.shape, (-3.0, 2.0)))[0, 0]  # moving(x) = img(x - (3, -2))
    res = fn(img.numpy(), moving[None], cfg)  # arrays or tensors, singleton dims squeezed
    assert res.flow.shape == (2, 48, 48) and res.flow.dtype == torch.float32
    assert set(res.flows) == {"affine", last} and res.seconds[last] > 0 and res.flow is res.flows[last]
    for flow in res.flows.values():
        torch.testing.assert_close(flow[:, 12:-12, 12:-12].mean((1, 2)), torch.tensor([3.0, -2.0]), atol=0.2, rtol=0)


@pytest.mark.parametrize("name", TOOLS)
def test_tool_fields_follow_the_course_convention(name, deformed_results):
    """mc.warp with the returned field reproduces the tool's own resampled image (axis order,
    sign, voxel units), and the deformable stage improves the label overlap."""
    (img, labels, moving, moving_labels), results = deformed_results
    res = results[name]
    assert res.warped is not None and res.warped.shape == moving.shape
    ours = mc.warp(moving[None, None], res.flow[None])[0, 0]
    np.testing.assert_allclose(ours[4:-4, 4:-4].numpy(), res.warped[4:-4, 4:-4].numpy(), atol=1e-4)

    def overlap(flow):
        warped = mc.warp(moving_labels[None, None].float(), flow[None], mode="nearest")[0, 0].long()
        return np.mean(list(mc.metrics.dice_per_label(warped, labels, [1, 2]).values()))

    before, affine, final = overlap(torch.zeros(2, 48, 48)), overlap(res.flows["affine"]), overlap(res.flow)
    assert final > before + 0.05 and final > affine
    assert mc.folding(res.flow[None]) < 1.0


@pytest.mark.parametrize("name", TOOLS)
def test_tools_in_3d(name):
    fn, cfg, _ = TOOLS[name]
    cfg = replace(cfg, resolutions=1, samples=512) if name == "elastix" else replace(cfg, iterations=(10, 5))
    g = torch.Generator().manual_seed(1)
    vol = torch.nn.functional.interpolate(torch.rand(1, 1, 5, 5, 5, generator=g), size=(16, 18, 20), mode="trilinear")[0, 0]
    moving = mc.warp(vol[None, None], shift_field(vol.shape, (1.0, 0.0, -1.0)))[0, 0]
    res = fn(vol, moving, cfg)
    assert res.flow.shape == (3, 16, 18, 20)
    ours = mc.warp(moving[None, None], res.flow[None])[0, 0]
    np.testing.assert_allclose(ours[3:-3, 3:-3, 3:-3].numpy(), res.warped[3:-3, 3:-3, 3:-3].numpy(), atol=1e-4)


def test_elastix_leaves_no_file_in_the_working_folder(tmp_path, monkeypatch):
    # transformix writes its deformation field to a file as well as returning it: into a temporary folder
    monkeypatch.chdir(tmp_path)
    fixed = torch.zeros(24, 24)
    fixed[6:18, 8:16] = 1
    res = mc.elastix_register(fixed, torch.roll(fixed, 1, 0), mc.ElastixConfig(affine_iterations=4, bspline_iterations=4))
    assert res.flow.shape == (2, 24, 24) and set(res.flows) == {"affine", "bspline"}
    assert list(tmp_path.iterdir()) == []


def test_elastix_parameter_maps():
    affine, bspline = mc.elastix_parameter_maps(mc.ElastixConfig(grid_spacing=12, metric="ncc", resolutions=2))
    assert affine["Transform"] == ["AffineTransform"] and bspline["Transform"] == ["BSplineTransform"]
    assert bspline["FinalGridSpacingInPhysicalUnits"] == ["12"] and bspline["GridSpacingSchedule"] == ["1.41421", "1"]
    assert bspline["Metric"] == ["AdvancedNormalizedCorrelation", "TransformBendingEnergyPenalty"]
    assert mc.elastix_parameter_maps(mc.ElastixConfig(bending=0))[1]["Metric"] == ["AdvancedMattesMutualInformation"]


@pytest.mark.parametrize("fn", [mc.elastix_register, mc.ants_register, mc.iterative_register], ids=lambda f: f.__name__)
def test_bad_inputs_name_what_was_expected(fn):
    name = fn.__name__
    with pytest.raises(TypeError, match=f"{name}: expected a real fixed image"):
        fn(np.zeros((32, 32), np.complex64), np.zeros((32, 32)))
    with pytest.raises(TypeError, match="expected a real moving image"):
        fn(np.zeros((32, 32)), np.full((32, 32), "a"))
    with pytest.raises(ValueError, match=r"2D or 3D fixed image, \(H, W\) or \(D, H, W\) .* got shape \(32,\)"):
        fn(np.zeros(32), np.zeros(32))
    with pytest.raises(ValueError, match=r"2D or 3D moving image"):
        fn(np.zeros((32, 32)), np.zeros((2, 3, 32, 32)))
    with pytest.raises(ValueError, match=r"same size, got \(32, 32\) and \(32, 30\)"):
        fn(torch.zeros(1, 1, 32, 32), torch.zeros(1, 1, 32, 30))
    bad = np.zeros((32, 32))
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="finite values in the moving image"):
        fn(np.zeros((32, 32)), bad)


def test_tool_configs_and_sizes():
    with pytest.raises(ValueError, match="metric 'mattes' or 'ncc'"):
        mc.ElastixConfig(metric="mse")
    with pytest.raises(ValueError, match="grid_spacing > 0"):
        mc.ElastixConfig(grid_spacing=0)
    with pytest.raises(ValueError, match="metric 'cc', 'mattes' or 'meansquares'"):
        mc.AntsConfig(metric="ncc")
    with pytest.raises(ValueError, match="seed >= 1"):
        mc.AntsConfig(seed=0)
    with pytest.raises(ValueError, match="at least 16 voxels along every axis"):
        mc.ants_register(np.zeros((12, 40)), np.zeros((12, 40)))
