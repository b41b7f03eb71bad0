"""The older volume tasks: none remain. Vox2Vox and its Dice-only U-Net (chapter 6) are recipes,
in :mod:`mricourse.training.recipes.vox2vox`; the BraTS readers are in :mod:`mricourse.data.sets`
and :mod:`mricourse.data.brats_cases`."""

from __future__ import annotations
