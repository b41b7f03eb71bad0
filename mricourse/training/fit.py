"""One small training loop for every model of the course.

``fit(step, loader, cfg, state=...)`` calls ``step(batch) -> {loss name: value}`` for
``cfg.steps`` steps, cycling over ``loader``; it shows a ``tqdm`` progress bar, returns the
history, and saves/resumes checkpoints (``state`` are the modules, optimisers and learning-rate
schedules to save; checkpoints hold their state dicts plus ``asdict(model config)``, every
process's random number generators and ``local_state`` (per-process objects such as an image
pool), are written atomically and loaded with ``weights_only=True``), so that a resumed run
continues exactly as if it had not stopped. A checkpoint written with another model config is
refused. ``cfg.time_budget`` is a safety stop only: the budget of a run is its step count, and a
run the clock stopped says so (``history.stopped``). A loss that is not finite stops the run with
:class:`NonFiniteLoss`, before any checkpoint is written: the last good one is kept. GAN-style
updates are written out in their model files and passed in as ``step``.
"""

from __future__ import annotations

import math
import random
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..files import load_checked, save_checked
from ..utils import seed_everything, to_device
from . import distributed

__all__ = [
    "TrainConfig",
    "History",
    "StepTimer",
    "NonFiniteLoss",
    "fit",
    "supervised_update",
    "supervised_step",
    "save_checkpoint",
    "load_checkpoint",
]


#: what to do about a checkpoint that cannot be resumed from
RESTART_HINT = "delete it, or start over with `mricourse train ... --fresh` (in Python: TrainConfig(resume=False))"


class NonFiniteLoss(RuntimeError):
    """A training loss became NaN or infinite: the run stops, the last good checkpoint is kept."""


class History(dict):
    """``fit``'s history: ``{"step": [...], "time": [...], loss name: [...]}`` (running means at
    each logged step), with ``steps`` (planned) and ``stopped`` (None, or why the run ended
    early, e.g. ``"time budget: 412 of 1000 steps"``)."""

    steps: int = 0
    stopped: str | None = None
    timing: dict | None = None  # set by fit: see StepTimer.summary

    @property
    def steps_done(self) -> int:
        return self["step"][-1] if self.get("step") else 0


