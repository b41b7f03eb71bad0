"""Weight averaging: an exponential moving average (EMA) of a network's weights during training.

After every update, ``theta_avg <- d theta_avg + (1 - d) theta`` with the decay ``d`` ramped up
as ``min(d, (1 + n) / (10 + n))`` over the first updates ``n`` (so that the average forgets its
random initialisation quickly in short runs); buffers (batch-norm statistics, spectral-norm
vectors) are copied. The averaged weights are the model one evaluates: the noise of the last
stochastic updates averages out (Polyak and Juditsky 1992; for GAN generators Yazici et al. 2019,
"The unusual effectiveness of averaging in GAN training", and Karras et al.'s progressive GAN).

A :class:`~mricourse.training.recipes.Recipe` with ``averages`` updates them after every step,
checkpoints them, and after training swaps them into its modules (:meth:`WeightAverage.swap`):
the recipe's networks are then the averaged ones, and the raw training weights wait in the average
until training resumes.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from . import distributed

__all__ = ["WeightAverage"]


class WeightAverage(nn.Module):
    """The exponential moving average of ``module``'s parameters (see the module docstring).

    Args:
        module: the network being trained (not modified).
        decay: the average's decay ``d`` per update (0.999 averages over roughly the last 1000).
        warmup: ramp the decay up as ``(1 + n) / (10 + n)`` over the first updates.
    """

    def __init__(self, module: nn.Module, decay: float = 0.999, warmup: bool = True):
        super().__init__()
        if not 0.0 < decay < 1.0:
            raise ValueError(f"WeightAverage: expected a decay in (0, 1), got {decay!r}")
        self.decay, self.warmup = float(decay), bool(warmup)
        self.average = copy.deepcopy(distributed.unwrap(module)).requires_grad_(False)
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    def rate(self) -> float:
        """The decay of the next update."""
        n = int(self.updates) + 1
        return min(self.decay, (1 + n) / (10 + n)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        """Fold ``module``'s current weights into the average (its buffers are copied)."""
        module = distributed.unwrap(module)
        d = self.rate()
        for avg, p in zip(self.average.parameters(), module.parameters(), strict=True):
            avg.lerp_(p.detach(), 1.0 - d)
        for avg, b in zip(self.average.buffers(), module.buffers(), strict=True):
            avg.copy_(b)
        self.updates += 1

    @torch.no_grad()
    def swap(self, module: nn.Module) -> None:
        """Exchange the weights (parameters and buffers) of ``module`` and of the average, in place:
        optimisers keep their parameters, which now hold the other set of values."""
        module = distributed.unwrap(module)
        pairs = list(zip(self.average.parameters(), module.parameters(), strict=True))
        pairs += list(zip(self.average.buffers(), module.buffers(), strict=True))
        for a, m in pairs:
            tmp = m.detach().clone()
            m.copy_(a)
            a.copy_(tmp)

    def extra_repr(self) -> str:
        return f"decay={self.decay}, warmup={self.warmup}"
