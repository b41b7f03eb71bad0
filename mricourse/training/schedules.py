"""Learning rates as functions of the step.

A schedule sets the learning rate of every parameter group of its optimiser to ``lr_at(step)``;
call :meth:`Schedule.step` after each optimiser step. The rate depends on the step count only,
never on the clock, so the same seed and the same number of steps give the same model on any
machine, however busy. Schedules have ``state_dict``/``load_state_dict``, saved in checkpoints by
:func:`~mricourse.training.fit.fit`, so a resumed run continues with the rate it stopped at.
"""

from __future__ import annotations

import math
from collections.abc import Callable

__all__ = ["Schedule", "OneCycleSchedule", "LinearDecaySchedule", "ConstantSchedule", "scheduled"]


class Schedule:
    """Base class: ``lr_at(step)`` for ``step`` in ``[0, steps]``; the rate at step ``steps`` is
    kept for any step beyond."""

    def __init__(self, optimizer, steps: int):
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"{type(self).__name__}: expected steps, a whole number >= 1, got {steps!r}")
        self.optimizer, self.steps, self.count = optimizer, steps, 0
        self._set(self.lr_at(0))

    def lr_at(self, step: int) -> float:
        raise NotImplementedError

    def progress(self, step: int) -> float:
        """The fraction of the run done at ``step``, in [0, 1]."""
        return min(step / self.steps, 1.0)

    @property
    def lr(self) -> float:
        """The learning rate now (of the first parameter group)."""
        return self.optimizer.param_groups[0]["lr"]

    def _set(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def step(self) -> None:
        """Advance one step (call after each optimiser step)."""
        self.count += 1
        self._set(self.lr_at(self.count))

    def state_dict(self) -> dict:
        return {"count": self.count, "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        if state.get("steps", self.steps) != self.steps:
            raise ValueError(f"{type(self).__name__}: the saved schedule spans {state['steps']} steps, this one {self.steps}")
        self.count = int(state["count"])
        self._set(self.lr_at(self.count))


class ConstantSchedule(Schedule):
    """The same learning rate ``lr`` at every step (a schedule only so that every recipe has one)."""

    def __init__(self, optimizer, lr: float, steps: int):
        self.max_lr = lr
        super().__init__(optimizer, steps)

    def lr_at(self, step: int) -> float:
        return self.max_lr


class OneCycleSchedule(Schedule):
    """A one-cycle learning rate (Smith and Topin 2019), as ``torch.optim.lr_scheduler.OneCycleLR``:
    with ``p = step / steps``, a linear warm-up to ``max_lr`` over the first ``warmup`` of the
    run (from ``0.04 max_lr``), then a cosine decay to ``final * max_lr`` at the last step::

        lr(p) = max_lr * (final + (1 - final) * (1 + cos(pi * (p - warmup) / (1 - warmup))) / 2)
    """

    def __init__(self, optimizer, max_lr: float, steps: int, warmup: float = 0.1, final: float = 0.01):
        if not 0 <= warmup < 1:
            raise ValueError(f"OneCycleSchedule: expected 0 <= warmup < 1, got {warmup}")
        self.max_lr, self.warmup, self.final = max_lr, warmup, final
        super().__init__(optimizer, steps)

    def lr_at(self, step: int) -> float:
        p = self.progress(step)
        if p < self.warmup:
            return self.max_lr * max(p / self.warmup, 0.04)
        q = (p - self.warmup) / (1 - self.warmup)
        return self.max_lr * (self.final + (1 - self.final) * 0.5 * (1 + math.cos(math.pi * q)))


class LinearDecaySchedule(Schedule):
    """CycleGAN's learning rate (Zhu et al. 2017): constant ``lr`` for the first ``decay_from`` of
    the run, then a linear decay to zero at the last step."""

    def __init__(self, optimizer, lr: float, steps: int, decay_from: float = 0.5):
        if not 0 <= decay_from < 1:
            raise ValueError(f"LinearDecaySchedule: expected 0 <= decay_from < 1, got {decay_from}")
        self.max_lr, self.decay_from = lr, decay_from
        super().__init__(optimizer, steps)

    def lr_at(self, step: int) -> float:
        return self.max_lr * min(1.0, (1.0 - self.progress(step)) / (1.0 - self.decay_from))


def scheduled(step: Callable, *schedules: Schedule) -> Callable:
    """``step`` followed by ``schedule.step()`` for each schedule (a learning-rate update after
    every optimiser step), for the step functions that do not take a schedule themselves."""

    def run(batch):
        out = step(batch)
        for schedule in schedules:
            schedule.step()
        return out

    return run
