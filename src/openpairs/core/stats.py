"""ShardStats: what one shard of one stage did, row by row, mergeable across shards."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

MAX_ERROR_MESSAGES = 50
MAX_MESSAGE_CHARS = 300
OTHER_ERRORS = "(other messages)"


@dataclass
class ShardStats:
    """Counts by status (rows), free-form counters, timings and capped error messages for one shard.

    Timings and where the shard ran (`worker`) describe one run: they are kept in memory (the commands
    print timings) but never written, so a shard's stats file is the same bytes on every run that gives
    the same outcome."""

    stage: str
    shard: int = -1
    rows_in: int = 0
    rows_out: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    counters: Counter[str] = field(default_factory=Counter)
    timings: dict[str, float] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    worker: dict[str, str] = field(default_factory=dict)  # where it ran (process, node, GPUs): never written

    def count(self, status: str, n: int = 1) -> None:
        """Record that `n` input rows ended with `status`."""
        self.statuses[str(status)] += n
        self.rows_in += n
        if status == "ok":
            self.rows_out += n

    def bump(self, counter: str, n: int = 1) -> None:
        """Add `n` to a free-form counter (records read, links seen, ...)."""
        self.counters[counter] += n

    def error(self, message: str, n: int = 1) -> None:
        """Keep an error message for the report; distinct messages are capped."""
        message = message[:MAX_MESSAGE_CHARS]
        if message in self.errors or len(self.errors) < MAX_ERROR_MESSAGES:
            self.errors[message] += n
        else:
            self.errors[OTHER_ERRORS] += n

    def time(self, name: str, seconds: float) -> None:
        """Add seconds spent in a named phase."""
        self.timings[name] = self.timings.get(name, 0.0) + seconds

    def is_balanced(self) -> bool:
        """True when every input row is accounted for by exactly one status."""
        return self.rows_in == sum(self.statuses.values()) and self.rows_out == self.statuses.get("ok", 0)

    def merge(self, other: ShardStats) -> ShardStats:
        """A new ShardStats adding `other` to this one (shard becomes -1: a total)."""
        merged = ShardStats(stage=self.stage, shard=-1)
        for part in (self, other):
            merged.rows_in += part.rows_in
            merged.rows_out += part.rows_out
            merged.statuses.update(part.statuses)
            merged.counters.update(part.counters)
            for name, seconds in part.timings.items():
                merged.time(name, seconds)
            for message, n in part.errors.items():
                merged.error(message, n)
        return merged

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return {
            "stage": self.stage,
            "shard": self.shard,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "statuses": dict(sorted(self.statuses.items())),
            "counters": dict(sorted(self.counters.items())),
            "errors": dict(self.errors.most_common()),
        }

    def to_json(self) -> str:
        """Serialised form written as `<shard>_stats.json`."""
        return json.dumps(self.to_dict(), indent=1, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShardStats:
        """Inverse of `to_dict`."""
        return cls(
            stage=data["stage"],
            shard=int(data.get("shard", -1)),
            rows_in=int(data["rows_in"]),
            rows_out=int(data["rows_out"]),
            statuses=Counter(data.get("statuses", {})),
            counters=Counter(data.get("counters", {})),
            errors=Counter(data.get("errors", {})),
        )


def merge_all(stage: str, parts: list[ShardStats]) -> ShardStats:
    """Sum of many shard stats (an empty total when there are none)."""
    total = ShardStats(stage=stage, shard=-1)
    for part in parts:
        total = total.merge(part)
    return total
