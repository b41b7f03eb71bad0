"""Figures and tables for the notebooks: image grids, k-space, loss curves, comparison tables."""

from __future__ import annotations

import html

import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["show", "show_labels", "show_kspace", "show_flow", "montage", "orthogonal_slices", "plot_history", "plot_learning_curve", "Table", "compare_table"]


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        x = x.abs() if x.is_complex() else x
        x = x.numpy()
    x = np.asarray(x)
    return np.abs(x) if np.iscomplexobj(x) else x


def show(
    images,
    titles=None,
    ncols: int | None = None,
    cmap: str = "gray",
    vmin=None,
    vmax=None,
    size: float = 2.6,
    colorbar: bool = False,
    suptitle: str | None = None,
):
    """Show 2D images (tensors/arrays; complex shown as magnitude; leading singleton dims dropped)
    in a grid. Returns the figure."""
    if isinstance(images, (torch.Tensor, np.ndarray)) and _np(images).squeeze().ndim == 2:
        images = [images]
    images = [_np(im).squeeze() for im in images]
    for im in images:
        if im.ndim != 2:
            raise ValueError(f"show: expected 2D images, got shape {im.shape}")
    n = len(images)
    ncols = ncols or min(n, 6)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, im in enumerate(images):
        ax = axes.flat[i]
        h = ax.imshow(im, cmap=cmap, vmin=vmin, vmax=vmax)
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
        if colorbar:
            fig.colorbar(h, ax=ax, fraction=0.046, pad=0.04)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def show_labels(image, labels, names: dict[int, str], ax=None, title: str = "", alpha: float = 0.45, legend: bool = True, colours=None):
    """A label map over its image: ``image`` (H, W) in grey, each label of ``names``
    (``{value: name}``) in its own colour (matplotlib's tab10 in turn, or ``colours``, ``{value:
    colour}``, so that two figures' meanings do not share a colour), with a legend. Label 0
    (background) stays clear."""
    image, labels = _np(image).squeeze(), _np(labels).squeeze()
    if image.shape != labels.shape or image.ndim != 2:
        raise ValueError(
            f"show_labels: expected an image and a label map of one (H, W) shape, got {image.shape} and {labels.shape}"
        )
    ax = ax or plt.subplots(figsize=(3, 3))[1]
    ax.imshow(image, cmap="gray")
    palette = plt.get_cmap("tab10")
    handles = []
    for i, (value, name) in enumerate(names.items()):
        colour = plt.matplotlib.colors.to_rgba(colours[value]) if colours and value in colours else palette(i % 10)
        rgba = np.zeros((*labels.shape, 4))
        rgba[labels == value] = (*colour[:3], alpha)
        ax.imshow(rgba)
        handles.append(plt.matplotlib.patches.Patch(color=colour, label=name))
    if legend:
        ax.legend(handles=handles, fontsize=7, loc="lower right", framealpha=0.7)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    return ax


def show_kspace(kspace, title: str = "log |k|", ax=None, eps: float = 1e-9):
    """Show the log magnitude of centred k-space (..., H, W); coils/batch dims must be 1."""
    k = _np(kspace).squeeze()
    if k.ndim != 2:
        raise ValueError(f"show_kspace: expected one 2D k-space, got shape {k.shape}")
    ax = ax or plt.subplots(figsize=(3, 3))[1]
    ax.imshow(np.log(k + eps * k.max()), cmap="gray")
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    return ax


