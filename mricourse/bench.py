"""``python -m mricourse.bench`` (``make bench``): execute every chapter notebook headless in the
``cpu`` profile, each in a fresh kernel, and write ``results.md`` and ``results.json`` with the
machine, versions, per-chapter wall times (whole notebook, and data / training / evaluation as the
chapter measured them) and every metric of model and baselines.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from .report import render_markdown
from .results import environment, load_results
from .utils import atomic_write


def run_notebook(path: Path, env: dict, timeout: int = 1800) -> float:
    """Execute a notebook in a fresh kernel (outputs discarded); return its wall time in seconds."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        t0 = time.perf_counter()
        NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
        return time.perf_counter() - t0
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    p.add_argument("--profile", default="cpu")
    p.add_argument("--results", type=Path, default=Path("_build/results"))
    p.add_argument("--out", type=Path, default=Path("."))
    args = p.parse_args(argv)
    notebooks = args.notebooks or sorted(Path("notebooks").glob("[0-9]*.ipynb"))
    env = {"MRICOURSE_PROFILE": args.profile, "MRICOURSE_RESULTS": str(args.results.resolve())}
    walls, failed = {}, {}
    for nb in notebooks:
        print(f"running {nb} ({args.profile} profile) ...", flush=True)
        try:
            walls[nb.stem] = run_notebook(nb.resolve(), env)
            print(f"  {walls[nb.stem]:.0f} s", flush=True)
        except Exception as e:  # report and go on with the other chapters
            failed[nb.stem] = f"{type(e).__name__}: {str(e)[-500:]}"
            print(f"  FAILED: {failed[nb.stem]}", flush=True)
    results = {k: v for k, v in load_results(args.results).items() if k in walls}
    for k, r in results.items():
        r["timings"]["notebook"] = walls[k]
    record = {
        "environment": environment(),
        "profile": args.profile,
        "notebook_wall_s": walls,
        "total_wall_s": sum(walls.values()),
        "failed": failed,
        "chapters": results,
    }
    with atomic_write(args.out / "results.json") as tmp:
        tmp.write_text(json.dumps(record, indent=2))
    md = (
        f"# Course benchmark ({args.profile} profile)\n\nTotal notebook wall time: {sum(walls.values()):.0f} s\n\n"
        + render_markdown(results)
    )
    if failed:
        md += "\n\n## Failed\n\n" + "\n".join(f"- {k}: {v}" for k, v in failed.items())
    with atomic_write(args.out / "results.md") as tmp:
        tmp.write_text(md)
    print(md)
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
