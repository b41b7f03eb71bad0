"""Side by side with the anchors' own code: the course's models against the reference
implementations of their papers, in one process, on the same data, with the same loss, optimiser
and number of steps.

- :func:`varnet_vs_fastmri`: ``mricourse.VarNet`` against ``fastmri.models.VarNet`` (the fastMRI
  authors' code), both started from the same weights
  (:func:`mricourse.models.varnet.state_dict_from_fastmri`) and trained on the same simulated fastMRI-format slices
  (:class:`mricourse.VarNetTransform`, fastMRI's equispaced masks): median training-step time,
  and SSIM on held-out slices after the same steps. Identical weights give identical first-step
  losses, so any later difference comes from the implementations.
- :func:`voxelmorph_vs_package`: ``mricourse.VoxelMorph`` against the ``voxelmorph`` package's
  ``VxmPairwise`` (0.3.x, PyTorch; its own U-Net from ``neurite``, with our encoder widths, so the
  weights cannot be shared) on the chapter's digital-brain atlas-to-subject pairs, both trained
  with :func:`mricourse.voxelmorph_loss` (similarity + smoothness + Dice on training labels):
  Dice on held-out pairs, time per pair at inference and per training step.

Training steps alternate between the two models (ours first on even steps, the reference first on
odd ones) and see the same batch, so both run under the same machine load; times are reported as
ratios ours / reference, since absolute times depend on the machine. A package that is not
installed gives a record with status ``"not installed"``. ``make bench`` runs :func:`run_anchors`
after the chapters (``--no-anchors`` skips it); on its own (e.g. the VarNet step-time comparison
alone, with one thread)::

    python -m mricourse.course.anchors [--profile cpu] [--only varnet|voxelmorph] [--steps N] [--threads 1]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import time
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..profiles import profile as _profile
from ..utils import atomic_write
from .report import anchors_table, render_anchors
from .results import _plain, anchors_path, environment

__all__ = ["ANCHORS", "varnet_vs_fastmri", "voxelmorph_vs_package", "run_anchors", "save_anchors"]

#: anchor -> (the package holding the reference code, the comparison's name)
ANCHORS: dict[str, tuple[str, str]] = {
    "varnet": ("fastmri", "VarNet vs fastmri.models.VarNet"),
    "voxelmorph": ("voxelmorph", "VoxelMorph vs voxelmorph.nn.models.VxmPairwise"),
}


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _alternate(steps: dict, batches, n: int, warmup: int, device: torch.device) -> tuple[dict, dict]:
    """Run ``n`` training steps of each model on the same batches, alternating which goes first.

    ``steps`` maps "ours" / "reference" to a step function ``batch -> {"loss": ...}``; returns
    the step times (the first ``warmup`` left out) and the losses of every step, per model.
    """
    times = {k: [] for k in steps}
    losses = {k: [] for k in steps}
    names = list(steps)
    for i in range(n):
        batch = next(batches)
        for name in names if i % 2 == 0 else names[::-1]:
            _sync(device)
            t0 = time.perf_counter()
            out = steps[name](batch)
            _sync(device)
            if i >= warmup:
                times[name].append(time.perf_counter() - t0)
            losses[name].append(float(out["loss"]))
    return times, losses


def _pair(ours, reference) -> dict:
    return {"ours": ours, "reference": reference}


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------- VarNet vs fastMRI
class FastMRIVarNet(nn.Module):
    """``fastmri.models.VarNet`` behind :class:`mricourse.VarNet`'s interface (complex k-space
    (B, coils, H, W), mask (B|1, 1, 1, W) -> (B, 1, H, W), optional centre crop), so that the same
    training step (:func:`mricourse.varnet_step`) drives both."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, masked_kspace, mask, num_low_frequencies=None, crop_size=None):
        from ..data.kspace import center_crop

        nlf = num_low_frequencies
        if torch.is_tensor(nlf):  # fastmri takes one count for the whole batch
            if len(set(nlf.reshape(-1).tolist())) != 1:
                raise ValueError("FastMRIVarNet: fastmri's VarNet needs one num_low_frequencies per batch")
            nlf = int(nlf.reshape(-1)[0])
        ref_mask = mask.bool().reshape(mask.shape[0], 1, 1, -1, 1)  # fastmri's layout
        image = self.net(torch.view_as_real(masked_kspace), ref_mask, nlf or None)[:, None]  # (B, 1, H, W)
        return center_crop(image, crop_size) if crop_size else image


