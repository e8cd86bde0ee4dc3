"""extract reads s3:// inputs and writes its shards to s3:// (a local moto S3 server on 127.0.0.1)."""

from __future__ import annotations

import fsspec
import pyarrow.parquet as pq

from tests.extract.conftest import candidates
from tests.extract.watfiles import DERIVED, WAT_2014
from tests.fixtures.s3_server import s3_bucket


def test_extract_from_and_to_s3_matches_local(run, tmp_path) -> None:
    run([str(DERIVED), str(WAT_2014)], preset="laion5b", out=str(tmp_path / "local"), relative_urls="resolve")
    with s3_bucket() as bucket:
        fs = fsspec.filesystem("s3")
        fs.put(str(DERIVED), f"{bucket}/in/{DERIVED.name}".removeprefix("s3://"))
        fs.put(str(WAT_2014), f"{bucket}/in/{WAT_2014.name}".removeprefix("s3://"))
        outcome = run([f"{bucket}/in/*.wat*"], preset="laion5b", out=f"{bucket}/run", relative_urls="resolve")
        assert not outcome.extract.failed
        names = sorted(
            p.rsplit("/", 1)[-1] for p in fs.find(f"{bucket}/run/candidates".removeprefix("s3://"))
        )
        assert "00000.parquet" in names and "00000_stats.json" in names
        with fs.open(f"{bucket}/run/candidates/00000.parquet".removeprefix("s3://"), "rb") as handle:
            remote = pq.read_table(handle)
    local = candidates(str(tmp_path / "local"))
    assert sorted(remote["url"].to_pylist()) == sorted(local["url"].to_pylist())
