"""Crash points: a mistyped point is refused; once a point has fired, a later arrival goes on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openpairs.core import crashpoints


def test_an_unknown_point_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(crashpoints.ENV_POINT, "download.shrad")
    monkeypatch.setenv(crashpoints.ENV_LOG, str(tmp_path / "crash.jsonl"))
    with pytest.raises(ValueError, match="no such crash point"):
        crashpoints.reached("download.shard", 0)


def test_a_point_that_fired_elsewhere_lets_this_process_go_on(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    log = tmp_path / "crash.jsonl"
    first = {"point": "download.shard", "index": 3, "pid": 1, "host": "elsewhere"}
    log.write_text(json.dumps(first) + "\n")
    monkeypatch.setenv(crashpoints.ENV_POINT, "download.shard")
    monkeypatch.setenv(crashpoints.ENV_LOG, str(log))
    crashpoints.reached("download.shard", 1)  # returns: frozen would hang the test until its timeout
    assert log.read_text().splitlines() == [json.dumps(first)]


def test_another_point_is_passed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(crashpoints.ENV_POINT, "clip.commit")
    monkeypatch.setenv(crashpoints.ENV_LOG, str(tmp_path / "crash.jsonl"))
    crashpoints.reached("clip.shard", 0)
    assert not (tmp_path / "crash.jsonl").exists()