def _varnet_slices(params: dict, start: int, n: int, seed: int) -> list[dict]:
    """``n`` single-slice fastMRI-format items (k-space, RSS target, maximum) of the subjects
    ``start ..``, simulated in memory with the settings of the course's fastMRI data set."""
    from ..data import brain_acquisition, draw_acquisition

    items = []
    for i in range(n):
        scanner = draw_acquisition(seed, start + i, params["coils"], params["snr"])
        acq = brain_acquisition(
            start + i, params["contrasts"][0], params["size"], 1, scanner["coils"], scanner["snr"],
            params["oversample"], params.get("finer", 1), seed,
        )  # fmt: skip
        target = acq["target"][0]
        items.append(
            {
                "kspace": acq["kspace"][0],
                "target": target,
                "max": float(target.max()),
                "fname": f"anchor_{start + i}.h5",
                "slice": 0,
            }
        )
    return items


def _varnet_batch(s: dict) -> dict:
    """One transformed item -> a batch of one, as a DataLoader would collate it."""
    return {
        "masked_kspace": s["masked_kspace"][None],
        "mask": s["mask"][None],
        "num_low_frequencies": torch.tensor([s["num_low_frequencies"]]),
        "target": s["target"][None],
        "max_value": torch.tensor([s["max_value"]]),
    }


def varnet_vs_fastmri(
    cfg=None,
    steps: int | None = None,
    n_train: int | None = None,
    n_test: int | None = None,
    lr: float = 1e-3,
    acceleration: int = 4,
    center_fraction: float = 0.08,
    warmup: int = 2,
    profile=None,
    seed: int = 0,
    device=None,
) -> dict:
    """Train our VarNet and ``fastmri.models.VarNet`` side by side from the same weights.

    Args:
        cfg: a :class:`mricourse.VarNetConfig` (default: the profile's, ``cpu`` on a CPU).
        steps: training steps of each model, batch 1 (default: smoke 3, cpu 60, gpu 300).
        n_train, n_test: simulated subjects (one slice each) for training and held-out testing.
        lr: Adam's learning rate (constant), the same for both.
        acceleration, center_fraction: the held-out slices' equispaced mask (training draws 4x
            and 8x, as chapter 3).
        warmup: first steps left out of the step times.
        profile: sizes of the data set and defaults (``mc.profile()`` if None).
    Returns:
        a record: ``metrics`` ``{metric: {"ours": ..., "reference": ...}}`` (median step time,
        held-out SSIM, first-step loss, parameters), ``losses`` (every step's), ``setting``.
    """
    from fastmri.models import VarNet as RefVarNet

    from ..data import dataset_params
    from ..data.datasets import VarNetTransform
    from ..masks import MaskFunc
    from ..metrics import ssim
    from ..models.varnet import VarNet, VarNetConfig, state_dict_from_fastmri, varnet_step

    P = profile if hasattr(profile, "pick") else _profile(profile)
    cfg = cfg or VarNetConfig.for_profile(P)
    steps = steps or P.pick(smoke=3, cpu=60, gpu=300)
    n_train = n_train or P.pick(smoke=2, cpu=8, gpu=16)
    n_test = n_test or P.pick(smoke=1, cpu=4, gpu=8)
    if steps <= warmup:
        raise ValueError(f"varnet_vs_fastmri: expected more steps than the {warmup} warm-up steps, got {steps}")
    device = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    params = dataset_params("fastmri", P.name)
    train = _varnet_slices(params, 0, n_train, seed)
    test = _varnet_slices(params, n_train, n_test, seed)  # other subjects

    torch.manual_seed(seed)
    ref = RefVarNet(cfg.num_cascades, cfg.sens_chans, cfg.sens_pools, cfg.chans, cfg.num_pools, cfg.mask_center)
    ours = VarNet(cfg)
    ours.load_state_dict(state_dict_from_fastmri(ref.state_dict()), strict=True)  # the same initial weights
    models = {"ours": ours.to(device), "reference": FastMRIVarNet(ref).to(device)}
    step_fns = {
        k: partial(varnet_step, {"model": m}, {"opt": torch.optim.Adam(m.parameters(), lr=lr)}) for k, m in models.items()
    }

    train_tf = VarNetTransform(MaskFunc("equispaced", (0.08, 0.04), (4, 8), seed=seed), use_seed=False, readout_crop=True)

    def batches():  # a random training slice with a fresh mask; both models get the same batch
        rng = np.random.default_rng(seed)
        while True:
            yield _varnet_batch(train_tf(train[rng.integers(len(train))]))

    times, losses = _alternate(step_fns, batches(), steps, warmup, device)

    test_tf = VarNetTransform(MaskFunc("equispaced", (center_fraction,), (acceleration,)), readout_crop=True)
    scores = {}
    for name, model in models.items():
        model.eval()
        values = []
        with torch.no_grad():
            for item in test:
                b = _varnet_batch(test_tf(item))
                out = model(
                    b["masked_kspace"].to(device),
                    b["mask"].to(device),
                    b["num_low_frequencies"],
                    crop_size=b["target"].shape[-2:],
                )
                values.append(float(ssim(b["target"][:, None], out.cpu(), data_range=float(b["max_value"][0]))))
        scores[name] = float(np.mean(values))
    return {
        "name": ANCHORS["varnet"][1],
        "reference": f"fastmri {_version('fastmri')}",
        "status": "ok",
        "setting": (
            f"{cfg}; {params['size']} px, {params['coils']} coils, {params['contrasts'][0]}; Adam lr {lr:g}, batch 1, loss 1 - SSIM; "
            f"{steps} steps each from the same weights, {n_train} training slices; SSIM on {n_test} held-out slices at "
            f"{acceleration}x; times: median of {steps - warmup} alternated steps on {device}"
        ),
        "metrics": {
            "training step (s, median)": _pair(statistics.median(times["ours"]), statistics.median(times["reference"])),
            f"SSIM, held-out, after {steps} steps": _pair(scores["ours"], scores["reference"]),
            "first-step loss (same weights)": _pair(losses["ours"][0], losses["reference"][0]),
            "parameters": _pair(_params(ours), _params(ref)),
        },
        "losses": losses,
    }


