"""Replace the docs' generated-table markers with their tables."""

from __future__ import annotations

import re

from openpairs.docsgen.cli_tables import options_table
from openpairs.docsgen.contract import columns_table

MARKER = re.compile(r"^<!--[ \t]*(cli-options|contract):[ \t]*([\w-]+)[ \t]*-->[ \t]*$", re.MULTILINE)


def markers(markdown: str) -> list[tuple[str, str]]:
    """The (kind, name) of every marker in `markdown`, in order."""
    return [(match.group(1), match.group(2)) for match in MARKER.finditer(markdown)]


def render(markdown: str) -> str:
    """`markdown` with every marker replaced by its generated table (an unknown name raises KeyError)."""

    def table(match: re.Match[str]) -> str:
        kind, name = match.group(1), match.group(2)
        return options_table(name) if kind == "cli-options" else columns_table(name)

    return MARKER.sub(table, markdown)
