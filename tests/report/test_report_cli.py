"""`openpairs report`: the command prints the funnel and rewrites identical files on a re-run."""

from __future__ import annotations

import hashlib
from pathlib import Path

from typer.testing import CliRunner

from openpairs.cli import app
from tests.fixtures.pipeline_output import PipelineOutput


def _digests(root: Path) -> dict[str, str]:
    files = [*sorted((root / "report").rglob("*.*")), root / "README.md"]
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_cli_report_is_deterministic(pipeline: PipelineOutput) -> None:
    args = ["report", str(pipeline.root), "--warning", "demo data", "--title", "cli"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert f"candidates: {pipeline.extracted():,}" in first.output and "index.html" in first.output
    assert f"kept: {len(pipeline.kept):,}" in first.output
    digests = _digests(pipeline.root)
    assert "report/plots/similarity.png" in digests and "README.md" in digests
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and _digests(pipeline.root) == digests
    assert "demo data" in (pipeline.root / "report" / "index.html").read_text()
