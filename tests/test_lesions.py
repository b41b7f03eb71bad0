"""mricourse.lesions: the one lesion placement and contrast measure of the chapters."""

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

import mricourse as mc
from mricourse.lesions import add_lesion, disc_and_ring, lesion_centre, lesion_contrast, ring_around


def _labels():
    """A 40 x 50 map: background 0, a CSF-like frame 1, a WM (3) rectangle rows 5..24, cols 8..39,
    and a GM (2) square rows 12..15, cols 30..33 inside it."""
    lab = torch.zeros(40, 50, dtype=torch.int64)
    lab[2:30, 4:44] = 1
    lab[5:25, 8:40] = 3
    lab[12:16, 30:34] = 2
    return lab


def test_exported_from_top_namespace():
    assert mc.lesion_contrast is lesion_contrast and mc.disc_and_ring is disc_and_ring
    assert mc.add_lesion is add_lesion and mc.lesion_centre is lesion_centre and mc.ring_around is ring_around


def test_contrast_of_a_known_image_is_analytic():
    # tissue 2.0 everywhere, lesion 3.0: (3 - 2) / 2 = 0.5; a dark one at 0.5: (0.5 - 2) / 2 = -0.75
    disc, ring = disc_and_ring((32, 32), (16, 15), radius=3)
    img = torch.full((32, 32), 2.0)
    img[disc] = 3.0
    assert lesion_contrast(img, disc, ring) == pytest.approx(0.5, abs=1e-12)
    img[disc] = 0.5
    assert lesion_contrast(img, disc, ring) == pytest.approx(-0.75, abs=1e-12)
    # the means, not sums or extrema: a ring half at 1 and half at 3 has mean 2
    img = torch.full((32, 32), 1.0)
    img[disc] = 4.0
    idx = ring.nonzero()
    img[tuple(idx[::2].T)] = 3.0
    ring_mean = float(img[ring].mean())
    assert lesion_contrast(img, disc, ring) == pytest.approx((4.0 - ring_mean) / ring_mean, rel=1e-12)
    # pixels outside both masks do not count
    img2 = img.clone()
    img2[~(disc | ring)] = 100.0
    assert lesion_contrast(img2, disc, ring) == lesion_contrast(img, disc, ring)
    assert lesion_contrast(img.numpy(), disc, ring) == pytest.approx(lesion_contrast(img, disc, ring))


def test_add_lesion_then_contrast_gives_it_back():
    disc, ring = disc_and_ring((24, 24), (12, 12), radius=2.5)
    flat = torch.full((24, 24), 0.4)
    for c in (0.6, -0.5, 1.0):
        out = add_lesion(flat, disc, c)
        assert lesion_contrast(out, disc, ring) == pytest.approx(c, rel=1e-6)
        assert torch.equal(out[~disc], flat[~disc])  # only the lesion changes
    assert torch.equal(flat, torch.full((24, 24), 0.4))  # the input is untouched
    # multiplicative: texture survives, and a uniform scale does not change the contrast
    g = torch.Generator().manual_seed(0)
    tex = 1 + 0.1 * torch.rand(24, 24, generator=g)
    les = add_lesion(tex, disc, 0.6)
    assert torch.allclose(les[disc], 1.6 * tex[disc])
    assert lesion_contrast(3 * les, disc, ring) == pytest.approx(lesion_contrast(les, disc, ring), rel=1e-6)
    # a soft lesion: float weights
    soft = torch.zeros(24, 24)
    soft[12, 12], soft[12, 13] = 1.0, 0.5
    out = add_lesion(flat, soft, -0.6)
    assert out[12, 12] == pytest.approx(0.4 * 0.4) and out[12, 13] == pytest.approx(0.4 * 0.7) and out[0, 0] == pytest.approx(0.4)
    # batches: the mask repeats over leading axes, and the means pool them
    batch = torch.stack([flat, 2 * flat])[:, None]  # (2, 1, 24, 24)
    out = add_lesion(batch, disc, 0.5)
    assert out.shape == batch.shape and lesion_contrast(out, disc, ring) == pytest.approx(0.5)


def test_contrast_kept_ratio():
    disc, ring = disc_and_ring((32, 32), (16, 16), radius=3)
    target = add_lesion(torch.ones(32, 32), disc, 0.8)
    half = add_lesion(torch.ones(32, 32), disc, 0.4)
    assert lesion_contrast(half, disc, ring) / lesion_contrast(target, disc, ring) == pytest.approx(0.5)
    assert lesion_contrast(torch.ones(32, 32), disc, ring) == 0.0  # gone


