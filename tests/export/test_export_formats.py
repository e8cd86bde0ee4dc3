"""export: LAION-400M / LAION-5B parquet columns, part sizes, embeddings alignment, determinism."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from openpairs.cli import app
from openpairs.stages.export import ExportConfig, run_export
from openpairs.stages.export_join import ExportInputError
from tests.fixtures.pipeline_dir import PipelineDir


def _clip_embedding(root: Path, key: str, kind: str) -> np.ndarray:
    name = key[:6][-5:]
    keys = pq.read_table(root / "clip" / f"{name}.parquet")["key"].to_pylist()
    return np.load(root / "clip" / kind / f"{name}.npy")[keys.index(key)]


def _digest(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def test_laion400m_columns_sizes_and_embeddings(pipeline: PipelineDir) -> None:
    result = run_export(str(pipeline.root), ExportConfig(format="laion400m", samples_per_shard=7))
    directory = Path(result.directory)
    parts = sorted(directory.glob("part-*.parquet"))
    assert [pq.read_metadata(p).num_rows for p in parts] == [7, 7, 4]
    table = pq.read_table(parts[0]).schema
    assert table.names == ["SAMPLE_ID", "URL", "TEXT", "HEIGHT", "WIDTH", "LICENSE", "NSFW", "similarity"]
    rows = [r for p in parts for r in pq.read_table(p).to_pylist()]
    assert [f"{r['SAMPLE_ID']:013d}" for r in rows] == pipeline.kept
    down = {r["key"]: r for r in pq.read_table(pipeline.root / "shards" / "00000.parquet").to_pylist()}
    first = down[pipeline.kept[0]]
    assert (rows[0]["WIDTH"], rows[0]["HEIGHT"]) == (first["original_width"], first["original_height"])
    assert rows[0]["WIDTH"] != rows[0]["HEIGHT"]
    img = np.load(directory / "img_emb" / "part-00001.npy")
    assert img.dtype == np.float16 and img.shape == (7, pipeline.dim)
    assert np.array_equal(img[2], _clip_embedding(pipeline.root, pipeline.kept[9], "img_emb"))


def test_laion5b_language_groups(pipeline: PipelineDir) -> None:
    result = run_export(str(pipeline.root), ExportConfig(format="laion5b", samples_per_shard=100))
    groups = {g: pq.read_table(Path(result.directory) / g / "part-00000.parquet") for g in result.parts}
    assert set(groups) == {"laion2B-en", "laion2B-multi", "laion1B-nolang"}
    assert "LANGUAGE" in groups["laion2B-multi"].column_names
    assert "LANGUAGE" not in groups["laion2B-en"].column_names
    assert set(groups["laion2B-multi"]["LANGUAGE"].to_pylist()) == {"de", "fr"}
    assert groups["laion2B-en"].column_names[:8] == [
        "URL", "TEXT", "WIDTH", "HEIGHT", "similarity", "hash", "punsafe", "pwatermark"
    ]  # fmt: skip
    assert sum(t.num_rows for t in groups.values()) == result.samples == len(pipeline.kept)
    down = [
        r for i in (0, 1) for r in pq.read_table(pipeline.root / "shards" / f"0000{i}.parquet").to_pylist()
    ]
    english = {r["url"] for r in down if r["language"] == "en"}
    assert set(groups["laion2B-en"]["URL"].to_pylist()) <= english


def test_webdataset_even_shards_deterministic_and_rerun(fresh_pipeline: Callable[..., PipelineDir]) -> None:
    pipeline = fresh_pipeline()
    directory = pipeline.root / "dataset" / "webdataset"
    run_export(str(pipeline.root), ExportConfig(format="webdataset", samples_per_shard=4))
    first = _digest(directory)
    assert sorted(n for n in first if n.endswith(".tar")) == [f"{i:05d}.tar" for i in range(5)]
    assert [pq.read_metadata(directory / f"{i:05d}.parquet").num_rows for i in range(5)] == [4, 4, 4, 4, 2]
    run_export(str(pipeline.root), ExportConfig(format="webdataset", samples_per_shard=4))
    assert _digest(directory) == first
    run_export(str(pipeline.root), ExportConfig(format="webdataset", samples_per_shard=10))
    again = _digest(directory)
    assert sorted(n for n in again if n.endswith(".tar")) == ["00000.tar", "00001.tar"]
    assert "img_emb/00004.npy" not in again and "_manifest.json" in again


def test_half_finished_stage_is_a_clear_error(fresh_pipeline: Callable[..., PipelineDir]) -> None:
    pipeline = fresh_pipeline()
    (pipeline.root / "clip" / "00001_stats.json").unlink()
    with pytest.raises(ExportInputError, match="clip"):
        run_export(str(pipeline.root), ExportConfig(format="laion400m"))
    with pytest.raises(ValueError, match="unknown export format"):
        ExportConfig(format="coyo")  # type: ignore[arg-type]


def test_without_clip_and_filter_exports_downloads(fresh_pipeline: Callable[..., PipelineDir]) -> None:
    pipeline = fresh_pipeline()
    for stage in ("clip", "filter"):
        for stats in (pipeline.root / stage).glob("*_stats.json"):
            stats.unlink()
    result = run_export(str(pipeline.root), ExportConfig(format="laion400m", embeddings=False))
    table = pq.read_table(Path(result.directory) / "part-00000.parquet")
    down = pq.read_table(pipeline.root / "shards" / "00000.parquet")
    assert table.num_rows > len(pipeline.kept)  # nothing filtered
    assert set(table["similarity"].to_pylist()) == {-1.0} and set(table["NSFW"].to_pylist()) == {"UNTAGGED"}
    assert down.num_rows == 14


def test_cli_export(pipeline: PipelineDir) -> None:
    run = CliRunner().invoke(app, ["export", str(pipeline.root), "--format", "laion400m"])
    assert run.exit_code == 0, run.output
    assert f"exported {len(pipeline.kept)} samples" in run.output
    bad = CliRunner().invoke(app, ["export", str(pipeline.root), "--format", "nope"])
    assert bad.exit_code != 0


def test_kept_sample_missing_from_tar_is_a_clear_error(fresh_pipeline: Callable[..., PipelineDir]) -> None:
    import tarfile

    pipeline = fresh_pipeline(shards=1)
    tar_path = pipeline.root / "shards" / "00000.tar"
    with tarfile.open(tar_path) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar if not m.name.startswith(pipeline.kept[1])]  # type: ignore[union-attr]
    with tarfile.open(tar_path, "w") as tar:
        for member, data in members:
            tar.addfile(member, io.BytesIO(data))
    with pytest.raises(ExportInputError, match="1 kept sample"):
        run_export(str(pipeline.root), ExportConfig(format="webdataset"))
    assert not list((pipeline.root / "dataset" / "webdataset").glob("*.tar"))
