"""Small helpers shared by every chapter: device choice, seeding, showing packaged source,
atomic file writes (:mod:`mricourse.files`)."""

from __future__ import annotations

import inspect
import os
import platform
import random
import sys
from pathlib import Path

import numpy as np
import torch

from .files import atomic_write  # noqa: F401  (re-exported: mc.atomic_write)

__all__ = ["get_device", "seed_everything", "show_source", "atomic_write", "on_colab", "to_device", "interactive_session", "processor"]


def on_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


HEADLESS_ENV = "MRICOURSE_HEADLESS"


def interactive_session() -> bool:
    """False when the notebook runs headless: the tests, ``make book`` and ``make bench`` set
    ``MRICOURSE_HEADLESS=1``. Chapters build their ipywidgets explorers only when this is True:
    nobody can move a slider on a static page, and widget messages during headless execution can
    stall the notebook runner (jupyter/nbclient#312)."""
    return not os.environ.get(HEADLESS_ENV)


def get_device(verbose: bool = True) -> torch.device:
    """The best available device: CUDA, then Apple MPS, then the CPU.

    On Colab without a GPU it says how to get one (Runtime > Change runtime type > T4 GPU).
    """
    if torch.cuda.is_available():
        device = torch.device("cuda")
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        device = torch.device("mps")
    else:
        device = torch.device("cpu")
    if verbose:
        msg = f"device: {device}"
        if device.type == "cpu" and on_colab():
            msg += " -- for a GPU choose Runtime > Change runtime type > T4 GPU, then rerun"
        print(msg)
    return device


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def processor() -> dict:
    """What decides whether two runs of the same recipe and seed give the same weights bit for
    bit: the processor's name (Linux's ``/proc/cpuinfo``; ``platform.processor()`` elsewhere), the
    vector instructions torch's CPU kernels use (``AVX512``, ``AVX2``, ...), its L2 cache and the
    number of threads. The same recipe, seed and number of threads give the same weights on machines
    of the same processor; on another processor (other instructions, other caches) the convolution
    library adds in another order, and the weights differ by rounding, which a long run amplifies.
    The instructions are torch's own kernels'; the convolution library (oneDNN) picks its own, and a
    cap on them set with ``ONEDNN_MAX_CPU_ISA`` (which changes the weights) is recorded as
    ``onednn_max_cpu_isa``."""
    name, l2 = platform.processor() or platform.machine(), None
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    for cache in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            if (cache / "level").read_text().strip() == "2":
                l2 = (cache / "size").read_text().strip()
        except OSError:
            pass
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
    return {
        "name": name,
        "instructions": torch.backends.cpu.get_cpu_capability(),
        "l2_cache": l2,
        "threads": torch.get_num_threads(),
        **({"onednn_max_cpu_isa": cap} if cap else {}),
    }


def to_device(batch, device):
    """Move a tensor, or a (nested) tuple/list/dict of tensors, to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


def show_source(obj) -> None:
    """Show the source code of a packaged function or class (highlighted in a notebook)."""
    src = inspect.getsource(obj)
    try:
        from IPython import get_ipython
        from IPython.display import Code, display

        if get_ipython() is not None:
            display(Code(src, language="python"))
            return
    except ImportError:
        pass
    print(src)
