"""The :class:`Recipe` and the registry of recipe builders (:func:`define`, :func:`recipe`); the
recipes themselves are the sibling modules, one per model (see :mod:`mricourse.training.recipes`)."""

from __future__ import annotations

import contextlib
import hashlib
import types
import typing
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from ...profiles import Profile
from ...profiles import profile as get_profile
from ...utils import seed_everything
from .. import distributed
from ..fit import History, TrainConfig, fit

__all__ = ["Recipe", "RECIPES", "recipe", "define", "weights_hash", "apply_overrides", "names", "PRECISIONS", "MEMORY_FORMATS",
           "bf16_native", "to_memory_format", "CHANNELS_LAST"]

#: the precisions a recipe trains in: float32, or its update under bfloat16 autocast
PRECISIONS = ("float32", "bfloat16")

#: the memory layouts a recipe's weights train in: torch's default (channels first), or channels
#: last (``torch.channels_last`` for 2D convolutions, ``channels_last_3d`` for 3D ones)
MEMORY_FORMATS = ("contiguous", "channels_last")


#: the channels-last layout of a tensor of each number of dimensions (2D and 3D convolutions)
CHANNELS_LAST = {4: torch.channels_last, 5: torch.channels_last_3d}


def to_memory_format(module: nn.Module, memory_format: str = "channels_last") -> nn.Module:
    """Put the 4D and 5D weights and buffers of ``module`` (2D and 3D convolution kernels) in the
    layout ``memory_format`` (one of :data:`MEMORY_FORMATS`), in place (the parameters stay the
    same objects, so optimisers keep them). A convolution whose kernel is channels last computes
    in that layout, which oneDNN runs without reordering: faster for some networks on some CPUs,
    slower for others (``make speed`` measures both). The values do not change, only the order of
    the sums, so the weights a run ends with differ by rounding from a run in the other layout."""
    if memory_format not in MEMORY_FORMATS:
        raise ValueError(f"to_memory_format: expected one of {MEMORY_FORMATS}, got {memory_format!r}")
    for t in list(module.parameters()) + list(module.buffers()):
        if t.dim() in CHANNELS_LAST:
            t.data = t.data.contiguous(memory_format=CHANNELS_LAST[t.dim()] if memory_format == "channels_last" else torch.contiguous_format)
    return module


