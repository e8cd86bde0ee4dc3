"""MkDocs hook: generated tables (CLI options, data-contract columns) replace their markers in every page."""

from typing import Any

from openpairs.docsgen import render


def on_page_markdown(markdown: str, **_: Any) -> str:
    """The page with each `<!-- cli-options: X -->` / `<!-- contract: X -->` marker replaced by its table."""
    return render(markdown)
