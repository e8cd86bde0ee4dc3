"""Report aggregates: merged shard by shard they give the numbers of a whole-table computation; the
partitioned top-domain reduce is exact, ties included."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa

from openpairs.executors import ExecutorConfig
from openpairs.io import commit
from openpairs.report.aggregates import (
    DOMAIN_PARTITIONS,
    HISTOGRAMS,
    domain,
    domain_partition,
    domains_path,
    samples_table,
    shard_aggregates,
    write_aggregates,
)
from openpairs.report.data import read_report_data, size_table
from openpairs.report.domains import top_domains
from tests.fixtures.pipeline_output import PipelineOutput

IN_PROCESS = ExecutorConfig(workers=1)


def _histogram(name: str, values: list[float]) -> list[int]:
    low, high, bins = HISTOGRAMS[name]
    counts, _ = np.histogram(np.clip(values, low, high), bins=np.linspace(low, high, bins + 1))
    return counts.tolist()


def test_merged_aggregates_equal_a_whole_table_computation(built_pipeline: PipelineOutput) -> None:
    data = read_report_data(str(built_pipeline.root), IN_PROCESS)  # the filter's aggregates: no writes
    downloaded = [
        k for k, row in built_pipeline.downloads.items() if row["status"] == "ok" and k in built_pipeline.clip
    ]
    kept = built_pipeline.kept_rows()
    assert data.aggregates is not None
    assert (data.aggregates.downloaded, data.aggregates.kept) == (len(downloaded), len(kept))
    assert data.aggregates.languages == Counter(row["language"] for row in kept)
    similarity = data.histogram("similarity")
    assert similarity is not None
    everything = [built_pipeline.clip[k]["similarity"] for k in downloaded]
    assert similarity["all"].tolist() == _histogram("similarity", [v for v in everything if v > -1.0])
    kept_scores = [built_pipeline.clip[row["key"]]["similarity"] for row in kept]
    assert similarity["kept"].tolist() == _histogram("similarity", kept_scores)
    lengths = [len(row["caption"]) for row in kept]
    assert data.histogram("caption_length")["kept"].tolist() == _histogram("caption_length", lengths)  # type: ignore[index]
    sizes = dict(size_table(data.aggregates) or [])
    assert sizes["Number with height or width >= 512"] == sum(
        max(row["original_width"], row["original_height"]) >= 512 for row in kept
    )
    assert (
        data.domains
        == sorted(Counter(domain(row["url"]) for row in kept).items(), key=lambda d: (-d[1], d[0]))[:15]
    )


def test_report_tasks_compute_what_the_filter_wrote(pipeline: PipelineOutput) -> None:
    from_filter = read_report_data(str(pipeline.root), IN_PROCESS)
    for path in (pipeline.root / "filter").glob("*_aggregates.json"):
        path.unlink()
    computed = read_report_data(str(pipeline.root), IN_PROCESS)
    assert len(list((pipeline.root / "report" / "_aggregates").glob("*_aggregates.json"))) == len(
        pipeline.shards
    )
    assert computed.aggregates == from_filter.aggregates and computed.domains == from_filter.domains


def test_partitioned_top_domains_are_exact_with_ties(tmp_path: Path) -> None:
    rng = random.Random(7)
    hosts = [f"{rng.getrandbits(40):010x}.example" for _ in range(200)]  # names in no particular order
    counts = [max(1, 40 - n // 3) for n in range(len(hosts))]  # runs of three equal counts: ties
    urls = [f"https://www.{h}/img/{i}.jpg" for h, c in zip(hosts, counts, strict=True) for i in range(c)]
    rng.shuffle(urls)  # each host's samples spread over the shards
    paths = []
    for shard in range(5):
        rows = urls[shard::5]
        table = pa.table(
            {"key": [str(i) for i in range(len(rows))], "url": rows, "status": ["ok"] * len(rows)}
        )
        aggregates = shard_aggregates(samples_table(table, None, None))
        paths.append(
            domains_path(write_aggregates(commit.ShardPaths(str(tmp_path), "filter", shard), aggregates))
        )
    direct = Counter(domain(u) for u in urls)
    expected = sorted(direct.items(), key=lambda item: (-item[1], item[0]))[:20]
    assert expected[19][1] == sorted(direct.values(), reverse=True)[20]  # a tie crosses the cut
    assert len({domain_partition(h) for h, _ in expected}) > DOMAIN_PARTITIONS // 2
    assert top_domains(paths, IN_PROCESS, str(tmp_path / "combined"), limit=20) == expected
    combined = top_domains(paths, IN_PROCESS, str(tmp_path / "combined"), limit=20, combine_shards=2)
    assert combined == expected and len(list((tmp_path / "combined").glob("*.json"))) == 3 * DOMAIN_PARTITIONS