# ---------------------------------------------------------------- VoxelMorph vs the voxelmorph package
class VxmPackage(nn.Module):
    """The ``voxelmorph`` package's ``VxmPairwise`` behind :class:`mricourse.VoxelMorph`'s
    interface (``forward(moving, fixed) -> VxmOutput``, a ``cfg``), so that
    :func:`mricourse.voxelmorph_step` and :func:`mricourse.voxelmorph_loss` drive both.

    The package's U-Net (``neurite``'s ``BasicUNet``: conv + ReLU + max-pooling per level, linear
    upsampling) gets our encoder widths, so image sizes must be multiples of ``2 ** levels``; the field is predicted at full resolution and, for a
    diffeomorphic ``cfg``, integrated with the package's own scaling and squaring."""

    def __init__(self, cfg):
        super().__init__()
        import voxelmorph as vxm

        self.cfg = cfg
        self.net = vxm.nn.models.VxmPairwise(
            ndim=cfg.dims,
            source_channels=1,
            target_channels=1,
            nb_features=list(cfg.enc_chans),
            integration_steps=cfg.int_steps if cfg.diffeomorphic else 0,
        )

    def forward(self, moving, fixed):
        from ..models.voxelmorph import VxmOutput

        flow, warped = self.net(moving, fixed, return_warped_source=True)
        return VxmOutput(warped, flow, self.net.velocity if self.cfg.diffeomorphic else flow)


