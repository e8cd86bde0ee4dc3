"""`openpairs download INPUT --out DIR`: candidate pairs -> webdataset shards of checked, resized images."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from openpairs.cli.common import ExecutorOpt, PresetOpt, RayAddressOpt

if TYPE_CHECKING:
    from openpairs.core.stats import ShardStats
    from openpairs.stages.runner import Progress

Opt = typer.Option


def download(
    input: Annotated[
        str,
        typer.Argument(
            help="DIR with candidates/, or a parquet/csv/tsv/jsonl/json/txt(.gz) file, folder or glob"
        ),
    ],
    out: Annotated[str, Opt("--out", help="output DIR (shards go to DIR/shards/)")],
    preset: PresetOpt = "laion400m",
    image_size: Annotated[int, Opt(help="target side in pixels")] = 256,
    resize_mode: Annotated[
        str, Opt(help="no, keep_ratio, keep_ratio_largest, center_crop, border")
    ] = "border",
    upscale: Annotated[bool, Opt(help="also enlarge images smaller than --image-size")] = False,
    encode_format: Annotated[str, Opt(help="jpg, webp or png")] = "jpg",
    encode_quality: Annotated[int, Opt(help="jpg/webp quality")] = 95,
    min_bytes: Annotated[int, Opt(help="drop bodies smaller than this (too_small)")] = 5000,
    max_pixels: Annotated[
        int, Opt(help="refuse width*height above this, read from the header (too_large)")
    ] = 89_478_484,
    min_side: Annotated[int, Opt(help="refuse images whose shorter side is below this (0: off)")] = 0,
    max_aspect_ratio: Annotated[float, Opt(help="refuse images more elongated than this (0: off)")] = 0.0,
    keep_original: Annotated[
        bool, Opt(help="store the original bytes (still validated) instead of re-encoding")
    ] = False,
    input_format: Annotated[str, Opt(help="force the input format (default: from the extension)")] = "",
    url_col: Annotated[str, Opt(help="URL column (default: url, then URL)")] = "",
    caption_col: Annotated[str, Opt(help="caption column (default: caption, then TEXT)")] = "",
    save_additional_columns: Annotated[
        list[str] | None, Opt(help="input column to keep (repeatable or comma list)")
    ] = None,
    shard_size: Annotated[int, Opt(help="rows per output shard (non-candidates input)")] = 10_000,
    workers: Annotated[int, Opt("--workers", "--processes", help="worker processes (0: one per core)")] = 0,
    connections: Annotated[int, Opt(help="concurrent requests per worker")] = 128,
    per_host: Annotated[int, Opt(help="concurrent connections per host")] = 16,
    timeout: Annotated[float, Opt(help="total deadline of one request in seconds")] = 20.0,
    retries: Annotated[int, Opt(help="retries for timeouts, connection errors, 408, 429, 5xx")] = 2,
    max_bytes: Annotated[int, Opt(help="abort bodies larger than this (body_too_large)")] = 16 * 1024 * 1024,
    user_agent_token: Annotated[
        str, Opt(help="token added to the User-Agent (and matched in opt-outs)")
    ] = "",
    respect_robots_txt: Annotated[
        bool, Opt(help="fetch robots.txt per host and skip disallowed URLs")
    ] = False,
    allow_address: Annotated[
        list[str] | None, Opt(help="address or CIDR to allow despite the guard (repeatable)")
    ] = None,
    allow_private_addresses: Annotated[bool, Opt(help="allow private and loopback addresses")] = False,
    mirror: Annotated[str, Opt(help="fetch {MIRROR}/{scheme}/{host}{path} instead (a local mirror)")] = "",
    retry_failed: Annotated[bool, Opt(help="re-fetch only transient failures of finished shards")] = False,
    executor: ExecutorOpt = "local",
    ray_address: RayAddressOpt = None,
) -> None:
    """Download images into DIR/shards/<i>.tar (+ .parquet, _stats.json), resumably."""
    from openpairs.cli.common import executor_config, print_result
    from openpairs.presets import stage_config
    from openpairs.stages.download import DownloadConfig, run_shard
    from openpairs.stages.download_plan import plan_isolated
    from openpairs.stages.runner import run_stage

    extra = tuple(c.strip() for item in save_additional_columns or [] for c in item.split(",") if c.strip())
    try:
        config = stage_config(
            DownloadConfig,
            "download",
            preset,
            image_size=image_size,
            resize_mode=resize_mode,
            upscale=upscale,
            encode_format=encode_format,
            encode_quality=encode_quality,
            min_bytes=min_bytes,
            max_pixels=max_pixels,
            min_side=min_side,
            max_aspect_ratio=max_aspect_ratio,
            keep_original=keep_original,
            input_format=input_format,
            url_col=url_col,
            caption_col=caption_col,
            save_additional_columns=extra,
            shard_size=shard_size,
            connections=connections,
            per_host=per_host,
            timeout=timeout,
            retries=retries,
            max_bytes=max_bytes,
            user_agent_token=user_agent_token,
            respect_robots_txt=respect_robots_txt,
            allow_addresses=tuple(allow_address or ()),
            allow_private_addresses=allow_private_addresses,
            mirror=mirror,
            retry_failed=retry_failed,
        )
        tasks, reopened = plan_isolated(config.input_spec(input), out, config.shard_size, retry_failed)
    except (ValueError, FileNotFoundError) as error:
        raise typer.BadParameter(str(error)) from error
    if retry_failed:
        typer.echo(f"--retry-failed: {reopened} finished shard(s) have transient failures to retry")
    with download_progress() as progress:
        result = run_stage(
            run_shard, config, tasks, executor_config(executor, workers, ray_address), progress
        )
    print_result("download", result)
    if not result.ok:
        raise typer.Exit(code=1)


@contextmanager
def download_progress() -> Iterator[Progress]:
    """A rich progress bar over shards showing samples/s, success rate and ETA."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (
        TextColumn("[bold]download"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("shards"),
        TextColumn("{task.fields[rows]:,} samples, {task.fields[rate]:.1f}/s, {task.fields[success]:.1%} ok"),
        TimeRemainingColumn(),
    )
    started = time.perf_counter()
    with Progress(*columns, transient=False) as bar:
        task_id = bar.add_task("download", total=None, rows=0, rate=0.0, success=0.0)
        totals = {"rows": 0, "ok": 0}

        def update(done: int, total: int, stats: ShardStats | None) -> None:
            if stats is not None:
                totals["rows"] += stats.rows_in
                totals["ok"] += stats.rows_out
            rate = totals["rows"] / max(time.perf_counter() - started, 1e-6)
            success = totals["ok"] / max(totals["rows"], 1)
            bar.update(task_id, completed=done, total=total, rows=totals["rows"], rate=rate, success=success)

        yield update


def register(app: typer.Typer) -> None:
    """Add the download command to the app."""
    app.command("download")(download)
