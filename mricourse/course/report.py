"""The course's results page: every chapter's results file (written by ``mc.save_results`` in the
chapter's last cell) gathered into one summary and one table per chapter.

Used by ``make bench`` (``python -m mricourse.course.bench``), which writes ``results.md`` and
``results.json``, and by the book's results page, which renders the same tables from the files
the chapters produced. Nothing here is typed in: the only numbers not measured by the course are
the papers' published figures in :data:`PAPER`, always labelled as such. The "Anchors" table
(:func:`anchors_table`) shows the side-by-side runs of :mod:`mricourse.course.anchors`: our models against
the reference implementations, as ratios ours / reference.
"""

from __future__ import annotations

from pathlib import Path

from ..training.fit import StepTimer
from .results import load_anchors, load_results, results_dir
from .viz import Table

__all__ = ["PAPER", "summary_table", "ood_table", "speed_table", "compare_speed", "chapter_table", "render_markdown", "anchors_table", "render_anchors", "results_page"]

#: Published figures (on the papers' real data, at full scale), shown beside ours.
PAPER: dict[str, str] = {
    "03_fastmri_varnet": "E2E VarNet, fastMRI knee multi-coil: SSIM about 0.930 (4x), 0.890 (8x)",
    "06_vox2vox_segmentation": "Vox2Vox, BraTS 2020 test, 10-model ensemble: Dice WT 87.2, TC 81.1, ET 78.7 %",
    "08_registration": "VoxelMorph, 3731 T1 scans: Dice 0.75 vs ANTs SyN 0.749, NiftyReg 0.755, affine 0.584",
}


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + " / "))
        else:
            out[key] = v
    return out


def _lookup(metrics: dict, method: str, metric: str, setting: str | None):
    flat = _flat(metrics)
    candidates = [f"{method} / {metric}"]
    if setting:
        candidates = [
            f"{setting} / {method} / {metric}",
            f"{method} / {setting} / {metric}",
            f"{method} {setting} / {metric}",
            *candidates,
        ]
    for c in candidates:
        if c in flat:
            return flat[c]
    return None


def summary_table(results: dict[str, dict]) -> Table:
    """One row per chapter: headline metric, model, baseline, gain, profile and wall time."""
    rows = []
    for chapter, r in sorted(results.items()):
        h = r.get("headline") or {}
        metric, setting = h.get("metric", ""), h.get("setting")
        model_v = _lookup(r["metrics"], h.get("model", ""), metric, setting) if h else None
        base_v = _lookup(r["metrics"], h.get("baseline", ""), metric, setting) if h else None
        gain = ""
        if isinstance(model_v, (int, float)) and isinstance(base_v, (int, float)):
            gain = (model_v - base_v) * (1 if h.get("higher_is_better", True) else -1)
        timings = r.get("timings", {})
        total = timings.get("notebook") or sum(v for v in timings.values() if isinstance(v, (int, float)))
        label = f"{metric} ({setting})" if setting else metric
        rows.append(
            [
                chapter,
                label,
                f"{h.get('model', '')}: {Table._fmt(model_v)}" if model_v is not None else "",
                f"{h.get('baseline', '')}: {Table._fmt(base_v)}" if base_v is not None else "",
                gain,
                r.get("profile", ""),
                round(total, 1),
            ]
        )
    return Table(rows, ["chapter", "headline metric", "model", "baseline", "gain", "profile", "wall time (s)"], "Summary")


def ood_table(results: dict[str, dict]) -> Table | None:
    """In and out of distribution side by side: for every chapter whose results file holds an
    ``ood`` test (``mc.save_results(..., ood=...)``), the headline's model and baseline on the
    chapter's own test data, then on each condition the model never trained on; the gain is the
    model's lead over the baseline (negative: the baseline wins). None when no chapter has one."""
    rows = []
    for chapter, r in sorted(results.items()):
        h, ood = r.get("headline") or {}, r.get("ood") or {}
        if not h or not ood.get("metrics"):
            continue
        metric, setting, sign = h.get("metric", ""), h.get("setting"), 1 if h.get("higher_is_better", True) else -1
        label = f"{metric} ({setting})" if setting else metric
        conditions = [("in distribution (the chapter's test)", r["metrics"]), *ood["metrics"].items()]
        for i, (cond, metrics) in enumerate(conditions):
            m = _lookup(metrics, h.get("model", ""), metric, setting)
            b = _lookup(metrics, h.get("baseline", ""), metric, setting)
            gain = sign * (m - b) if all(isinstance(x, (int, float)) for x in (m, b)) else ""
            rows.append([chapter if i == 0 else "", label if i == 0 else "", cond, "" if m is None else m, "" if b is None else b, gain])
        rows.append(["", "", f"never trained on: {ood.get('what', '')}", "", "", ""])
    if not rows:
        return None
    return Table(rows, ["chapter", "headline metric", "test data", "model", "baseline", "gain"], "In and out of distribution")


