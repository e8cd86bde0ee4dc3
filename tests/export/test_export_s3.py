"""export, load and report on object storage: a local S3 server (moto) on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import fsspec
import pyarrow.parquet as pq

import openpairs
from openpairs.executors import ExecutorConfig
from openpairs.report import build_report
from openpairs.stages.export import ExportConfig, run_export
from tests.fixtures.pipeline_output import PipelineOutput
from tests.fixtures.s3_server import s3_bucket

IN_PROCESS = ExecutorConfig(workers=1)  # the moto endpoint is configured in this process only


def test_export_load_report_on_s3(
    built_pipeline: PipelineOutput, pipeline: PipelineOutput, tmp_path: Path
) -> None:
    local = run_export(str(pipeline.root), ExportConfig(format="laion400m", samples_per_shard=100))
    with s3_bucket() as bucket:
        fs = fsspec.filesystem("s3")
        out = f"{bucket}/run"
        fs.put(str(built_pipeline.root) + "/", out.removeprefix("s3://"), recursive=True)
        remote = run_export(out, ExportConfig(format="laion400m", samples_per_shard=100), IN_PROCESS)
        run_export(out, ExportConfig(format="webdataset", samples_per_shard=50), IN_PROCESS)
        assert remote.samples == len(pipeline.kept)
        fetched = tmp_path / "part.parquet"
        fs.get(f"{out}/dataset/laion400m/part-00000.parquet".removeprefix("s3://"), str(fetched))
        assert pq.read_table(fetched).equals(pq.read_table(Path(local.directory) / "part-00000.parquet"))
        urls = [sample["url"] for sample in openpairs.load(out)]
        assert urls == [pipeline.downloads[key]["url"] for key in pipeline.kept]
        report = build_report(out, title="s3", executor=IN_PROCESS)
        assert fs.exists(report.html.removeprefix("s3://"))
        card = fs.cat(report.card.removeprefix("s3://")).decode()
        assert card.startswith("---\n") and f"| kept | {len(pipeline.kept):,} |" in card
        assert not [p for p in fs.find(out.removeprefix("s3://")) if ".tmp-" in p]
