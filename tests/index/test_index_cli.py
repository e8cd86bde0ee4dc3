"""`openpairs index` and `openpairs serve` on the command line."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from openpairs.cli import app
from tests.fixtures.embeddings import make_dataset


def test_index_command_writes_index_json(tmp_path: Path) -> None:
    make_dataset(str(tmp_path), "openpairs", shards=2, rows=100, dim=16)
    result = CliRunner().invoke(app, ["index", str(tmp_path), "--text", "--memory-budget", "1G"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "index" / "index.json").read_text())
    assert set(manifest["indices"]) == {"image", "text"} and "Flat" in result.output


def test_index_command_reports_bad_input(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["index", str(tmp_path)])
    assert result.exit_code == 2 and "no embeddings" in result.output
    result = CliRunner().invoke(app, ["index", str(tmp_path), "--memory-budget", "lots"])
    assert result.exit_code == 2 and "not a size" in result.output


def test_serve_command_without_index_fails_clearly(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["serve", str(tmp_path), "--port", "0"])
    assert result.exit_code == 2 and "openpairs index" in result.output