def _leaves(d: dict, path: tuple = ()) -> list[tuple[tuple, object]]:
    """``(keys from the top, value)`` of every leaf of a nested dict."""
    out = []
    for k, v in d.items():
        out += _leaves(v, (*path, str(k))) if isinstance(v, dict) else [((*path, str(k)), v)]
    return out


def chapter_table(chapter: str, r: dict) -> Table:
    """The chapter's metrics: one row per method (or setting / method), one column per metric (a
    metric's own name may hold " / ", as "surface / volume" does)."""
    rows: dict[str, dict] = {}
    for path, value in _leaves(r["metrics"]):
        method, metric = " / ".join(path[:-1]), path[-1]
        rows.setdefault(method or metric, {})[metric] = value
    cols = list(dict.fromkeys(m for v in rows.values() for m in v))
    return Table([[k] + [v.get(c, "") for c in cols] for k, v in rows.items()], ["method", *cols], chapter)


def training_table(chapter: str, r: dict) -> Table | None:
    """The chapter's trained models (``save_results(..., training=...)``, from
    :meth:`mricourse.Recipe.report`): recipe, seed, steps done of planned, whether a safety stop
    fired, training steps per second and where a step's time goes, and the hash of the final
    weights (``mricourse train`` prints the same one)."""
    runs = r.get("training") or {}
    if not runs:
        return None
    rows = [
        [
            model,
            t.get("recipe", ""),
            t.get("seed", ""),
            f"{t.get('steps', '?')} of {t.get('steps_planned', '?')}",
            t.get("stopped") or "no",
            f"{t['steps_per_s']:.2f}" if t.get("steps_per_s") else "",
            " / ".join(f"{100 * t['time_split'].get(k, 0):.0f}" for k in StepTimer.PARTS) if t.get("time_split") else "",
            str(t.get("weights_sha256", ""))[:16],
        ]
        for model, t in runs.items()
    ]
    return Table(
        rows,
        ["model", "recipe", "seed", "steps", "stopped early", "steps/s", "% data / forward / backward / optimiser", "weights (SHA-256)"],
        f"{chapter}: training",
    )


def _speeds(results: dict[str, dict]) -> dict[str, dict]:
    """``{"chapter / model": training record}`` of every trained model with a measured speed."""
    return {
        f"{chapter} / {model}": t
        for chapter, r in sorted(results.items())
        for model, t in (r.get("training") or {}).items()
        if t.get("steps_per_s")
    }


def speed_table(results: dict[str, dict]) -> Table:
    """Every trained model's training speed: steps per second, seconds, and the share of a step's
    time spent drawing data, in the forward pass, in the losses and backward pass, and in the
    optimiser (:class:`~mricourse.training.fit.StepTimer`)."""
    rows = [
        [name, t.get("steps"), round(t.get("seconds", 0.0), 1), round(t["steps_per_s"], 3)]
        + [f"{100 * (t.get('time_split') or {}).get(k, 0.0):.0f} %" for k in StepTimer.PARTS]
        for name, t in _speeds(results).items()
    ]
    return Table(rows, ["model", "steps", "seconds", "steps/s", *StepTimer.PARTS], "Training speed")


def compare_speed(before: dict[str, dict], after: dict[str, dict]) -> Table:
    """Steps per second of every model in two benchmark runs (``results.json``'s ``chapters``) and
    their ratio, after / before: a change's speed-up, each run measured on one machine."""
    old, new = _speeds(before), _speeds(after)
    rows = [
        [name, round(old[name]["steps_per_s"], 3), round(t["steps_per_s"], 3), round(t["steps_per_s"] / old[name]["steps_per_s"], 2)]
        for name, t in new.items()
        if name in old
    ]
    return Table(rows, ["model", "steps/s before", "steps/s after", "ratio"], "Training speed, after / before")


def _markdown(blocks: list) -> str:
    return "\n".join(b.to_markdown() if isinstance(b, Table) else b for b in blocks)


def render_markdown(results: dict[str, dict]) -> str:
    """The whole results page as Markdown."""
    return _markdown(_page_blocks(results))


def _machine(env: dict) -> str:
    """A results file's machine in words: platform, cores, device and, where recorded, the processor
    (its name, instructions, L2 cache and threads: the same seed gives the same weights bit for bit
    only where these are the same)."""
    text = env.get("platform", "") + f", {env.get('cores')} cores, " + env.get("device", "")
    cpu = env.get("cpu")
    if isinstance(cpu, dict):
        cap = f", oneDNN capped at {cpu['onednn_max_cpu_isa']}" if cpu.get("onednn_max_cpu_isa") else ""
        text += f"; {cpu.get('name')} ({cpu.get('instructions')}{cap}, L2 {cpu.get('l2_cache')}, {cpu.get('threads')} threads)"
    return text


