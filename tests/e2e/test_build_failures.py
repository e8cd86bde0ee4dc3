"""`openpairs build` stops before writing anything on a missing model or a changed input list, and withholds
the exports and the report while a shard has failed; the re-run after the cause is fixed writes them, and
they equal a clean build's. Through `python -m openpairs`, on bundled real WATs and the mini web.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from openpairs.demo.miniweb import MiniWeb
from tests.e2e.chain import dataset_digests, demo_settings
from tests.e2e.cli import DERIVED_WAT, WAT_2014, failed_shards, head_of_wat, openpairs, snapshot
from tests.fixtures.tiny_clip import tiny_checkpoint


@pytest.fixture(scope="module")
def web() -> Iterator[str]:
    with MiniWeb() as mini:
        yield mini.url


def _build(inputs: list[Path], out: Path, web: str, checkpoint: str) -> tuple[int, str]:
    settings = [*demo_settings(web, checkpoint), "dedup.shard_size=3"]
    options = [arg for setting in settings for arg in ("--set", setting)]
    return openpairs("build", *map(str, inputs), "--out", str(out), *options, "--export", "laion400m",
                     "--workers", "1")  # fmt: skip


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (
            ("--clip-checkpoint", "{tmp}/no-such-model.pt"),
            "--clip-checkpoint {tmp}/no-such-model.pt does not exist",
        ),
        (("--clip-model", "ViT-Q-99"), "open_clip does not know the CLIP model 'ViT-Q-99'"),
    ],
)
def test_missing_model_stops_the_build_before_any_output(
    tmp_path: Path, option: tuple[str, str], message: str
) -> None:
    out = tmp_path / "out"
    given = [part.format(tmp=tmp_path) for part in option]
    code, output = openpairs("build", WAT_2014, "--out", str(out), *given, "--workers", "1")
    assert code == 2 and f"build: {message.format(tmp=tmp_path)}" in output, output
    assert "Traceback" not in output and not out.exists()


def test_failed_shard_withholds_exports_and_report_until_the_rerun(tmp_path: Path, web: str) -> None:
    checkpoint = tiny_checkpoint(tmp_path)
    inputs = tmp_path / "in"
    inputs.mkdir()
    present, late = inputs / "a.warc.wat", inputs / "b.warc.wat"
    shutil.copy(WAT_2014, present)
    out = tmp_path / "out"
    code, output = _build([present, late], out, web, checkpoint)
    assert code == 1 and "extract shard 1 failed" in output and "No such file or directory" in output, output
    [failure] = failed_shards(out, "extract")
    assert failure["shard"] == 1 and failure["inputs"] == [str(late)] and str(late) in failure["error"]
    assert (out / "config.json").exists() and (out / "filter").is_dir()  # the other shards went on
    assert not (out / "dataset").exists() and not (out / "report").exists()

    before = snapshot(out)  # another input list for the same DIR: refused before anything is written
    code, output = _build([present], out, web, checkpoint)
    assert code == 2 and f"build: {out} was started with other inputs" in output, output
    assert snapshot(out) == before

    head_of_wat(DERIVED_WAT, 10, late)  # the missing WAT arrives: its 6 pairs change every candidates shard
    code, output = _build([present, late], out, web, checkpoint)
    assert code == 0, output
    assert not (out / "extract" / "failed_shards.jsonl").exists()
    assert (out / "dataset" / "laion400m").is_dir()
    report = (out / "report" / "index.html").read_text()  # the clip stage's note on its null heads shows
    assert "no LAION head fits openpairs-tiny-random (64-d): punsafe and aesthetic are null" in report

    clean = tmp_path / "clean"
    assert _build([present, late], clean, web, checkpoint)[0] == 0
    digests = dataset_digests(str(out))
    assert digests == dataset_digests(str(clean)) and any(name.endswith(".parquet") for name in digests)
