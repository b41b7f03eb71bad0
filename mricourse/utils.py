"""Small helpers shared by every chapter: device choice, seeding, showing packaged source,
atomic file writes (:mod:`mricourse.files`)."""

from __future__ import annotations

import inspect
import os
import random
import sys

import numpy as np
import torch

from .files import atomic_write  # noqa: F401  (re-exported: mc.atomic_write)

__all__ = ["get_device", "seed_everything", "show_source", "atomic_write", "on_colab", "to_device", "interactive_session"]


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
