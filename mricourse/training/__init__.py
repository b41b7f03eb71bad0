"""Training: one loop (:mod:`.fit`), step-based learning-rate schedules (:mod:`.schedules`),
data-parallel training (:mod:`.distributed`), the command line ``mricourse train`` (:mod:`.cli`)
and the recipes, one per model (:mod:`.recipes`): what the chapters, the command line and the
benchmark all build to train a model."""
