"""The End-to-End Variational Network (Sriram et al. 2020) on multi-coil brain k-space: chapter 3's
training run, and ``mricourse train varnet``.

Data: a fastMRI-layout folder (``multicoil_train``, ``multicoil_val``), the course's generated
``fastmri`` data set by default or the real brain data prepared by ``prepare_fastmri.py``; the
read-out oversampling removed before the network. Masks: fastMRI's brain masks (equispaced, 4x with
8 % of the columns in the centre, 8x with 4 %), a new one for every training slice; in the cpu
profile each training slice is a random band of 64 of its 128 rows (``VarNetTransform(band=64)``:
the read-out is fully sampled, so a band is an exact smaller problem), about twice the steps per
second, and the recipe takes twice the steps (chosen on the earlier, single-contrast version of the
data set's held-out slices: 1200 band steps gave SSIM 0.908 / 0.813 at 4x / 8x against 0.835 / 0.702
for 600 whole-image steps; chapter 3's results file records what the recipe gives today). Loss: the
paper's ``1 - SSIM`` (``l1_weight`` adds an L1 term). Adam, a one-cycle learning rate by the step.
The model evaluated is a weight average (EMA, decay :data:`EMA`, override ``ema``; 0: the last
weights), as the DCGAN and CycleGAN recipes keep one (Vox2Vox's is off, as measured there; the other
recipes have none yet).
"""

from __future__ import annotations

from functools import partial

import torch

from ...data.datasets import FastMRISlices, VarNetTransform
from ...data.make import ensure_dataset
from ...masks import MaskFunc
from ...metrics import ssim
from ...models.varnet import VarNet, VarNetConfig, varnet_step
from ..averaging import WeightAverage
from ..schedules import OneCycleSchedule
from .base import Recipe, apply_overrides, define, pop_float

#: the evaluation settings: acceleration and centre fraction (fastMRI's brain masks)
ACCELERATIONS = {"4x": (4, 0.08), "8x": (8, 0.04)}

#: the decay of the model's weight average (with its warm-up, about the last tenth of a short run;
#: at most the last 1000 steps of a long one)
EMA = 0.999


def test_sets(root, kind: str = "equispaced") -> dict[str, FastMRISlices]:
    """The held-out slices (``multicoil_val``) at each acceleration of :data:`ACCELERATIONS`, each
    volume with its file-seeded mask (the same for every method and run)."""
    return {
        name: FastMRISlices(root / "multicoil_val", VarNetTransform(MaskFunc(kind, (cf,), (acc,)), readout_crop=True))
        for name, (acc, cf) in ACCELERATIONS.items()
    }


def evaluate(modules, val_sets: dict) -> dict[str, float]:
    """Mean SSIM (the volume's maximum as data range) of ``modules["model"]`` on every slice of
    each held-out set: ``{"ssim_4x": ..., "ssim_8x": ...}``."""
    net = modules["model"].eval()
    device = next(net.parameters()).device
    out = {}
    with torch.no_grad():
        for name, ds in val_sets.items():
            scores = []
            for s in ds:
                k, mask = s["masked_kspace"][None].to(device), s["mask"][None].to(device)
                image = net(k, mask, s["num_low_frequencies"], crop_size=tuple(s["target"].shape))
                scores.append(float(ssim(s["target"].to(device), image[0, 0], data_range=s["max_value"])))
            out[f"ssim_{name}"] = sum(scores) / len(scores)
    return out


@define("varnet")
def build(profile, data, overrides, seed) -> Recipe:
    ema = pop_float(overrides, "ema", EMA, "varnet", 0.0, 0.9999)
    cfg = apply_overrides(VarNetConfig.for_profile(profile), overrides)
    root = data if data is not None else ensure_dataset("fastmri", profile.name)
    masks = MaskFunc("equispaced", center_fractions=(0.08, 0.04), accelerations=(4, 8))
    # cpu: bands of 64 of the 128 rows, about twice the steps per second, twice the steps
    band = profile.pick(smoke=None, cpu=64, gpu=None)
    train_set = FastMRISlices(root / "multicoil_train", VarNetTransform(masks, use_seed=False, readout_crop=True, band=band))
    model = VarNet(cfg)
    lr = profile.pick(smoke=1e-3, cpu=3e-3, gpu=1e-3)
    l1_weight = 0.0  # the paper's loss, 1 - SSIM
    steps = profile.pick(smoke=6, cpu=1200, gpu=20000)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    return Recipe(
        "varnet",
        cfg,
        {"model": model},
        {"opt": opt},
        {"opt": OneCycleSchedule(opt, lr, steps)},  # warm-up, then cosine decay, by the step
        partial(varnet_step, l1_weight=l1_weight),
        train_set,
        batch_size=1,
        steps=steps,
        seed=seed,
        profile=profile,
        settings={"lr": lr, "l1_weight": l1_weight, "schedule": "one-cycle", "masks": "equispaced 4x/0.08, 8x/0.04", "band": band, "ema": ema},
        val_set=test_sets(root),
        evaluate=evaluate,
        log_every=profile.pick(smoke=2, cpu=20, gpu=100),
        averages={"model": WeightAverage(model, ema)} if ema > 0 else {},
    )