def _page_blocks(results: dict[str, dict]) -> list:
    """The results page as a list of Markdown lines and :class:`Table` objects."""
    if not results:
        return ["No results yet: run the chapter notebooks (`make book` or `make bench`)."]
    envs = {_machine(r["environment"]) for r in results.values() if "environment" in r}
    parts = ["Machine: " + "; ".join(sorted(envs)), "", summary_table(results), ""]
    if ood_table(results) is not None:
        parts += [
            "**In and out of distribution.** Each chapter's headline model and baseline on the chapter's own test data, "
            "then on data unlike anything the model trained on (a contrast, acquisition, noise or degradation it never saw); "
            "a negative gain means the baseline wins there.",
            "",
            ood_table(results),
            "",
        ]
    if _speeds(results):
        parts += [speed_table(results), ""]
    for chapter, r in sorted(results.items()):
        env = r.get("environment", {})
        parts += [
            f"### {chapter}",
            "",
            f"Profile `{r.get('profile')}`, {r.get('date', '')}, torch {env.get('torch', '?')} on {env.get('device', '?')}; "
            f"wall time " + ", ".join(f"{k} {v:.1f} s" for k, v in r.get("timings", {}).items() if isinstance(v, (int, float))),
            "",
            chapter_table(chapter, r),
            "",
        ]
        if (r.get("ood") or {}).get("metrics"):
            ood = {"metrics": {cond: m for cond, m in r["ood"]["metrics"].items()}}
            parts += [f"Out of distribution, never trained on: {r['ood'].get('what', '')}", "", chapter_table(f"{chapter}: out of distribution", ood), ""]
        if training_table(chapter, r) is not None:
            parts += [training_table(chapter, r), ""]
        if chapter in PAPER:
            parts += [f"*The paper's figure (real data, full scale, not measured here):* {PAPER[chapter]}", ""]
        if r.get("notes"):
            parts += [r["notes"], ""]
    return parts


def anchors_table(record: dict) -> Table:
    """The side-by-side runs of :func:`mricourse.course.anchors.run_anchors`: one row per comparison and
    metric with our value, the reference implementation's, and the ratio ours / reference; a
    comparison that did not run has one row with its status (e.g. "not installed: fastmri")."""
    rows = []
    for key, a in record.get("anchors", {}).items():
        name = a.get("name", key)
        if a.get("status") != "ok":
            status = a.get("status", "?")
            rows.append([name, f"{status}: {a.get('reference', '')}" if status == "not installed" else status, "", "", ""])
            continue
        label = f"{name} ({a.get('reference', '')})"
        for i, (metric, v) in enumerate(a["metrics"].items()):
            ours, ref = v.get("ours"), v.get("reference")
            ok = all(isinstance(x, (int, float)) for x in (ours, ref)) and ref != 0
            rows.append([label if i == 0 else "", metric, ours, ref, ours / ref if ok else ""])
    return Table(rows, ["comparison", "metric", "ours", "reference", "ours / reference"], "Anchors")


def render_anchors(record: dict) -> str:
    """The "Anchors" section (Markdown): the table, the run's machine and each comparison's setting."""
    return _markdown(_anchors_blocks(record))


def _anchors_blocks(record: dict) -> list:
    env = record.get("environment", {})
    parts = [
        "## Anchors: side by side with the reference implementations",
        "",
        "Our models and the papers' own code, trained in one process on the same data with the same loss, "
        "optimiser and number of steps (steps alternate between the two). The last column is the ratio "
        "**ours / reference**: for times, below 1 means ours is faster; for Dice and SSIM, 1 means the same quality.",
        "",
        f"Profile `{record.get('profile')}`, {record.get('date', '')}, {env.get('platform', '')}, {env.get('cores')} cores, "
        f"torch {env.get('torch', '?')} on {env.get('device', '?')}; wall time {record.get('wall_s', 0.0):.0f} s.",
        "",
        anchors_table(record),
        "",
    ]
    for a in record.get("anchors", {}).values():
        if a.get("setting"):
            parts += [f"- *{a['name']}*: {a['setting']}", ""]
    return parts


def results_page(folder: str | Path | None = None) -> None:
    """Display the results page in a notebook (the book's results page calls this): the chapters'
    tables, then the Anchors table of the last benchmark, if there is one."""
    from IPython.display import Markdown, display

    folder = folder or results_dir()
    blocks = _page_blocks(load_results(folder))
    anchors = load_anchors(folder)
    if anchors:
        blocks += ["", *_anchors_blocks(anchors)]
    # text as Markdown, tables as HTML (the book renders Markdown outputs as CommonMark: no tables)
    text: list[str] = []
    for b in [*blocks, None]:
        if isinstance(b, str):
            text.append(b)
            continue
        if any(t.strip() for t in text):
            display(Markdown("\n".join(text)))
        text = []
        if b is not None:
            display(b)
