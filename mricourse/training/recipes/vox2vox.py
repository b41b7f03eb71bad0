"""Chapter 6's training runs, also ``mricourse train vox2vox`` and ``mricourse train unet3d_brats``.

``vox2vox``: Vox2Vox (Cirillo et al. 2020), a 3D U-Net generator and a 3D PatchGAN on (image,
segmentation) pairs, the generator trained with ``alpha`` x the generalised Dice loss plus the
least-squares adversarial loss (:func:`~mricourse.models.vox2vox.vox2vox_step`). ``unet3d_brats``:
the same generator, data, seed, steps and segmentation loss without the discriminator
(``adversarial=False``), so the comparison isolates the adversarial term. Adam (lr 2e-4, beta1
0.5), a constant learning rate.

The segmentation loss of both (``seg_loss``) is the soft Dice loss of the tumour classes plus the
cross-entropy (``"dice_ce"``): with the generalised Dice loss alone (``"gdl"``, the paper's) the
baseline found little oedema in 1200 steps (test Dice WT 0.45). With Dice + cross-entropy, on the
cpu profile's validation cases (seed 0, 1200 steps), the baseline reached Dice WT / TC / ET
0.855 / 0.910 / 0.872 and Vox2Vox 0.848 / 0.905 / 0.870. A weight average of the generator
(decays 0.99 to 0.999) did not help there (baseline 0.866 / 0.903 / 0.863, Vox2Vox 0.841 / 0.900 /
0.861 at 0.99), so ``ema`` is 0 (none) in every preset. Nor did pix2pix's schedule, the rate
constant for half the run, then linearly to 0 (1200 steps, scored on the validation cases and on
six more subjects, seeds 3000-3005: Vox2Vox 0.829 / 0.891 / 0.845 and 0.744 / 0.784 / 0.727
against the constant rate's 0.848 / 0.905 / 0.870 and 0.746 / 0.782 / 0.766; the baseline 0.861 /
0.890 / 0.849 and 0.765 / 0.849 / 0.776 against 0.855 / 0.910 / 0.872 and 0.779 / 0.859 / 0.826),
so the rate stays constant.

Data: random cubic crops of the training cases (:class:`~mricourse.data.crops.RandomCrops3D`:
centred on the tumour 70 % of the time, flips, intensity jitter; 8 crops per case make an epoch),
drawn from a generator seeded by the run's seed and saved in checkpoints. Without ``--data``, the
chapter's cases (:data:`CASES`: digital-brain subjects with a tumour in the BraTS layout,
:func:`~mricourse.data.brats_cases.synthetic_brats_cases`), split by subject into training,
validation and test; with ``--data``, a folder of BraTS case folders (real BraTS 2020/2021, or
``make_data.py brats``), the last sixth held out for validation. Evaluation: BraTS Dice of the
whole tumour, tumour core and enhancing tumour on the validation cases, as predicted and
(``*_largest``) after keeping the largest tumour component.
"""

from __future__ import annotations

from functools import partial

import torch

from ...data.brats_cases import read_cases, synthetic_brats_cases
from ...data.crops import RandomCrops3D
from ...data.tumour import classes_to_labels
from ...metrics import brats_scores
from ...models.vox2vox import Vox2VoxConfig, largest_component, segment, vox2vox_networks, vox2vox_step
from ...profiles import Profile
from ..averaging import WeightAverage
from ..schedules import ConstantSchedule
from .base import Recipe, apply_overrides, define

__all__ = ["CASES", "FIRST_SEED", "cases", "evaluate"]

#: the chapter's cases per profile: training, validation and test subjects, resolution in mm
CASES = {
    "smoke": dict(train=3, val=1, test=2, resolution=4.0),
    "cpu": dict(train=12, val=2, test=6, resolution=2.0),
    "gpu": dict(train=60, val=10, test=20, resolution=2.0),
}
#: the chapter's subjects are FIRST_SEED, FIRST_SEED + 1, ...
FIRST_SEED = 2000


