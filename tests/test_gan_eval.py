"""GAN evaluation: NCC and its nearest neighbours, the head mask, the C2ST, histograms, profiles."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mricourse as mc


def _heads(n, size=32, seed=0, bright_centre=0.0):
    """Random ellipses with an inner 'ventricle' and texture: stand-ins for head slices."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    out = []
    for _ in range(n):
        a, b, c = 0.6 + 0.2 * torch.rand(3, generator=g)
        head = ((xx / a) ** 2 + (yy / b) ** 2 < 1).float()
        vent = ((xx / (0.3 * c)) ** 2 + (yy / (0.2 * a)) ** 2 < 1).float()
        img = head * (0.8 + 0.1 * torch.randn(size, size, generator=g)) - 0.5 * vent
        out.append(img + bright_centre * head * torch.exp(-(xx**2 + yy**2) / 0.1))
    return torch.stack(out)[:, None]  # (n, 1, size, size)


def test_ncc_identity_and_scale_invariance():
    x = _heads(4)
    torch.testing.assert_close(mc.gan_eval.ncc(x, x), torch.ones(4, dtype=torch.float64))
    torch.testing.assert_close(mc.gan_eval.ncc(x, 3.0 * x + 0.2), torch.ones(4, dtype=torch.float64))
    y = _heads(4, seed=1)
    m = mc.foreground_mask(x)
    torch.testing.assert_close(mc.gan_eval.ncc(x, y, m), mc.gan_eval.ncc(5 * x, 0.1 * y, m))
    assert (mc.gan_eval.ncc(x, y) < 0.999).all()
    torch.testing.assert_close(mc.gan_eval.ncc(x, -x), -torch.ones(4, dtype=torch.float64))


def test_nearest_neighbours_finds_a_scaled_copy():
    refs = _heads(20, seed=2)
    queries = 2.5 * refs[[3, 7, 11]] + 0.1
    best, idx = mc.nearest_neighbours(queries, refs, chunk=2)
    assert idx.tolist() == [3, 7, 11]
    torch.testing.assert_close(best, torch.ones(3), atol=1e-5, rtol=0)
    # new images are less similar to the references than copies are
    best_new, _ = mc.nearest_neighbours(_heads(5, seed=3), refs)
    assert (best_new < 0.99).all()


def test_nearest_neighbours_agrees_with_pairwise_ncc():
    refs, q = _heads(6, seed=4), _heads(3, seed=5)
    best, idx = mc.nearest_neighbours(q, refs)
    m = mc.foreground_mask(q)
    for i in range(3):
        pair = mc.gan_eval.ncc(q[i].expand(6, 1, 32, 32), refs, m[i].expand(6, 32, 32))
        assert float(pair.max()) == pytest.approx(float(best[i]), abs=1e-5)
        assert int(pair.argmax()) == int(idx[i])


def test_foreground_mask_fills_holes_and_ignores_scale():
    x = _heads(3)
    m = mc.foreground_mask(x)
    assert m.shape == (3, 32, 32) and m.dtype == torch.bool
    yy, xx = np.mgrid[-1:1:32j, -1:1:32j]
    assert m[:, 16, 16].all()  # the dark 'ventricle' at the centre is inside the head
    assert not m[:, 0, 0].any()
    assert torch.equal(m, mc.foreground_mask(7 * x - 1))
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        mc.foreground_mask(torch.rand(2, 3, 8, 8))


def test_c2st_is_near_chance_for_two_real_sets():
    res = mc.c2st(_heads(120, seed=10), _heads(120, seed=11), epochs=10, seed=0)
    assert abs(res.accuracy - 0.5) < 0.12
    assert res.p_value > 0.01
    assert res.fake_prob.shape == (120,) and res.real_prob.shape == (120,)


def test_c2st_detects_a_brighter_centre():
    res = mc.c2st(_heads(120, seed=10), _heads(120, seed=11, bright_centre=0.4), epochs=10, seed=0)
    assert res.accuracy > 0.9
    assert res.p_value < 1e-6


def test_c2st_input_checks():
    with pytest.raises(ValueError, match="same-size"):
        mc.c2st(torch.rand(8, 16, 16), torch.rand(8, 32, 32))
    with pytest.raises(ValueError, match="at least"):
        mc.c2st(torch.rand(3, 16, 16), torch.rand(3, 16, 16))
    with pytest.raises(ValueError, match="repeats >= 1"):
        mc.c2st(torch.rand(8, 16, 16), torch.rand(8, 16, 16), repeats=0)


def test_c2st_repeats_average_fresh_classifiers():
    real, fake = _heads(40, seed=10), _heads(40, seed=11, bright_centre=0.1)
    one = mc.c2st(real, fake, epochs=2, seed=3)
    assert mc.c2st(real, fake, epochs=2, seed=3, repeats=1).fold_accuracy == one.fold_accuracy  # the default
    three = mc.c2st(real, fake, epochs=2, seed=3, repeats=3)
    assert len(three.fold_accuracy) == 6 and three.fold_accuracy[:2] == one.fold_accuracy  # the first repeat is the single test
    assert three.accuracy == pytest.approx(sum(three.fold_accuracy) / 6)
    assert not torch.equal(three.fake_prob, one.fake_prob)  # later repeats trained other classifiers
    later = 3 * three.fake_prob - one.fake_prob  # the sum of the later repeats' probabilities, if the mean is right
    assert float(later.min()) >= -1e-5 and float(later.max()) <= 2 + 1e-5
    assert three.fake_prob.shape == (40,) and 0 <= float(three.fake_prob.min()) and float(three.fake_prob.max()) <= 1


def test_histogram_and_radial_profile():
    plain, bright = _heads(10, seed=1), _heads(10, seed=1, bright_centre=0.4)
    centres, density = mc.intensity_histogram(plain, bins=20, value_range=(-1.0, 2.0))
    assert centres.shape == density.shape == (20,)
    assert np.sum(density) * 3.0 / 20 == pytest.approx(1.0)
    r, p_plain = mc.radial_profile(plain, bins=8)
    _, p_bright = mc.radial_profile(bright, bins=8)
    assert r.shape == (8,) and 0 < r[0] < r[-1] < 1
    assert p_bright[0] - p_plain[0] > 0.2 > abs(p_bright[-1] - p_plain[-1])


def test_diversity_is_one_for_a_collapsed_set_and_lower_for_varied_heads():
    heads = _heads(16, seed=3)
    collapsed = heads[:1].repeat(16, 1, 1, 1) * torch.linspace(0.5, 1.5, 16).view(-1, 1, 1, 1)  # one image, other scales
    assert mc.diversity(collapsed) == pytest.approx(1.0, abs=1e-5)
    varied = mc.diversity(heads)
    assert varied < 0.999
    half = len(heads) // 2
    assert varied == pytest.approx(float(mc.nearest_neighbours(heads[:half], heads[half:])[0].median()))
    with pytest.raises(ValueError, match="at least 2"):
        mc.diversity(heads[:1])