def show_flow(flow, image=None, step: int = 4, ax=None, title: str = "", color: str = "tab:orange", linewidth: float = 0.6):
    """Draw the deformation ``phi(x) = x + u(x)`` of a 2D displacement (2, H, W) or (1, 2, H, W) in
    pixels as a warped grid (every ``step`` pixels), over ``image`` if given. Returns the axes.

    ``phi(x)`` is where pixel ``x`` of the fixed image samples the moving one; folds show as
    crossing grid lines."""
    u = _np(flow).squeeze()
    if u.ndim != 3 or u.shape[0] != 2:
        raise ValueError(f"show_flow: expected a 2D displacement (2, H, W), got shape {_np(flow).shape}")
    h, w = u.shape[1:]
    ax = ax or plt.subplots(figsize=(3, 3))[1]
    if image is not None:
        ax.imshow(_np(image).squeeze(), cmap="gray")
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    pr, pc = rows + u[0], cols + u[1]  # phi(x) in (row, col)
    for r in range(0, h, step):
        ax.plot(pc[r], pr[r], color=color, lw=linewidth)
    for c in range(0, w, step):
        ax.plot(pc[:, c], pr[:, c], color=color, lw=linewidth)
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def montage(volume, num: int = 8, axis: int = 0) -> np.ndarray:
    """Tile ``num`` evenly spaced slices of a 3D volume along ``axis`` into one 2D image."""
    v = _np(volume).squeeze()
    if v.ndim != 3:
        raise ValueError(f"montage: expected a 3D volume, got shape {v.shape}")
    idx = np.linspace(0, v.shape[axis] - 1, num + 2)[1:-1].round().astype(int)
    return np.concatenate([np.take(v, i, axis=axis) for i in idx], axis=1)


