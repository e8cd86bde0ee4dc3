"""`openpairs extract`: Common Crawl WAT files -> deduplicated candidate pairs (stub, being written)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the extract command to the app."""
