"""The real download stage against the mini web: every kind of drop shows up in the shard's statuses."""

from __future__ import annotations

from pathlib import Path

import mmh3
import pyarrow as pa
import pyarrow.parquet as pq

from openpairs.core.keys import mint_key
from openpairs.core.schemas import CANDIDATE_SCHEMA
from openpairs.demo.miniweb import MiniWeb, outcome
from openpairs.stages import download
from openpairs.stages.download_config import DownloadConfig
from openpairs.stages.download_plan import plan_tasks

EXPECTED = {
    "http_404": "http_404",
    "http_500": "http_500",
    "garbage": "decode_error",
    "html": "decode_error",
    "tiny": "too_small",
    "truncated": "decode_error",
    "noai": "opted_out",
    "redirect": "ok",
    "image": "ok",
}


def _candidates(root: Path, per_kind: int = 2) -> dict[str, str]:
    urls: dict[str, str] = {}
    counts: dict[str, int] = {}
    for i in range(3000):
        url = f"https://photos{i % 5}.example.com/album/{i}.jpg"
        kind = outcome(url)
        if counts.get(kind, 0) < per_kind:
            counts[kind] = counts.get(kind, 0) + 1
            urls[url] = kind
    rows = [
        {
            "key": mint_key(0, row), "url": url, "caption": f"a photo of album item {row}",
            "page_url": "https://example.com/", "language": "en", "language_score": 0.9, "license": "?",
            "hash": mmh3.hash64(url)[0], "source": "test",
        }
        for row, url in enumerate(urls)
    ]  # fmt: skip
    (root / "candidates").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=CANDIDATE_SCHEMA), root / "candidates" / "00000.parquet")
    return urls


def test_download_through_the_mirror_shows_every_drop(tmp_path: Path) -> None:
    urls = _candidates(tmp_path)
    with MiniWeb() as web:
        config = DownloadConfig(mirror=web.url, retries=0, backoff_base=0.01, connections=8)
        tasks = plan_tasks(config.input_spec(str(tmp_path)), str(tmp_path), config.shard_size)
        stats = download.run_shard(config, tasks[0])
    table = pq.read_table(tmp_path / "shards" / "00000.parquet").to_pylist()
    got = {row["url"]: row["status"] for row in table}
    assert got == {url: EXPECTED[kind] for url, kind in urls.items()}
    assert stats.is_balanced() and stats.rows_out == 4