def bf16_native() -> bool:
    """Whether this CPU has bfloat16 instructions (AVX512-BF16 or AMX, read from the Linux CPU
    flags) and oneDNN can use them: there, convolutions and matrix products in bfloat16 can be
    faster than in float32. oneDNN also accepts bfloat16 on AVX-512 CPUs without them, by
    emulation, where it is two to four times slower than float32 (measured with
    ``make speed``): those answer False, as does any CPU whose flags cannot be read."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return False
    if not flags & {"avx512_bf16", "amx_bf16"}:
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


@dataclass
class Recipe:
    """One model's whole training run (see the module docstring).

    Attributes:
        name: the recipe's name (``mricourse train <name>``).
        config: the model's config dataclass.
        modules: the trained networks, e.g. ``{"model": net}`` or ``{"G": ..., "D": ...}``.
        optimizers: one per group of parameters, e.g. ``{"opt": Adam(...)}``.
        schedules: learning-rate schedules (functions of the step), advanced after every update.
        update: the model file's update step, ``update(modules, optimizers, batch) -> {loss: value}``
            (hyper-parameters bound with ``functools.partial``).
        train_set: a map-style data set; batches come from :meth:`loader` (shuffled with the seed).
        batch_size, steps: per profile; ``steps`` is the run's budget.
        seed: seeds the weights (at build time) and every random draw of training.
        profile: the profile it was built for.
        settings: the recipe's own hyper-parameters (learning rate, loss weights, ...), recorded
            with the config in checkpoints and ``config.json``.
        val_set, evaluate: held-out data and ``evaluate(modules, val_set) -> {metric: value}``.
        local_state: per-process objects a checkpoint must hold for an exact resume (an image pool).
        log_every: steps between two points of the loss history.
        averages: weight averages (:class:`~mricourse.training.averaging.WeightAverage`) of some
            of the modules, by module name: updated after every step, checkpointed, and swapped
            into the modules when :meth:`fit` returns (the recipe's networks are then the averaged
            ones; the next :meth:`fit` swaps the training weights back first).
        precision: ``"float32"``, or ``"bfloat16"``: the update runs under ``torch.autocast``
            with bfloat16 (convolutions and matrix products in bfloat16, the weights, the
            optimiser and the weight averages in float32): faster only on CPUs with bfloat16
            instructions (:func:`bf16_native`), slower elsewhere; no recipe uses it by default,
            ``make speed`` measures it). Evaluation and inference stay in float32.
        memory_format: ``"contiguous"``, or ``"channels_last"``: the convolution kernels are put in
            the channels-last layout when the recipe is built (:func:`to_memory_format`), for the
            recipes that ``make speed`` measured faster so (the run's numbers differ by rounding
            from the default layout's; recorded in the record, so a checkpoint of the other layout
            is not resumed).
    """

    name: str
    config: object
    modules: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    schedules: dict
    update: Callable
    train_set: Dataset
    batch_size: int
    steps: int
    seed: int
    profile: Profile
    settings: dict = field(default_factory=dict)
    val_set: object = None
    evaluate: Callable | None = None
    local_state: dict = field(default_factory=dict)
    log_every: int = 10
    averages: dict = field(default_factory=dict)
    precision: str = "float32"
    memory_format: str = "contiguous"
    averaged: bool = field(default=False, init=False)

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"Recipe {self.name!r}: expected precision one of {PRECISIONS}, got {self.precision!r}")
        if self.memory_format not in MEMORY_FORMATS:
            raise ValueError(f"Recipe {self.name!r}: expected memory_format one of {MEMORY_FORMATS}, got {self.memory_format!r}")
        if self.memory_format == "channels_last":
            for m in self.modules.values():
                to_memory_format(m, "channels_last")

    @property
    def model(self) -> nn.Module:
        """The module named ``model`` (the one of single-network recipes)."""
        return self.modules["model"]

    def to(self, device) -> Recipe:
        """Move the modules (in place: the optimisers keep their parameters) to ``device``."""
        for m in self.modules.values():
            m.to(device)
        return self

    def set_steps(self, steps: int) -> Recipe:
        """Train for ``steps`` steps instead (the schedules stretch to the new length)."""
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"Recipe.set_steps: expected a whole number >= 1, got {steps!r}")
        self.steps = steps
        for s in self.schedules.values():
            s.steps = steps
            s._set(s.lr_at(s.count))
        return self

    def record(self) -> dict:
        """What defines the run: recipe, profile, seed, steps, batch size, model config and the
        recipe's settings. A checkpoint written with another record is refused on resume."""
        cfg = asdict(self.config) if is_dataclass(self.config) else dict(self.config or {})
        return {
            "recipe": self.name,
            "profile": self.profile.name,
            "seed": self.seed,
            "steps": self.steps,
            "batch_size": self.batch_size,
            "config": cfg,
            "settings": dict(self.settings),
            **({"averages": {k: a.decay for k, a in self.averages.items()}} if self.averages else {}),
            **({"precision": self.precision} if self.precision != "float32" else {}),
            **({"memory_format": self.memory_format} if self.memory_format != "contiguous" else {}),
        }

    def loader(self):
        """Batches of :attr:`train_set`, shuffled by a sampler seeded with :attr:`seed` (split
        over the processes of a distributed run)."""
        return distributed.make_loader(self.train_set, self.batch_size, seed=self.seed)

    def step_fn(self, modules: dict | None = None) -> Callable:
        """``step(batch) -> losses``: one update of ``modules`` (default :attr:`modules`; the
        command line passes their DDP wrappers), then one step of every schedule."""
        modules = self.modules if modules is None else modules

        def precision():
            if self.precision == "float32":
                return contextlib.nullcontext()
            device = next(p.device for m in modules.values() for p in m.parameters())
            return torch.autocast(device.type, dtype=torch.bfloat16)

        def step(batch):
            with precision():
                losses = self.update(modules, self.optimizers, batch)
            for schedule in self.schedules.values():
                schedule.step()
            for name, average in self.averages.items():
                average.update(modules[name])
            return losses

        return step

    def state(self, modules: dict | None = None) -> dict:
        """What a checkpoint holds: modules, optimisers, schedules and weight averages."""
        modules = self.modules if modules is None else modules
        schedules = {f"schedule_{k}": s for k, s in self.schedules.items()}
        return {**modules, **self.optimizers, **schedules, **{f"average_{k}": a for k, a in self.averages.items()}}

    def use_averages(self, on: bool = True) -> Recipe:
        """Put the averaged weights (``on``) or the training weights into the modules."""
        if self.averages and on != self.averaged:
            for name, average in self.averages.items():
                average.swap(self.modules[name])
            self.averaged = on
        return self

    def fit(self, modules: dict | None = None, **train) -> History:
        """Train for :attr:`steps` steps with :func:`~mricourse.training.fit.fit`; ``train``
        sets the other :class:`~mricourse.training.fit.TrainConfig` fields (``checkpoint``,
        ``progress``, ``time_budget`` as a safety stop, ...)."""
        train = {"steps": self.steps, "seed": self.seed, "log_every": self.log_every, **train}
        cfg = TrainConfig(**train)
        self.use_averages(False)
        try:
            return fit(self.step_fn(modules), self.loader(), cfg, self.state(modules), self.record(), self.local_state)
        finally:
            self.use_averages(True)

    def report(self, history: History) -> dict:
        """What a results file records of a run: recipe, seed, steps done and planned, the
        safety stop if it fired, seconds, the hash of the final weights, and its speed: training
        steps per second and the share of a step's time spent drawing data, in the forward pass,
        in the losses and backward pass, and in the optimiser (``History.timing``, from
        :class:`~mricourse.training.fit.StepTimer`)."""
        timing = history.timing or {}
        return {
            "recipe": self.name,
            "seed": self.seed,
            "steps": history.steps_done,
            "steps_planned": self.steps,
            "stopped": history.stopped,
            "seconds": history["time"][-1] if history.get("time") else 0.0,
            "weights_sha256": self.weights_hash(),
            "steps_per_s": timing.get("steps_per_s"),
            "time_split": timing.get("split"),
            "precision": self.precision,
        }

    def weights_hash(self) -> str:
        """SHA-256 of every module's state (parameters and buffers): equal hashes, equal models."""
        return weights_hash(self.modules)

    def __str__(self) -> str:
        opts = ", ".join(f"{k}: {type(o).__name__}" for k, o in self.optimizers.items())
        if self.precision != "float32":
            opts += f"; updates under {self.precision} autocast"
        if self.memory_format != "contiguous":
            opts += f"; weights {self.memory_format.replace('_', '-')}"
        if self.averages:
            opts += "; weight averages " + ", ".join(f"{k} (decay {a.decay})" for k, a in self.averages.items())
        sched = ", ".join(f"{k}: {type(s).__name__}" for k, s in self.schedules.items()) or "none"
        return (
            f"recipe {self.name!r} ({self.profile.name} profile, seed {self.seed}): {self.steps} steps of "
            f"{self.batch_size} from {len(self.train_set)} training samples; optimisers {opts}; schedules {sched}; "
            f"settings {self.settings}"
        )


