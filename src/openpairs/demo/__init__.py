"""The offline demo's bundled data: real Common Crawl WAT samples, photo-like images and the mini web.

`wat_files()` lists the bundled WATs (see data/PROVENANCE.md); `MiniWeb` (openpairs.demo.miniweb) is the
local mirror that serves their image URLs from the bundled images.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

WAT_DIR = "data/wat"


def data_dir() -> Path:
    """The bundled demo data directory (a real directory: the package is installed unzipped)."""
    return Path(str(resources.files("openpairs.demo").joinpath("data")))


def wat_files() -> list[str]:
    """Paths of the bundled WAT files, sorted."""
    return sorted(str(p) for p in (data_dir() / "wat").iterdir() if ".wat" in p.name)
