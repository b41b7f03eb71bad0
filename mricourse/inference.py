"""Running a trained network on held-out data, and the intensity range of ``tanh`` generators.

- :func:`predict`: a network in eval mode, without gradients, on batches of its input, on the
  network's device; the outputs come back concatenated on the CPU and the network's train/eval
  modes as they were. Every chapter and every recipe's evaluation runs its networks this way.
- :func:`to_gan_range` / :func:`from_gan_range`: the generators of the DCGAN and the CycleGAN end
  in ``tanh``, so they see and produce images in [-1, 1]; images whose brain's bright end is
  ``vmax`` map to it linearly (``[0, vmax] -> [-1, 1]``, clipped) and back.
"""

from __future__ import annotations

import operator

import torch
from torch import nn

__all__ = ["predict", "to_gan_range", "from_gan_range"]


def _device_of(net: nn.Module) -> torch.device:
    """The device of ``net``'s first parameter (or buffer); the CPU for a module without either."""
    for t in (*net.parameters(), *net.buffers()):
        return t.device
    return torch.device("cpu")


def predict(net: nn.Module, x: torch.Tensor, *args, batch_size: int = 16, device=None, **kwargs) -> torch.Tensor:
    """``net(x[i : i + batch_size], *args, **kwargs)`` for every batch of ``x``, concatenated.

    Args:
        net: the network; run in eval mode (dropout off, batch norm on its running statistics)
            under ``torch.no_grad``. The mode of each of its modules is restored afterwards, also
            when a call fails.
        x: the inputs, a tensor whose first dimension indexes the items (N, ...). Each batch is
            moved to ``device``.
        ``*args``, ``**kwargs``: passed unchanged to every call (tensors among them moved to ``device``):
            the same for every batch, e.g. a noise level.
        batch_size: items per call (>= 1). In eval mode each item's output does not depend on
            the others in its batch; the batch size only bounds the memory (and may move the
            last float bits).
        device: where to run; default: the device of ``net``'s parameters (the network is not
            moved).

    Returns:
        the outputs (N, ...) on the CPU; ``net`` must return one tensor per call whose first
        dimension indexes the batch's items.
    """
    if not isinstance(net, nn.Module):
        raise TypeError(f"predict: expected a torch.nn.Module, got {type(net).__name__}")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"predict: expected the inputs as one tensor (N, ...), got {type(x).__name__}")
    if x.ndim == 0 or len(x) == 0:
        raise ValueError(f"predict: expected at least one input item, a tensor (N, ...) with N >= 1; got shape {tuple(x.shape)}")
    if isinstance(batch_size, bool) or not hasattr(batch_size, "__index__") or operator.index(batch_size) < 1:
        raise ValueError(f"predict: expected batch_size an integer >= 1, got {batch_size!r}")
    batch_size = operator.index(batch_size)
    device = _device_of(net) if device is None else torch.device(device)

    def to(v):
        return v.to(device) if isinstance(v, torch.Tensor) else v

    args, kwargs = [to(a) for a in args], {k: to(v) for k, v in kwargs.items()}
    modes = [(m, m.training) for m in net.modules()]
    net.eval()
    try:
        outputs = []
        with torch.no_grad():
            for i in range(0, len(x), batch_size):
                out = net(x[i : i + batch_size].to(device), *args, **kwargs)
                if not isinstance(out, torch.Tensor):
                    raise TypeError(f"predict: expected the network to return a tensor, got {type(out).__name__}")
                outputs.append(out.cpu())
    finally:
        net.train(modes[0][1])
        for m, training in modes:  # submodules that had their own mode (a frozen batch norm) get it back
            m.training = training
    return torch.cat(outputs)


def to_gan_range(x: torch.Tensor, vmax: float = 1.0) -> torch.Tensor:
    """Images on [0, ``vmax``] (the brain's bright end at ``vmax``) -> [-1, 1], a ``tanh``
    generator's range: ``2 x / vmax - 1``, clipped to [-1, 1]."""
    if not vmax > 0:
        raise ValueError(f"to_gan_range: expected vmax > 0, got {vmax}")
    return (x / vmax).clamp(0.0, 1.0) * 2.0 - 1.0


def from_gan_range(y: torch.Tensor, vmax: float = 1.0) -> torch.Tensor:
    """[-1, 1] (clipped) -> [0, ``vmax``]: ``(y + 1) / 2 * vmax``, the inverse of :func:`to_gan_range`."""
    if not vmax > 0:
        raise ValueError(f"from_gan_range: expected vmax > 0, got {vmax}")
    return (y.clamp(-1.0, 1.0) + 1.0) / 2.0 * vmax