def weights_hash(modules: dict[str, nn.Module]) -> str:
    """SHA-256 over the state dicts of ``modules`` (DDP wrappers unwrapped), in name order."""
    h = hashlib.sha256()
    for name in sorted(modules):
        state = distributed.unwrap(modules[name]).state_dict()
        for key in sorted(state):
            h.update(f"{name}.{key}".encode())
            h.update(state[key].detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


#: name -> builder(profile, data, overrides, seed) -> Recipe
RECIPES: dict[str, Callable[..., Recipe]] = {}


def define(name: str):
    """Decorator registering a recipe builder ``build(profile, data, overrides, seed) -> Recipe``.
    ``data``: a data folder or None (the course's generated data set); ``overrides``:
    ``{"field": "value"}`` strings for the model config (``apply_overrides``)."""

    def deco(fn):
        RECIPES[name] = fn
        return fn

    return deco


def recipe(name: str, profile: Profile | str | None = None, data=None, overrides: dict | None = None, seed: int = 0) -> Recipe:
    """Build the recipe ``name`` for ``profile`` (default: the active one): its modules are
    initialised from ``seed`` here, and every random draw of training follows it too."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; expected one of {', '.join(sorted(RECIPES))}")
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    seed_everything(seed)  # the initial weights
    return RECIPES[name](prof, Path(data) if data is not None else None, dict(overrides or {}), seed)


def names() -> list[str]:
    """Every trainable model of the course (``mricourse train <name>``)."""
    return sorted(RECIPES)


def apply_overrides(cfg, overrides: dict[str, str]):
    """Return a copy of the dataclass ``cfg`` with ``{"chans": "8"}``-style string overrides
    converted to each field's annotated type (``"none"`` for optional fields, ``"1,2,4"`` for
    tuples, ``true``/``false`` for flags); values given as Python numbers, flags, ``None`` or
    lists/tuples are written out that way first (``{"chans": 8}``, ``{"kernel_sizes": (3, 5)}``)."""
    try:
        hints = typing.get_type_hints(type(cfg))
    except Exception:  # unresolvable annotations: fall back to the current values' types
        hints = {}
    kinds = {f.name: hints.get(f.name, type(getattr(cfg, f.name))) for f in fields(cfg)}
    unknown = sorted(set(overrides) - set(kinds))
    if unknown:
        raise ValueError(f"unknown config field(s) {unknown} for {type(cfg).__name__}; expected some of {sorted(kinds)}")
    conv = {}
    for k, v in overrides.items():
        try:
            conv[k] = _convert(_as_text(v), kinds[k])
        except (TypeError, ValueError):
            raise ValueError(f"config field {k!r} of {type(cfg).__name__} expects {kinds[k]}, got {v!r}") from None
    return replace(cfg, **conv)


def pop_contrasts(overrides: dict, default: tuple[str, ...], recipe_name: str) -> tuple[str, ...]:
    """The ``contrasts`` setting of a recipe's data: ``overrides["contrasts"]`` (comma-separated,
    removed from ``overrides``) or ``default``; every name one of the digital brain's contrasts."""
    from ...data.brain import CONTRASTS

    value = overrides.pop("contrasts", None)
    names = default if value is None else tuple(c.strip() for c in str(value).split(",") if c.strip())
    unknown = [c for c in names if c not in CONTRASTS]
    if not names or unknown:
        raise ValueError(f"{recipe_name}: expected contrasts, comma-separated, from {', '.join(CONTRASTS)}; got {value!r}")
    return tuple(names)


