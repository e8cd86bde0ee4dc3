"""openpairs: LAION-style image-text datasets from Common Crawl."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {"load": "openpairs.loading", "torch_dataset": "openpairs.loading"}


def __getattr__(name: str) -> Any:
    """Lazy public API (`openpairs.load`, `openpairs.torch_dataset`) so `import openpairs` stays light."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'openpairs' has no attribute {name!r}")
