"""``mricourse train <task> --data <folder> --profile gpu|cpu|smoke [--config k=v ...] --out <run>``.

Runs in one process, or data-parallel under ``torchrun --nproc_per_node N -m mricourse train ...``
(see :mod:`mricourse.distributed`). The run folder receives ``checkpoint.pt`` (resumed from
automatically when it exists), ``config.json`` and ``metrics.json``, written by rank 0.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from . import distributed
from .profile import profile as get_profile
from .tasks import TASKS
from .train import TrainConfig, fit
from .utils import atomic_write, seed_everything


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mricourse", description="Train the course's models on generated or real data.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a model (data-parallel under torchrun)")
    t.add_argument("task", help=f"one of: {', '.join(sorted(TASKS))}")
    t.add_argument("--data", type=Path, default=None, help="data folder (generated or prepared real data)")
    t.add_argument("--profile", default=None, help="smoke | cpu | gpu (default: $MRICOURSE_PROFILE or by device)")
    t.add_argument("--config", action="append", default=[], metavar="KEY=VALUE", help="override a model config field")
    t.add_argument("--out", type=Path, required=True, help="run folder (checkpoint, config, metrics)")
    t.add_argument("--steps", type=int, default=None, help="override the number of steps")
    t.add_argument("--batch-size", type=int, default=None, help="global batch size (split over processes)")
    t.add_argument("--checkpoint-every", type=int, default=50)
    t.add_argument("--log-every", type=int, default=10, help="log the mean losses every this many steps")
    t.add_argument("--time-budget", type=float, default=None, help="stop after this many seconds")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--amp", action="store_true", help="mixed precision (bfloat16 autocast) on GPUs")
    return p


def _checksum(module: torch.nn.Module) -> str:
    """A hash of the parameters (what DDP keeps identical; batch-norm statistics are per process)."""
    h = hashlib.sha256()
    for v in module.parameters():
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def train(args: argparse.Namespace) -> dict:
    if args.task not in TASKS:
        raise SystemExit(f"unknown task {args.task!r}; expected one of {', '.join(sorted(TASKS))}")
    overrides = dict(kv.split("=", 1) for kv in args.config)
    info = distributed.init()
    prof = get_profile(args.profile)
    seed_everything(args.seed)  # same initial weights on every process
    task = TASKS[args.task](overrides, args.data, prof)
    modules = {k: m.to(info.device) for k, m in task.modules.items()}
    wrapped = {k: distributed.wrap(m) for k, m in modules.items()}
    loader = distributed.make_loader(task.train_set, args.batch_size or task.batch_size, seed=args.seed)
    step = task.make_step(wrapped, task.optimizers)
    if args.amp and info.device.type == "cuda":
        inner = step

        def step(batch):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                return inner(batch)

    args.out.mkdir(parents=True, exist_ok=True)
    cfg = TrainConfig(
        steps=args.steps or task.steps,
        time_budget=args.time_budget,
        checkpoint=str(args.out / "checkpoint.pt"),
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
        log_every=args.log_every,
        progress=sys.stderr.isatty(),
        log_lines=not sys.stderr.isatty(),  # batch jobs and torchrun: one line per log step
    )
    history = fit(step, loader, cfg, state={**wrapped, **task.optimizers}, config=task.config, local_state=task.local_state)
    gathered = distributed.all_gather_object([_checksum(m) for m in modules.values()])
    result = {
        "task": args.task,
        "profile": prof.name,
        "world_size": distributed.world_size(),
        "backend": info.backend,
        "steps": history["step"][-1] if history["step"] else 0,
        "final_loss": {k: v[-1] for k, v in history.items() if k not in ("step", "time") and v},
        "replicas_identical": all(g == gathered[0] for g in gathered),
    }
    if distributed.is_main():
        if task.evaluate is not None:
            result["metrics"] = task.evaluate(modules, task.val_set)
        with atomic_write(args.out / "config.json") as tmp:
            tmp.write_text(json.dumps(asdict(task.config), indent=2))
        with atomic_write(args.out / "metrics.json") as tmp:
            tmp.write_text(json.dumps(result, indent=2))
        print(json.dumps(result))
    distributed.barrier()
    distributed.shutdown()
    return result


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "train":
        train(args)


if __name__ == "__main__":
    main()