def cases(data, profile: Profile) -> dict[str, list[tuple[torch.Tensor, torch.Tensor]]]:
    """``{"train", "val", "test"}`` lists of ``(images (4, D, H, W) z-scored, classes (1, D, H, W))``:
    the chapter's :data:`CASES` (``data`` None; generated on first use), or the BraTS case folders
    of ``data`` (the last sixth, at least one, for validation; no test cases)."""
    if data is None:
        p = CASES[profile.name]
        n = p["train"] + p["val"] + p["test"]
        every = read_cases(synthetic_brats_cases(range(FIRST_SEED, FIRST_SEED + n), p["resolution"]))
        return {"train": every[: p["train"]], "val": every[p["train"] : p["train"] + p["val"]], "test": every[n - p["test"] :]}
    folders = sorted(f for f in data.iterdir() if f.is_dir() and not f.name.startswith("."))
    if len(folders) < 2:
        raise ValueError(f"{data}: expected at least 2 BraTS case folders (training and validation), got {len(folders)}")
    every = read_cases(folders)
    n_val = max(1, len(every) // 6)
    return {"train": every[:-n_val], "val": every[-n_val:], "test": []}


def evaluate(modules, val_set: dict) -> dict[str, float]:
    """Mean BraTS Dice (WT, TC, ET) of ``modules["G"]`` on the whole validation volumes, raw and
    (``*_largest``) with the largest tumour component kept."""
    scores = []
    for x, y in val_set["val"]:
        pred, ref = segment(modules["G"], x[None])[0, 0], classes_to_labels(y[0])
        post = brats_scores(largest_component(pred), ref)
        scores.append({**brats_scores(pred, ref), **{f"{k}_largest": v for k, v in post.items()}})
    return {k: float(sum(s[k] for s in scores) / len(scores)) for k in scores[0] if k.startswith("dice")}


def _build(name: str, adversarial: bool, profile: Profile, data, overrides: dict, seed: int) -> Recipe:
    cfg = apply_overrides(Vox2VoxConfig.for_profile(profile), overrides)
    split = cases(data, profile)
    train = split["train"]
    crop = min(cfg.crop, *(min(x.shape[1:]) for x, _ in train))
    crops = RandomCrops3D([x for x, _ in train], [y for _, y in train], crop=crop, samples_per_volume=8, seed=seed)
    modules = vox2vox_networks(cfg)
    if not adversarial:
        modules = {"G": modules["G"]}  # the same generator as vox2vox's (built first: the same initial weights)
    betas = (cfg.beta1, 0.999)
    optimizers = {f"opt_{k}": torch.optim.Adam(m.parameters(), lr=cfg.lr, betas=betas) for k, m in modules.items()}
    steps = profile.pick(smoke=4, cpu=1200, gpu=20_000)
    data_settings = {"data": "chapter cases", "cases": dict(CASES[profile.name])} if data is None else {"data": "BraTS folder"}
    return Recipe(
        name,
        cfg,
        modules,
        optimizers,
        {k: ConstantSchedule(o, cfg.lr, steps) for k, o in optimizers.items()},
        partial(vox2vox_step, alpha=cfg.alpha, adversarial=adversarial, seg_loss=cfg.seg_loss),
        crops,
        batch_size=profile.pick(smoke=1, cpu=2, gpu=4),
        steps=steps,
        seed=seed,
        profile=profile,
        settings={
            "adversarial": adversarial,
            "seg_loss": cfg.seg_loss,
            "schedule": "constant",
            "crop": crop,
            "crops_per_case": 8,
            **data_settings,
        },
        val_set={"val": split["val"], "test": split["test"]},
        evaluate=evaluate,
        local_state={"crops": crops.gen},
        log_every=profile.pick(smoke=2, cpu=5, gpu=50),
        averages={"G": WeightAverage(modules["G"], cfg.ema)} if cfg.ema else {},
        memory_format=profile.pick(smoke="channels_last", cpu="channels_last", gpu="contiguous"),  # make speed: x1.15 channels-last against the default layout on 2 cores (AVX-512), the U-Net baseline x1.17
    )


@define("vox2vox")
def build(profile, data, overrides, seed) -> Recipe:
    return _build("vox2vox", True, profile, data, overrides, seed)


@define("unet3d_brats")
def build_unet(profile, data, overrides, seed) -> Recipe:
    return _build("unet3d_brats", False, profile, data, overrides, seed)
