"""The export read by third-party libraries: `webdataset` and Hugging Face `datasets` (offline)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from openpairs.core.keys import KEY_DIGITS
from openpairs.report import build_report
from openpairs.stages.export import ExportConfig, run_export
from tests.fixtures.pipeline_build import IMAGE_SIZE
from tests.fixtures.pipeline_output import PipelineOutput


@pytest.fixture(scope="module")
def exports(built_pipeline: PipelineOutput, tmp_path_factory: pytest.TempPathFactory) -> PipelineOutput:
    """A copy of the pipeline DIR with webdataset and LAION-400M exports."""
    pipeline = built_pipeline.copy(tmp_path_factory.mktemp("readers") / "run")
    run_export(str(pipeline.root), ExportConfig(format="webdataset", samples_per_shard=30))
    run_export(str(pipeline.root), ExportConfig(format="laion400m"))
    return pipeline


def test_webdataset_library_reads_the_shards(exports: PipelineOutput) -> None:
    import webdataset as wds

    urls = [str(p) for p in sorted((exports.root / "dataset" / "webdataset").glob("*.tar"))]
    samples = list(
        wds.WebDataset(urls, shardshuffle=False, empty_check=False)
        .decode("rgb8")
        .to_tuple("__key__", "jpg", "txt", "json")
    )
    assert [s[0] for s in samples] == exports.kept
    for key, image, caption, meta in samples:
        row = exports.downloads[key]
        stored = np.asarray(Image.open(io.BytesIO(exports.stored(key)["jpg"])).convert("RGB"))
        assert image.dtype == np.uint8 and np.array_equal(image, stored)
        assert image.shape == (row["height"], row["width"], 3) and max(image.shape) <= IMAGE_SIZE
        assert (meta["original_width"], meta["original_height"]) == (
            row["original_width"],
            row["original_height"],
        )
        assert caption == meta["caption"] == row["caption"]


def test_huggingface_datasets_reads_parquet_and_webdataset(
    exports: PipelineOutput, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import datasets

    dataset = exports.root / "dataset"
    parquet = datasets.load_dataset(
        "parquet", data_files=str(dataset / "laion400m" / "*.parquet"), split="train", cache_dir=str(tmp_path)
    )
    assert parquet.column_names[:3] == ["SAMPLE_ID", "URL", "TEXT"]
    assert [f"{i:0{KEY_DIGITS}d}" for i in parquet["SAMPLE_ID"]] == exports.kept
    tars = datasets.load_dataset(
        "webdataset", data_files=str(dataset / "webdataset" / "*.tar"), split="train", cache_dir=str(tmp_path)
    )
    assert len(tars) == len(exports.kept)
    first = tars[0]
    meta = pq.read_table(dataset / "webdataset" / "00000.parquet").to_pylist()[0]
    row = exports.downloads[exports.kept[0]]
    assert first["__key__"] == meta["key"] == row["key"] and first["txt"] == meta["caption"] == row["caption"]
    assert first["jpg"].size == (row["width"], row["height"])  # the stored image, <= image_size
    assert (meta["original_width"], meta["original_height"]) == (
        row["original_width"],
        row["original_height"],
    )
    assert json.loads(json.dumps(first["json"]))["url"] == meta["url"] == row["url"]
    build_report(str(exports.root))  # the card declares the parquet exports as configs
    card = datasets.load_dataset(str(exports.root), "laion400m", split="train", cache_dir=str(tmp_path))
    assert sorted(card["SAMPLE_ID"]) == sorted(parquet["SAMPLE_ID"])
