"""Unpaired training samples for image-to-image translation (CycleGAN, chapter 5)."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

__all__ = ["UnpairedSlices"]


class UnpairedSlices(Dataset):
    """Unpaired samples ``(a_i, b_j)``: item ``i`` of domain A with a random item ``j`` of domain
    B, drawn anew at every access, so no pairing can be learnt.

    Args:
        a: images of domain A, (N_a, C, H, W).
        b: images of domain B, (N_b, C, H, W) (another collection, e.g. other subjects).

    ``j`` comes from torch's global generator, which :func:`~mricourse.training.fit.fit` seeds and
    saves in its checkpoints: the same seed draws the same partners, and a resumed run continues
    the same draws."""

    def __init__(self, a: torch.Tensor, b: torch.Tensor):
        if a.ndim != 4 or b.ndim != 4 or a.shape[1:] != b.shape[1:]:
            raise ValueError(
                f"UnpairedSlices: expected images (N, C, H, W) of one size in both domains, "
                f"got {tuple(a.shape)} and {tuple(b.shape)}"
            )
        if not len(a) or not len(b):
            raise ValueError(f"UnpairedSlices: expected images in both domains, got {len(a)} and {len(b)}")
        self.a, self.b = a, b

    def __len__(self) -> int:
        return len(self.a)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        j = int(torch.randint(len(self.b), (1,)))
        return self.a[i], self.b[j]
