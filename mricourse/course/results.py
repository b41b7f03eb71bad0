"""Per-chapter results files, the source of the book's results page.

``save_results("03_fastmri_varnet", metrics=..., timings=...)`` writes
``$MRICOURSE_RESULTS/03_fastmri_varnet.json`` (default ``_build/results/``) with the profile, the
device, the machine, the library versions, the wall time of data, training and evaluation, and
every metric of the model and its baselines.
"""

from __future__ import annotations

import json
import os
import platform
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from .._version import __version__
from ..profiles import profile as _profile
from ..utils import atomic_write, get_device, processor, seed_everything

__all__ = [
    "start_chapter",
    "results_dir",
    "save_results",
    "load_results",
    "Stopwatch",
    "environment",
    "anchors_path",
    "load_anchors",
]


def _course_root() -> Path:
    """The repository root above the current directory (where ``_toc.yml`` is), else the cwd."""
    here = Path.cwd()
    return next((p for p in [here, *here.parents] if (p / "_toc.yml").exists()), here)


def results_dir() -> Path:
    """``$MRICOURSE_RESULTS`` (a relative path is taken from the repository root, since notebooks
    run in ``notebooks/``), else ``_build/results`` in the repository root."""
    env = os.environ.get("MRICOURSE_RESULTS")
    if env:
        return Path(env) if Path(env).is_absolute() else _course_root() / env
    return _course_root() / "_build" / "results"


class Stopwatch:
    """Named wall-clock timers: ``with sw("training"): ...``; ``sw.times`` in seconds."""

    def __init__(self):
        self.times: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.times[name] = self.times.get(name, 0.0) + time.perf_counter() - t0


def start_chapter(seed: int | None = 0):
    """A chapter's first lines: ``P, device, sw = mc.start_chapter(seed=0)`` gives the active
    profile (printed; :func:`mricourse.profiles.profile`), the device (printed;
    :func:`mricourse.utils.get_device`) and a :class:`Stopwatch` for the chapter's timings, and
    seeds Python, NumPy and torch with ``seed`` (``None``: no seeding)."""
    profile = _profile()
    print("profile:", profile)
    device = get_device()
    if seed is not None:
        seed_everything(seed)
    return profile, device, Stopwatch()


def environment() -> dict:
    """Machine, device and library versions, for a results file."""
    return {
        "machine": platform.machine(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu": processor(),  # what decides whether a seed's weights match bit for bit
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "mricourse": __version__,
    }


def _plain(x):
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, (torch.Tensor, np.ndarray, np.generic)):
        return _plain(np.asarray(x).tolist())
    if isinstance(x, float) and not np.isfinite(x):
        return str(x)
    return x


def save_results(
    chapter: str,
    metrics: dict,
    timings: dict | None = None,
    headline: dict | None = None,
    notes: str = "",
    ood: dict | None = None,
    **extra,
) -> Path:
    """Write the chapter's results file atomically and return its path.

    Args:
        chapter: the notebook's name, e.g. ``"03_fastmri_varnet"``.
        metrics: ``{method or setting: {metric: value}}`` on the held-out set, model and baselines.
        timings: wall-clock seconds, e.g. ``{"data": ..., "training": ..., "evaluation": ...}``.
        headline: ``{"metric": "ssim", "setting": "4x", "model": "VarNet", "baseline": "CG-SENSE",
            "higher_is_better": True}``: what the results page's summary shows.
        ood: the out-of-distribution test, ``{"what": "what the model never saw in training",
            "metrics": {condition: {method or setting: {metric: value}}}}``, each condition's
            metrics laid out as ``metrics`` is, so that the headline's model and baseline are found
            in both; the results page shows both side by side.
    """
    if not isinstance(metrics, dict) or not metrics:
        raise ValueError("save_results: expected metrics as a non-empty {method: {metric: value}} dict")
    if ood is not None:
        conditions = ood.get("metrics") if isinstance(ood, dict) else None
        if not isinstance(ood.get("what") if isinstance(ood, dict) else None, str) or not isinstance(conditions, dict) or not conditions:
            raise ValueError(
                "save_results: expected ood as {'what': str, 'metrics': {condition: {method: {metric: value}}}} "
                "with at least one condition"
            )
        if not all(isinstance(v, dict) and v for v in conditions.values()):
            raise ValueError("save_results: each ood condition needs a non-empty {method: {metric: value}} dict")
    record = {
        "chapter": chapter,
        "profile": _profile().name,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "environment": environment(),
        "timings": _plain(timings or {}),
        "metrics": _plain(metrics),
        "headline": _plain(headline or {}),
        "notes": notes,
        **({"ood": _plain(ood)} if ood is not None else {}),
        **_plain(extra),
    }
    path = results_dir() / f"{chapter}.json"
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2))
    return path


def load_results(folder=None) -> dict[str, dict]:
    """All results files in ``folder`` (default :func:`results_dir`), keyed by chapter."""
    folder = Path(folder) if folder else results_dir()
    out = {}
    for p in sorted(folder.glob("*.json")):
        try:
            out[p.stem] = json.loads(p.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{p}: not a valid results file ({e}); rerun its notebook") from e
    return out


def anchors_path(folder=None) -> Path:
    """Where the benchmark keeps the comparisons for the book's results page:
    ``<results folder>/anchors/anchors.json`` (beside, not among, the chapters' files)."""
    return Path(folder or results_dir()) / "anchors" / "anchors.json"


def load_anchors(folder=None) -> dict | None:
    """The record saved by the last benchmark, or None."""
    path = anchors_path(folder)
    return json.loads(path.read_text()) if path.exists() else None
