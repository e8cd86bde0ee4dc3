"""Turn a query (text, image bytes, image URL, raw embedding, stored id) into one unit vector."""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import logging
import math
import threading
from typing import Any

import numpy as np

from openpairs.index.build import dataset_clip_model
from openpairs.index.search import SearchIndex
from openpairs.serve.config import ApiError, ServeConfig

LOG = logging.getLogger(__name__)


class QueryEncoder:
    """Encodes queries with the dataset's CLIP (loaded once at start-up when configured)."""

    def __init__(self, config: ServeConfig, index: SearchIndex) -> None:
        self.config = config
        self.index = index
        self.clip: Any = None
        self.clip_error = "no CLIP model configured: start serve with --clip-model/--clip-checkpoint"
        self._lock = threading.Lock()  # torch modules are not re-entrant across request threads
        spec = self._spec()
        if spec is not None:
            self._load(spec)

    def _spec(self) -> Any:
        manifest = self.index.manifest
        recorded = manifest.get("clip") or dataset_clip_model(self.index.root)
        model = self.config.clip_model or recorded.get("model")
        if not model:
            return None
        from openpairs.models.clip import ClipModelSpec

        pretrained = self.config.clip_pretrained or (
            None if self.config.clip_checkpoint else recorded.get("pretrained")
        )
        checkpoint = self.config.clip_checkpoint or (
            None if self.config.clip_pretrained else recorded.get("checkpoint")
        )
        return ClipModelSpec(
            model=model, pretrained=pretrained, checkpoint=checkpoint, device=self.config.clip_device
        )

    def _load(self, spec: Any) -> None:
        from openpairs.models.clip import load_clip

        try:
            clip = load_clip(spec)
        except Exception as exc:  # a missing model must not stop embedding queries
            self.clip_error = f"CLIP model {spec.model} could not be loaded: {exc}"
            LOG.warning(self.clip_error)
            return
        if clip.dim != self.index.dim:
            self.clip_error = (
                f"CLIP model {spec.model} gives {clip.dim}-d vectors but the index is {self.index.dim}-d"
            )
            LOG.warning(self.clip_error)
            return
        self.clip = clip

    def _require_clip(self) -> Any:
        if self.clip is None:
            raise ApiError(503, self.clip_error)
        return self.clip

    def text(self, text: str) -> np.ndarray:
        """Encode a text query."""
        if not text.strip():
            raise ApiError(422, "text is empty")
        if len(text) > self.config.max_text_chars:
            raise ApiError(413, f"text longer than {self.config.max_text_chars} characters")
        clip = self._require_clip()
        with self._lock:
            return clip.encode_text([text])[0]  # type: ignore[no-any-return]

    def image(self, data: bytes) -> np.ndarray:
        """Encode an image query given its encoded bytes (JPEG, PNG, WebP, ...)."""
        from PIL import Image, UnidentifiedImageError

        if len(data) > self.config.max_image_bytes:
            raise ApiError(413, f"image larger than {self.config.max_image_bytes} bytes")
        clip = self._require_clip()
        try:
            with Image.open(io.BytesIO(data)) as image:
                if image.width * image.height > self.config.max_image_pixels:
                    raise ApiError(413, f"image over {self.config.max_image_pixels} pixels")
                tensor = clip.preprocess(image.convert("RGB"))
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
            raise ApiError(422, f"image could not be decoded: {exc}") from exc
        with self._lock:
            return clip.encode_images(tensor.unsqueeze(0))[0]  # type: ignore[no-any-return]

    def image_base64(self, text: str) -> np.ndarray:
        """Encode an image sent as base64 (optionally a data: URL)."""
        if text.startswith("data:") and "," in text:
            text = text.split(",", 1)[1]
        if len(text) > self.config.max_image_bytes * 4 // 3 + 4:
            raise ApiError(413, f"image larger than {self.config.max_image_bytes} bytes")
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ApiError(422, f"image is not valid base64: {exc}") from exc
        return self.image(data)

    def embedding(self, values: list[Any]) -> np.ndarray:
        """Validate and normalise a raw query embedding."""
        if len(values) != self.index.dim:
            raise ApiError(422, f"embedding has {len(values)} values; this index expects {self.index.dim}")
        if any(isinstance(v, bool | str) for v in values[:1]):
            raise ApiError(422, "embedding must contain only finite numbers")
        try:
            vector = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ApiError(422, "embedding must contain only finite numbers") from exc
        if vector.ndim != 1 or not np.isfinite(vector).all():
            raise ApiError(422, "embedding must contain only finite numbers")
        norm = float(np.linalg.norm(vector))
        if norm == 0.0 or not math.isfinite(norm):
            raise ApiError(422, "embedding has zero (or overflowing) norm")
        return (vector / norm).astype(np.float32)

    def stored(self, item: int, modality: str) -> np.ndarray:
        """The stored embedding of dataset item `item` ("search by this result's image/caption")."""
        store = self.index.stores.get(modality)
        if store is None:
            raise ApiError(404, f"no stored {modality} embeddings to search by id")
        if not 0 <= item < store.count:
            raise ApiError(404, f"id {item} is out of range (0..{store.count - 1})")
        vector = store.take(np.array([item]))[0]
        norm = float(np.linalg.norm(vector))
        if norm < 1e-6:
            raise ApiError(404, f"item {item} has no {modality} embedding (missing image or caption)")
        return vector / norm

    async def image_url(self, url: str) -> np.ndarray:
        """Fetch an image URL through the downloader's address guard (only when enabled), then encode it."""
        if not self.config.allow_image_url:
            raise ApiError(403, "image_url queries are disabled: start serve with --allow-image-url")
        from openpairs.net.config import FetchConfig
        from openpairs.net.fetch import Fetcher

        fetch_config = FetchConfig(
            connections=4,
            max_bytes=self.config.max_image_bytes,
            deadline=self.config.image_url_timeout,
            timeout=self.config.image_url_timeout,
            retries=0,
            opt_out_directives=(),
            allow_addresses=self.config.image_url_allow_addresses,
        )
        async with Fetcher(fetch_config) as fetcher:
            result = await fetcher.fetch(url)
        if result.status != "ok" or result.body is None:
            raise ApiError(422, f"image_url not fetched ({result.status}): {result.error}")
        return await asyncio.to_thread(self.image, result.body)