def voxelmorph_vs_package(
    cfg=None,
    steps: int | None = None,
    batch_size: int | None = None,
    n_train: int | None = None,
    n_test: int | None = None,
    size: int | None = None,
    z_mm: float = 10.0,
    warmup: int = 2,
    profile=None,
    seed: int = 0,
    device=None,
) -> dict:
    """Train our VoxelMorph and the ``voxelmorph`` package's model side by side, atlas to subject.

    The data are chapter 8's: the undeformed digital brain (``brain_slices(seed=100, deform=0)``)
    is the moving image, subjects of seed ``seed`` the training fixed images and of seed
    ``seed + 1`` the held-out ones, all at MNI z = ``z_mm``.

    Args:
        cfg: a :class:`mricourse.VoxelMorphConfig`, 2D (default: the profile's); its loss and
            learning rate (Adam, constant) are used for both models.
        steps: training steps of each model (default: smoke 3, cpu 200, gpu 1000).
        batch_size, n_train, n_test, size: pairs per step, training and held-out subjects, pixels.
        warmup: first steps (and inferences) left out of the times.
    Returns:
        a record: ``metrics`` ``{metric: {"ours": ..., "reference": ...}}`` (held-out Dice and
        folding, median time per training step and per pair at inference, first-step loss,
        parameters), ``losses``, ``setting``.
    """
    from ..data import brain_slices
    from ..models.voxelmorph import VoxelMorph, VoxelMorphConfig, voxelmorph_step
    from ..registration import score_registration

    P = profile if hasattr(profile, "pick") else _profile(profile)
    cfg = cfg or VoxelMorphConfig.for_profile(P)
    if cfg.dims != 2:
        raise ValueError(f"voxelmorph_vs_package: expected a 2D VoxelMorphConfig, got dims={cfg.dims}")
    steps = steps or P.pick(smoke=3, cpu=200, gpu=1000)
    batch_size = batch_size or P.pick(smoke=2, cpu=4, gpu=16)
    n_train = n_train or P.pick(smoke=8, cpu=128, gpu=512)
    n_test = n_test or P.pick(smoke=2, cpu=8, gpu=32)
    size = size or P.pick(smoke=64, cpu=128, gpu=128)
    if size % 2 ** len(cfg.enc_chans):
        raise ValueError(
            f"voxelmorph_vs_package: the package's U-Net needs a size that is a multiple of {2 ** len(cfg.enc_chans)}, got {size}"
        )
    if steps <= warmup:
        raise ValueError(f"voxelmorph_vs_package: expected more steps than the {warmup} warm-up steps, got {steps}")
    device = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")

    atlas = brain_slices(1, size=size, seed=100, z_mm=z_mm, deform=0.0)
    train = brain_slices(n_train, size=size, seed=seed, z_mm=z_mm)
    test = brain_slices(n_test, size=size, seed=seed + 1, z_mm=z_mm)
    moving, moving_lab = atlas["images"].to(device), atlas["labels"].to(device)

    torch.manual_seed(seed)
    models = {"ours": VoxelMorph(cfg, (size, size)).to(device), "reference": VxmPackage(cfg).to(device)}
    opts = {k: torch.optim.Adam(m.parameters(), lr=cfg.lr) for k, m in models.items()}
    step_fns = {k: partial(voxelmorph_step, {"model": m}, {"opt": opts[k]}, cfg=cfg) for k, m in models.items()}

    def pairs():
        g = torch.Generator().manual_seed(seed)
        while True:
            i = torch.randint(0, n_train, (batch_size,), generator=g)
            yield {
                "moving": moving.expand(batch_size, -1, -1, -1),
                "fixed": train["images"][i],
                "moving_labels": moving_lab.expand(batch_size, -1, -1, -1),
                "fixed_labels": train["labels"][i],
            }

    times, losses = _alternate(step_fns, pairs(), steps, warmup, device)

    flows = {k: [] for k in models}
    pair_times = {k: [] for k in models}
    fixed = test["images"].to(device)
    for m in models.values():
        m.eval()
    with torch.inference_mode():
        for i in range(-warmup, n_test):
            j = max(i, 0)
            for name in list(models) if i % 2 == 0 else list(models)[::-1]:
                _sync(device)
                t0 = time.perf_counter()
                flow = models[name](moving, fixed[j : j + 1]).flow
                _sync(device)
                if i >= 0:
                    pair_times[name].append(time.perf_counter() - t0)
                    flows[name].append(flow.cpu())
    scores = {k: score_registration(torch.cat(v), atlas["labels"], test["labels"]) for k, v in flows.items()}
    return {
        "name": ANCHORS["voxelmorph"][1],
        "reference": f"voxelmorph {_version('voxelmorph')}",
        "status": "ok",
        "setting": (
            f"{cfg}; atlas to subject at {size} px, z = {z_mm:g} mm; Adam lr {cfg.lr:g}, batch {batch_size}, "
            f"our loss for both; {steps} steps each, {n_train} training subjects; Dice on {n_test} held-out subjects; "
            f"times: medians, alternated, on {device}"
        ),
        "metrics": {
            f"Dice, held-out, after {steps} steps": _pair(scores["ours"]["dice"], scores["reference"]["dice"]),
            "folding (%)": _pair(scores["ours"]["folding %"], scores["reference"]["folding %"]),
            "training step (s, median)": _pair(statistics.median(times["ours"]), statistics.median(times["reference"])),
            "inference per pair (s, median)": _pair(
                statistics.median(pair_times["ours"]), statistics.median(pair_times["reference"])
            ),
            "first-step loss": _pair(losses["ours"][0], losses["reference"][0]),
            "parameters": _pair(_params(models["ours"]), _params(models["reference"])),
        },
        "losses": losses,
    }


