"""How fast each recipe trains on this machine, and what would make it faster.

``python -m mricourse.training.speed [task ...] [--profile cpu] [--steps 20] [--variants ...]``
(``make speed``) builds each recipe, draws its batches first (so that every variant times the
same batches), then times ``--steps`` updates after ``--warmup`` untimed ones, once per variant,
each on a fresh copy of the recipe built from the same seed:

- ``base``: the recipe as the course trains it (in its precision: ``Recipe.precision``);
- ``float32`` and ``bf16``: the recipe in float32, or with its update under
  ``torch.autocast("cpu", dtype=torch.bfloat16)`` (convolutions and matrix products in
  bfloat16; worth it only on CPUs with bfloat16 instructions, AVX512-BF16 or AMX, which
  :func:`~mricourse.training.recipes.base.bf16_native` reports);
- ``channels_last``: the networks' 2D and 3D convolution kernels and the batches' images in the
  channels-last memory layout (:func:`~mricourse.training.recipes.base.to_memory_format`; the
  recipes that train faster so already do, in ``base``: their ``memory_format``);
- ``contiguous``: the networks' weights in torch's default layout, channels first (for the
  recipes that train channels-last, the other side of their choice);
- ``threads1``: one thread instead of torch's default (two on a two-core machine);
- ``compile``: every network through ``torch.compile`` (its compile time reported apart).

It prints a table of steps per second and the ratio of each variant to ``base`` (measured in
the same run: compare ratios, not seconds across runs), and ``--out`` writes it as JSON. A
variant that fails (an operation without a bfloat16 kernel, a compiler missing) is reported as
failed with its error's first line, not skipped.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import sys
import time
from pathlib import Path

import torch

from ..profiles import profile as get_profile
from ..utils import atomic_write
from .recipes import names, recipe
from .recipes.base import CHANNELS_LAST, bf16_native, to_memory_format

__all__ = ["VARIANTS", "measure", "main"]

VARIANTS = ("base", "float32", "bf16", "channels_last", "contiguous", "threads1", "compile")


def _to_channels_last(x):
    if isinstance(x, torch.Tensor) and x.dim() in CHANNELS_LAST:
        return x.contiguous(memory_format=CHANNELS_LAST[x.dim()])
    if isinstance(x, (list, tuple)):
        return type(x)(_to_channels_last(v) for v in x)
    if isinstance(x, dict):
        return {k: _to_channels_last(v) for k, v in x.items()}
    return x


def measure(task: str, variant: str = "base", profile: str = "cpu", steps: int = 20, warmup: int = 3, seed: int = 0, built=None) -> dict:
    """Time ``steps`` updates of ``task``'s recipe in ``variant`` after ``warmup`` untimed ones:
    ``{"steps_per_s", "seconds", "setup_seconds"}`` (setup: copying the recipe, compiling for
    ``compile``, and the warm-up). ``built``: the recipe, already built (it is copied, not
    trained), so that several variants need not synthesise its data again."""
    if variant not in VARIANTS:
        raise ValueError(f"measure: unknown variant {variant!r}; expected one of {VARIANTS}")
    t0 = time.perf_counter()
    threads = torch.get_num_threads()
    r = copy.deepcopy(built) if built is not None else recipe(task, get_profile(profile), seed=seed)
    torch.manual_seed(seed)
    batches = list(itertools.islice(itertools.cycle(r.loader()), warmup + steps))
    if variant in ("float32", "bf16"):
        r.precision = "bfloat16" if variant == "bf16" else "float32"
    modules = r.modules
    if variant == "channels_last":
        modules = {k: to_memory_format(m, "channels_last") for k, m in modules.items()}
        batches = [_to_channels_last(b) for b in batches]
    elif variant == "contiguous":
        modules = {k: to_memory_format(m, "contiguous") for k, m in modules.items()}
    elif variant == "compile":
        modules = {k: torch.compile(m) for k, m in modules.items()}
    step = r.step_fn(modules)
    if variant == "threads1":
        torch.set_num_threads(1)
    try:
        for b in batches[:warmup]:
            step(copy.copy(b))
        t1 = time.perf_counter()
        for b in batches[warmup:]:
            step(copy.copy(b))
        t2 = time.perf_counter()
    finally:
        torch.set_num_threads(threads)
    return {"steps_per_s": steps / (t2 - t1), "seconds": t2 - t1, "setup_seconds": t1 - t0}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m mricourse.training.speed", description=__doc__.split("\n\n")[0])
    p.add_argument("tasks", nargs="*", help=f"recipes to time (default: all but toy): {', '.join(names())}")
    p.add_argument("--profile", default="cpu")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--variants", default="base,float32,bf16,channels_last,contiguous,threads1", help=f"comma-separated, from {','.join(VARIANTS)}")
    p.add_argument("--out", default=None, help="write the measurements here as JSON")
    args = p.parse_args(argv)
    tasks = args.tasks or [n for n in names() if n != "toy"]
    unknown = [t for t in tasks if t not in names()]
    variants = [v for v in args.variants.split(",") if v]
    bad = [v for v in variants if v not in VARIANTS]
    if unknown or bad or args.steps < 1 or args.warmup < 0:
        print(f"error: expected tasks from {names()}, variants from {VARIANTS}, --steps >= 1 and --warmup >= 0; "
              f"got tasks {unknown or 'ok'}, variants {bad or 'ok'}", file=sys.stderr)
        return 2
    print(f"{torch.get_num_threads()} threads; bfloat16 instructions: {'yes' if bf16_native() else 'no'}; profile {args.profile}")
    results = {}
    for task in tasks:
        results[task] = {}
        t0 = time.perf_counter()
        built = recipe(task, get_profile(args.profile), seed=0)
        print(f"{task}: built in {time.perf_counter() - t0:.1f} s; batch {built.batch_size}; trains in {built.precision}, weights {built.memory_format}", flush=True)
        for v in variants:
            try:
                results[task][v] = measure(task, v, args.profile, args.steps, args.warmup, built=built)
            except Exception as e:  # noqa: BLE001  (a variant that cannot run is a result)
                results[task][v] = {"failed": f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"}
            m = results[task][v]
            base = results[task].get("base", {}).get("steps_per_s")
            if "failed" in m:
                print(f"{task:14s} {v:14s} failed: {m['failed']}", flush=True)
            else:
                ratio = f"x{m['steps_per_s'] / base:.2f}" if base else ""
                print(f"{task:14s} {v:14s} {m['steps_per_s']:7.2f} steps/s {ratio:>7s}   (setup {m['setup_seconds']:.1f} s)", flush=True)
    if args.out:
        payload = {"threads": torch.get_num_threads(), "bf16_native": bf16_native(), "profile": args.profile, "steps": args.steps, "results": results}
        with atomic_write(args.out) as tmp:
            Path(tmp).write_text(json.dumps(payload, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
