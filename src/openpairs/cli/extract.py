"""`openpairs extract`: Common Crawl WAT files -> deduplicated candidate pairs in DIR/candidates/."""

from __future__ import annotations

from typing import Annotated

import typer

from openpairs.cli.common import (
    ExecutorOpt,
    PresetOpt,
    RayAddressOpt,
    WorkersOpt,
    executor_config,
    print_result,
    stage_progress,
)

CC_DATA = "https://data.commoncrawl.org/"
RULES = "Extraction rules (default: the preset's)"
DEDUP = "Dedup and output"


def extract(
    inputs: Annotated[
        list[str] | None, typer.Argument(help="WAT files: paths, globs, http(s):// or s3:// URLs")
    ] = None,
    out: Annotated[str, typer.Option("--out", help="output directory (local or any fsspec URL)")] = "out",
    preset: PresetOpt = "laion400m",
    crawl: Annotated[str | None, typer.Option(help="a Common Crawl id, e.g. CC-MAIN-2024-22")] = None,
    wat_count: Annotated[int | None, typer.Option(help="with --crawl: the first N WAT files")] = None,
    wat_range: Annotated[str | None, typer.Option(help="with --crawl: WAT files A:B of wat.paths.gz")] = None,
    cc_base_url: Annotated[str, typer.Option(help="Common Crawl HTTPS endpoint (or a mirror)")] = CC_DATA,
    relative_urls: Annotated[str | None, typer.Option(help="resolve or drop", rich_help_panel=RULES)] = None,
    drop_extensions: Annotated[str | None, typer.Option(help="e.g. .svg,.gif", rich_help_panel=RULES)] = None,
    max_url_length: Annotated[int | None, typer.Option(rich_help_panel=RULES)] = None,
    min_alt_length: Annotated[int | None, typer.Option(rich_help_panel=RULES)] = None,
    max_alt_length: Annotated[int | None, typer.Option(rich_help_panel=RULES)] = None,
    language: Annotated[str | None, typer.Option(help="cld3 or off", rich_help_panel=RULES)] = None,
    english_only: Annotated[
        bool | None, typer.Option("--english-only/--all-languages", rich_help_panel=RULES)
    ] = None,
    dedup: Annotated[str | None, typer.Option(help="url, url+caption or none", rich_help_panel=DEDUP)] = None,
    shard_size: Annotated[
        int | None, typer.Option(help="rows per candidates shard", rich_help_panel=DEDUP)
    ] = None,
    bloom: Annotated[
        str | None, typer.Option(help="bloom filter file of pairs seen before", rich_help_panel=DEDUP)
    ] = None,
    split_languages: Annotated[
        bool | None,
        typer.Option(
            "--split-languages/--no-split-languages",
            help="candidates/en, multi, nolang",
            rich_help_panel=DEDUP,
        ),
    ] = None,
    executor: ExecutorOpt = "local",
    workers: WorkersOpt = 0,
    ray_address: RayAddressOpt = None,
) -> None:
    """Extract (image URL, alt text) candidates from Common Crawl WAT files and deduplicate them."""
    from openpairs.cc.rules import ExtractConfig
    from openpairs.presets import stage_config
    from openpairs.stages.dedup import DedupConfig
    from openpairs.stages.extract_run import run_extract

    sources = list(inputs or []) + _crawl_inputs(crawl, wat_count, wat_range, cc_base_url)
    if not sources:
        raise typer.BadParameter("give WAT files or --crawl")
    try:
        rules = stage_config(
            ExtractConfig,
            "extract",
            preset,
            relative_urls=relative_urls,
            max_url_length=max_url_length,
            min_alt_length=min_alt_length,
            max_alt_length=max_alt_length,
            language=language,
            english_only=english_only,
            drop_extensions=_extensions(drop_extensions),
        )
        dedup_config = stage_config(
            DedupConfig,
            "dedup",
            preset,
            dedup=dedup,
            shard_size=shard_size,
            bloom=bloom,
            split_languages=split_languages,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    with stage_progress("extract") as progress:
        outcome = run_extract(
            sources, out, rules, dedup_config, executor_config(executor, workers, ray_address), progress
        )
    print_result("extract", outcome.extract)
    if outcome.dedup is not None:
        _print_dedup(outcome.dedup, out)
    unreadable = outcome.unreadable_inputs()
    if unreadable:
        typer.echo(
            f"{len(unreadable)} of {len(outcome.extract.shards) + len(unreadable)} inputs could not be read:",
            err=True,
        )
        for line in unreadable:
            typer.echo(f"  {line}", err=True)
        raise typer.Exit(1)


def _extensions(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(f".{ext.strip().lstrip('.').lower()}" for ext in value.split(",") if ext.strip())


def _crawl_inputs(crawl: str | None, wat_count: int | None, wat_range: str | None, base: str) -> list[str]:
    if crawl is None:
        return []
    from openpairs.cc.source import crawl_wat_urls

    bounds = None
    if wat_range:
        start, _, stop = wat_range.partition(":")
        bounds = (int(start), int(stop))
    return crawl_wat_urls(crawl, wat_count if wat_count is not None or bounds else 1, bounds, base)


def _print_dedup(stats: object, out: str) -> None:
    from rich.console import Console

    from openpairs.core.stats import ShardStats

    assert isinstance(stats, ShardStats)
    kept = stats.statuses.get("ok", 0)
    Console().print(
        f"dedup: {stats.rows_in:,} pairs -> {kept:,} unique "
        f"({stats.statuses.get('duplicate', 0):,} duplicates, "
        f"{stats.statuses.get('seen_before', 0):,} seen before) "
        f"in {stats.counters.get('output_shards', 0)} shards under {out}/candidates"
    )


def register(app: typer.Typer) -> None:
    """Add the extract command to the app."""
    app.command(name="extract")(extract)