class StepTimer:
    """Where a training step's time goes, measured without touching the step function.

    ``data``: drawing the batch from the loader; ``forward``: inside the forward of the modules
    being trained (hooks on each top-level module; a module called inside another is counted
    once); ``optimiser``: inside ``optimizer.step()`` (the optimisers' step hooks); ``backward and
    loss``: the rest of the step (the losses, ``backward()``, bookkeeping). Used by :func:`fit`,
    which stores :meth:`summary` as ``History.timing``.
    """

    PARTS = ("data", "forward", "backward and loss", "optimiser")

    def __init__(self, state: dict):
        self.seconds = dict.fromkeys(("data", "forward", "step", "optimiser"), 0.0)
        self.steps = 0
        self._depth, self._t0, self._handles = 0, 0.0, []
        for obj in (state or {}).values():
            if isinstance(obj, torch.nn.Module):
                self._handles += [obj.register_forward_pre_hook(self._enter), obj.register_forward_hook(self._leave)]
            elif isinstance(obj, torch.optim.Optimizer):
                self._handles += [obj.register_step_pre_hook(self._opt_enter), obj.register_step_post_hook(self._opt_leave)]

    def _enter(self, *_):
        if self._depth == 0:
            self._t0 = time.perf_counter()
        self._depth += 1

    def _leave(self, *_):
        self._depth -= 1
        if self._depth == 0:
            self.seconds["forward"] += time.perf_counter() - self._t0

    def _opt_enter(self, *_):
        self._topt = time.perf_counter()

    def _opt_leave(self, *_):
        self.seconds["optimiser"] += time.perf_counter() - self._topt

    def add(self, part: str, seconds: float) -> None:
        self.seconds[part] += seconds

    def close(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def summary(self) -> dict:
        """``{"steps": n, "seconds": total, "steps_per_s": ..., "split": {part: fraction}}`` over the
        steps this process ran (a resumed run counts those after the resume)."""
        s = self.seconds
        parts = {
            "data": s["data"],
            "forward": s["forward"],
            "backward and loss": max(s["step"] - s["forward"] - s["optimiser"], 0.0),
            "optimiser": s["optimiser"],
        }
        total = sum(parts.values())
        return {
            "steps": self.steps,
            "seconds": total,
            "steps_per_s": self.steps / total if total > 0 else 0.0,
            "split": {k: (v / total if total > 0 else 0.0) for k, v in parts.items()},
        }


@dataclass
class TrainConfig:
    """Training-loop settings (the optimiser and its learning rate belong to the ``step``).

    Attributes:
        steps: number of optimisation steps: the run's budget.
        time_budget: a safety stop: give up after this many seconds of training (None: no
            limit). A run it stops is reported (``history.stopped``) and warned about; it never
            shapes the learning rate, which follows the step.
        log_every: record the running mean of each loss every this many steps.
        checkpoint: file to save to every ``checkpoint_every`` steps and at the end, and to
            resume from when it exists and ``resume`` is true.
        seed: seeds Python, NumPy and torch before the first step (not on resume).
        progress: show a progress bar.
        log_lines: print one line per logged step instead (rank 0 only): for batch jobs and
            ``torchrun`` logs, where a progress bar is unreadable.
        stop_after: pause the run after this step (checkpointed; resuming continues the same
            run of ``steps`` steps): a long run in chunks, e.g. over several sessions.
    """

    steps: int = 1000
    time_budget: float | None = None
    log_every: int = 10
    checkpoint: str | None = None
    checkpoint_every: int = 0
    resume: bool = True
    seed: int = 0
    progress: bool = True
    log_lines: bool = False
    stop_after: int | None = None


def save_checkpoint(
    path, state: dict, step: int = 0, history: dict | None = None, config=None, local_state: dict | None = None
) -> None:
    """Save state dicts of ``state`` (modules/optimisers) with the step, history and config, and,
    under ``"local"``, one entry per process: its random number generators (Python, NumPy, torch)
    and the states of ``local_state`` (objects with ``state_dict``, or ``torch.Generator``).

    In a distributed run every process must call it (the local entries are gathered); only rank 0
    writes (DDP wrappers are unwrapped), then all ranks wait."""
    local = distributed.all_gather_object(_local_payload(local_state or {}))
    if not distributed.is_main():
        distributed.barrier()
        return
    state = {name: distributed.unwrap(obj) if isinstance(obj, torch.nn.Module) else obj for name, obj in state.items()}
    payload = {
        "step": step,
        "history": dict(history or {}),  # a plain dict: weights_only loading knows no History
        "config": asdict(config) if is_dataclass(config) else (config or {}),
        "state": {name: obj.state_dict() for name, obj in state.items()},
        "local": local,
    }
    save_checked(payload, path)  # atomic, with a checksum of the content
    distributed.barrier()


def load_checkpoint(path, state: dict | None = None, map_location="cpu", config=None) -> dict:
    """Load a checkpoint (``weights_only=True``, checksum checked) into the objects of ``state``;
    return it. A corrupted file raises :class:`~mricourse.files.CheckpointError` naming it; with
    ``config``, a checkpoint written with another config raises ``ValueError`` naming the fields
    that differ (before anything is loaded)."""
    path = Path(path)
    payload = load_checked(path, map_location, fix=RESTART_HINT)
    if config is not None:
        mine = asdict(config) if is_dataclass(config) else dict(config)
        theirs = payload.get("config") or {}
        differ = sorted(k for k in set(mine) | set(theirs) if _plain(mine.get(k)) != _plain(theirs.get(k)))
        if differ:
            what = ", ".join(f"{k}: {theirs.get(k)!r} there, {mine.get(k)!r} here" for k in differ)
            raise ValueError(f"{path} was trained with another config ({what}); {RESTART_HINT}")
    for name, obj in (state or {}).items():
        obj = distributed.unwrap(obj) if isinstance(obj, torch.nn.Module) else obj
        if name not in payload["state"]:
            raise KeyError(f"checkpoint {path} has no state {name!r}; it has {sorted(payload['state'])}")
        try:
            obj.load_state_dict(payload["state"][name])
        except (RuntimeError, ValueError) as e:
            raise ValueError(
                f"{path}: its {name!r} does not fit this run ({' '.join(str(e).split())[:300]}); {RESTART_HINT}"
            ) from None
    return payload


def _plain(value):
    """Tuples and lists compare equal (a config saved and loaded turns tuples into lists)."""
    return [_plain(v) for v in value] if isinstance(value, (tuple, list)) else value


def _local_payload(local_state: dict) -> dict:
    """This process's random number generators and the states of its ``local_state`` objects."""
    np_state = np.random.get_state()  # ("MT19937", uint32 keys, pos, has_gauss, cached_gaussian)
    rng = {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    states = {k: o.get_state() if isinstance(o, torch.Generator) else o.state_dict() for k, o in local_state.items()}
    return to_device({"rng": rng, "state": states}, "cpu")  # gathered to rank 0 and saved from the CPU


def _restore_local(entry: dict, local_state: dict) -> None:
    """Inverse of :func:`_local_payload`."""
    rng = entry["rng"]
    version, internal, gauss = rng["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, *rest = rng["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    for k, obj in local_state.items():
        if k not in entry["state"]:
            raise KeyError(f"checkpoint has no local state {k!r}; it has {sorted(entry['state'])}")
        obj.set_state(entry["state"][k]) if isinstance(obj, torch.Generator) else obj.load_state_dict(entry["state"][k])


def fit(
    step: Callable[[object], dict],
    loader: Iterable,
    cfg: TrainConfig | None = None,
    state: dict | None = None,
    config=None,
    local_state: dict | None = None,
) -> History:
    """Run ``step`` on batches from ``loader`` and return ``{"step": [...], loss: [...], "time": [...]}``.

    Args:
        step: does one update on a batch and returns ``{name: float}`` losses.
        loader: an iterable of batches (re-iterated when exhausted, e.g. a DataLoader).
        cfg: the :class:`TrainConfig`.
        state: modules, optimisers and schedules to checkpoint, e.g. ``{"model": net, "opt": opt,
            "schedule": schedule}``.
        config: the model's config dataclass (or a dict), stored in the checkpoint; resuming from
            a checkpoint written with another config raises ``ValueError`` naming the fields.
        local_state: per-process objects to checkpoint and restore on resume, besides the
            random number generators (an image pool, a data set's ``torch.Generator``).

    Each process is seeded with ``cfg.seed + rank`` (fresh noise per process; DDP makes the
    initial weights identical).
    """
    cfg = cfg or TrainConfig()
    if not isinstance(cfg.steps, int) or cfg.steps < 1:
        raise ValueError(f"fit: expected TrainConfig.steps >= 1, got {cfg.steps!r}")
    if cfg.log_every < 1:
        raise ValueError(f"fit: expected TrainConfig.log_every >= 1, got {cfg.log_every!r}")
    state, local_state = state or {}, local_state or {}
    history = History(step=[], time=[])
    history.steps = cfg.steps
    start, local = 0, None
    if cfg.checkpoint and cfg.resume and Path(cfg.checkpoint).exists():
        payload = load_checkpoint(cfg.checkpoint, state, config=config)
        start = payload["step"]
        history.update(payload["history"] or {})
        local = payload.get("local") or []
        if len(local) != distributed.world_size():
            warnings.warn(
                f"{cfg.checkpoint} was written by {len(local)} process(es), resumed on {distributed.world_size()}: "
                "random number streams restart from the seed",
                stacklevel=2,
            )
            local = None
            seed_everything(cfg.seed + distributed.rank() + start)
    else:
        seed_everything(cfg.seed + distributed.rank())
    device = _device_of(state)
    running: dict[str, list[float]] = {}
    t0 = time.perf_counter() - (history["time"][-1] if history["time"] else 0.0)
    epoch_len = len(loader) if hasattr(loader, "__len__") else None
    epoch = start // epoch_len if epoch_len else 0
    skip = start % epoch_len if epoch_len else 0
    # the random state goes back to where the run stopped: after the current epoch's iterator was
    # made and its first ``skip`` batches drawn, or, at an epoch boundary, before the next is made
    if local is not None and not skip:
        _restore_local(local[distributed.rank()], local_state)
    it = _epoch_iter(loader, epoch, skip=skip)
    if local is not None and skip:
        _restore_local(local[distributed.rank()], local_state)
    show = cfg.progress and distributed.is_main()
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, disable=not show, desc="training")
    timer = StepTimer(state)
    for i in bar:
        t_data = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:
            epoch += 1
            it = _epoch_iter(loader, epoch)
            batch = next(it)
        t_step = time.perf_counter()
        timer.add("data", t_step - t_data)
        losses = step(batch)
        timer.add("step", time.perf_counter() - t_step)
        timer.steps += 1
        done = i + 1
        for k, v in losses.items():
            v = float(v)
            if not math.isfinite(v):
                bar.close()
                timer.close()
                kept = _kept(cfg.checkpoint)
                raise NonFiniteLoss(
                    f"training stopped at step {done}: the loss {k!r} is {v} ({kept}); lower the learning rate, "
                    "or check the data for NaN or infinite values"
                )
            running.setdefault(k, []).append(v)
        elapsed = time.perf_counter() - t0
        out_of_time = cfg.time_budget is not None and distributed.all_reduce_mean(float(elapsed >= cfg.time_budget), device) > 0
        pause = cfg.stop_after is not None and done >= cfg.stop_after
        if done % cfg.log_every == 0 or done == cfg.steps or out_of_time or pause:
            history["step"].append(done)
            history["time"].append(elapsed)
            for k, vals in running.items():
                history.setdefault(k, []).append(distributed.all_reduce_mean(sum(vals) / len(vals), device))
            losses = {k: f"{v[-1]:.4g}" for k, v in history.items() if k not in ("step", "time")}
            bar.set_postfix(losses)
            if cfg.log_lines and distributed.is_main():
                print(
                    f"step {done}/{cfg.steps}  {elapsed:.1f} s  " + "  ".join(f"{k} {v}" for k, v in losses.items()), flush=True
                )
            running = {}
        if cfg.checkpoint and cfg.checkpoint_every and done % cfg.checkpoint_every == 0:
            _check_finite_weights(state, done, cfg.checkpoint)
            save_checkpoint(cfg.checkpoint, state, done, history, config, local_state)
        if pause and done < cfg.steps:
            history.stopped = f"paused at {done} of {cfg.steps} steps (stop_after); resume to continue"
            break
        if out_of_time and done < cfg.steps:
            history.stopped = f"time budget: stopped at {done} of {cfg.steps} steps after {elapsed:.0f} s"
            warnings.warn(
                f"the safety stop fired: {history.stopped} (TrainConfig.time_budget={cfg.time_budget}); "
                "this model is not the one the recipe trains",
                stacklevel=2,
            )
            if distributed.is_main():
                print(f"WARNING: {history.stopped}", flush=True)
            break
    bar.close()
    timer.close()
    history.timing = timer.summary()
    if cfg.checkpoint and history["step"]:
        _check_finite_weights(state, history["step"][-1], cfg.checkpoint)
        save_checkpoint(cfg.checkpoint, state, history["step"][-1], history, config, local_state)
    return history


def _kept(checkpoint) -> str:
    if checkpoint and Path(checkpoint).exists():
        return f"the last checkpoint, {checkpoint}, is kept"
    return "no checkpoint was written"


def _check_finite_weights(state: dict, done: int, checkpoint) -> None:
    """Refuse to checkpoint NaN or infinite weights (the last good checkpoint stays)."""
    for name, obj in state.items():
        if isinstance(obj, torch.nn.Module) and not all(bool(torch.isfinite(p).all()) for p in obj.parameters()):
            raise NonFiniteLoss(
                f"training stopped at step {done}: the weights of {name!r} are not finite ({_kept(checkpoint)}); "
                "lower the learning rate, or check the data for NaN or infinite values"
            )


def _device_of(state: dict) -> torch.device:
    """The device of the first module in ``state`` (where collectives must run), else the CPU."""
    for obj in state.values():
        if isinstance(obj, torch.nn.Module):
            for p in obj.parameters():
                return p.device
    return torch.device("cpu")


def _epoch_iter(loader, epoch: int, skip: int = 0):
    """Iterate over one epoch of ``loader`` (reseeding a distributed sampler), skipping ``skip``
    batches so a resumed run continues where it stopped."""
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)
    it = iter(loader)
    for _ in range(skip):
        next(it, None)
    return it


def supervised_update(
    modules: dict, optimizers: dict, batch, loss_fn: Callable, module: str = "model", optimizer: str = "opt"
) -> dict:
    """The update step of supervised learning, in the recipes' shape: one optimiser step of
    ``modules[module]`` on an ``(inputs, target)`` batch, minimising ``loss_fn(prediction,
    target)``. ``inputs`` may be a tuple (passed as ``model(*inputs)``); batches are moved to the
    model's device. Returns ``{"loss": value}``."""
    model, opt = modules[module], optimizers[optimizer]
    device = next(model.parameters()).device
    inputs, target = to_device(batch, device)
    model.train()
    pred = model(*inputs) if isinstance(inputs, (tuple, list)) else model(inputs)
    loss = loss_fn(pred, target)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return {"loss": loss.item()}


def supervised_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss_fn: Callable) -> Callable:
    """``step(batch)`` for :func:`fit`: :func:`supervised_update` of ``model`` with ``optimizer``."""
    return lambda batch: supervised_update({"model": model}, {"opt": optimizer}, batch, loss_fn)
