"""Demo images that match their captions: the caption is drawn onto the photo the mini web serves.

The mini web only sees URLs; once extract has run, the candidates under the demo's output directory give
each URL its alt text. CLIP reads text in images, so with real weights such an image scores high against its
own caption, as a good pair should. Rendering is deterministic (same URL, same bytes).
"""

from __future__ import annotations

import glob
import io
import textwrap
import threading
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FORMATS = {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}


class CaptionedImages:
    """url -> caption from `<out>/candidates/*.parquet` (read once, when extract has written them)."""

    def __init__(self, out: str) -> None:
        self.out = out
        self._captions: dict[str, str] | None = None
        self._rendered: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def caption(self, url: str) -> str | None:
        """The alt text extract kept for `url`, if any."""
        with self._lock:
            if self._captions is None:
                self._captions = self._load()  # stays None until extract has written candidates
            return self._captions.get(url) if self._captions is not None else None

    def _load(self) -> dict[str, str] | None:
        import pyarrow.parquet as pq

        files = sorted(glob.glob(f"{self.out}/candidates/*.parquet"))
        captions: dict[str, str] = {}
        for path in files:
            table = pq.read_table(path, columns=["url", "caption"])
            captions.update(zip(table["url"].to_pylist(), table["caption"].to_pylist(), strict=True))
        return captions if files else None

    def render(self, url: str, name: str, data: bytes) -> bytes:
        """`data` with the URL's caption drawn in a band at the bottom (unchanged when it has none)."""
        caption = self.caption(url)
        if not caption:
            return data
        with self._lock:
            if url not in self._rendered:
                self._rendered[url] = draw_caption(data, caption, FORMATS[name.rsplit(".", 1)[-1].lower()])
            return self._rendered[url]


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans (shipped with matplotlib, a dependency: Latin, Greek, Cyrillic), else Pillow's default."""
    try:
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        return ImageFont.truetype(str(path), size)
    except (ImportError, OSError):
        return ImageFont.load_default(size=size)


def draw_caption(data: bytes, caption: str, image_format: str) -> bytes:
    """The image with `caption` written on a white band along its bottom edge."""
    with Image.open(io.BytesIO(data)) as opened:
        image = opened.convert("RGB")
    size = max(14, image.width // 24)
    font = _font(size)
    lines = textwrap.wrap(caption, width=max(10, image.width // (size // 2 + 1)))[:3]
    band = (len(lines) + 1) * size
    ImageDraw.Draw(image).rectangle((0, image.height - band, image.width, image.height), fill="white")
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(lines):
        draw.text((size // 2, image.height - band + size // 2 + row * size), line, fill="black", font=font)
    out = io.BytesIO()
    image.save(out, format=image_format, quality=90)
    return out.getvalue()
