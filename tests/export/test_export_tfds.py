"""`openpairs export --format tfds`: the manual_dir TFDS's `laion400m` builder reads, checked the way that
builder reads it (compat/test_tfds.py runs the builder itself). Expected values come from the pipeline's
own outputs (tests/fixtures/pipeline_output.py).
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import openpairs
from openpairs.cli import app
from openpairs.stages.export import ExportConfig, run_export
from openpairs.stages.export_tfds import EMBEDDINGS_URL
from tests.fixtures.pipeline_output import PipelineOutput

SIZE = 40  # samples per part: the fixture's ~130 kept samples make 4 parts
# what the builder reads from each row (tensorflow_datasets/vision_language/laion400m/laion400m.py)
BUILDER_COLUMNS = {"caption", "url", "NSFW", "LICENSE", "similarity", "original_width", "original_height"}


@pytest.fixture(scope="module")
def exported(built_pipeline: PipelineOutput, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`openpairs export COPY --format tfds` on a copy of the shared build: the folder, manifest and output."""
    pipeline = built_pipeline.copy(tmp_path_factory.mktemp("tfds") / "run")
    args = ["export", str(pipeline.root), "--format", "tfds", "--samples-per-shard", str(SIZE)]
    run = CliRunner().invoke(app, args)
    assert run.exit_code == 0, run.output
    folder = pipeline.root / "dataset" / "tfds"
    manifest = json.loads((folder / "_manifest.json").read_text())
    return {"pipeline": pipeline, "folder": folder, "manifest": manifest, "output": run.output}


def _members(tar: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(tar) as handle:
        return handle.getmembers()


def test_images_config_finds_each_image_row_by_member_name(exported: dict) -> None:
    pipeline, folder, manifest = exported["pipeline"], exported["folder"], exported["manifest"]
    shards = manifest["tfds"]["num_shards"]
    assert shards == -(-len(pipeline.kept) // SIZE) >= 3 and manifest["tfds"]["configs"] == [
        "images",
        "embeddings",
    ]
    assert f"num_shards={shards}" in exported["output"]
    keys, stored_by_key = [], {key: pipeline.stored(key) for key in pipeline.kept}
    for shard in range(shards):  # the builder's loop: f"{shard:05d}.tar" and .parquet, iloc[int(stem)]
        metadata = pq.read_table(folder / f"{shard:05d}.parquet").to_pandas()
        assert set(metadata.columns) >= BUILDER_COLUMNS
        with tarfile.open(folder / f"{shard:05d}.tar") as tar:
            for member in tar:
                stem, ext = member.name.split(".")
                row = metadata.iloc[int(stem)]
                data = tar.extractfile(member).read()  # type: ignore[union-attr]
                if ext == "json":  # the sample's metadata row
                    assert json.loads(data)["key"] == row["key"]
                else:  # the image and caption bytes the download stage stored
                    assert data == stored_by_key[row["key"]][ext]
        assert [m.name.split(".")[0] for m in _members(folder / f"{shard:05d}.tar")][::3] == [
            str(i) for i in range(len(metadata))
        ]
        keys += list(metadata["key"])
    assert keys == pipeline.kept
    for key, row in zip(keys, _all_rows(folder, shards), strict=True):
        down, clip = pipeline.downloads[key], pipeline.clip[key]
        assert (row["url"], row["caption"], row["LICENSE"]) == (down["url"], down["caption"], down["license"])
        assert (row["original_width"], row["original_height"]) == (
            down["original_width"],
            down["original_height"],
        )
        assert (row["NSFW"], row["similarity"]) == (clip["nsfw"], clip["similarity"])


def _all_rows(folder: Path, shards: int) -> list[dict]:
    return [r for s in range(shards) for r in pq.read_table(folder / f"{s:05d}.parquet").to_pylist()]


def test_embeddings_config_files_and_the_checksums_that_point_tfds_at_them(exported: dict) -> None:
    pipeline, folder = exported["pipeline"], exported["folder"]
    for shard in range(exported["manifest"]["tfds"]["num_shards"]):
        metadata = pq.read_table(folder / f"metadata_{shard}.parquet")
        assert metadata.equals(pq.read_table(folder / f"{shard:05d}.parquet"))
        for kind in ("img_emb", "text_emb"):
            array = np.load(folder / f"{kind}_{shard}.npy")
            assert array.dtype == np.float16 and array.shape == (metadata.num_rows, 512)
            expected = [pipeline.embedding(key, kind) for key in metadata["key"].to_pylist()]
            assert np.array_equal(array, np.stack(expected))
        lines = (folder / "checksums" / f"{shard:05d}.txt").read_text().splitlines()
        for line, name in zip(
            lines, [f"img_emb_{shard}.npy", f"text_emb_{shard}.npy", f"metadata_{shard}.parquet"], strict=True
        ):
            url, size, digest, file_name = line.split("\t")
            data = (folder / name).read_bytes()
            assert url == f"{EMBEDDINGS_URL}{name.rsplit('_', 1)[0]}/{name}" and file_name == name
            assert (int(size), digest) == (len(data), hashlib.sha256(data).hexdigest())


def test_load_refuses_the_tfds_folder_with_a_clear_message(exported: dict) -> None:
    with pytest.raises(ValueError, match="TFDS laion400m manual_dir"):
        next(openpairs.load(str(exported["folder"])))


def test_a_rerun_writes_the_same_bytes(exported: dict) -> None:
    folder = exported["folder"]
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    result = run_export(str(exported["pipeline"].root), ExportConfig(format="tfds", samples_per_shard=SIZE))
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
    assert result.extra["tfds"] == exported["manifest"]["tfds"]