def with_t1(contrasts: tuple[str, ...]) -> tuple[str, ...]:
    """The contrasts to load for training on ``contrasts`` and testing on T1w: T1w added if missing."""
    return tuple(contrasts) if "T1w" in contrasts else ("T1w", *contrasts)


def training_and_t1(train: dict, test: dict, loaded: tuple[str, ...], contrasts: tuple[str, ...]) -> tuple[dict, dict]:
    """Slices loaded in the contrasts ``loaded`` (channels, :func:`with_t1`): the training set in
    ``contrasts``, the held-out set in T1w."""
    t1 = loaded.index("T1w")
    return ({**train, "images": train["images"][:, [loaded.index(c) for c in contrasts]]},
            {**test, "images": test["images"][:, t1 : t1 + 1]})


def pop_float(overrides: dict, key: str, default: float, recipe_name: str, lo: float = float("-inf"), hi: float = float("inf")) -> float:
    """A number setting of a recipe's data, ``overrides[key]`` (removed) or ``default``, in ``[lo, hi]``."""
    value = overrides.pop(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not lo <= number <= hi:
        raise ValueError(f"{recipe_name}: expected {key} a number in [{lo}, {hi}], got {value!r}")
    return number


def _as_text(value) -> str:
    """An override as its command-line text: ``8`` -> ``"8"``, ``(3, 5)`` -> ``"3,5"``, ``None`` -> ``"none"``."""
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return ",".join(_as_text(v) for v in value)
    if isinstance(value, (str, bool, int, float)):
        return str(value).strip()
    raise TypeError(value)


def _convert(value: str, hint):
    """A command-line string -> a value of the type ``hint`` (int, float, str, bool, Optional,
    tuple/list of those)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value.lower() in ("none", "null") and type(None) in args:
            return None
        for arg in args:
            if arg is not type(None):
                try:
                    return _convert(value, arg)
                except (TypeError, ValueError):
                    continue
        raise ValueError(value)
    if origin in (tuple, list) or hint in (tuple, list):
        item = args[0] if args else str
        return (origin or hint)(_convert(x.strip(), item) for x in value.split(",") if x.strip())
    if hint is bool:
        if value.lower() not in ("1", "true", "yes", "0", "false", "no"):
            raise ValueError(value)
        return value.lower() in ("1", "true", "yes")
    return hint(value)
