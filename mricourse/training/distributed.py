"""Data-parallel training on PyTorch's own engine (``torch.distributed`` + DDP).

Launched with ``torchrun --nproc_per_node N ...`` (or across nodes with torchrun's usual
``--nnodes/--node_rank/--rdzv_*`` arguments), every process runs the same script; torchrun sets
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``. :func:`init` starts the process group (gloo on CPUs,
nccl on GPUs), :func:`wrap` puts a model in ``DistributedDataParallel`` (gradients are averaged
over processes during ``backward``), and :func:`make_loader` gives each process its share of every
global batch through a ``DistributedSampler``. Without torchrun all of it degrades to a single
process, with the same sampler so that data order, and hence results, do not depend on the
number of processes. Logging, checkpoints and validation happen on rank 0 only (:func:`is_main`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler

__all__ = [
    "DistInfo",
    "init",
    "is_main",
    "world_size",
    "rank",
    "wrap",
    "unwrap",
    "make_loader",
    "all_reduce_mean",
    "all_gather_object",
    "barrier",
    "shutdown",
]


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None


def init(backend: str | None = None) -> DistInfo:
    """Start the process group when launched by torchrun; a no-op single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available()
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if world == 1:
        return DistInfo(0, 1, 0, device if use_cuda else torch.device("cpu"), None)
    backend = backend or ("nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, device, backend)


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    """True on rank 0 (and in a single process): the one that logs and writes checkpoints."""
    return rank() == 0


def wrap(model: torch.nn.Module) -> torch.nn.Module:
    """``DistributedDataParallel(model)`` when distributed (parameters are broadcast from rank 0
    so every replica starts identical), the model itself otherwise.

    A model with several trained parts (a GAN's generator and discriminator) wraps each part on
    its own, so that each optimiser's gradients are averaged in the ``backward`` that produces
    them; the update steps only call the modules they get (no other attribute), so they run on
    the plain modules and on their wrappers alike. Batch-norm statistics stay per process (rank
    0's are saved)."""
    if world_size() == 1:
        return model
    dev = next(model.parameters()).device
    return DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module inside a DDP wrapper (for saving and evaluation)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def make_loader(
    dataset: Dataset, global_batch: int, shuffle: bool = True, seed: int = 0, drop_last: bool = True, **kwargs
) -> DataLoader:
    """A loader whose per-process batches together form the same global batch whatever the number
    of processes: process r of W gets ``global_batch / W`` samples of it. Shuffling is seeded per
    epoch (``loader.sampler.set_epoch``), so a resumed run sees the same order."""
    w = world_size()
    if global_batch % w:
        raise ValueError(f"make_loader: global batch {global_batch} is not divisible by the {w} processes")
    if drop_last and len(dataset) < global_batch:
        raise ValueError(
            f"make_loader: {len(dataset)} samples do not fill one global batch of {global_batch}; pass a smaller batch"
        )
    sampler = DistributedSampler(dataset, num_replicas=w, rank=rank(), shuffle=shuffle, seed=seed, drop_last=drop_last)
    return DataLoader(dataset, batch_size=global_batch // w, sampler=sampler, drop_last=drop_last, **kwargs)


def all_reduce_mean(value: float, device: torch.device | str = "cpu") -> float:
    """Mean of a float over processes (for logging). ``device``: where the collective runs, the
    device of the model (NCCL reduces CUDA tensors only; gloo CPU tensors)."""
    if world_size() == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64 if torch.device(device).type == "cpu" else torch.float32, device=device)
    dist.all_reduce(t)
    return float(t) / world_size()


def all_gather_object(obj) -> list:
    """``[obj of rank 0, obj of rank 1, ...]`` (picklable objects), on every process."""
    if world_size() == 1:
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
