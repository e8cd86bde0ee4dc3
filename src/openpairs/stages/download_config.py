"""The download stage's settings: input columns, fetching (net.FetchConfig), images (image.ImageConfig)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TypeVar

from openpairs.image.config import ImageConfig
from openpairs.net.config import FetchConfig
from openpairs.stages import download_write as dw
from openpairs.stages.download_checks import BodyChecks
from openpairs.stages.inputs import InputSpec

T = TypeVar("T")


@dataclass(frozen=True)
class DownloadConfig:
    """Every download option: input columns, fetching, image checks/conversion, shard layout."""

    # input
    input_format: str = ""
    url_col: str = ""
    caption_col: str = ""
    save_additional_columns: tuple[str, ...] = ()
    verify_hash: str = ""  # input column of expected sha256 digests: another body -> hash_mismatch
    shard_size: int = 10_000
    # fetching: net.FetchConfig's fields, with its defaults (documented there)
    connections: int = FetchConfig.connections
    per_host: int = FetchConfig.per_host
    connect_timeout: float = FetchConfig.connect_timeout
    read_timeout: float = FetchConfig.read_timeout
    timeout: float = FetchConfig.timeout
    deadline: float = FetchConfig.deadline
    max_bytes: int = FetchConfig.max_bytes
    max_redirects: int = FetchConfig.max_redirects
    retries: int = FetchConfig.retries
    backoff_base: float = FetchConfig.backoff_base
    backoff_cap: float = FetchConfig.backoff_cap
    retry_after_cap: float = FetchConfig.retry_after_cap
    host_max_failures: int = FetchConfig.host_max_failures
    host_cooldown: float = FetchConfig.host_cooldown
    dns_cache_seconds: int = FetchConfig.dns_cache_seconds
    user_agent_token: str = FetchConfig.user_agent_token
    opt_out_directives: tuple[str, ...] = FetchConfig.opt_out_directives
    respect_robots_txt: bool = FetchConfig.respect_robots_txt
    allow_addresses: tuple[str, ...] = FetchConfig.allow_addresses
    allow_private_addresses: bool = FetchConfig.allow_private_addresses
    mirror: str = FetchConfig.mirror
    seed: int = FetchConfig.seed
    # images: image.ImageConfig's fields, with its defaults (documented there)
    image_size: int = ImageConfig.image_size
    resize_mode: str = ImageConfig.resize_mode
    upscale: bool = ImageConfig.upscale
    encode_format: str = ImageConfig.encode_format
    encode_quality: int = ImageConfig.encode_quality
    min_bytes: int = ImageConfig.min_bytes
    max_pixels: int = ImageConfig.max_pixels
    min_side: int = ImageConfig.min_side
    max_aspect_ratio: float = ImageConfig.max_aspect_ratio
    keep_original: bool = ImageConfig.keep_original
    # safety lists (safety/blocklist.py: URL, body and PDQ hashes) and the body's own opt-out signals
    # (safety/embedded.py: IPTC plus:DataMining in XMP, C2PA/CAWG training-mining assertions)
    blocklist: tuple[str, ...] = BodyChecks.blocklist
    pdq_threshold: int = BodyChecks.pdq_threshold
    xmp_data_mining: bool = BodyChecks.xmp_data_mining
    c2pa: bool = BodyChecks.c2pa
    # shard
    decode_threads: int = 1
    retry_failed: bool = False

    def __post_init__(self) -> None:
        self.image_config()  # validate early, with the image and fetch modules' messages
        self.fetch_config()
        if self.connections < 1 or self.per_host < 1:
            raise ValueError("connections and per_host must be positive")
        if clash := sorted(set(self.save_additional_columns) & set(dw.DOWNLOAD_NAMES)):
            raise ValueError(f"cannot save input column(s) {', '.join(clash)}: the download writes its own "
                             "(to check a known sha256, use --verify-hash)")  # fmt: skip

    def fetch_config(self) -> FetchConfig:
        """The fetch settings."""
        return _subset(FetchConfig, self)

    def body_checks(self) -> BodyChecks:
        """The checks each fetched body passes before it is stored."""
        return _subset(BodyChecks, self)

    def image_config(self) -> ImageConfig:
        """The image settings."""
        return _subset(ImageConfig, self)

    def input_spec(self, path: str) -> InputSpec:
        """How to read input `path`."""
        return InputSpec(
            path,
            self.input_format,
            self.url_col,
            self.caption_col,
            self.save_additional_columns,
            self.verify_hash,
        )


def _subset(cls: type[T], config: DownloadConfig) -> T:
    names = {f.name for f in dataclasses.fields(cls)} & {f.name for f in dataclasses.fields(config)}  # type: ignore[arg-type]
    return cls(**{name: getattr(config, name) for name in names})
