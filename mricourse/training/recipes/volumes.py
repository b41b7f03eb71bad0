"""Training tasks on 3D volumes: ``vox2vox`` (chapter 6) on BraTS-layout cases, (the volume readers are in
:mod:`mricourse.data.sets`).

``--data`` is a folder of BraTS case folders (``<case>/<case>_{t1,t1ce,t2,flair,seg}.nii.gz``:
the real BraTS 2020/2021 checked by ``data_scripts/prepare_brats.py``, or the course's
``make_data.py brats``); without it the course's ``brats`` data set for the profile is generated
(once, under ``$MRICOURSE_DATA``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ...data.sets import load_brats
from ...profile import Profile
from . import Task, apply_overrides, register


@register("vox2vox")
def _vox2vox(overrides: dict, data: Path | None, profile: Profile) -> Task:
    """Vox2Vox (Cirillo 2020): 3D U-Net generator and 3D PatchGAN on random crops (biased towards
    the tumour, flipped, intensity-jittered) of the training cases; the last cases (about 1 in 6)
    are held out. Evaluation: BraTS Dice of the whole tumour, tumour core and enhancing tumour, as
    predicted and (``*_largest``) after keeping the largest tumour component, as chapter 6 does."""
    from ...data.crops import RandomCrops3D
    from ...data.make import ensure_dataset
    from ...metrics import brats_scores
    from ...models.vox2vox import Vox2Vox, Vox2VoxConfig, classes_to_labels, largest_component

    cfg = apply_overrides(Vox2VoxConfig.for_profile(profile), overrides)
    cases = load_brats(Path(data) if data is not None else ensure_dataset("brats", profile.name))
    n_val = max(1, len(cases) // 6)
    train, val = cases[:-n_val], cases[-n_val:]
    crop = min(cfg.crop, *(min(x.shape[1:]) for x, _ in train))
    crops = RandomCrops3D([x for x, _ in train], [y for _, y in train], crop=crop, samples_per_volume=8)
    gan = Vox2Vox(cfg)

    def make_step(modules, optimizers):
        gan.G, gan.D = modules["G"], modules["D"]  # the (DDP-wrapped) parts replace the model's own
        return gan.step

    def evaluate(modules, val_set):
        g = modules["G"].eval()
        device = next(g.parameters()).device
        scores = []
        with torch.no_grad():
            for x, y in val_set:
                pred, ref = classes_to_labels(g(x[None].to(device)).argmax(1)).cpu()[0], classes_to_labels(y[0])
                post = brats_scores(largest_component(pred), ref)
                scores.append({**brats_scores(pred, ref), **{f"{k}_largest": v for k, v in post.items()}})
        return {k: sum(s[k] for s in scores) / len(scores) for k in scores[0] if k.startswith("dice")}

    return Task(
        cfg,
        {"G": gan.G, "D": gan.D},
        {"opt_G": gan.opt_G, "opt_D": gan.opt_D},
        make_step,
        crops,
        batch_size=profile.pick(smoke=2, cpu=2, gpu=4),
        steps=profile.pick(smoke=4, cpu=1200, gpu=20_000),
        val_set=val,
        evaluate=evaluate,
        local_state={"crops": crops.gen},
    )
