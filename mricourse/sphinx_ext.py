"""Sphinx glue for the book's API pages: docstrings here are written for readers of the code
(shapes like ``(B, C, *spatial)``, products like ``x * y``, norms like ``|x|``), so bare asterisks and bars outside
literals are escaped before reStructuredText reads them as emphasis."""

from __future__ import annotations

import re

_LITERAL = re.compile(r"(``.*?``|`[^`]*`)")


def _escape(line: str) -> str:
    parts = _LITERAL.split(line)
    return "".join(p if i % 2 else re.sub(r"(?<![\\*])\*(?!\*)", r"\\*", p).replace("|", "\\|") for i, p in enumerate(parts))


def _process(app, what, name, obj, options, lines) -> None:
    lines[:] = [_escape(line) for line in lines]


def setup(app):
    app.connect("autodoc-process-docstring", _process)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
