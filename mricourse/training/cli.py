"""``mricourse train <task> --data <folder> --profile gpu|cpu|smoke [--config k=v ...] --out <run>``.

Runs in one process, or data-parallel under ``torchrun --nproc_per_node N -m mricourse train ...``
(see :mod:`mricourse.distributed`). The run folder receives ``checkpoint.pt`` (resumed from
automatically when it exists; ``--fresh`` starts over), ``config.json`` and ``metrics.json``,
written by rank 0.

Every argument is checked by :func:`validate` before any data set or model is built. An error is
one line on stderr that names the argument (or file) and the fix, with exit code 2 for a command
line that cannot work and 1 for a fault met while running (a corrupted checkpoint, unreadable
data); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import sys
import tempfile
import traceback
from pathlib import Path

import torch

from ..profiles import PROFILES
from ..profiles import profile as get_profile
from ..utils import atomic_write, processor
from . import distributed
from .recipes import names, recipe


class UsageError(ValueError):
    """A command line that cannot work (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage block) and exit code 2."""

    def error(self, message: str):
        raise UsageError(f"{message} (see {self.prog} --help)")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="mricourse", description="Train the course's models on generated or real data.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    t = sub.add_parser("train", help="train a model (data-parallel under torchrun)")
    t.add_argument("task", help=f"one of: {', '.join(names())}")
    t.add_argument("--data", type=Path, default=None, help="data folder (generated or prepared real data)")
    t.add_argument("--profile", default=None, help="smoke | cpu | gpu (default: $MRICOURSE_PROFILE or by device)")
    t.add_argument("--config", action="append", default=[], metavar="KEY=VALUE", help="override a model config field")
    t.add_argument("--out", type=Path, required=True, help="run folder (checkpoint, config, metrics)")
    t.add_argument("--steps", type=int, default=None, help="override the number of steps (>= 1)")
    t.add_argument("--batch-size", type=int, default=None, help="global batch size (split over processes)")
    t.add_argument("--checkpoint-every", type=int, default=50, help="save every this many steps (0: at the end only)")
    t.add_argument(
        "--log-every", type=int, default=None, help="log the mean losses every this many steps (default: the recipe's)"
    )
    t.add_argument("--time-budget", type=float, default=None, help="stop after this many seconds (> 0)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--amp", action="store_true", help="mixed precision (bfloat16 autocast) on GPUs")
    t.add_argument("--stop-after", type=int, default=None, help="pause after this step; run the same command again to continue")
    t.add_argument("--fresh", action="store_true", help="start from step 0 instead of resuming from --out's checkpoint")
    t.add_argument(
        "--torch-profile",
        action="store_true",
        help="run under torch's profiler; write the operators that took the most time to --out/profile.txt",
    )
    t.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return p


def validate(args: argparse.Namespace) -> dict[str, str]:
    """Check the ``train`` arguments before anything is built; return the ``--config`` overrides.

    Raises :class:`UsageError` naming the argument and what it accepts. The profile (argument or
    ``$MRICOURSE_PROFILE``) is resolved here; the ``--config`` keys are checked against the
    task's config dataclass by the task itself, before it reads data.
    """
    if args.task not in names():
        raise UsageError(f"unknown task {args.task!r}; expected one of {', '.join(names())}")
    try:
        get_profile(args.profile)
    except ValueError as e:
        where = "--profile" if args.profile else "$MRICOURSE_PROFILE"
        raise UsageError(f"{where}: {e}; expected one of {', '.join(PROFILES)}") from None
    positive = {
        "--steps": args.steps,
        "--batch-size": args.batch_size,
        "--log-every": args.log_every,
        "--stop-after": args.stop_after,
    }
    for name, value in positive.items():
        if value is not None and value < 1:
            raise UsageError(f"{name} must be a whole number >= 1, got {value}")
    if args.checkpoint_every < 0:
        raise UsageError(f"--checkpoint-every must be >= 0 (0: save at the end only), got {args.checkpoint_every}")
    if args.time_budget is not None and not (math.isfinite(args.time_budget) and args.time_budget > 0):
        raise UsageError(f"--time-budget must be a number of seconds > 0, got {args.time_budget}")
    if not 0 <= args.seed < 2**31:
        raise UsageError(f"--seed must be in [0, 2**31), got {args.seed}")
    overrides: dict[str, str] = {}
    for kv in args.config:
        key, eq, value = kv.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"--config expects KEY=VALUE (e.g. --config chans=8), got {kv!r}")
        if key.strip() in overrides:
            raise UsageError(f"--config {key.strip()} given twice ({overrides[key.strip()]!r} and {value!r})")
        overrides[key.strip()] = value
    if args.data is not None and not args.data.is_dir():
        what = "is not a folder" if args.data.exists() else "does not exist"
        raise UsageError(
            f"--data {args.data} {what}; give a data folder (python data_scripts/make_data.py --list shows the course's), "
            "or leave --data out to generate the task's data set"
        )
    _check_writable(args.out)
    return overrides


def _check_writable(out: Path) -> None:
    """Create the run folder ``out`` and check that a file can be written in it."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder for the run")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as e:
        raise UsageError(f"--out {out}: cannot write there ({e.strerror or e}); choose a writable folder") from None


