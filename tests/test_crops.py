import pytest
import torch

from mricourse.data.crops import RandomCrops3D, zscore_brain


def test_zscore_over_brain():
    x = torch.rand(2, 6, 6, 6) * 5 + 3
    m = torch.zeros(6, 6, 6, dtype=torch.bool)
    m[1:5, 1:5, 1:5] = True
    z = zscore_brain(x, m)
    assert torch.allclose(z[:, m].mean(1), torch.zeros(2), atol=1e-5)
    assert torch.allclose(z[:, m].std(1), torch.ones(2), atol=1e-4)
    assert (z[:, ~m] == 0).all()


def test_crops_shapes_and_lesion_bias():
    im = torch.randn(4, 20, 24, 22)
    cl = torch.zeros(1, 20, 24, 22, dtype=torch.long)
    cl[0, 15:18, 2:5, 3:6] = 2
    ds = RandomCrops3D([im], [cl], crop=8, p_lesion=1.0, augment=True, samples_per_volume=20)
    hits = 0
    for i in range(len(ds)):
        x, y = ds[i]
        assert x.shape == (4, 8, 8, 8) and y.shape == (1, 8, 8, 8)
        hits += int((y > 0).any())
    assert hits >= 18
    with pytest.raises(ValueError, match="smaller than the crop"):
        RandomCrops3D([im], [cl], crop=32)
