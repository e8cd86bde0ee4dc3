"""pyarrow schemas of the data contract (DESIGN.md §4): column names are the contract."""

from __future__ import annotations

import pyarrow as pa

CANDIDATE_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("url", pa.string()),
        ("caption", pa.string()),
        ("page_url", pa.string()),
        ("language", pa.string()),
        ("language_score", pa.float32()),
        ("license", pa.string()),
        ("hash", pa.int64()),
        ("source", pa.string()),
        ("page_robots", pa.string()),  # the page's noai/noimageai robots metas (cc/pagemeta.py), or null
        ("page_tdm_reservation", pa.int8()),  # the page's tdm-reservation meta, 0 or 1, or null
    ]
)

DOWNLOAD_FIELDS = [
    ("status", pa.string()),
    ("error", pa.string()),
    ("width", pa.int32()),
    ("height", pa.int32()),
    ("original_width", pa.int32()),
    ("original_height", pa.int32()),
    ("sha256", pa.string()),
    ("bytes", pa.int64()),
    ("mime", pa.string()),
    ("opt_out_signal", pa.string()),  # the signal that opted the row out (status opted_out), else null
]

DOWNLOAD_SCHEMA = pa.schema(list(CANDIDATE_SCHEMA) + [pa.field(n, t) for n, t in DOWNLOAD_FIELDS])

CLIP_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("similarity", pa.float64()),
        ("punsafe", pa.float32()),
        ("nsfw", pa.string()),
        ("pwatermark", pa.float32()),
        ("aesthetic", pa.float32()),
    ]
)

NSFW_TAGS = ("UNLIKELY", "UNSURE", "NSFW", "UNTAGGED")


def empty_table(schema: pa.Schema) -> pa.Table:
    """A zero-row table with `schema`."""
    return schema.empty_table()
