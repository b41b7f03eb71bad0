"""``python -m mricourse.course.bench`` (``make bench``): execute every chapter notebook headless in the
``cpu`` profile, each in a fresh kernel, and write ``results.md`` and ``results.json`` with the
machine, versions, per-chapter wall times (whole notebook, and data / training / evaluation as the
chapter measured them) and every metric of model and baselines. Then, unless ``--no-anchors``, the
side-by-side runs against the reference implementations (:mod:`mricourse.course.anchors`: our VarNet vs
fastMRI's, our VoxelMorph vs the voxelmorph package's; when notebooks are named, only with
``--anchors``), in a fresh process with the kernels' environment, in the ``anchors`` section of
``results.json``, an "Anchors" table in ``results.md``, and ``<results>/anchors/anchors.json`` for the
book's results page. A failing chapter or comparison is reported and the others still run; the
exit status is then 1. The whole run's wall time is recorded (``bench_wall_s``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..utils import atomic_write
from .anchors import ANCHORS, save_anchors
from .notebooks import execute_notebook
from .report import compare_speed, render_anchors, render_markdown
from .results import environment, load_results


def run_notebook(path: Path, env: dict, timeout: int = 1800, executed: Path | None = None) -> float:
    """Execute a notebook in a fresh kernel; return its wall time in seconds. The outputs are
    discarded, or, with ``executed`` (a folder), the executed notebook is written there under its
    own name, also when a cell fails (it then shows the error)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    t0 = time.perf_counter()
    try:
        execute_notebook(nb, path.parent, timeout, env={**os.environ, **env})
    finally:
        if executed is not None:
            with atomic_write(executed / path.name) as tmp:
                nbformat.write(nb, str(tmp))
    return time.perf_counter() - t0


def run_anchors(profile: str, env: dict, timeout: int = 3600) -> dict:
    """Run :func:`mricourse.course.anchors.run_anchors` in a fresh process with the kernels' environment
    (``python -m mricourse.course.anchors``, its tables printed as they come) and return its record; if
    the process fails, a record in which every comparison has failed."""
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mricourse-anchors-") as tmp:
        out = Path(tmp) / "anchors.json"
        cmd = [sys.executable, "-m", "mricourse.course.anchors", "--profile", profile, "--json", str(out)]
        try:
            rc = subprocess.run(cmd, env={**os.environ, **env}, timeout=timeout).returncode
            error = None if rc == 0 and out.exists() else f"python -m mricourse.course.anchors exited with status {rc}"
        except subprocess.TimeoutExpired:
            error = f"python -m mricourse.course.anchors ran longer than {timeout} s"
        if error is None:
            return json.loads(out.read_text())
    anchors = {k: {"name": title, "reference": package, "status": f"failed: {error}"} for k, (package, title) in ANCHORS.items()}
    return {"profile": profile, "environment": environment(), "wall_s": time.perf_counter() - t0, "anchors": anchors}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    p.add_argument("--profile", default="cpu")
    p.add_argument("--results", type=Path, default=Path("_build/results"))
    p.add_argument("--out", type=Path, default=Path("."))
    p.add_argument("--executed", type=Path, default=None, help="also keep the executed notebooks (with outputs) in this folder")
    p.add_argument(
        "--anchors",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the side-by-side runs against the reference code (default: on when no notebooks are named)",
    )
    p.add_argument(
        "--compare",
        type=Path,
        default=None,
        help="an earlier run's results.json: also report each model's steps/s after / before",
    )
    args = p.parse_args(argv)
    t_bench = time.perf_counter()
    notebooks = args.notebooks or sorted(Path("notebooks").glob("[0-9]*.ipynb"))
    env = {"MRICOURSE_PROFILE": args.profile, "MRICOURSE_RESULTS": str(args.results.resolve())}
    # The chapters run with OpenMP's own way of waiting, as a reader's Jupyter runs them: on idle
    # cores, passive waiting (OMP_WAIT_POLICY=PASSIVE) made training 1.4-1.8x slower (make speed:
    # cascade, VarNet, CycleGAN); on cores shared with other work, spinning threads can make it
    # ten times slower. The bench passes on whatever the environment sets (recorded in results).
    walls, failed = {}, {}
    for nb in notebooks:
        print(f"running {nb} ({args.profile} profile) ...", flush=True)
        try:
            walls[nb.stem] = run_notebook(nb.resolve(), env, executed=args.executed)
            print(f"  {walls[nb.stem]:.0f} s", flush=True)
        except Exception as e:  # report and go on with the other chapters
            failed[nb.stem] = f"{type(e).__name__}: {str(e)[-500:]}"
            print(f"  FAILED: {failed[nb.stem]}", flush=True)
    results = {k: v for k, v in load_results(args.results).items() if k in walls}
    for k, r in results.items():
        r["timings"]["notebook"] = walls[k]
    anchors = None
    if args.anchors or (args.anchors is None and not args.notebooks):
        print(f"running the anchors, side by side with the reference code ({args.profile} profile) ...", flush=True)
        t_anchors = time.perf_counter()
        anchors = run_anchors(args.profile, env)
        anchors_wall = time.perf_counter() - t_anchors  # with the process's start
        save_anchors(anchors, args.results)
        for name, a in anchors["anchors"].items():
            print(f"  {name}: {a['status']}" + (f" ({a['wall_s']:.0f} s)" if "wall_s" in a else ""), flush=True)
            if a["status"].startswith("failed"):
                failed[f"anchors/{name}"] = a["status"]
    bench_wall = time.perf_counter() - t_bench
    record = {
        "environment": environment(),
        "profile": args.profile,
        "notebook_wall_s": walls,
        "total_wall_s": sum(walls.values()),
        "anchors_wall_s": anchors_wall if anchors else None,
        "bench_wall_s": bench_wall,
        "failed": failed,
        "chapters": results,
        "anchors": anchors,
    }
    with atomic_write(args.out / "results.json") as tmp:
        tmp.write_text(json.dumps(record, indent=2))
    md = (
        f"# Course benchmark ({args.profile} profile)\n\nTotal notebook wall time: {sum(walls.values()):.0f} s"
        + (f"; anchors: {anchors_wall:.0f} s" if anchors else "")
        + f"; the whole benchmark: {bench_wall:.0f} s\n\n"
        + render_markdown(results)
    )
    if anchors:
        md += "\n\n" + render_anchors(anchors)
    if args.compare:
        md += "\n\n" + compare_speed(json.loads(args.compare.read_text())["chapters"], results).to_markdown()
    if failed:
        md += "\n\n## Failed\n\n" + "\n".join(f"- {k}: {v}" for k, v in failed.items())
    with atomic_write(args.out / "results.md") as tmp:
        tmp.write_text(md)
    print(md)
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
