"""VoxelMorph (Balakrishnan et al. 2019): chapter 8's training run, and ``mricourse train voxelmorph``.

2D, atlas to subject (the chapter): the moving image is the digital brain's undeformed axial slice
at MNI z = :data:`Z_MM` (the atlas), the fixed images are training subjects at the same level, each
with its own random deformation; the atlas's and the subjects' tissue labels drive the Dice term.
Without ``data`` the subjects are made in memory (:func:`mricourse.brain_slices`, seed 0; held-out
subjects seed 1, with their true displacement); with ``data``, a ``slices`` folder's subjects (at
levels around the atlas's; no true displacement). Adam, a one-cycle learning rate by the step.

3D (``--config dims=3``): the T1-weighted volumes of an IXI folder (the course's ``ixi`` data set
without ``data``), centre-cropped to a common shape (multiples of 16), random pairs of distinct
training subjects, with the tissue labels of ``ground_truth/`` where every volume has them (real
IXI has none: the Dice term is then off); the held-out subjects are registered from the first
training subject.

The diffeomorphic variant fine-tunes a trained model (the chapter): ``overrides={"diffeomorphic":
"true", "init": "<checkpoint.pt>"}``, i.e. ``mricourse train voxelmorph --config diffeomorphic=true
--config init=runs/voxelmorph/checkpoint.pt``, starts from that run's weights and trains fewer steps.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import replace
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

from ...data.datasets import RegistrationPairs
from ...data.make import ensure_dataset
from ...data.sets import load_ixi, load_slices
from ...data.slices import brain_slices
from ...losses import mse
from ...models.voxelmorph import VoxelMorph, VoxelMorphConfig, voxelmorph_step
from ...registration import score_registration
from ...spatial import resize_flow, warp
from ..fit import load_checkpoint
from ..schedules import OneCycleSchedule
from .base import Recipe, apply_overrides, define

#: the axial level (MNI z, mm) of the atlas and of every subject in 2D; the atlas's seed
Z_MM, ATLAS_SEED = 10.0, 100


def chapter_sizes(profile) -> dict:
    """Pixels per side, training and held-out subjects of the 2D data made in memory."""
    return profile.pick(
        smoke=dict(size=64, train=16, test=2), cpu=dict(size=128, train=512, test=12), gpu=dict(size=128, train=2048, test=32)
    )


def atlas_slice(size) -> tuple[torch.Tensor, torch.Tensor]:
    """The atlas: the undeformed digital brain at MNI z = :data:`Z_MM`, image and labels (1, H, W)."""
    a = brain_slices(1, size=size, seed=ATLAS_SEED, z_mm=Z_MM, deform=0.0)
    return a["images"][0], a["labels"][0]


@functools.lru_cache(maxsize=1)
def _chapter_slices(size: int, n_train: int, n_test: int) -> tuple[dict, dict]:
    """Training subjects (seed 0) and held-out ones (seed 1, T1w and T2w, with their true
    displacement), made once per session (a fine-tuning recipe reuses them)."""
    train = brain_slices(n_train, size=size, seed=0, z_mm=Z_MM)
    test = brain_slices(n_test, size=size, seed=1, z_mm=Z_MM, contrasts=("T1w", "T2w"), displacement=True)
    return train, test


def _slices(data: Path | None, profile) -> tuple[RegistrationPairs, dict]:
    """2D training pairs (atlas to subject) and the held-out set."""
    if data is None:
        n = chapter_sizes(profile)
        train, test = _chapter_slices(n["size"], n["train"], n["test"])
    else:
        train, test = load_slices(data, profile, ("T1w",))
    atlas = atlas_slice(tuple(train["images"].shape[2:]))
    val = {"moving": atlas[0][None], "moving_labels": atlas[1][None], **test}
    return RegistrationPairs(train["images"][:, :1], train["labels"], atlas=atlas), val


def _volumes(data: Path | None, profile, cfg: VoxelMorphConfig):
    """3D training pairs (subject to subject), the held-out set and the config (labels counted,
    the Dice term off without labels), from an IXI folder."""
    volumes, labels = load_ixi(data if data is not None else ensure_dataset("ixi", profile.name))
    shape = [min(v.shape[1 + a] for v in volumes) // 16 * 16 for a in range(3)]

    def crop(x):  # centre crop (C, D, H, W) -> (C, *shape)
        return x[(slice(None), *(slice((n - s) // 2, (n - s) // 2 + s) for n, s in zip(x.shape[1:], shape)))]

    images = torch.stack([crop(v) for v in volumes])  # (N, 1, *shape)
    if any(seg is None for seg in labels):
        if cfg.dice_weight > 0:
            warnings.warn(
                "voxelmorph: some IXI volumes have no ground_truth labels; training without the Dice term", stacklevel=3
            )
        cfg, segs = replace(cfg, dice_weight=0.0), torch.zeros(images.shape, dtype=torch.long)
    else:
        segs = torch.stack([crop(seg) for seg in labels]).long()
        cfg = replace(cfg, num_labels=int(segs.max()) + 1)
    n_val = max(1, len(images) // 6)
    train = RegistrationPairs(images[:-n_val], segs[:-n_val], length=4 * (len(images) - n_val))
    val = {"moving": images[:1], "moving_labels": segs[:1], "images": images[-n_val:], "labels": segs[-n_val:]}
    return train, val, cfg


def resized(val: dict, size) -> dict:
    """A held-out set brought to another image ``size``: images by linear interpolation, labels by
    nearest neighbour, true displacements by :func:`mricourse.spatial.resize_flow` (vectors
    rescaled to the new pixels)."""
    size = tuple(int(n) for n in size)
    old = val["images"].shape[2:]
    if len(size) != len(old):
        raise ValueError(f"resized: expected a {len(old)}D size, got {size}")
    mode = "bilinear" if len(size) == 2 else "trilinear"
    out = dict(val)
    for k in ("moving", "images"):
        out[k] = F.interpolate(val[k].float(), size=size, mode=mode, align_corners=True)  # the grid convention of resize_flow
    for k in ("moving_labels", "labels"):
        out[k] = F.interpolate(val[k].float(), size=size, mode="nearest").long()
    if "displacement" in val:
        out["displacement"] = resize_flow(val["displacement"].float(), size)
    return out


def evaluate(modules, val: dict) -> dict[str, float]:
    """Register ``val["moving"]`` to every held-out image (channel 0), one pair at a time: the
    mean squared difference of warped moving and fixed images, before and after, and, where there
    are labels, :func:`mricourse.score_registration` (Dice per structure and their mean, folding,
    and the end-point error when the true displacement is known) with the Dice before."""
    net = modules["model"].eval()
    device = next(net.parameters()).device
    if tuple(val["images"].shape[2:]) != tuple(net.size):  # another profile's network (a long run's smoke check)
        val = resized(val, net.size)
    moving, fixed = val["moving"], val["images"][:, :1]
    with torch.no_grad():
        flow = torch.cat([net(moving.to(device), f[None].to(device)).flow.cpu() for f in fixed])  # (N, dims, *spatial)
    out = {
        "mse": float(mse(fixed, warp(moving.expand_as(fixed), flow))),
        "mse_before": float(mse(fixed, moving.expand_as(fixed))),
    }
    if val["labels"].any():  # not on real IXI
        out.update(score_registration(flow, val["moving_labels"], val["labels"], val.get("displacement")))
        out["dice_before"] = score_registration(0 * flow, val["moving_labels"], val["labels"])["dice"]
    return out


@define("voxelmorph")
def build(profile, data, overrides, seed) -> Recipe:
    init = overrides.pop("init", None)  # a checkpoint to start from (the diffeomorphic fine-tuning)
    cfg = apply_overrides(VoxelMorphConfig.for_profile(profile), overrides)
    if cfg.dims == 3:
        train_set, val, cfg = _volumes(data, profile, cfg)
    else:
        train_set, val = _slices(data, profile)
    model = VoxelMorph(cfg, train_set.images.shape[2:])
    if init is not None:
        load_checkpoint(init, {"model": model})
    lr = cfg.lr
    steps = profile.pick(smoke=4, cpu=2000, gpu=10_000)
    if init is not None:
        steps = profile.pick(smoke=2, cpu=500, gpu=2000)  # a fine-tuning
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    return Recipe(
        "voxelmorph",
        cfg,
        {"model": model},
        {"opt": opt},
        {"opt": OneCycleSchedule(opt, lr, steps)},  # warm-up, then cosine decay, by the step
        partial(voxelmorph_step, cfg=cfg),
        train_set,
        batch_size=profile.pick(smoke=2, cpu=4, gpu=16),
        steps=steps,
        seed=seed,
        profile=profile,
        settings={
            "lr": lr,
            "schedule": "one-cycle",
            "pairs": "atlas to subject" if train_set.atlas is not None else "subject to subject",
            "init": None if init is None else str(init),
            "size": list(train_set.images.shape[2:]),  # the network's image size (it rebuilds from the record)
        },
        val_set=val,
        evaluate=evaluate,
        log_every=profile.pick(smoke=1, cpu=25, gpu=100),
        memory_format=profile.pick(smoke="channels_last", cpu="channels_last", gpu="contiguous"),  # make speed: x1.05 channels-last against the default layout on 2 cores (AVX-512), within the timing's noise
    )
