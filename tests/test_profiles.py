"""Profiles and the models' presets for them (mricourse.profiles)."""

from dataclasses import dataclass, fields

import pytest

import mricourse as mc
from mricourse.profiles import PROFILES, Presets
from mricourse.training.recipes import names, recipe


def test_the_profile_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("MRICOURSE_PROFILE", "smoke")
    assert mc.profile().name == "smoke"
    assert mc.profile().pick(smoke=1, cpu=2, gpu=3) == 1
    monkeypatch.setenv("MRICOURSE_PROFILE", "huge")
    with pytest.raises(ValueError, match="expected one of smoke, cpu, gpu"):
        mc.profile()


@dataclass
class _Config(Presets):
    dims: int = 3
    width: int = 64
    PRESET_BY = "dims"
    PRESETS = {
        "smoke": {2: {"dims": 2, "width": 4}, 3: {"width": 8}},
        "cpu": {2: {"dims": 2}, 3: {}},
        "gpu": {2: {"dims": 2}, 3: {}},
    }


def test_presets_by_profile_and_variant_and_overrides():
    assert _Config.smoke() == _Config(3, 8) and _Config.smoke(dims=2) == _Config(2, 4)
    assert _Config.for_profile("smoke", dims=2, width=5) == _Config(2, 5)  # a field given wins over the preset
    assert _Config.for_profile(mc.profile("gpu")) == _Config()
    with pytest.raises(ValueError, match="no smoke preset for dims = 1"):
        _Config.smoke(dims=1)
    with pytest.raises(ValueError, match="expected one of smoke, cpu, gpu"):
        _Config.for_profile("huge")


def _configs():
    found, todo = [], list(Presets.__subclasses__())
    while todo:
        c = todo.pop()
        found.append(c)
        todo += c.__subclasses__()
    return [c for c in found if c.__module__.startswith("mricourse.")]


@pytest.mark.parametrize("cls", _configs(), ids=lambda c: c.__name__)
def test_every_model_config_has_a_preset_per_profile_naming_real_fields(cls):
    names_ = {f.name for f in fields(cls)}
    assert set(cls.PRESETS) == set(PROFILES)
    tables = [t for p in PROFILES for t in (cls.PRESETS[p].values() if cls.PRESET_BY else [cls.PRESETS[p]])]
    assert all(set(t) <= names_ for t in tables), f"{cls.__name__}: a preset names a field the config does not have"


def test_every_recipe_builds_from_a_preset_config():
    """No recipe builds its model config another way than through the presets."""
    configs = {c.__name__ for c in _configs()}
    for name in sorted(set(names()) - {"toy"}):
        assert type(recipe(name, "smoke", data=None).config).__name__ in configs, name
