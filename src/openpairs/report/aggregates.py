"""Report aggregates of one shard, mergeable in shard order: the report never holds the samples.

The filter stage writes `filter/<shard>_aggregates.json` beside each filter shard (the report computes the
same numbers as tasks for shards without one). Over the shard's downloaded samples (download status ok,
joined with their clip row) and its kept ones (also filter status ok): counts, fixed-edge histograms of
the scores and of caption lengths, the LAION-400M Table 1 size counts, language counts, and domain counts
hash-partitioned into DOMAIN_PARTITIONS lists (report.domains reduces them to the exact top domains).
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from openpairs.io import fs as ofs
from openpairs.io.commit import ShardPaths, shard_name, write_bytes_atomic

# name -> (lowest edge, highest edge, bins); values outside the edges count in the first / last bin
HISTOGRAMS: dict[str, tuple[float, float, int]] = {
    "similarity": (-1.0, 1.0, 200),
    "punsafe": (0.0, 1.0, 100),
    "pwatermark": (0.0, 1.0, 100),
    "aesthetic": (0.0, 10.0, 100),
    "caption_length": (0.0, 1000.0, 100),
}
SCORE_HISTOGRAMS = ("similarity", "punsafe", "pwatermark", "aesthetic")
SIZE_THRESHOLDS = (1024, 512, 256)
DOMAIN_PARTITIONS = 16
SAMPLE_COLUMNS = ("key", "url", "caption", "language", "original_width", "original_height")
SCORE_COLUMNS = ("similarity", "punsafe", "pwatermark", "aesthetic", "nsfw")


def edges(name: str) -> np.ndarray:
    """The fixed bin edges of histogram `name`."""
    low, high, bins = HISTOGRAMS[name]
    return np.linspace(low, high, bins + 1)


def histogram(name: str, values: np.ndarray) -> list[int]:
    """Counts of `values` in the fixed bins of `name` (out-of-range values clipped into the end bins)."""
    low, high, bins = HISTOGRAMS[name]
    counts, _ = np.histogram(np.clip(values, low, high), bins=bins, range=(low, high))
    return [int(n) for n in counts]


def domain(url: str) -> str:
    """The host of a URL, without a leading www."""
    host = url.split("://", 1)[-1].split("/", 1)[0].split("?", 1)[0].split(":", 1)[0].lower()
    return host[4:] if host.startswith("www.") else host


def domain_partition(name: str) -> int:
    """The partition of a domain: the same in every process (crc32, not Python's salted hash)."""
    return zlib.crc32(name.encode("utf-8")) % DOMAIN_PARTITIONS


@dataclass
class Aggregates:
    """What the report shows, summed over shards (domains: per partition, reduced by report.domains)."""

    downloaded: int = 0
    kept: int = 0
    histograms: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # name -> {all, kept}
    languages: Counter[str] = field(default_factory=Counter)  # of kept samples
    sizes: Counter[str] = field(default_factory=Counter)  # "or 1024", "and 1024", ... of kept samples
    domains: list[dict[str, int]] = field(default_factory=list)  # of kept samples, by partition

    def add(self, other: Aggregates) -> None:
        """Add another shard's numbers (domains are left to the partitioned reduce)."""
        self.downloaded += other.downloaded
        self.kept += other.kept
        for name, parts in other.histograms.items():
            mine = self.histograms.setdefault(name, {part: [0] * len(c) for part, c in parts.items()})
            for part, counts in parts.items():
                mine[part] = [a + b for a, b in zip(mine[part], counts, strict=True)]
        self.languages.update(other.languages)
        self.sizes.update(other.sizes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with sorted keys (the same bytes for the same shard)."""
        return {
            "downloaded": self.downloaded,
            "kept": self.kept,
            "histograms": self.histograms,
            "languages": dict(sorted(self.languages.items())),
            "sizes": dict(sorted(self.sizes.items())),
            "domains": [dict(sorted(p.items())) for p in self.domains],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Aggregates:
        """Inverse of `to_dict`."""
        return cls(
            downloaded=int(data["downloaded"]),
            kept=int(data["kept"]),
            histograms=data["histograms"],
            languages=Counter(data["languages"]),
            sizes=Counter(data["sizes"]),
            domains=data.get("domains", []),
        )


AGGREGATES_SUFFIX = "_aggregates.json"
DOMAINS_SUFFIX = "_domains.json"


def aggregates_path(paths: ShardPaths) -> str:
    """Where a shard's aggregates go: `<stage>/<shard>_aggregates.json`."""
    return ofs.join(paths.directory, f"{shard_name(paths.index)}{AGGREGATES_SUFFIX}")


def domains_path(aggregates: str) -> str:
    """The domain counts beside an aggregates file (`<shard>_domains.json`, read only by the reduce)."""
    return aggregates.removesuffix(AGGREGATES_SUFFIX) + DOMAINS_SUFFIX


def write_aggregates(paths: ShardPaths, aggregates: Aggregates) -> str:
    """Write a shard's domain counts, then its other aggregates, atomically (sorted keys: the same
    bytes for the same shard); returns the aggregates file's path."""
    path = aggregates_path(paths)
    numbers = aggregates.to_dict()
    domains = numbers.pop("domains")
    for target, data in ((domains_path(path), domains), (path, numbers)):
        text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        write_bytes_atomic(target, text.encode("utf-8"))
    return path


def read_aggregates(path: str) -> Aggregates:
    """A shard's aggregates file."""
    return Aggregates.from_dict(json.loads(ofs.read_text(path)))


def samples_table(down: pa.Table, clip: pa.Table | None, filter_ok: pa.Array | None) -> pa.Table:
    """A shard's downloaded samples with their clip scores and a `kept` flag (`filter_ok`: the keys the
    filter kept; None when the filter did not run: every downloaded sample is kept)."""
    down = down.filter(pc.equal(down["status"], pa.scalar("ok")))
    table = down.select([c for c in SAMPLE_COLUMNS if c in down.column_names])
    if clip is not None:
        table = table.join(clip.select(["key", *[c for c in SCORE_COLUMNS if c in clip.column_names]]), "key")
    if filter_ok is None:
        return table.append_column("kept", pa.array([True] * table.num_rows, pa.bool_()))
    return table.append_column("kept", pc.is_in(table["key"], value_set=filter_ok))


def shard_aggregates(samples: pa.Table) -> Aggregates:
    """The report's numbers over one shard's `samples_table`."""
    kept = samples.filter(samples["kept"])
    result = Aggregates(downloaded=samples.num_rows, kept=kept.num_rows)
    for name in SCORE_HISTOGRAMS:
        if name in samples.column_names:
            result.histograms[name] = {
                "all": histogram(name, _values(samples, name)),
                "kept": histogram(name, _values(kept, name)),
            }
    if "caption" in kept.column_names:
        lengths = np.array([len(c or "") for c in kept["caption"].to_pylist()], dtype=np.float64)
        result.histograms["caption_length"] = {"kept": histogram("caption_length", lengths)}
    if "language" in kept.column_names:
        result.languages = Counter(v or "" for v in kept["language"].to_pylist())
    if "original_width" in kept.column_names:
        result.sizes = _size_counts(kept)
    result.domains = [{} for _ in range(DOMAIN_PARTITIONS)]
    if "url" in kept.column_names:
        for host, count in Counter(domain(u or "") for u in kept["url"].to_pylist()).items():
            result.domains[domain_partition(host)][host] = count
    return result


def _values(table: pa.Table, name: str) -> np.ndarray:
    """Non-null values of a numeric column (-1.0 similarity means "no similarity": left out)."""
    values = table[name].drop_null().to_numpy(zero_copy_only=False).astype(np.float64)
    values = values[~np.isnan(values)]
    return values[values > -1.0] if name == "similarity" else values


def _size_counts(kept: pa.Table) -> Counter[str]:
    width = np.nan_to_num(kept["original_width"].to_numpy(zero_copy_only=False).astype(np.float64))
    height = np.nan_to_num(kept["original_height"].to_numpy(zero_copy_only=False).astype(np.float64))
    counts: Counter[str] = Counter()
    for size in SIZE_THRESHOLDS:
        counts[f"or {size}"] = int(np.sum((width >= size) | (height >= size)))
        counts[f"and {size}"] = int(np.sum((width >= size) & (height >= size)))
    return counts
