"""openpairs.load / torch_dataset: TFDS laion400m features, compared field by field with the files."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

import openpairs
from openpairs.core.schemas import NSFW_TAGS
from openpairs.stages.export import ExportConfig, run_export
from tests.fixtures.pipeline_dir import PipelineDir

FEATURES = {"caption", "image", "license", "nsfw", "original_height", "original_width", "similarity", "url"}


@pytest.fixture(scope="module")
def exported(pipeline: PipelineDir) -> Path:
    run_export(str(pipeline.root), ExportConfig(format="webdataset", samples_per_shard=5))
    return pipeline.root / "dataset" / "webdataset"


def _tar_members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


def test_images_sample_matches_parquet_tar_and_npy(pipeline: PipelineDir, exported: Path) -> None:
    samples = list(openpairs.load(str(pipeline.root)))
    assert len(samples) == len(pipeline.kept)
    index = 6  # second shard's second sample (5 per shard)
    sample = samples[index]
    assert set(sample) == FEATURES
    row = pq.read_table(exported / "00001.parquet").to_pylist()[1]
    key = row["key"]
    members = _tar_members(exported / "00001.tar")
    assert members[f"{key}.jpg"] == pipeline.images[key]
    expected = np.asarray(Image.open(io.BytesIO(members[f"{key}.jpg"])).convert("RGB"))
    assert sample["image"].dtype == np.uint8 and sample["image"].shape == expected.shape
    assert np.array_equal(sample["image"], expected)
    assert sample["image"].shape[:2] == (row["original_height"], row["original_width"])
    assert sample["caption"] == row["caption"] == members[f"{key}.txt"].decode()
    assert json.loads(members[f"{key}.json"])["url"] == sample["url"] == row["url"]
    assert sample["license"] == row["license"]
    assert sample["nsfw"] == NSFW_TAGS.index(row["nsfw"])
    assert sample["similarity"].dtype == np.float64 and sample["similarity"] == row["similarity"]
    assert sample["original_width"].dtype == np.int32 and sample["original_width"] == row["original_width"]
    assert sample["original_height"] == row["original_height"]


def test_embeddings_config_from_export_and_pipeline(pipeline: PipelineDir, exported: Path) -> None:
    from_export = list(openpairs.load(str(exported), config="embeddings"))
    from_pipeline = list(openpairs.load(str(pipeline.root), config="embeddings"))
    assert [s["url"] for s in from_export] == [s["url"] for s in from_pipeline]
    sample = from_export[7]
    assert set(sample) == (FEATURES - {"image"}) | {"image_embedding", "text_embedding"}
    npy = np.load(exported / "text_emb" / "00001.npy")
    assert sample["text_embedding"].dtype == np.float16 and sample["text_embedding"].shape == (pipeline.dim,)
    assert np.array_equal(sample["text_embedding"], npy[2])
    assert np.array_equal(from_pipeline[7]["image_embedding"], np.load(exported / "img_emb" / "00001.npy")[2])
    with pytest.raises(ValueError, match="unknown config"):
        next(openpairs.load(str(exported), config="pixels"))  # type: ignore[arg-type]


def test_torch_dataset_splits_shards_between_workers(pipeline: PipelineDir) -> None:
    from torch.utils.data import DataLoader

    dataset = openpairs.torch_dataset(str(pipeline.root / "dataset" / "webdataset"), config="embeddings")
    loader = DataLoader(dataset, batch_size=None, num_workers=2)
    urls = [sample["url"] for sample in loader]
    assert sorted(urls) == sorted(s["url"] for s in openpairs.load(str(pipeline.root), "embeddings"))
    assert len(urls) == len(set(urls)) == len(pipeline.kept)
    ranks = [openpairs.torch_dataset(str(pipeline.root), "embeddings", rank=r, world_size=2) for r in (0, 1)]
    halves = [[sample["url"] for sample in rank] for rank in ranks]
    assert halves[0] and halves[1] and sorted(halves[0] + halves[1]) == sorted(urls)


def test_import_openpairs_stays_light() -> None:
    code = "import sys, openpairs; print(sorted(m for m in ('pyarrow', 'torch', 'PIL') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert callable(openpairs.load) and openpairs.load.__module__ == "openpairs.loading"


def test_embeddings_from_the_laion400m_export(pipeline: PipelineDir) -> None:
    result = run_export(str(pipeline.root), ExportConfig(format="laion400m", samples_per_shard=7))
    from_laion = list(openpairs.load(result.directory, config="embeddings"))
    from_pipeline = list(openpairs.load(str(pipeline.root), config="embeddings"))
    assert len(from_laion) == len(from_pipeline) == len(pipeline.kept)
    for a, b in zip(from_laion, from_pipeline, strict=True):
        assert set(a) == set(b)
        assert all(np.array_equal(a[k], b[k]) if isinstance(a[k], np.ndarray) else a[k] == b[k] for k in a)
    with pytest.raises(ValueError, match="no images"):
        next(openpairs.load(result.directory))