def orthogonal_slices(volume, centre=None) -> dict:
    """The axial, coronal and sagittal slices through ``centre`` (default: the middle voxel) of a
    volume in the course's axes, ``(..., D, H, W)`` = (inferior to superior, anterior to posterior,
    right to left), as ``{"axial": (..., H, W), "coronal": (..., D, W), "sagittal": (..., D, H)}``,
    superior up in the coronal and sagittal slices. Tensors stay tensors, arrays arrays (leading
    axes, such as channels, are kept), ready for :func:`show` or :func:`show_labels`."""
    if not isinstance(volume, torch.Tensor):
        volume = np.asarray(volume)
    if volume.ndim < 3:
        raise ValueError(f"orthogonal_slices: expected a volume (..., D, H, W), got shape {tuple(volume.shape)}")
    shape = tuple(volume.shape[-3:])
    c = [s // 2 for s in shape] if centre is None else [int(i) for i in centre]
    if len(c) != 3 or not all(0 <= i < s for i, s in zip(c, shape)):
        raise ValueError(f"orthogonal_slices: expected a centre (d, h, w) inside the volume {shape}, got {centre!r}")
    up = (lambda a: a.flip(-2)) if isinstance(volume, torch.Tensor) else (lambda a: np.flip(a, -2))  # superior up
    return {"axial": volume[..., c[0], :, :], "coronal": up(volume[..., :, c[1], :]), "sagittal": up(volume[..., :, :, c[2]])}


def plot_history(history: dict, keys=None, logy: bool = True, ax=None, title: str = "training", prefix: str = ""):
    """Plot loss curves from :func:`mricourse.fit`'s history against the step; ``prefix`` starts
    every legend label (to tell two runs drawn on the same axes apart). On a log axis a loss that
    is zero throughout (a term switched off) cannot be drawn: the legend's title names it."""
    keys = keys or [k for k in history if k not in ("step", "time")]
    ax = ax or plt.subplots(figsize=(5, 3))[1]
    marker = "o" if len(history["step"]) < 20 else None  # few points: show them
    off = [k for k in keys if logy and not any(v > 0 for v in history[k])]
    for k in keys:
        if k not in off:
            ax.plot(history["step"], history[k], label=prefix + k, marker=marker)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_title(title)
    ax.legend(title=f"0 throughout: {', '.join(prefix + k for k in off)}" if off else None, title_fontsize=8)
    return ax


def plot_learning_curve(
    curve: list[dict],
    metric: str,
    baselines: dict[str, float] | None = None,
    own: tuple[int, float] | None = None,
    ax=None,
    label: str = "long run",
    own_label: str = "this chapter's run",
    higher_is_better: bool = True,
    title: str = "",
    ylabel: str | None = None,
) -> dict[str, int | None]:
    """Draw a long run's learning curve (``curve``: a weights manifest's ``[{"step": s, metric: v,
    ...}, ...]``) of ``metric`` against the training step, a chapter's own shorter run as a star
    (``own = (steps, value)``, in the curve's colour: several runs can share the axes) and each classical method of ``baselines`` (``{name: value}``) as a
    horizontal line. Returns, per baseline, the first measured step at which the curve is better
    than it (``None`` if it never is)."""
    if not curve or any(metric not in p or "step" not in p for p in curve):
        raise ValueError(f"plot_learning_curve: expected a curve of {{'step': ..., {metric!r}: ...}} points, got {curve[:1]}")
    ax = ax or plt.subplots(figsize=(5, 3.4))[1]
    steps, values = [p["step"] for p in curve], [p[metric] for p in curve]
    (line,) = ax.plot(steps, values, "o-", label=label)
    if own is not None:  # a star in the curve's colour
        ax.plot([own[0]], [own[1]], "*", color=line.get_color(), markeredgecolor="k", ms=13, label=own_label)
    styles = [("--", "gray"), (":", "tab:red"), ("-.", "tab:green"), ((0, (1, 3)), "tab:purple")]
    passes = {}
    for (name, value), (ls, colour) in zip((baselines or {}).items(), styles * 4):
        ax.axhline(value, ls=ls, color=colour, label=name)
        better = [s for s, v in zip(steps, values) if (v > value if higher_is_better else v < value)]
        passes[name] = better[0] if better else None
    ax.set(xlabel="training step", ylabel=ylabel or f"held-out {metric}", title=title)
    ax.legend(fontsize=8)
    return passes


class Table:
    """A small table that renders as HTML in notebooks and the book, and as text elsewhere."""

    def __init__(self, rows: list[list], header: list[str], caption: str = ""):
        self.rows, self.header, self.caption = rows, header, caption

    @staticmethod
    def _fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.3e}"
        return str(v)

    # inline styles, so that the book's theme and JupyterLab both keep the columns apart
    _CELL = "padding: 0.25em 0.8em; border-bottom: 1px solid #ddd;"

    @staticmethod
    def _numeric(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    def _repr_html_(self) -> str:
        def cell(tag, text, right):
            align = "right" if right else "left"
            return f'<{tag} style="{self._CELL} text-align: {align};">{html.escape(text)}</{tag}>'

        numeric = [any(self._numeric(r[j]) for r in self.rows if j < len(r)) for j in range(len(self.header))]
        head = "".join(cell("th", str(h), num) for h, num in zip(self.header, numeric))
        body = "".join("<tr>" + "".join(cell("td", self._fmt(v), self._numeric(v)) for v in r) + "</tr>" for r in self.rows)
        cap = (
            f'<caption style="caption-side: top; text-align: left;">{html.escape(self.caption)}</caption>' if self.caption else ""
        )
        table = f'<table style="border-collapse: collapse; margin: 0.5em 0;">{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        return f'<div style="overflow-x: auto;">{table}</div>'  # wide tables scroll, not clip

    def to_markdown(self) -> str:
        lines = ["| " + " | ".join(map(str, self.header)) + " |", "|" + "---|" * len(self.header)]
        lines += ["| " + " | ".join(self._fmt(v) for v in r) + " |" for r in self.rows]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (self.caption + "\n" if self.caption else "") + self.to_markdown()


def compare_table(results: dict[str, dict[str, float]], caption: str = "", metrics=None, label: str = "method") -> Table:
    """``{method: {metric: value}}`` -> a :class:`Table` with one row per method; ``label`` heads
    the first column (``"condition"`` where the rows are conditions, the columns methods)."""
    metrics = metrics or list(dict.fromkeys(m for r in results.values() for m in r))
    rows = [[method] + [r.get(m, "") for m in metrics] for method, r in results.items()]
    return Table(rows, [label, *metrics], caption)
