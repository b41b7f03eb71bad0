"""Profiles: how big the data, the models and the training runs are.

``MRICOURSE_PROFILE`` = ``smoke`` (CI: tiny, seconds), ``cpu`` (a laptop: minutes per chapter)
or ``gpu`` (closer to the papers). The default is ``gpu`` when CUDA is available, else ``cpu``.
Notebooks read every size from the profile::

    P = mc.profile()
    steps = P.pick(smoke=5, cpu=1500, gpu=20000)

A model's config dataclass lists its presets in one table (:class:`Presets`):
``VarNetConfig.for_profile(P)``, ``VarNetConfig.smoke()``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from typing import ClassVar

import torch

__all__ = ["Profile", "profile", "PROFILES", "Presets"]

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


class Presets:
    """Mixin of a model's config dataclass: its profile presets in one table.

    ``PRESETS = {"smoke": {...}, "cpu": {...}, "gpu": {...}}`` gives the fields each profile sets
    over the class's defaults. Where the preset depends on one field (the cascade's ``dims``),
    ``PRESET_BY = "dims"`` and each profile's entry is a table keyed by that field's value.
    ``Config.for_profile(p, **fields)`` builds the preset of profile ``p`` (default: the active
    one), ``fields`` overriding it; ``Config.smoke(**fields)``, ``.cpu`` and ``.gpu`` name a
    profile. The paper's own settings, where a model has them, are its config's ``paper()``.
    """

    PRESETS: ClassVar[dict] = {}
    PRESET_BY: ClassVar[str | None] = None

    @classmethod
    def preset(cls, profile_name: Profile | str | None = None, **fields) -> dict:
        """The fields of the preset of ``profile_name`` (``fields`` select the variant)."""
        name = str(profile(str(profile_name) if profile_name is not None else None))
        table = cls.PRESETS[name]
        if cls.PRESET_BY is not None:
            key = fields.get(cls.PRESET_BY, {f.name: f.default for f in dataclass_fields(cls)}[cls.PRESET_BY])
            if key not in table:
                raise ValueError(
                    f"{cls.__name__}: no {name} preset for {cls.PRESET_BY} = {key!r}; expected one of {sorted(table)}"
                )
            table = table[key]
        return dict(table)

    @classmethod
    def for_profile(cls, profile_name: Profile | str | None = None, **fields):
        """The config of ``profile_name``'s preset, ``fields`` overriding it."""
        return cls(**{**cls.preset(profile_name, **fields), **fields})

    @classmethod
    def smoke(cls, **fields):
        """Tiny, for checks that everything runs (the ``smoke`` profile)."""
        return cls.for_profile("smoke", **fields)

    @classmethod
    def cpu(cls, **fields):
        """Trains in minutes on two CPU cores (the ``cpu`` profile)."""
        return cls.for_profile("cpu", **fields)

    @classmethod
    def gpu(cls, **fields):
        """Closer to the paper, for a GPU (the ``gpu`` profile)."""
        return cls.for_profile("gpu", **fields)
