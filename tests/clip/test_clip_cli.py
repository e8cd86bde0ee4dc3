"""`openpairs clip` from the command line, the tiny RANDOM-weight checkpoint passed as --clip-checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

from openpairs.cli import app
from tests.fixtures.tiny_clip import TINY_MODEL, Sample, write_download_shard


def _invoke(*args: str) -> tuple[int, str]:
    done = CliRunner().invoke(app, ["clip", *args])
    return done.exit_code, " ".join(done.output.split())


def test_clip_cli_runs_resumes_and_records_config(tmp_path: Path, tiny_ckpt: str) -> None:
    write_download_shard(
        tmp_path, 0, [Sample("a cat"), Sample("", image=None), Sample("x", status="timeout")]
    )
    args = ["--clip-model", TINY_MODEL, "--clip-checkpoint", tiny_ckpt, "--clip-pretrained", "none"]
    code, output = _invoke(str(tmp_path), *args, "--image-dedup", "--threads", "1")
    assert code == 0, output
    assert (
        "RANDOM weights" in output
        and "pwatermark will be null" in output
        and "no LAION head fits openpairs-tiny-random (64-d): punsafe and aesthetic are null" in output
    )
    assert "2 rows in, 1 kept" in output and "missing_image" in output
    assert "image dedup: 1 images, 0 groups" in output
    assert (tmp_path / "clip" / "dup_groups" / "00000.parquet").exists()
    clip_section = json.loads((tmp_path / "config.json").read_text())["clip"]
    assert clip_section["model"] == TINY_MODEL and clip_section["checkpoint"] == tiny_ckpt
    code, output = _invoke(str(tmp_path), *args)
    assert code == 0 and "(1 already done)" in output
    assert pq.read_table(tmp_path / "clip" / "00000.parquet").num_rows == 2


def test_clip_cli_bad_inputs_exit_with_a_message(tmp_path: Path, tiny_ckpt: str) -> None:
    code, output = _invoke(str(tmp_path), "--clip-model", "ViT-Q-99", "--clip-checkpoint", tiny_ckpt)
    assert code == 2 and "does not know the CLIP model 'ViT-Q-99'" in output
    code, output = _invoke(str(tmp_path), "--clip-model", "RN50", "--clip-checkpoint", tiny_ckpt)
    assert code == 2 and "does not match the architecture of CLIP model 'RN50'" in output
    code, output = _invoke(str(tmp_path), "--clip-model", TINY_MODEL, "--clip-checkpoint", tiny_ckpt)
    assert code == 2 and "no download shards" in output
    code, output = _invoke(
        str(tmp_path), "--clip-model", TINY_MODEL, "--clip-checkpoint", tiny_ckpt, "--text-encoder", "x"
    )
    assert code == 2 and "text_encoder must be 'clip' or 'multilingual'" in output
