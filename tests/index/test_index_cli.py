"""`openpairs index` and `openpairs serve` on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
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


def test_serve_worker_factory_rebuilds_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    from fastapi.testclient import TestClient

    from openpairs.index.build import IndexConfig, build_index
    from openpairs.serve.app import CONFIG_ENV, app_from_environment
    from openpairs.serve.config import ServeConfig

    make_dataset(str(tmp_path), "openpairs", shards=1, rows=50, dim=16)
    build_index(str(tmp_path), str(tmp_path / "index"), IndexConfig(tune_queries=10))
    config = ServeConfig(index_dir=str(tmp_path / "index"), name="w", max_k=7, cors_origins=("http://x",))
    monkeypatch.setenv(CONFIG_ENV, json.dumps(dataclasses.asdict(config)))
    app = app_from_environment()
    assert app.state.service.config == config
    with TestClient(app) as client:
        assert client.get("/indices-list").json() == ["w"]
