"""The package's layout (README, "Where things live"): no import cycles, and no module imports
from a layer above its own. Imports are read from the source (every ``import`` statement, those
inside functions too), so a cycle hidden behind a lazy import is found as well."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "mricourse"

#: bottom to top; a module may import from its own layer and the layers below
LAYERS = [
    ("base", ["mricourse._version", "mricourse.utils", "mricourse.files", "mricourse.profiles"]),
    (
        "science",
        [
            "mricourse.fft",
            "mricourse.masks",
            "mricourse.physics",
            "mricourse.signal",
            "mricourse.spatial",
            "mricourse.layers",
            "mricourse.losses",
            "mricourse.metrics",
            "mricourse.lesions",
            "mricourse.inference",
            "mricourse.baselines",
            "mricourse.registration",
            "mricourse.degradation",
            "mricourse.gan_eval",
        ],
    ),
    ("data", ["mricourse.data"]),
    ("models", ["mricourse.models"]),
    ("training", ["mricourse.training"]),
    ("course", ["mricourse.course"]),
    ("namespace", ["mricourse", "mricourse.__main__"]),
]


def _name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_name(p): p for p in PKG.rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules ``name`` imports (``from . import x`` counts as the module ``x``
    where ``x`` is one, else as the package's ``__init__``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "mricourse"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").split(".")[0] == "mricourse":
                target = node.module
            else:
                continue
            for a in node.names:
                out.add(f"{target}.{a.name}" if f"{target}.{a.name}" in known else target)
    return {m for m in out if m in known and m != name}


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {n: _imports(n, p, set(mods)) for n, p in mods.items()}


def _layer(name: str) -> int:
    best = None
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (name == p or name.startswith(p + ".")) and (best is None or len(p) > best[1]):
                best = (i, len(p))
    if best is None:
        raise AssertionError(f"{name} belongs to no layer of tests/test_layout.py: add it to LAYERS (and to the README's table)")
    return best[0]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def test_no_module_imports_from_a_layer_above():
    upward = [
        f"{a} ({LAYERS[_layer(a)][0]}) imports {b} ({LAYERS[_layer(b)][0]})"
        for a, targets in sorted(_graph().items())
        for b in sorted(targets)
        if _layer(b) > _layer(a)
    ]
    assert upward == []


def test_data_needs_no_network_blocks():
    """The data generators warp and blur images (mricourse.spatial); they use no trained layer."""
    graph = _graph()
    assert sorted(b for a, t in graph.items() if a.startswith("mricourse.data") for b in t if b == "mricourse.layers") == []


@pytest.mark.parametrize(
    "source, cycle",
    [
        ({"a": "from . import b", "b": "from .a import x"}, ["mricourse.t.a", "mricourse.t.b"]),
        ({"a": "def f():\n    from .b import y", "b": "import mricourse.t.a"}, ["mricourse.t.a", "mricourse.t.b"]),
    ],
)
def test_the_walker_finds_a_cycle(tmp_path, monkeypatch, source, cycle):
    """The check itself can fail: two modules importing each other, eagerly or lazily."""
    root = tmp_path / "mricourse" / "t"
    root.mkdir(parents=True)
    (tmp_path / "mricourse" / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    for name, text in source.items():
        (root / f"{name}.py").write_text(text + "\n")
    monkeypatch.setattr(sys.modules[__name__], "PKG", tmp_path / "mricourse")
    assert _cycles(_graph()) == [cycle]
