"""The course's long-run weights: each chapter's recipe, the same in everything but its number of
steps, trained longer on two CPU cores (at most 40 minutes a model), then shipped in the package.

``python -m mricourse.training.weights [task ...] [--runs DIR]`` (``make weights``) trains each
task of :data:`LONG` (all by default) in the ``cpu`` profile with :data:`LONG`'s steps, in a
run folder that checkpoints as it goes (run the command again to resume an interrupted run).
Every ``every`` steps it scores the model the recipe keeps (its weight average, where it has one)
on the recipe's held-out data: the learning curve. At the end it writes, into the package's
``weights/`` folder (:func:`mricourse.training.runs.weights_dir`):

- ``<task>.pt``: the networks inference needs (no discriminators), in half precision when that
  changes no held-out metric by more than :data:`FP16_TOLERANCE`, else in single precision;
- ``<task>.json``: the manifest: task, file, SHA-256, dtype, the recipe's record (recipe, profile,
  seed, steps, config, settings), the commit its training started from, the held-out metrics of the shipped
  file, the learning curve, the training time, the processors and threads its sessions trained on
  (:func:`mricourse.utils.processor`), and ``smoke_check``: the shipped model's metrics on
  the ``smoke`` profile's held-out data, which ``tests/test_weights.py`` reproduces in seconds.

``mc.pretrained(task)`` loads them (:mod:`mricourse.training.runs`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from ..files import save_checked
from ..profiles import profile as get_profile
from ..utils import atomic_write, processor
from . import runs
from .recipes import recipe
from .runs import file_sha256, networks_with_state

__all__ = ["LONG", "FP16_TOLERANCE", "train_long", "export", "smoke_check", "started_at", "trained_on"]

#: task -> the long run: its steps (the cpu recipe's, stretched: the schedules follow) and how
#: often the learning curve is measured. Each at most about 40 minutes on two idle cores.
LONG: dict[str, dict] = {
    "varnet": {"steps": 12000, "every": 1000},  # cpu recipe: 1200 band steps; 5.8 steps/s on 2 idle cores (make speed), 40.0 min with its curve; the run with the weight average 57.9 min on an AVX-512 Xeon with 2 MB of L2 (its first 20 minutes shared with other work)
    "vox2vox": {"steps": 14000, "every": 1000},  # cpu recipe: 1200 steps, a constant rate; 7.3 steps/s on 2 idle cores (make speed), its run 32.2 min; at 10000 steps (an earlier run) its validation Dice was still rising
    "unet3d_brats": {"steps": 14000, "every": 1000},  # the Vox2Vox generator without its critic, trained as long; 18.6 steps/s, its run 14.3 min
    "cyclegan": {"steps": 2000, "every": 250},  # cpu recipe: 1000 steps; its run trained 23 min, checkpoints included (1.45 steps/s), chapter 5 trains at 5.7 steps/s on 2 idle cores
    "dae": {"steps": 20000, "every": 2000},  # cpu recipe: 700 steps; 10.9 steps/s on 2 idle cores (make speed; one thread 6.0)
    "dcgan": {"steps": 4500, "every": 500},  # cpu recipe: 1500 steps; its run trained 7.0 min on 2 idle cores, curve and checkpoints included (10.7 steps/s)
    "cascade": {"steps": 13200, "every": 1200},  # chapter 2's 2D+t cascade; cpu recipe: 1200 steps; 8.4 steps/s on 2 idle cores (make speed), but a long run slows to about 6.3 after 4000 steps: its run 33.9 min
    "msfusion": {"steps": 16000, "every": 2000},  # chapter 7's x2 CNN; cpu recipe: 4000 steps; about 60 steps/s
    "voxelmorph": {"steps": 8000, "every": 1000},  # chapter 8's 2D network; cpu recipe: 2000 steps; about 29 steps/s
}

#: the largest change of a held-out metric that half precision may cause, else the file is float32
FP16_TOLERANCE = 1e-3

#: networks inference does not need: not shipped
DISCRIMINATORS = ("D", "D_A", "D_B")


def _commit() -> str:
    try:
        root = Path(__file__).resolve().parents[2]
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        # weight files an earlier task of the same command wrote are not changes to the code
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!mricourse/weights"], cwd=root, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() + ("+modified" if dirty.stdout.strip() else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def train_long(task: str, runs: Path, steps: int | None = None, every: int | None = None, profile: str = "cpu", seed: int = 0, progress: bool = False):
    """Train ``task``'s recipe for the long run's steps in ``runs/<task>`` (resumable), scoring
    the held-out data every ``every`` steps; return ``(recipe, curve, seconds)``, the recipe's
    modules holding the kept model."""
    spec = LONG.get(task, {})
    steps, every = steps or spec.get("steps"), every or spec.get("every")
    if not steps or not every:
        raise ValueError(f"no long run for {task!r}: give steps and every, or one of {sorted(LONG)}")
    folder = Path(runs) / task
    folder.mkdir(parents=True, exist_ok=True)
    r = recipe(task, get_profile(profile), seed=seed).set_steps(steps)
    if r.evaluate is None:
        raise ValueError(f"recipe {task!r} has no held-out evaluation: no learning curve can be measured")
    curve_path = folder / "curve.json"
    saved = _saved(runs, task) or {}
    curve, seconds = saved.get("curve", []), saved.get("seconds", 0.0)
    commit = saved.get("commit") or _commit()  # the code the run started from, kept across resumes
    done = {point["step"] for point in curve}
    processors = saved.get("processors", [])  # every processor (and thread count) a session of the run trained on
    stops = [min(stop, steps) for stop in range(every, steps + every, every)]
    if any(stop not in done for stop in stops) and processor() not in processors:
        processors.append(processor())
        _save_curve(curve_path, curve, seconds, commit, processors)
    for stop in stops:
        t0 = time.perf_counter()
        history = r.fit(checkpoint=str(folder / "checkpoint.pt"), checkpoint_every=every, stop_after=stop, progress=progress, log_lines=not progress)
        seconds += time.perf_counter() - t0
        if history.stopped and not history.stopped.startswith("paused"):
            raise RuntimeError(f"{task}: training stopped early at step {history.steps_done}: {history.stopped}")
        if stop not in done:
            metrics = r.evaluate(r.modules, r.val_set)
            curve.append({"step": stop, **{k: float(v) for k, v in metrics.items()}})
            done.add(stop)
            _save_curve(curve_path, curve, seconds, commit, processors)
            print(f"{task}: step {stop} of {steps}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()), flush=True)
    return r, curve, seconds


def _save_curve(path: Path, curve: list, seconds: float, commit: str, processors: list) -> None:
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps({"curve": curve, "seconds": seconds, "commit": commit, "processors": processors}, indent=2))


def smoke_check(task: str, modules: dict) -> dict:
    """The metrics of ``modules`` on the ``smoke`` profile's held-out data of ``task``'s recipe
    (small: the test recomputes them in seconds)."""
    small = recipe(task, get_profile("smoke"), seed=0)
    return {k: float(v) for k, v in small.evaluate(modules, small.val_set).items()}


def _state(modules: dict, dtype) -> dict:
    return {
        name: {k: v.detach().cpu().to(dtype) if v.is_floating_point() else v.detach().cpu() for k, v in m.state_dict().items()}
        for name, m in modules.items()
        if name not in DISCRIMINATORS
    }


def _saved(runs: Path, task: str) -> dict | None:
    path = Path(runs) / task / "curve.json"
    return json.loads(path.read_text()) if path.exists() else None


def started_at(runs: Path, task: str) -> str | None:
    """The commit the long run of ``task`` in ``runs`` started from (``None`` before it has a curve)."""
    return (_saved(runs, task) or {}).get("commit")


def trained_on(runs: Path, task: str) -> list[dict] | None:
    """The processors (:func:`mricourse.utils.processor`) the sessions of the long run of ``task``
    in ``runs`` trained on (``None`` before it has a curve)."""
    return (_saved(runs, task) or {}).get("processors")


def export(task: str, r, curve: list, seconds: float, out: Path | None = None, commit: str | None = None, processors: list | None = None) -> Path:
    """Write ``<task>.pt`` and its manifest ``<task>.json`` (see the module docstring) for the
    kept model of the trained recipe ``r``; return the manifest's path. ``commit``: the commit the
    training started from (default: the current one); ``processors``: those it trained on
    (:func:`trained_on`; default: this one)."""
    out = Path(out) if out is not None else runs.weights_dir()
    out.mkdir(parents=True, exist_ok=True)
    record = r.record()
    full = r.evaluate(r.modules, r.val_set)
    state, dtype = _state(r.modules, torch.float16), "float16"
    half = r.evaluate(networks_with_state(record, state), r.val_set)
    if any(abs(half[k] - full[k]) > FP16_TOLERANCE for k in full):
        state, dtype = _state(r.modules, torch.float32), "float32"
    loaded = networks_with_state(record, state)
    metrics = r.evaluate(loaded, r.val_set)
    path = out / f"{task}.pt"
    save_checked({"task": task, "state": state}, path)
    manifest = {
        "task": task,
        "file": path.name,
        "sha256": file_sha256(path),
        "dtype": dtype,
        "modules": sorted(state),
        "record": record,
        "commit": commit or _commit(),
        "seed": r.seed,
        "steps": r.steps,
        "training_seconds": round(seconds, 1),
        "held_out": {k: float(v) for k, v in metrics.items()},
        "held_out_float32": {k: float(v) for k, v in full.items()},
        "curve": curve,
        "smoke_check": smoke_check(task, loaded),
        "torch": torch.__version__,
        "processors": processors or [processor()],  # the same seed gives the same weights only on the same processor and threads
    }
    with atomic_write(out / f"{task}.json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    return out / f"{task}.json"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mricourse.training.weights", description=__doc__.split("\n\n")[0])
    p.add_argument("tasks", nargs="*", help=f"tasks to train (default: all of {', '.join(LONG)})")
    p.add_argument("--runs", type=Path, default=Path("_build/weights-runs"), help="run folders (checkpoints, curves)")
    p.add_argument("--out", type=Path, default=None, help="where the weights go (default: the package's weights/ folder)")
    p.add_argument("--progress", action="store_true", help="a progress bar instead of log lines")
    args = p.parse_args(argv)
    unknown = [t for t in args.tasks if t not in LONG]
    if unknown:
        p.error(f"no long run for {unknown}; expected some of {', '.join(LONG)}")
    for task in args.tasks or list(LONG):
        r, curve, seconds = train_long(task, args.runs, progress=args.progress)
        path = export(task, r, curve, seconds, args.out, commit=started_at(args.runs, task), processors=trained_on(args.runs, task))
        print(f"{task}: {path} ({json.loads(path.read_text())['dtype']}), {seconds / 60:.1f} min of training", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
