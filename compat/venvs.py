"""One virtualenv per client, made from its pinned requirements file and reused while that file is unchanged."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "compat" / "requirements"


def venvs_dir() -> Path:
    """Where the clients' virtualenvs live: `$OPENPAIRS_COMPAT_VENVS`, else `.compat/venvs` in the repo."""
    return Path(os.environ.get("OPENPAIRS_COMPAT_VENVS", ROOT / ".compat" / "venvs"))


def openpairs_bin() -> Path:
    """The `openpairs` command of the virtualenv running these tests (`$VIRTUAL_ENV`, else `.venv`)."""
    return Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "openpairs"


def client_venv(name: str) -> Path:
    """The `bin/` folder of client `name`'s virtualenv, made (or remade) from `requirements/<name>.txt`."""
    requirements = REQUIREMENTS / f"{name}.txt"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    venv = venvs_dir() / name
    stamp = venv / ".requirements-sha256"
    if stamp.exists() and stamp.read_text() == digest:
        return venv / "bin"
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-r", str(requirements)], check=True)
    stamp.write_text(digest)
    return venv / "bin"
