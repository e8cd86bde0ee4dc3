"""The export read by third-party libraries: `webdataset` and Hugging Face `datasets` (offline)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from openpairs.report import build_report
from openpairs.stages.export import ExportConfig, run_export
from tests.fixtures.pipeline_dir import PipelineDir


@pytest.fixture(scope="module")
def exports(pipeline: PipelineDir) -> Path:
    run_export(str(pipeline.root), ExportConfig(format="webdataset", samples_per_shard=6))
    run_export(str(pipeline.root), ExportConfig(format="laion400m"))
    return pipeline.root / "dataset"


def test_webdataset_library_reads_the_shards(exports: Path, pipeline: PipelineDir) -> None:
    import webdataset as wds

    urls = [str(p) for p in sorted((exports / "webdataset").glob("*.tar"))]
    samples = list(
        wds.WebDataset(urls, shardshuffle=False, empty_check=False)
        .decode("rgb8")
        .to_tuple("__key__", "jpg", "txt", "json")
    )
    assert [s[0] for s in samples] == pipeline.kept
    _, image, caption, meta = samples[0]
    assert image.dtype == np.uint8 and image.shape == (meta["original_height"], meta["original_width"], 3)
    assert caption == meta["caption"]


def test_huggingface_datasets_reads_parquet_and_webdataset(
    exports: Path, pipeline: PipelineDir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import datasets

    parquet = datasets.load_dataset(
        "parquet", data_files=str(exports / "laion400m" / "*.parquet"), split="train", cache_dir=str(tmp_path)
    )
    assert parquet.column_names[:3] == ["SAMPLE_ID", "URL", "TEXT"]
    assert len(parquet) == len(pipeline.kept)
    tars = datasets.load_dataset(
        "webdataset", data_files=str(exports / "webdataset" / "*.tar"), split="train", cache_dir=str(tmp_path)
    )
    assert len(tars) == len(pipeline.kept)
    first = tars[0]
    meta = pq.read_table(exports / "webdataset" / "00000.parquet").to_pylist()[0]
    assert first["__key__"] == meta["key"] and first["txt"] == meta["caption"]
    assert first["jpg"].size == (meta["original_width"], meta["original_height"])
    assert json.loads(json.dumps(first["json"]))["url"] == meta["url"]
    build_report(str(pipeline.root))  # the card declares the parquet exports as configs
    card = datasets.load_dataset(str(pipeline.root), "laion400m", split="train", cache_dir=str(tmp_path))
    assert sorted(card["SAMPLE_ID"]) == sorted(parquet["SAMPLE_ID"])