def test_disc_and_ring_geometry():
    disc, ring = disc_and_ring((41, 41), (20, 20), radius=5, gap=1, width=2)
    assert disc.dtype == torch.bool and ring.dtype == torch.bool and disc.shape == ring.shape == (41, 41)
    yy, xx = np.mgrid[:41, :41]
    r = np.hypot(yy - 20, xx - 20)
    assert np.array_equal(disc.numpy(), r <= 5) and np.array_equal(ring.numpy(), (r > 6) & (r <= 8))
    assert int(disc.sum()) == 81  # lattice points in a radius-5 disc
    assert not (disc & ring).any()
    # the ring does not touch the disc: with gap >= 1 no ring pixel is a 4-neighbour of a disc pixel,
    # with gap >= sqrt(2) not even an 8-neighbour
    assert not (torch.from_numpy(ndimage.binary_dilation(disc.numpy())) & ring).any()
    d2, r2 = disc_and_ring((41, 41), (20, 20), radius=5, gap=math.sqrt(2), width=2)
    assert not (torch.from_numpy(ndimage.binary_dilation(d2.numpy(), np.ones((3, 3)))) & r2).any()
    # gap 0: adjacent but still disjoint
    d0, r0 = disc_and_ring((41, 41), (20, 20), radius=5, gap=0, width=1)
    assert not (d0 & r0).any() and (torch.from_numpy(ndimage.binary_dilation(d0.numpy())) & r0).any()
    # radius 2.5 is a disc 5 pixels across; fractional centres work
    d, _ = disc_and_ring((11, 11), (5, 5), radius=2.5)
    assert d[5].sum() == 5 and d[:, 5].sum() == 5
    d, _ = disc_and_ring((10, 10), (4.5, 4.5), radius=1)
    assert int(d.sum()) == 4  # the four pixels around the half-pixel centre


def test_disc_and_ring_3d_ball():
    disc, ring = disc_and_ring((21, 22, 23), (10, 11, 12), radius=4, gap=1, width=2)
    zz, yy, xx = np.mgrid[:21, :22, :23]
    r = np.sqrt((zz - 10) ** 2 + (yy - 11) ** 2 + (xx - 12) ** 2)
    assert np.array_equal(disc.numpy(), r <= 4) and np.array_equal(ring.numpy(), (r > 5) & (r <= 7))
    assert abs(int(disc.sum()) - 4 / 3 * math.pi * 4**3) < 0.1 * 4 / 3 * math.pi * 4**3
    vol = add_lesion(torch.ones(21, 22, 23), disc, -0.3)
    assert lesion_contrast(vol, disc, ring) == pytest.approx(-0.3)


def test_lesion_centre_deepest_and_near():
    lab = _labels()
    c = lesion_centre(lab)  # white matter by default
    assert isinstance(c, tuple) and len(c) == 2 and all(isinstance(v, int) for v in c)
    assert lab[c] == 3
    depth = ndimage.distance_transform_edt((lab == 3).numpy())
    assert depth[c] == depth.max() and depth.max() >= 8  # farther from any other tissue than any other WM pixel
    # a disc of radius < depth around it stays inside the tissue
    disc, _ = disc_and_ring(lab.shape, c, radius=depth.max() - 1)
    assert (lab[disc] == 3).all()
    # nearest: a point inside the GM square goes to the nearest WM pixel, a WM point to itself
    n = lesion_centre(lab, tissue=3, near=(13, 31))
    assert n == (11, 31)  # two WM pixels lie 2 px away, (11, 31) and (13, 29): the first in C order
    assert lesion_centre(lab, near=(20, 10)) == (20, 10)
    assert lesion_centre(lab.numpy(), tissue=2) in {(13, 31), (13, 32), (14, 31), (14, 32)}
    assert lesion_centre(lab, near=torch.tensor([0, 0])) == (5, 8)  # outside the head: nearest WM corner
    # 3D
    vol = torch.zeros(9, 20, 20, dtype=torch.int64)
    vol[1:8, 2:18, 3:19] = 3
    zc, yc, xc = lesion_centre(vol)
    assert vol[zc, yc, xc] == 3 and zc == 4


