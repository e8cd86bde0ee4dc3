"""Fixtures of the client runs: the demo dataset built once by openpairs itself, and the clients' venvs."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from compat.open_clip_run import TrainedClip, export_with_eval_split, train
from compat.venvs import client_venv, openpairs_bin


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished `openpairs demo` build (DIR with dataset/, index/, report/), made once per session.

    `$OPENPAIRS_COMPAT_DEMO` names a folder to build into and reuse across sessions (the demo resumes).
    """
    out = Path(os.environ.get("OPENPAIRS_COMPAT_DEMO") or tmp_path_factory.mktemp("compat") / "demo")
    subprocess.run([str(openpairs_bin()), "demo", "--out", str(out)], check=True, timeout=1800)
    return out


@pytest.fixture(scope="session")
def venv() -> Callable[[str], Path]:
    """`venv(name)`: the `bin/` folder of client `name`'s virtualenv (made on first use)."""
    return client_venv


@pytest.fixture(scope="session")
def trained_clip(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainedClip:
    """open_clip's own trainer run once on the demo's webdataset export (see compat/open_clip_run.py)."""
    work = tmp_path_factory.mktemp("open_clip")
    return train(client_venv("open_clip_train"), export_with_eval_split(demo_dir, work), work)