def _checksum(module: torch.nn.Module) -> str:
    """A hash of the parameters (what DDP keeps identical; batch-norm statistics are per process)."""
    h = hashlib.sha256()
    for v in module.parameters():
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _finite(obj):
    """``obj`` with every NaN or infinite float replaced by None (metrics.json is strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _write_json(path: Path, obj) -> None:
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(_finite(obj), indent=2, allow_nan=False))


def train(args: argparse.Namespace) -> dict:
    return _train_recipe(args, validate(args))


def _build(build):
    """Call a builder; its config check (``apply_overrides``) is a usage error."""
    try:
        return build()
    except ValueError as e:  # the config check (apply_overrides) runs before any data is read
        if any(f.name == "apply_overrides" for f in traceback.extract_tb(e.__traceback__)):
            raise UsageError(f"--config: {e}") from e
        raise


def _train_recipe(args: argparse.Namespace, overrides: dict) -> dict:
    """Train the recipe exactly as its chapter does (:meth:`Recipe.fit`), each module wrapped in
    ``DistributedDataParallel`` (a no-op wrapper in one process), with checkpoints in ``--out``."""
    info = distributed.init()
    prof = get_profile(args.profile)
    r = _build(lambda: recipe(args.task, prof, args.data, overrides, args.seed))
    if args.steps:
        r.set_steps(args.steps)
    if args.batch_size:
        r.batch_size = args.batch_size
    r.log_every = args.log_every or r.log_every
    r.to(info.device)
    if args.amp and info.device.type == "cuda":  # bfloat16 autocast around the recipe's own update
        update = r.update

        def autocast_update(modules, optimizers, batch):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                return update(modules, optimizers, batch)

        r.update = autocast_update
    wrapped = {k: distributed.wrap(m) for k, m in r.modules.items()}
    profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) if args.torch_profile else None
    with profiler or contextlib.nullcontext():
        history = r.fit(
            wrapped,
            time_budget=args.time_budget,
            checkpoint=str(args.out / "checkpoint.pt"),
            checkpoint_every=args.checkpoint_every,
            resume=not args.fresh,
            stop_after=args.stop_after,
            progress=sys.stderr.isatty(),
            log_lines=not sys.stderr.isatty(),  # batch jobs and torchrun: one line per log step
        )
    gathered = distributed.all_gather_object([_checksum(m) for m in r.modules.values()])
    result = {
        "task": args.task,
        "profile": prof.name,
        "seed": args.seed,
        "world_size": distributed.world_size(),
        "backend": info.backend,
        "steps": history.steps_done,
        "steps_planned": r.steps,
        "stopped": history.stopped,
        "weights_sha256": r.weights_hash(),
        "processor": processor(),  # the same hash needs the same processor and number of threads
        "final_loss": {k: v[-1] for k, v in history.items() if k not in ("step", "time") and v},
        "replicas_identical": all(g == gathered[0] for g in gathered),
        "speed": history.timing,  # steps per second and where a step's time goes
    }
    if distributed.is_main():
        if profiler is not None:
            table = profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=25)
            with atomic_write(args.out / "profile.txt") as tmp:
                tmp.write_text(table)
            print(table, file=sys.stderr)
        if r.evaluate is not None:
            result["metrics"] = r.evaluate(r.modules, r.val_set)
        _write_json(args.out / "config.json", r.record())
        _write_json(args.out / "metrics.json", result)
        print(json.dumps(_finite(result)))
    distributed.barrier()
    distributed.shutdown()
    return result


def main(argv: list[str] | None = None) -> int:
    """The command line; returns 0, or exits with one line on stderr and code 2 (usage) or 1."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = _parser().parse_args(argv)
        if args.command == "train":
            train(args)
        return 0
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as e:
        if debug:
            raise
        _fail(_one_line(e), 2 if isinstance(e, UsageError) else 1)


def _one_line(e: BaseException) -> str:
    msg = " ".join(str(e).split()) or repr(e)
    if type(e).__name__ not in ("ValueError", "TypeError", "RuntimeError", "UsageError", "CheckpointError", "NonFiniteLoss"):
        msg = f"{type(e).__name__}: {msg}"
    return msg


def _fail(message: str, code: int):
    print(f"mricourse: error: {message}" + ("" if code == 2 else " (--debug shows the traceback)"), file=sys.stderr)
    raise SystemExit(code)


if __name__ == "__main__":
    raise SystemExit(main())
