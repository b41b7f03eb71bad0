"""Recipes: ONE way to train each model of the course, built alike by its chapter, by
``mricourse train <name>`` and by the benchmark.

A :class:`Recipe` holds everything a training run is: the model's config and modules, the
optimisers and their step-based learning-rate schedules, the update step (written in the model's
file, ``step(modules, optimizers, batch) -> {loss: value}``), the training data set (a map-style
``Dataset`` of :mod:`mricourse.data`), the batch size, the number of steps per profile, the seed
and the evaluation. ``recipe(name, profile, data=..., seed=...)`` builds one; ``r.fit()`` trains
it. The same name, profile, data, overrides and seed give the same weights, bit for bit on the
CPU with the same number of threads, whichever path trained them (the command line only adds a
``DistributedDataParallel`` wrapper per module, which changes nothing in one process).

One module per model (:mod:`.varnet`, ...), each registered with :func:`define`. A model with several trained parts (generator, discriminator) lists each part
in ``modules``: each is wrapped in its own ``DistributedDataParallel`` and saved in the checkpoint
with every optimiser and schedule.
"""

from __future__ import annotations

from . import cascade, cyclegan, dae, dcgan, msfusion, srgan, toy, varnet, vox2vox, voxelmorph  # noqa: F401  (register the recipes)
from .base import RECIPES, Recipe, apply_overrides, define, names, recipe, weights_hash

__all__ = ["Recipe", "RECIPES", "recipe", "define", "weights_hash", "apply_overrides", "names"]
