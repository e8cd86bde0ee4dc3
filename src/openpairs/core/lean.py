"""Keep pyarrow from importing pandas into processes that openpairs owns (the CLI and its pool workers)."""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType


class _NoPandas(importlib.abc.MetaPathFinder):
    """Fails `import pandas` while installed."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname == "pandas":
            raise ImportError("pandas is not needed in this openpairs process")
        return None


def arrow_without_pandas() -> None:
    """Let pyarrow's one probe for pandas fail: on its first conversion of Python objects pyarrow imports
    pandas (~0.3 CPU-s, ~50 MB per process) only to recognise pandas inputs, which openpairs never passes.
    It then treats pandas as absent for conversions, while an explicit `to_pandas()` still imports it.
    Does nothing when pandas is already loaded."""
    if "pandas" in sys.modules:
        return
    import pyarrow as pa

    blocker = _NoPandas()
    sys.meta_path.insert(0, blocker)
    try:
        pa.array([0])  # the conversion that makes pyarrow try (once per process) to import pandas
    finally:
        sys.meta_path.remove(blocker)
