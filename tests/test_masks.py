import numpy as np
import pytest
import torch

import mricourse as mc


def _fastmri_subsample():
    return pytest.importorskip("fastmri.data.subsample")


@pytest.mark.parametrize("accel,cf", [(4, 0.08), (8, 0.04)])
@pytest.mark.parametrize("width", [320, 368, 127])
def test_random_mask_acceleration_and_centre(accel, cf, width):
    m = mc.random_mask(width, accel, cf, seed=3)
    assert m.shape == (1, 1, 1, width)
    n = round(width * cf)
    start = (width - n + 1) // 2
    assert m[..., start : start + n].all()
    # acceleration is random; the average over seeds matches the request
    mean_accel = np.mean([mc.acceleration(mc.random_mask(width, accel, cf, seed=s)) for s in range(200)])
    assert abs(mean_accel - accel) / accel < 0.1


@pytest.mark.parametrize("accel,cf", [(4, 0.08), (8, 0.04)])
def test_equispaced_mask(accel, cf):
    n = round(320 * cf)
    plain = mc.equispaced_mask(320, accel, cf, seed=0)[0, 0, 0]
    exact = mc.equispaced_mask(320, accel, cf, seed=0, exact=True)[0, 0, 0]
    for m in (plain, exact):
        assert m[(320 - n + 1) // 2 :][:n].all()
    # fastMRI's plain equispaced mask adds the centre on top of every accel-th column ...
    assert plain.sum() >= 320 // accel
    assert mc.acceleration(plain) < accel
    # ... the "fraction" variant reaches the requested acceleration
    assert abs(mc.acceleration(exact) - accel) / accel < 0.05


@pytest.mark.parametrize("accel,cf", [(4, 0.08), (8, 0.04)])
@pytest.mark.parametrize("seed", [0, 1, 123])
def test_parity_with_fastmri(accel, cf, seed):
    sub = _fastmri_subsample()
    shape = (1, 15, 368, 2)  # fastMRI's (..., W, 2) layout
    ref, _ = sub.RandomMaskFunc([cf], [accel])(shape, seed=seed)
    ours = mc.random_mask(368, accel, cf, seed=seed)
    assert torch.equal(ref.flatten(), ours.flatten())
    ref, _ = sub.EquiSpacedMaskFunc([cf], [accel])(shape, seed=seed)
    ours = mc.equispaced_mask(368, accel, cf, seed=seed)
    assert torch.equal(ref.flatten(), ours.flatten())
    ref, _ = sub.EquispacedMaskFractionFunc([cf], [accel])(shape, seed=seed)
    ours = mc.equispaced_mask(368, accel, cf, seed=seed, exact=True)
    assert torch.equal(ref.flatten(), ours.flatten())


@pytest.mark.parametrize("accel", [4, 6, 8])
def test_variable_density_mask(accel):
    m = mc.variable_density_mask(128, accel, center_lines=8, seed=0)
    assert m.sum() == round(128 / accel)
    assert m[..., 60:68].all()
    assert not torch.equal(m, mc.variable_density_mask(128, accel, center_lines=8, seed=1))


def test_kt_mask_new_mask_per_frame():
    m = mc.kt_mask(12, 96, 6, center_lines=6, seed=0)
    assert m.shape == (1, 12, 1, 96)
    assert (m.sum(-1) == 16).all()
    assert len({tuple(f.flatten().tolist()) for f in m[0]}) > 1
    assert m[0, :, 0, 45:51].all()
    assert torch.equal(m, mc.kt_mask(12, 96, 6, center_lines=6, seed=0))


@pytest.mark.parametrize("accel", [4, 8])
def test_poisson_disc_mask(accel):
    m = mc.poisson_disc_mask((64, 48), accel, calib=8, seed=0)
    assert m.shape == (1, 1, 64, 48)
    assert abs(mc.acceleration(m) - accel) / accel < 0.1
    assert m[0, 0, 29:35, 21:27].all()


def test_bad_mask_arguments():
    with pytest.raises(ValueError, match="acceleration"):
        mc.random_mask(64, 0.5, 0.08)
    with pytest.raises(ValueError, match="centre fraction"):
        mc.random_mask(64, 4, 1.5)
