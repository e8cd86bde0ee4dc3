"""export: LAION-400M / LAION-5B parquet columns, part sizes, embeddings alignment, determinism.

Every expected value is read from the pipeline's own outputs (tests/fixtures/pipeline_output.py).
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from openpairs.cli import app
from openpairs.core.keys import KEY_DIGITS
from openpairs.stages.export import ExportConfig, run_export
from openpairs.stages.export_join import ExportInputError
from tests.fixtures.pipeline_output import PipelineOutput


def _digest(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def _part_sizes(total: int, size: int) -> list[int]:
    """Even parts of `size` rows, the last one shorter."""
    return [min(size, total - start) for start in range(0, total, size)]


def _rows(directory: Path, pattern: str) -> list[dict[str, object]]:
    return [r for p in sorted(directory.glob(pattern)) for r in pq.read_table(p).to_pylist()]


def test_laion400m_columns_sizes_and_embeddings(pipeline: PipelineOutput) -> None:
    size = 40
    result = run_export(str(pipeline.root), ExportConfig(format="laion400m", samples_per_shard=size))
    directory = Path(result.directory)
    parts = sorted(directory.glob("part-*.parquet"))
    assert [pq.read_metadata(p).num_rows for p in parts] == _part_sizes(len(pipeline.kept), size)
    assert pq.read_schema(parts[0]).names == [
        "SAMPLE_ID", "URL", "TEXT", "HEIGHT", "WIDTH", "LICENSE", "NSFW", "similarity"
    ]  # fmt: skip
    rows = _rows(directory, "part-*.parquet")
    assert [f"{r['SAMPLE_ID']:0{KEY_DIGITS}d}" for r in rows] == pipeline.kept
    for row in rows:
        down, clip = (
            pipeline.downloads[f"{row['SAMPLE_ID']:0{KEY_DIGITS}d}"],
            pipeline.clip[f"{row['SAMPLE_ID']:0{KEY_DIGITS}d}"],
        )
        assert (row["URL"], row["TEXT"], row["LICENSE"]) == (down["url"], down["caption"], down["license"])
        assert (row["WIDTH"], row["HEIGHT"]) == (down["original_width"], down["original_height"])
        assert (row["NSFW"], row["similarity"]) == (clip["nsfw"], clip["similarity"])
    assert any(row["WIDTH"] != row["HEIGHT"] for row in rows)  # so a swap of the two would show
    for kind in ("img_emb", "text_emb"):
        exported = np.concatenate([np.load(directory / kind / f"{p.stem}.npy") for p in parts])
        assert exported.dtype == np.float16 and exported.shape == (len(pipeline.kept), pipeline.dim)
        assert np.array_equal(exported, np.stack([pipeline.embedding(k, kind) for k in pipeline.kept]))


def test_laion5b_language_groups(pipeline: PipelineOutput) -> None:
    result = run_export(str(pipeline.root), ExportConfig(format="laion5b", samples_per_shard=100))
    directory = Path(result.directory)
    groups = {g: _rows(directory / g, "part-*.parquet") for g in result.parts}
    assert set(groups) == {"laion2B-en", "laion2B-multi", "laion1B-nolang"}
    columns = {g: pq.read_schema(directory / g / "part-00000.parquet").names for g in groups}
    assert columns["laion2B-en"] == columns["laion1B-nolang"] == [
        "URL", "TEXT", "WIDTH", "HEIGHT", "similarity", "hash", "punsafe", "pwatermark"
    ]  # fmt: skip
    assert columns["laion2B-multi"] == [*columns["laion2B-en"], "LANGUAGE"]
    kept = pipeline.kept_rows()
    expected = {
        "laion2B-en": [r for r in kept if r["language"] == "en"],
        "laion2B-multi": [r for r in kept if r["language"] not in ("en", "")],
        "laion1B-nolang": [r for r in kept if r["language"] == ""],
    }
    for group, rows in groups.items():
        assert [(r["URL"], r["hash"], r["WIDTH"]) for r in rows] == [
            (r["url"], r["hash"], r["original_width"]) for r in expected[group]
        ]
    assert [r["LANGUAGE"] for r in groups["laion2B-multi"]] == [
        r["language"] for r in expected["laion2B-multi"]
    ]
    assert sum(len(rows) for rows in groups.values()) == result.samples == len(pipeline.kept)


def test_webdataset_even_shards_deterministic_and_rerun(pipeline: PipelineOutput) -> None:
    directory = pipeline.root / "dataset" / "webdataset"
    sizes = _part_sizes(len(pipeline.kept), 25)
    run_export(str(pipeline.root), ExportConfig(format="webdataset", samples_per_shard=25))
    first = _digest(directory)
    assert sorted(n for n in first if n.endswith(".tar")) == [f"{i:05d}.tar" for i in range(len(sizes))]
    assert [pq.read_metadata(directory / f"{i:05d}.parquet").num_rows for i in range(len(sizes))] == sizes
    run_export(str(pipeline.root), ExportConfig(format="webdataset", samples_per_shard=25))
    assert _digest(directory) == first
    run_export(str(pipeline.root), ExportConfig(format="webdataset", samples_per_shard=100))
    again = _digest(directory)
    fewer = len(_part_sizes(len(pipeline.kept), 100))
    assert fewer < len(sizes)
    assert sorted(n for n in again if n.endswith(".tar")) == [f"{i:05d}.tar" for i in range(fewer)]
    assert f"img_emb/{len(sizes) - 1:05d}.npy" not in again and "_manifest.json" in again


def test_half_finished_stage_is_a_clear_error(pipeline: PipelineOutput) -> None:
    (pipeline.root / "clip" / "00001_stats.json").unlink()
    with pytest.raises(ExportInputError, match="clip"):
        run_export(str(pipeline.root), ExportConfig(format="laion400m"))
    with pytest.raises(ValueError, match="unknown export format"):
        ExportConfig(format="coyo")  # type: ignore[arg-type]


def test_without_clip_and_filter_exports_downloads(pipeline: PipelineOutput) -> None:
    for stage in ("clip", "filter"):
        for stats in (pipeline.root / stage).glob("*_stats.json"):
            stats.unlink()
    result = run_export(str(pipeline.root), ExportConfig(format="laion400m", embeddings=False))
    table = pq.read_table(Path(result.directory) / "part-00000.parquet")
    downloaded = [key for key, row in pipeline.downloads.items() if row["status"] == "ok"]
    assert [
        f"{key:0{KEY_DIGITS}d}" for key in table["SAMPLE_ID"].to_pylist()
    ] == downloaded  # nothing filtered
    assert len(downloaded) > len(pipeline.kept)
    assert set(table["similarity"].to_pylist()) == {-1.0} and set(table["NSFW"].to_pylist()) == {"UNTAGGED"}
    assert not (Path(result.directory) / "img_emb").exists()


def test_cli_export(pipeline: PipelineOutput) -> None:
    run = CliRunner().invoke(app, ["export", str(pipeline.root), "--format", "laion400m"])
    assert run.exit_code == 0, run.output
    assert f"exported {len(pipeline.kept)} samples" in run.output
    bad = CliRunner().invoke(app, ["export", str(pipeline.root), "--format", "nope"])
    assert bad.exit_code != 0


def test_kept_sample_missing_from_tar_is_a_clear_error(pipeline: PipelineOutput) -> None:
    missing = pipeline.kept[1]
    tar_path = pipeline.root / "shards" / f"{pipeline.shard_of[missing]}.tar"
    with tarfile.open(tar_path) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar if not m.name.startswith(missing)]  # type: ignore[union-attr]
    with tarfile.open(tar_path, "w") as tar:
        for member, data in members:
            tar.addfile(member, io.BytesIO(data))
    with pytest.raises(ExportInputError, match="1 kept sample"):
        run_export(str(pipeline.root), ExportConfig(format="webdataset"))
    assert not list((pipeline.root / "dataset" / "webdataset").glob("*.tar"))
