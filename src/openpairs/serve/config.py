"""Settings of `openpairs serve` and the error type every endpoint raises for a bad request."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServeConfig:
    """What to serve and the limits on what clients may ask."""

    index_dir: str
    name: str = ""  # index name for /indices-list and `indice_name` (default: the dataset directory name)
    clip_model: str | None = None
    clip_pretrained: str | None = None
    clip_checkpoint: str | None = None
    clip_device: str = "cpu"
    max_body_bytes: int = 8 * 1024 * 1024
    max_image_bytes: int = 5 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_k: int = 500
    max_result_ids: int = 3000  # clip-retrieval `num_result_ids` cap
    max_text_chars: int = 1000
    allow_image_url: bool = False
    image_url_allow_addresses: tuple[str, ...] = ()
    image_url_timeout: float = 10.0
    cors_origins: tuple[str, ...] = ("*",)


class ApiError(Exception):
    """A request the service refuses: an HTTP status (4xx, or 503 when a model is missing) and a message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
