"""What remains of the older slice tasks: :data:`CLIP`. Every model of the 2D slices is a recipe
now, in its own module (:mod:`mricourse.training.recipes`)."""

from __future__ import annotations

__all__ = ["CLIP"]

#: slices are scaled so the brain's 99.5th percentile is 1; the GAN range [-1, 1] covers [0, CLIP]
CLIP = 1.5
