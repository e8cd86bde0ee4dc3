"""Fuzzing a whole download shard: garbage URLs and mutated image bodies, fetched through a local mirror."""

from __future__ import annotations

import io
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from openpairs.core.status import Status
from tests.download.helpers import FAST, download
from tests.fuzz.bodyserver import BodyServer
from tests.fuzz.budget import fuzz_settings
from tests.fuzz.mutate import mutated
from tests.fuzz.seeds import seed_images
from tests.fuzz.strategies import ANY_TEXT, urls

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow on corrupt EXIF and TIFF tags
SEEDS = seed_images()
KNOWN = {str(s) for s in Status} | {f"http_{code}" for code in range(400, 600)}


@pytest.fixture(scope="module")
def mirror() -> Iterator[BodyServer]:
    """The mirror every fuzzed download fetches from (nothing leaves 127.0.0.1)."""
    with BodyServer() as server:
        yield server


@st.composite
def _rows(draw: st.DrawFn) -> list[tuple[str | None, Any, bytes | None]]:
    """(url, caption, body served for it) rows: served images, mutated or not, and URLs of any shape."""
    rows: list[tuple[str | None, Any, bytes | None]] = []
    for i in range(draw(st.integers(1, 10))):
        kind = draw(st.sampled_from(["image", "mutated", "mutated", "garbage_url", "none"]))
        if kind == "image":
            name = draw(st.sampled_from(sorted(SEEDS)))
            rows.append((f"http://fuzz.example/{i}/{name}", f"caption {i}", SEEDS[name]))
        elif kind == "mutated":
            _, body = draw(mutated(SEEDS))
            rows.append((f"https://fuzz.example/{i}.jpg?x=1", draw(ANY_TEXT), body))
        else:
            rows.append((draw(urls()) if kind == "garbage_url" else None, draw(ANY_TEXT), None))
    return rows


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


@fuzz_settings(12)
@given(rows=_rows())
def test_download_shard_accounts_for_every_row(mirror: BodyServer, rows: list[Any]) -> None:
    """Every input row ends with one known status; the shard never fails; each ok row's image decodes."""
    mirror.bodies = {url: body for url, _, body in rows if body is not None}
    mirror.served.clear()
    with tempfile.TemporaryDirectory() as folder:
        inp, out = Path(folder) / "in.parquet", Path(folder) / "out"
        table = pa.table(
            {"url": pa.array([r[0] for r in rows], pa.string()), "caption": [r[1] for r in rows]}
        )
        pq.write_table(table, inp)
        result = download(inp, out, FAST, mirror=mirror.mirror, min_bytes=0, image_size=32)
        assert result.ok, result.failed
        (stats,) = result.shards
        assert stats.is_balanced() and stats.rows_in == len(rows), stats.to_dict()
        assert set(stats.statuses) <= KNOWN, stats.statuses
        written = pq.read_table(out / "shards" / "00000.parquet").to_pylist()
        members = _members(out / "shards" / "00000.tar")
    assert [r["url"] for r in written] == [r[0] for r in rows]
    assert set(mirror.served) == set(mirror.bodies)  # each body was really fetched through the mirror
    for row in written:
        assert (row["status"] == Status.OK) == (f"{row['key']}.jpg" in members)
        if row["status"] == Status.OK:
            with Image.open(io.BytesIO(members[f"{row['key']}.jpg"])) as image:
                assert image.size == (row["width"], row["height"])
        else:
            assert row["error"], row
