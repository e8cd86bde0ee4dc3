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
from tests.fixtures.pipeline_build import IMAGE_SIZE
from tests.fixtures.pipeline_output import PipelineOutput

FEATURES = {"caption", "image", "license", "nsfw", "original_height", "original_width", "similarity", "url"}
PER_SHARD = 20


@pytest.fixture(scope="module")
def exported(built_pipeline: PipelineOutput, tmp_path_factory: pytest.TempPathFactory) -> PipelineOutput:
    """A copy of the pipeline DIR with a webdataset export of PER_SHARD samples per shard."""
    pipeline = built_pipeline.copy(tmp_path_factory.mktemp("load") / "run")
    run_export(str(pipeline.root), ExportConfig(format="webdataset", samples_per_shard=PER_SHARD))
    return pipeline


def _webdataset(pipeline: PipelineOutput) -> Path:
    return pipeline.root / "dataset" / "webdataset"


def _tar_members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


def test_images_samples_match_the_download_stage(exported: PipelineOutput) -> None:
    samples = list(openpairs.load(str(exported.root)))
    assert len(samples) == len(exported.kept)
    for key, sample in zip(exported.kept, samples, strict=True):
        row, stored = exported.downloads[key], exported.stored(key)
        assert set(sample) == FEATURES
        image = np.asarray(Image.open(io.BytesIO(stored["jpg"])).convert("RGB"))
        assert sample["image"].dtype == np.uint8 and np.array_equal(sample["image"], image)
        assert sample["image"].shape == (row["height"], row["width"], 3)  # as stored: <= image_size
        assert max(row["height"], row["width"]) <= IMAGE_SIZE
        assert sample["caption"] == row["caption"] == stored["txt"].decode()
        assert (sample["url"], sample["license"]) == (row["url"], row["license"])
        assert sample["nsfw"] == NSFW_TAGS.index(exported.clip[key]["nsfw"])
        assert (
            sample["similarity"].dtype == np.float64
            and sample["similarity"] == exported.clip[key]["similarity"]
        )
        assert (
            sample["original_width"].dtype == np.int32 and sample["original_width"] == row["original_width"]
        )
        assert sample["original_height"] == row["original_height"]
    assert any(s["image"].shape[:2] != (s["original_height"], s["original_width"]) for s in samples)


def test_export_shard_holds_the_stored_bytes(exported: PipelineOutput) -> None:
    row = pq.read_table(_webdataset(exported) / "00001.parquet").to_pylist()[1]
    key = row["key"]
    assert key == exported.kept[PER_SHARD + 1]
    members = _tar_members(_webdataset(exported) / "00001.tar")
    assert members[f"{key}.jpg"] == exported.stored(key)["jpg"]
    assert json.loads(members[f"{key}.json"])["url"] == row["url"] == exported.downloads[key]["url"]


def test_embeddings_config_from_export_and_pipeline(exported: PipelineOutput) -> None:
    from_export = list(openpairs.load(str(_webdataset(exported)), config="embeddings"))
    from_pipeline = list(openpairs.load(str(exported.root), config="embeddings"))
    assert [s["url"] for s in from_export] == [s["url"] for s in from_pipeline]
    assert [s["url"] for s in from_export] == [exported.downloads[k]["url"] for k in exported.kept]
    sample = from_export[PER_SHARD + 2]
    assert set(sample) == (FEATURES - {"image"}) | {"image_embedding", "text_embedding"}
    npy = np.load(_webdataset(exported) / "text_emb" / "00001.npy")
    assert sample["text_embedding"].dtype == np.float16 and sample["text_embedding"].shape == (exported.dim,)
    assert np.array_equal(sample["text_embedding"], npy[2])
    key = exported.kept[PER_SHARD + 2]
    assert np.array_equal(sample["text_embedding"], exported.embedding(key, "text_emb"))
    image_embedding = from_pipeline[PER_SHARD + 2]["image_embedding"]
    assert np.array_equal(image_embedding, np.load(_webdataset(exported) / "img_emb" / "00001.npy")[2])
    assert np.array_equal(image_embedding, exported.embedding(key, "img_emb"))
    with pytest.raises(ValueError, match="unknown config"):
        next(openpairs.load(str(_webdataset(exported)), config="pixels"))  # type: ignore[arg-type]


def test_torch_dataset_splits_shards_between_workers(exported: PipelineOutput) -> None:
    from torch.utils.data import DataLoader

    dataset = openpairs.torch_dataset(str(_webdataset(exported)), config="embeddings")
    loader = DataLoader(dataset, batch_size=None, num_workers=2)
    urls = [sample["url"] for sample in loader]
    assert sorted(urls) == sorted(exported.downloads[key]["url"] for key in exported.kept)
    assert len(urls) == len(set(urls)) == len(exported.kept)
    ranks = [openpairs.torch_dataset(str(exported.root), "embeddings", rank=r, world_size=2) for r in (0, 1)]
    halves = [[sample["url"] for sample in rank] for rank in ranks]
    assert halves[0] and halves[1] and sorted(halves[0] + halves[1]) == sorted(urls)


def test_import_openpairs_stays_light() -> None:
    code = "import sys, openpairs; print(sorted(m for m in ('pyarrow', 'torch', 'PIL') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert callable(openpairs.load) and openpairs.load.__module__ == "openpairs.loading"


def test_embeddings_from_the_laion400m_export(pipeline: PipelineOutput) -> None:
    result = run_export(str(pipeline.root), ExportConfig(format="laion400m", samples_per_shard=40))
    from_laion = list(openpairs.load(result.directory, config="embeddings"))
    from_pipeline = list(openpairs.load(str(pipeline.root), config="embeddings"))
    assert len(from_laion) == len(from_pipeline) == len(pipeline.kept)
    for a, b in zip(from_laion, from_pipeline, strict=True):
        assert set(a) == set(b)
        assert all(np.array_equal(a[k], b[k]) if isinstance(a[k], np.ndarray) else a[k] == b[k] for k in a)
    with pytest.raises(ValueError, match="no images"):
        next(openpairs.load(result.directory))