def test_ring_around_any_shape():
    m = torch.zeros(2, 1, 30, 30, dtype=torch.bool)
    m[0, 0, 10:14, 8:20] = True  # a bar in slice 0, nothing in slice 1
    ring = ring_around(m, gap=1, width=2, ndim=2)
    assert ring.shape == m.shape and ring.dtype == torch.bool
    assert not (ring & m).any() and not ring[1].any()  # no ring where there is no lesion
    assert ring[0, 0, 8, 12] and ring[0, 0, 7, 12] and not ring[0, 0, 9, 12] and not ring[0, 0, 6, 12]  # 2 and 3 px above
    # without ndim the distance runs across slices too: slice 1 then gets a ring
    assert ring_around(m[:, 0], gap=0, width=2)[1].any()
    # for a disc it is (nearly) disc_and_ring's ring
    disc, dring = disc_and_ring((40, 40), (20, 20), radius=6)
    aring = ring_around(disc)
    assert (aring ^ dring).float().sum() <= 0.2 * dring.sum()
    img = add_lesion(torch.ones(2, 1, 30, 30), m[0, 0], 1.0)
    assert lesion_contrast(img, m[0, 0], ring[0, 0]) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: disc_and_ring((10, 10), (5, 5), radius=0), "radius must be"),
        (lambda: disc_and_ring((10, 10), (5, 5), radius=-2), "radius must be"),
        (lambda: disc_and_ring((10, 10), (5, 5), radius=float("nan")), "radius must be"),
        (lambda: disc_and_ring((10, 10), (5, 5), radius=2, gap=-1), "gap must be"),
        (lambda: disc_and_ring((10, 10), (5, 5), radius=2, width=0), "width must be"),
        (lambda: disc_and_ring((10, 10), (5, 5, 5), radius=2), "centre must have 2 coordinates"),
        (lambda: disc_and_ring((10, 10), (50, 50), radius=2), "holds no pixel"),
        (lambda: disc_and_ring((10, 10), (5, 5), radius=2, gap=20), "ring .* holds no pixel"),
        (lambda: disc_and_ring((0, 10), (0, 5), radius=2), "positive sizes"),
        (lambda: lesion_centre(torch.zeros(8, 8, dtype=torch.int64)), "no pixel has label 3"),
        (lambda: lesion_centre(_labels(), near=(1, 2, 3)), "near must have 2 coordinates"),
        (lambda: ring_around(torch.zeros(5, 5, dtype=torch.bool)), "empty"),
        (lambda: ring_around(torch.ones(5, 5)), "boolean"),
        (lambda: ring_around(torch.ones(5, 5, dtype=torch.bool), width=0), "width > 0"),
        (lambda: ring_around(torch.ones(5, 5, dtype=torch.bool), ndim=3), "ndim must be"),
        (lambda: add_lesion(torch.ones(8, 8), torch.ones(7, 8, dtype=torch.bool), 0.5), "must equal the image's last axes"),
        (lambda: add_lesion(torch.ones(8, 8), torch.ones(8, 8, dtype=torch.bool), -1.0), "contrast must be > -1"),
        (lambda: add_lesion(torch.ones(8, 8), 2 * torch.ones(8, 8), 0.5), r"in \[0, 1\]"),
        (
            lambda: add_lesion(torch.ones(8, 8, dtype=torch.complex64), torch.ones(8, 8, dtype=torch.bool), 0.5),
            "real floating-point",
        ),
    ],
)
def test_bad_inputs_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_lesion_contrast_bad_inputs():
    disc, ring = disc_and_ring((16, 16), (8, 8), radius=2)
    img = torch.ones(16, 16)
    with pytest.raises(ValueError, match="must equal the image's last axes"):
        lesion_contrast(torch.ones(15, 16), disc, ring)
    with pytest.raises(ValueError, match="differ in shape"):
        lesion_contrast(img, disc, ring[:15])
    with pytest.raises(ValueError, match="lesion mask is empty"):
        lesion_contrast(img, torch.zeros_like(disc), ring)
    with pytest.raises(ValueError, match="ring mask is empty"):
        lesion_contrast(img, disc, torch.zeros_like(ring))
    with pytest.raises(ValueError, match="overlap"):
        lesion_contrast(img, disc, disc | ring)
    with pytest.raises(ValueError, match="boolean"):
        lesion_contrast(img, disc.float(), ring)
    with pytest.raises(ValueError, match="real image"):
        lesion_contrast(img.to(torch.complex64), disc, ring)
    with pytest.raises(ValueError, match="non-zero ring mean"):
        lesion_contrast(torch.zeros(16, 16), disc, ring)
