"""3D training crops for segmentation: per-channel z-scoring over the brain, random crops biased
towards the lesion, flips and intensity augmentation (as in Cirillo et al. 2020 for BraTS)."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

__all__ = ["zscore_brain", "RandomCrops3D"]


def zscore_brain(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-channel z-score over brain voxels: (C, D, H, W) images, (D, H, W) bool mask; 0 outside."""
    if images.ndim != 4 or mask.shape != images.shape[1:]:
        raise ValueError(
            f"zscore_brain: expected images (C, D, H, W) and a mask (D, H, W), got {tuple(images.shape)} and {tuple(mask.shape)}"
        )
    out = torch.zeros_like(images)
    for c in range(images.shape[0]):
        v = images[c][mask]
        out[c][mask] = (v - v.mean()) / v.std().clamp_min(1e-6)
    return out


class RandomCrops3D(Dataset):
    """Random cubic patches (``crop`` voxels a side) of (C, D, H, W) volumes and their (1, D, H, W) class maps.

    With probability ``p_lesion`` a crop is centred (with jitter) on a random lesion voxel, else
    placed uniformly. With ``augment``: random flips along each axis and, per channel, a random
    intensity scale (x U(0.9, 1.1)) and shift (+ U(-0.1, 0.1)). ``samples_per_volume`` crops per
    volume make one epoch."""

    def __init__(
        self,
        images: list[torch.Tensor],
        classes: list[torch.Tensor],
        crop: int,
        p_lesion: float = 0.7,
        augment: bool = True,
        samples_per_volume: int = 4,
        seed: int = 0,
    ):
        if len(images) != len(classes) or not images:
            raise ValueError(f"RandomCrops3D: expected as many volumes as label maps (>0), got {len(images)} and {len(classes)}")
        for im in images:
            if min(im.shape[1:]) < crop:
                raise ValueError(f"RandomCrops3D: volume of shape {tuple(im.shape)} is smaller than the crop {crop}")
        self.images, self.classes, self.crop = images, classes, crop
        self.p_lesion, self.augment, self.spv = p_lesion, augment, samples_per_volume
        self.gen = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.images) * self.spv

    def _rand(self, *shape):
        return torch.rand(*shape, generator=self.gen)

    def __getitem__(self, i: int):
        im, cl = self.images[i % len(self.images)], self.classes[i % len(self.images)]
        size = torch.tensor(im.shape[1:])
        lesion = (cl[0] > 0).nonzero()
        if len(lesion) and self._rand(1) < self.p_lesion:
            centre = lesion[int(self._rand(1) * len(lesion))] + (self._rand(3) * self.crop / 2 - self.crop / 4).long()
        else:
            centre = (self._rand(3) * size).long()
        start = (centre - self.crop // 2).clamp(min=torch.zeros(3, dtype=torch.long), max=size - self.crop)
        sl = tuple(slice(int(s), int(s) + self.crop) for s in start)
        x, y = im[(slice(None), *sl)].clone(), cl[(slice(None), *sl)].clone()
        if self.augment:
            for axis in (1, 2, 3):
                if self._rand(1) < 0.5:
                    x, y = x.flip(axis), y.flip(axis)
            x = x * (0.9 + 0.2 * self._rand(x.shape[0], 1, 1, 1)) + (0.2 * self._rand(x.shape[0], 1, 1, 1) - 0.1)
        return x, y
