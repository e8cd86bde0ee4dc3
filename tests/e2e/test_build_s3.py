"""The whole build writing to object storage: a local S3 server (moto) on 127.0.0.1, then read back."""

from __future__ import annotations

from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

import openpairs
from openpairs.demo.miniweb import MiniWeb
from tests.e2e.chain import run_demo_build
from tests.fixtures.s3_server import s3_bucket
from tests.fixtures.tiny_clip import tiny_checkpoint


def test_build_to_s3_and_read_it_back(tmp_path: Path) -> None:
    checkpoint = tiny_checkpoint(tmp_path)
    with MiniWeb() as web, s3_bucket() as bucket:
        out = f"{bucket}/datasets/demo"
        result = run_demo_build(out, web.url, checkpoint)
        assert result.ok, result.failed
        fs = fsspec.filesystem("s3")
        root = out.removeprefix("s3://")
        assert fs.exists(f"{root}/config.json") and fs.exists(f"{root}/report/index.html")
        parts = sorted(p for p in fs.find(f"{root}/dataset/laion400m") if p.endswith(".parquet"))
        tables = []
        for part in parts:
            with fs.open(part, "rb") as handle:
                tables.append(pq.read_table(handle))
        metadata = pa.concat_tables(tables)
        kept = result.totals["filter"].rows_out
        assert metadata.num_rows == kept > 100
        assert list(metadata.column_names[:5]) == ["SAMPLE_ID", "URL", "TEXT", "HEIGHT", "WIDTH"]
        loaded = list(openpairs.load(out))
        assert len(loaded) == kept
        assert {row["url"] for row in loaded} == set(metadata["URL"].to_pylist())
        assert not [p for p in fs.find(root) if ".tmp-" in p]
