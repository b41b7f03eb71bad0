"""Training patches for super-resolution (chapter 7): aligned random crops of (low-, high-resolution)
image pairs, 2D slices and 3D volumes alike."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

__all__ = ["SRPatches"]


class SRPatches(Dataset):
    """Aligned random patches of (low-, high-resolution) pairs: the training data of the
    super-resolution recipes.

    Args:
        lr: (N, 1, *spatial) low-resolution images or volumes, or a list of (1, *spatial) tensors
            (sizes may differ between items); ``hr``: the same at ``spatial * factor``.
        size: patch size at low resolution, int or per axis (cut to the smallest image); the
            high-resolution patch is ``size * factor``.
        factor: int or per-axis upsampling factors.
        mask: optional (1, *hr spatial) boolean per item (e.g. the brain): a patch whose
            high-resolution window has less than ``min_inside`` of its voxels inside is drawn again
            (up to 10 times), so that batches show anatomy.
        samples_per_image: patches of each image in one epoch.

    Item ``i``: a patch of image ``i % N``, placed by torch's global generator (seeded and
    checkpointed by :func:`mricourse.fit`): ``(lr patch (1, *size), hr patch (1, *(size * factor)))``.
    """

    def __init__(self, lr, hr, size, factor, mask=None, min_inside: float = 0.3, samples_per_image: int = 1):
        if len(lr) != len(hr) or len(lr) == 0 or (mask is not None and len(mask) != len(lr)):
            raise ValueError(
                f"SRPatches: expected as many low- as high-resolution images (> 0) and masks, got {len(lr)}, {len(hr)}"
                + ("" if mask is None else f" and {len(mask)}")
            )
        dims = lr[0].ndim - 1
        self.f = (int(factor),) * dims if isinstance(factor, int) else tuple(int(r) for r in factor)
        size = (int(size),) * dims if isinstance(size, int) else tuple(int(s) for s in size)
        if len(self.f) != dims or len(size) != dims:
            raise ValueError(f"SRPatches: expected a factor and a size for {dims} spatial axes, got {factor!r} and {size!r}")
        for x, y in zip(lr, hr):
            if y.shape[0] != x.shape[0] or any(b != a * r for a, b, r in zip(x.shape[1:], y.shape[1:], self.f)):
                raise ValueError(
                    f"SRPatches: expected high-resolution images of the low-resolution size x {self.f}, "
                    f"got {tuple(x.shape)} and {tuple(y.shape)}"
                )
        self.lr, self.hr, self.mask, self.min_inside = lr, hr, mask, min_inside
        self.size = tuple(min(s, *(x.shape[1 + a] for x in lr)) for a, s in enumerate(size))
        self.samples_per_image = samples_per_image

    def __len__(self) -> int:
        return len(self.lr) * self.samples_per_image

    def __getitem__(self, i: int):
        k = i % len(self.lr)
        lr, hr = self.lr[k], self.hr[k]
        for _ in range(10):
            start = [int(torch.randint(n - s + 1, ())) for n, s in zip(lr.shape[1:], self.size)]
            hi = (slice(None), *(slice(a * r, (a + s) * r) for a, s, r in zip(start, self.size, self.f)))
            if self.mask is None or float(self.mask[k][hi].float().mean()) >= self.min_inside:
                break
        lo = (slice(None), *(slice(a, a + s) for a, s in zip(start, self.size)))
        return lr[lo], hr[hi]
