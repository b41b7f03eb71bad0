"""Profiles: how big the data, the models and the training runs are.

``MRICOURSE_PROFILE`` = ``smoke`` (CI: tiny, seconds), ``cpu`` (a laptop: minutes per chapter)
or ``gpu`` (closer to the papers). The default is ``gpu`` when CUDA is available, else ``cpu``.
Notebooks read every size from the profile::

    P = mc.profile()
    steps = P.pick(smoke=5, cpu=1500, gpu=20000)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

__all__ = ["Profile", "profile", "PROFILES"]

PROFILES = ("smoke", "cpu", "gpu")


@dataclass(frozen=True)
class Profile:
    """The active profile. ``pick`` chooses a value per profile."""

    name: str

    def pick(self, *, smoke, cpu, gpu):
        """Return the argument named after this profile."""
        return {"smoke": smoke, "cpu": cpu, "gpu": gpu}[self.name]

    @property
    def is_smoke(self) -> bool:
        return self.name == "smoke"

    def __str__(self) -> str:
        return self.name


def profile(name: str | None = None) -> Profile:
    """The profile named ``name``, else ``$MRICOURSE_PROFILE``, else ``gpu``/``cpu`` by CUDA."""
    name = name or os.environ.get("MRICOURSE_PROFILE") or ("gpu" if torch.cuda.is_available() else "cpu")
    name = name.strip().lower()
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; expected one of {', '.join(PROFILES)} (set MRICOURSE_PROFILE)")
    return Profile(name)