# ---------------------------------------------------------------- all of them, for the benchmark
_FUNCTIONS = {"varnet": varnet_vs_fastmri, "voxelmorph": voxelmorph_vs_package}


def run_anchors(profile=None, only=None, **kwargs) -> dict:
    """Run every comparison (or those in ``only``); a missing package ("not installed"), missing
    course code ("not available") or a failure ("failed: ...") gives a record whose ``status`` says
    so, and the others still run. ``kwargs`` go to every function.

    Returns ``{"profile", "date", "environment", "wall_s", "anchors": {name: record}}``.
    """
    P = profile if hasattr(profile, "pick") else _profile(profile)
    names = list(ANCHORS) if only is None else [only] if isinstance(only, str) else list(only)
    unknown = [n for n in names if n not in ANCHORS]
    if unknown:
        raise ValueError(f"run_anchors: unknown anchors {unknown}; expected some of {list(ANCHORS)}")
    t_all = time.perf_counter()
    out = {}
    for name in names:
        package, title = ANCHORS[name]
        record = {"name": title, "reference": package}
        t0 = time.perf_counter()
        if importlib.util.find_spec(package) is None:
            record["status"] = "not installed"
        else:
            try:
                record = _FUNCTIONS[name](profile=P, **kwargs)
            except Exception as e:  # report it; the other comparisons still run
                if isinstance(e, ImportError) and (e.name or "").startswith("mricourse"):  # without the chapter's code
                    record["status"] = f"not available in this checkout: {e.msg.split(' (')[0]}"
                else:
                    record["status"] = f"failed: {type(e).__name__}: {str(e)[-300:]}"
        record["wall_s"] = time.perf_counter() - t0
        out[name] = record
    return {
        "profile": P.name,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "environment": environment(),
        "wall_s": time.perf_counter() - t_all,
        "anchors": out,
    }


def save_anchors(record: dict, folder=None) -> Path:
    """Write :func:`run_anchors`'s record to :func:`anchors_path` (atomically)."""
    path = anchors_path(folder)
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(_plain(record), indent=2))
    return path


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default=None, help="smoke, cpu or gpu (default: MRICOURSE_PROFILE or the machine's)")
    p.add_argument("--only", choices=list(ANCHORS), action="append", help="run only this comparison (repeatable)")
    p.add_argument("--steps", type=int, default=None, help="training steps of each model")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--json", type=Path, default=None, help="also write the record here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    record = None
    for name in args.only or list(ANCHORS):  # one at a time, each shown as soon as it is done
        one = run_anchors(args.profile, name, **({"steps": args.steps} if args.steps else {}))
        print(anchors_table(one).to_markdown(), flush=True)
        if record is None:
            record = one
        else:
            record["anchors"].update(one["anchors"])
            record["wall_s"] += one["wall_s"]
    if args.json:
        with atomic_write(args.json) as tmp:
            tmp.write_text(json.dumps(_plain(record), indent=2))
    print(render_anchors(record))


if __name__ == "__main__":
    main()
