"""With captions_from=DIR the mini web draws each URL's caption onto the photo it serves."""

from __future__ import annotations

import io
import urllib.request
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageStat

from openpairs.demo.miniweb import MiniWeb, outcome


def _fetch(base: str, url: str) -> bytes:
    scheme, rest = url.split("://", 1)
    with urllib.request.urlopen(f"{base}/{scheme}/{rest}", timeout=10) as response:
        return response.read()


def test_images_carry_their_caption(tmp_path: Path) -> None:
    urls = [f"http://photos.example/{i}.jpg" for i in range(60)]
    url = next(u for u in urls if outcome(u) == "image")
    (tmp_path / "candidates").mkdir()
    table = pa.table({"url": [url], "caption": ["a red boat on a calm lake at dawn"]})
    with MiniWeb() as plain, MiniWeb(captions_from=str(tmp_path)) as before:
        unchanged = _fetch(before.url, url)  # no candidates yet: the plain photo
        assert unchanged == _fetch(plain.url, url)
    pq.write_table(table, tmp_path / "candidates" / "00000.parquet")
    with MiniWeb() as plain, MiniWeb(captions_from=str(tmp_path)) as captioned:
        original, drawn = _fetch(plain.url, url), _fetch(captioned.url, url)
        assert drawn != original and drawn == _fetch(captioned.url, url)  # deterministic
        other = next(u for u in urls if outcome(u) == "image" and u != url)
        assert _fetch(captioned.url, other) == _fetch(plain.url, other)  # no caption known: unchanged
    with Image.open(io.BytesIO(drawn)) as image, Image.open(io.BytesIO(original)) as photo:
        assert image.size == photo.size
        bottom = image.convert("L").crop((0, image.height - 10, image.width, image.height))
        assert ImageStat.Stat(bottom).mean[0] > 200  # the white caption band
