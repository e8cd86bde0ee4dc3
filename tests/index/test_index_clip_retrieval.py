"""An index folder holds what clip-retrieval's back end reads: indexes it can search *and reconstruct*
(it reconstructs every result) and Arrow metadata under metadata/, one row per id, in id order."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pyarrow as pa
import pytest

from openpairs.index.build import IndexConfig, build_index
from openpairs.index.search import SearchIndex
from tests.fixtures.embeddings import make_dataset


def clip_retrieval_metadata(folder: Path) -> pa.Table:
    """The metadata as clip-retrieval's ArrowMetadataProvider loads it: every file under metadata/."""
    files = [str(p) for p in sorted((folder / "metadata").glob("**/*")) if p.is_file()]
    return pa.concat_tables([pa.ipc.RecordBatchFileReader(pa.memory_map(f, "r")).read_all() for f in files])


@pytest.mark.parametrize("factory", [None, "HNSW16,Flat", "IVF8,SQfp16"])
def test_index_folder_serves_clip_retrieval_back(tmp_path: Path, factory: str | None) -> None:
    vectors = dict(
        zip(("image", "text"), make_dataset(str(tmp_path), shards=2, rows=60, dim=16), strict=True)
    )
    folder = tmp_path / "index"
    build_index(str(tmp_path), str(folder), IndexConfig(text=True, factory=factory, tune_queries=20))
    ours = SearchIndex(str(folder))
    table = clip_retrieval_metadata(folder)
    assert table.to_pylist() == ours.metadata.rows(np.arange(len(ours.metadata)))
    for modality, stored in vectors.items():
        index = faiss.read_index(str(folder / f"{modality}.index"))  # as `clip-retrieval back` loads it
        entry = ours.manifest["indices"][modality]
        if entry["param"] == "nprobe":  # the file carries the tuned parameter
            assert faiss.extract_index_ivf(index).nprobe == entry["value"]
        if entry["param"] == "efSearch":
            assert faiss.downcast_index(index.index).hnsw.efSearch == entry["value"]
        query = stored[[7, 101]]
        distances, ids, reconstructed = index.search_and_reconstruct(query, 5)
        for row, vector in enumerate(query):
            expected, expected_ids = ours.knn(vector, modality, 5)
            assert ids[row].tolist() == expected_ids.tolist()
            np.testing.assert_allclose(distances[row], expected, rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(reconstructed[row], stored[ids[row]], atol=2e-3)
    ours.close()
