"""Markdown table cells that render the same in MkDocs and on GitHub."""

from __future__ import annotations

import re
from collections.abc import Sequence

_CODE = re.compile(r"(`[^`]*`)")
_SPECIAL = re.compile(r"([\\*_\[\]|])")


def cell(text: str) -> str:
    """`text` as one table cell: code spans kept, Markdown and HTML characters outside them escaped."""
    parts = _CODE.split(text.replace("\n", " "))
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append(part.replace("|", "\\|"))
        else:
            escaped = _SPECIAL.sub(r"\\\1", part)
            out.append(escaped.replace("<", "&lt;").replace(">", "&gt;"))
    return "".join(out).strip()


def code(text: str) -> str:
    """`text` as an inline code span inside a table cell."""
    return "`" + text.replace("|", "\\|") + "`"


def table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    """A Markdown table of already-escaped cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
