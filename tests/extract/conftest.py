"""Fixtures for the extract tests: run the stage through its real entry points."""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from openpairs.executors import ExecutorConfig
from openpairs.presets import stage_config
from openpairs.stages.dedup import DedupConfig
from openpairs.stages.extract import ExtractConfig
from openpairs.stages.extract_run import ExtractOutcome, run_extract

RunExtract = Callable[..., ExtractOutcome]


@pytest.fixture
def run(tmp_path) -> RunExtract:  # type: ignore[no-untyped-def]
    """Run extract+dedup in-process (one worker) with a preset and rule overrides."""

    def go(
        inputs: list[str], preset: str = "laion400m", out: str | None = None, **overrides: object
    ) -> ExtractOutcome:
        dedup_fields = {k: overrides.pop(k) for k in list(overrides) if k in DedupConfig.__dataclass_fields__}
        rules = stage_config(ExtractConfig, "extract", preset, **overrides)
        dedup = stage_config(DedupConfig, "dedup", preset, **dedup_fields)
        return run_extract(
            [str(i) for i in inputs], out or str(tmp_path / "out"), rules, dedup, ExecutorConfig(workers=1)
        )

    return go


def candidates(out: str) -> pa.Table:
    """All candidates/ shards of an output directory, concatenated."""
    import glob

    files = sorted(glob.glob(f"{out}/candidates/*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files]) if files else pa.table({})


def extracted(out: str, shard: int = 0) -> pa.Table:
    """extract/<shard>.parquet of an output directory."""
    return pq.read_table(f"{out}/extract/{shard:05d}.parquet")
