"""`openpairs download INPUT --out DIR`: candidate pairs -> webdataset shards of checked, resized images."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from openpairs.cli.common import ExecutorOpt, PresetOpt, RayAddressOpt, SharedOutOpt, executor_config

if TYPE_CHECKING:
    from openpairs.executors import ExecutorConfig

Opt = typer.Option


_Input = Annotated[
    str,
    typer.Argument(
        help="DIR with candidates/, or a parquet/csv/tsv/jsonl/json/txt(.gz) file, folder or glob"
    ),
]
_Out = Annotated[str, Opt("--out", help="output DIR (shards go to DIR/shards/)")]
_ImageSize = Annotated[int, Opt(help="target side in pixels")]
_ResizeMode = Annotated[str, Opt(help="no, keep_ratio, keep_ratio_largest, center_crop, border")]
_Upscale = Annotated[bool, Opt(help="also enlarge images smaller than --image-size")]
_EncodeFormat = Annotated[str, Opt(help="jpg, webp or png")]
_EncodeQuality = Annotated[int, Opt(help="jpg/webp quality")]
_MinBytes = Annotated[int, Opt(help="drop bodies smaller than this (too_small)")]
_MaxPixels = Annotated[int, Opt(help="refuse width*height above this, read from the header (too_large)")]
_MinSide = Annotated[int, Opt(help="refuse images whose shorter side is below this (0: off)")]
_MaxAspectRatio = Annotated[float, Opt(help="refuse images more elongated than this (0: off)")]
_KeepOriginal = Annotated[bool, Opt(help="store the original bytes (still validated) instead of re-encoding")]
_InputFormat = Annotated[str, Opt(help="force the input format (default: from the extension)")]
_UrlCol = Annotated[str, Opt(help="URL column (default: url, then URL)")]
_CaptionCol = Annotated[str, Opt(help="caption column (default: caption, then TEXT)")]
_SaveAdditionalColumns = Annotated[
    list[str] | None, Opt(help="input column to keep (repeatable or comma list)")
]
_VerifyHash = Annotated[
    str, Opt(help="input column of expected sha256 digests (hex); another body is hash_mismatch")
]
_ShardSize = Annotated[int, Opt(help="rows per output shard (non-candidates input)")]
_Workers = Annotated[int, Opt("--workers", "--processes", help="worker processes (0: one per core)")]
_Connections = Annotated[int, Opt(help="concurrent requests per worker")]
_PerHost = Annotated[int, Opt(help="concurrent connections per host")]
_Timeout = Annotated[float, Opt(help="total deadline of one request in seconds")]
_Retries = Annotated[int, Opt(help="retries for timeouts, connection errors, 408, 429, 5xx")]
_MaxBytes = Annotated[int, Opt(help="abort bodies larger than this (body_too_large)")]
_UserAgentToken = Annotated[str, Opt(help="token added to the User-Agent (and matched in opt-outs)")]
_OptOutDirectives = Annotated[
    list[str] | None,
    Opt(help="X-Robots-Tag directives that opt an image out (repeatable or comma list; '' for none)"),
]
_RespectRobotsTxt = Annotated[bool, Opt(help="fetch robots.txt per host and skip disallowed URLs")]
BlocklistOpt = Annotated[
    list[str] | None,
    Opt(help="safety list FILE of URL, image or PDQ hashes (repeatable); matches are never stored"),
]
_PdqThreshold = Annotated[
    int | None, Opt(help="PDQ hashes this many bits apart or fewer match a safety list [default: 31]")
]
XmpDataMiningOpt = Annotated[
    bool, Opt(help="opt out images whose XMP plus:DataMining prohibits data mining or AI training")
]
C2paOpt = Annotated[bool, Opt(help="opt out images whose C2PA manifest refuses AI training or data mining")]
_AllowAddress = Annotated[
    list[str] | None, Opt(help="address or CIDR to allow despite the guard (repeatable)")
]
_AllowPrivateAddresses = Annotated[bool, Opt(help="allow private and loopback addresses")]
_Mirror = Annotated[str, Opt(help="fetch {MIRROR}/{scheme}/{host}{path} instead (a local mirror)")]
_RetryFailed = Annotated[bool, Opt(help="re-fetch only transient failures of finished shards")]


def download(
    input: _Input,
    out: _Out,
    preset: PresetOpt = "laion400m",
    image_size: _ImageSize = 256,
    resize_mode: _ResizeMode = "border",
    upscale: _Upscale = False,
    encode_format: _EncodeFormat = "jpg",
    encode_quality: _EncodeQuality = 95,
    min_bytes: _MinBytes = 5000,
    max_pixels: _MaxPixels = 89_478_484,
    min_side: _MinSide = 0,
    max_aspect_ratio: _MaxAspectRatio = 0.0,
    keep_original: _KeepOriginal = False,
    input_format: _InputFormat = "",
    url_col: _UrlCol = "",
    caption_col: _CaptionCol = "",
    save_additional_columns: _SaveAdditionalColumns = None,
    verify_hash: _VerifyHash = "",
    shard_size: _ShardSize = 10_000,
    workers: _Workers = 0,
    connections: _Connections = 128,
    per_host: _PerHost = 16,
    timeout: _Timeout = 20.0,
    retries: _Retries = 2,
    max_bytes: _MaxBytes = 16 * 1024 * 1024,
    user_agent_token: _UserAgentToken = "",
    opt_out_directives: _OptOutDirectives = None,
    respect_robots_txt: _RespectRobotsTxt = False,
    blocklist: BlocklistOpt = None,
    pdq_threshold: _PdqThreshold = None,
    xmp_data_mining: XmpDataMiningOpt = True,
    c2pa: C2paOpt = True,
    allow_address: _AllowAddress = None,
    allow_private_addresses: _AllowPrivateAddresses = False,
    mirror: _Mirror = "",
    retry_failed: _RetryFailed = False,
    executor: ExecutorOpt = "local",
    ray_address: RayAddressOpt = None,
    shared_out: SharedOutOpt = False,
) -> None:
    """Download images into DIR/shards/<i>.tar (+ .parquet, _stats.json), resumably."""
    options = {name: value for name, value in locals().items() if name not in NOT_CONFIG}
    _run(input, out, preset, executor_config(executor, workers, ray_address, shared_out), options)


NOT_CONFIG = ("input", "out", "preset", "workers", "executor", "ray_address", "shared_out")


def _run(input: str, out: str, preset: str, executor: ExecutorConfig, options: dict[str, Any]) -> None:
    """Resolve the config, plan the shards and run them with a progress bar and a status table."""
    from openpairs.cli.common import print_result, stage_progress
    from openpairs.presets import stage_config
    from openpairs.stages.download import run_shard
    from openpairs.stages.download_config import DownloadConfig
    from openpairs.stages.download_memory import worker_environment
    from openpairs.stages.download_plan import plan_isolated
    from openpairs.stages.runner import run_stage

    extra = _items(options.pop("save_additional_columns"))
    directives = options.pop("opt_out_directives")
    if directives is not None:  # given, maybe as '' (none): else the preset's / the default list
        options["opt_out_directives"] = tuple(d.lower() for d in _items(directives))
    allowed = tuple(options.pop("allow_address") or ())
    options["blocklist"] = tuple(options["blocklist"] or ())
    if options["pdq_threshold"] is None:  # the default of safety.blocklist
        options.pop("pdq_threshold")
    retry_failed = bool(options["retry_failed"])
    try:
        config = stage_config(DownloadConfig, "download", preset, save_additional_columns=extra,
                              allow_addresses=allowed, **options)  # fmt: skip
        config.body_checks().lists()  # a bad safety list stops here, naming file:line
        worker_environment()
        tasks, reopened = plan_isolated(config.input_spec(input), out, config.shard_size, retry_failed)
    except (ValueError, FileNotFoundError) as error:
        raise typer.BadParameter(str(error)) from error
    if retry_failed:
        typer.echo(f"--retry-failed: {reopened} finished shard(s) have transient failures to retry")
    with stage_progress("download") as progress:
        result = run_stage(run_shard, config, tasks, executor, progress)
    print_result("download", result)
    if not result.ok:
        raise typer.Exit(code=1)


def _items(values: list[str] | None) -> tuple[str, ...]:
    """Repeated and comma-separated option values as one tuple, blanks dropped."""
    return tuple(part.strip() for value in values or [] for part in value.split(",") if part.strip())


def register(app: typer.Typer) -> None:
    """Add the download command to the app."""
    app.command("download")(download)
