"""A shard that fails is listed in `<stage>/failed_shards.jsonl` and the command exits non-zero with a
summary; a re-run after the cause is gone clears the list and exits 0. Through `python -m openpairs`.

The causes are real: a WAT that is not there yet, and a damaged input shard (cut in half, as a copy
interrupted mid-file leaves it), restored afterwards.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from openpairs.demo.miniweb import MiniWeb
from tests.e2e.cli import WAT_2014, failed_shards, openpairs, snapshot
from tests.fixtures.tiny_clip import TINY_MODEL, tiny_checkpoint

EXTRACT = ("--relative-urls", "resolve", "--all-languages", "--workers", "1")


@pytest.fixture(scope="module")
def web() -> Iterator[str]:
    with MiniWeb() as mini:
        yield mini.url


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DIR with candidates/ in two shards (the 2014 WAT's two pairs, one per shard)."""
    out = tmp_path_factory.mktemp("extracted") / "out"
    code, output = openpairs("extract", WAT_2014, "--out", str(out), *EXTRACT, "--shard-size", "1")
    assert code == 0 and len(list((out / "candidates").glob("*.parquet"))) == 2, output
    return out


@pytest.fixture(scope="module")
def downloaded(tmp_path_factory: pytest.TempPathFactory, extracted: Path, web: str) -> Path:
    """`extracted` with its two download shards (images from the mini web)."""
    out = tmp_path_factory.mktemp("downloaded") / "out"
    shutil.copytree(extracted, out)
    code, output = openpairs("download", str(out), "--out", str(out), "--mirror", web, "--workers", "1")
    assert code == 0 and len(list((out / "shards").glob("*.tar"))) == 2, output
    return out


def _damage(path: Path) -> bytes:
    """Cut `path` in half; returns its bytes, to put back."""
    original = path.read_bytes()
    path.write_bytes(original[: len(original) // 2])
    return original


def test_extract_lists_an_unreadable_wat_then_a_rerun_clears_it(tmp_path: Path) -> None:
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    present, late = inputs / "a.warc.wat", inputs / "b.warc.wat"
    shutil.copy(WAT_2014, present)
    code, output = openpairs("extract", str(present), str(late), "--out", str(out), *EXTRACT)
    assert code == 1 and "1 of 2 inputs failed" in output and "shard 1 failed" in output
    [failure] = failed_shards(out, "extract")
    assert failure["shard"] == 1 and failure["inputs"] == [str(late)]
    assert "No such file or directory" in failure["error"] and str(late) in failure["error"]
    assert (out / "extract" / "00000_stats.json").exists() and (out / "candidates").is_dir()

    before = snapshot(out)  # another input list for the same --out: refused, nothing written
    code, output = openpairs("extract", str(present), "--out", str(out), *EXTRACT)
    assert code == 2 and f"{out} was started with other inputs" in output and "use another --out" in output
    assert snapshot(out) == before

    shutil.copy(WAT_2014, late)
    code, output = openpairs("extract", str(present), str(late), "--out", str(out), *EXTRACT)
    assert code == 0, output
    assert failed_shards(out, "extract") == [] and not (out / "extract" / "failed_shards.jsonl").exists()
    assert (out / "extract" / "00001_stats.json").exists() and "(1 already done)" in output


def test_download_lists_a_damaged_candidates_shard_then_a_rerun_clears_it(
    tmp_path: Path, extracted: Path, web: str
) -> None:
    out = tmp_path / "out"
    shutil.copytree(extracted, out)
    damaged = out / "candidates" / "00001.parquet"
    original = _damage(damaged)
    command = ("download", str(out), "--out", str(out), "--mirror", web, "--workers", "1")
    code, output = openpairs(*command)
    assert code == 1 and "shard 1 failed" in output, output
    [failure] = failed_shards(out, "shards")
    assert failure["shard"] == 1 and failure["inputs"] == [str(damaged)] and "Parquet" in failure["error"]
    assert (out / "shards" / "00000_stats.json").exists() and not (
        out / "shards" / "00001_stats.json"
    ).exists()

    damaged.write_bytes(original)
    code, output = openpairs(*command)
    assert code == 0 and "(1 already done)" in output, output
    assert not (out / "shards" / "failed_shards.jsonl").exists()
    assert (out / "shards" / "00001_stats.json").exists()


def test_clip_lists_a_damaged_download_shard_then_a_rerun_clears_it(tmp_path: Path, downloaded: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(downloaded, out)
    checkpoint = tiny_checkpoint(tmp_path)
    damaged = out / "shards" / "00001.parquet"
    original = _damage(damaged)
    command = ("clip", str(out), "--clip-model", TINY_MODEL, "--clip-checkpoint", checkpoint,
               "--clip-pretrained", "none", "--device", "cpu", "--threads", "1")  # fmt: skip
    code, output = openpairs(*command)
    assert code == 1 and "shard 1 failed" in output, output
    [failure] = failed_shards(out, "clip")
    assert failure["shard"] == 1 and failure["inputs"] == [str(out / "shards" / "00001.tar"), str(damaged)]
    assert "Parquet" in failure["error"] and not (out / "clip" / "00001_stats.json").exists()

    damaged.write_bytes(original)
    code, output = openpairs(*command)
    assert code == 0 and "(1 already done)" in output, output
    assert not (out / "clip" / "failed_shards.jsonl").exists() and (out / "clip" / "00001.parquet").exists()
