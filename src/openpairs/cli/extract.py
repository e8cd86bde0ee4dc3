"""`openpairs extract`: Common Crawl WAT files -> deduplicated candidate pairs in DIR/candidates/."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from openpairs.cli.common import (
    ExecutorOpt,
    PresetOpt,
    RayAddressOpt,
    SharedOutOpt,
    WorkersOpt,
    executor_config,
    print_result,
    stage_progress,
)

CC_DATA = "https://data.commoncrawl.org/"
RULES = "Extraction rules (default: the preset's)"
DEDUP = "Dedup and output"


Inputs = Annotated[list[str] | None, typer.Argument(help="WAT files: paths, globs, http(s):// or s3:// URLs")]
Out = Annotated[str, typer.Option("--out", help="output directory (local or any fsspec URL)")]
Crawl = Annotated[str | None, typer.Option(help="a Common Crawl id, e.g. CC-MAIN-2024-22")]
WatCount = Annotated[int | None, typer.Option(help="with --crawl: the first N WAT files")]
WatRange = Annotated[str | None, typer.Option(help="with --crawl: WAT files A:B of wat.paths.gz")]
CcBase = Annotated[str, typer.Option(help="Common Crawl HTTPS endpoint (or a mirror)")]
Relative = Annotated[str | None, typer.Option(help="resolve or drop", rich_help_panel=RULES)]
Extensions = Annotated[str | None, typer.Option(help="e.g. .svg,.gif", rich_help_panel=RULES)]
RuleInt = Annotated[int | None, typer.Option(rich_help_panel=RULES)]
Language = Annotated[str | None, typer.Option(help="cld3 or off", rich_help_panel=RULES)]
English = Annotated[bool | None, typer.Option("--english-only/--all-languages", rich_help_panel=RULES)]
PageMetaOptOut = Annotated[
    bool | None,
    typer.Option(
        "--page-meta-opt-out/--no-page-meta-opt-out",
        help="drop the images of pages whose metas opt out: noai/noimageai, tdm-reservation 1 (default on)",
        rich_help_panel=RULES,
    ),
]
UserAgentToken = Annotated[
    str | None,
    typer.Option(help="our name in opt-outs: a meta of this name addresses us", rich_help_panel=RULES),
]
Dedup = Annotated[str | None, typer.Option(help="url, url+caption or none", rich_help_panel=DEDUP)]
ShardSize = Annotated[int | None, typer.Option(help="rows per candidates shard", rich_help_panel=DEDUP)]
History = Annotated[
    str | None,
    typer.Option(
        help="directory (or URL) of the dedup hashes of earlier runs, updated", rich_help_panel=DEDUP
    ),
]
RowsPerTask = Annotated[
    int | None, typer.Option(help="rows one dedup task holds (bounds its memory)", rich_help_panel=DEDUP)
]


def _refuse_bloom(value: str | None) -> None:
    """--bloom was replaced by --history: say so rather than ignore it."""
    if value is not None:
        raise typer.BadParameter("--bloom is replaced by --history DIR (an exact history of dedup hashes)")


Bloom = Annotated[str | None, typer.Option(hidden=True, callback=_refuse_bloom, help="see --history")]
Split = Annotated[
    bool | None,
    typer.Option(
        "--split-languages/--no-split-languages", help="candidates/en, multi, nolang", rich_help_panel=DEDUP
    ),
]


def extract(
    inputs: Inputs = None,
    out: Out = "out",
    preset: PresetOpt = "laion400m",
    crawl: Crawl = None,
    wat_count: WatCount = None,
    wat_range: WatRange = None,
    cc_base_url: CcBase = CC_DATA,
    relative_urls: Relative = None,
    drop_extensions: Extensions = None,
    max_url_length: RuleInt = None,
    min_alt_length: RuleInt = None,
    max_alt_length: RuleInt = None,
    language: Language = None,
    english_only: English = None,
    page_meta_opt_out: PageMetaOptOut = None,
    user_agent_token: UserAgentToken = None,
    dedup: Dedup = None,
    shard_size: ShardSize = None,
    history: History = None,
    rows_per_task: RowsPerTask = None,
    bloom: Bloom = None,
    split_languages: Split = None,
    executor: ExecutorOpt = "local",
    workers: WorkersOpt = 0,
    ray_address: RayAddressOpt = None,
    shared_out: SharedOutOpt = False,
) -> None:
    """Extract (image URL, alt text) candidates from Common Crawl WAT files and deduplicate them."""
    from openpairs.cc.rules import ExtractConfig
    from openpairs.presets import stage_config
    from openpairs.stages.dedup import DedupConfig

    sources = list(inputs or []) + _crawl_inputs(crawl, wat_count, wat_range, cc_base_url)
    if not sources:
        raise typer.BadParameter("give WAT files or --crawl")
    rule_values = dict(relative_urls=relative_urls, max_url_length=max_url_length, min_alt_length=min_alt_length,
                       max_alt_length=max_alt_length, language=language, english_only=english_only,
                       drop_extensions=_extensions(drop_extensions), page_meta_opt_out=page_meta_opt_out,
                       user_agent_token=user_agent_token)  # fmt: skip
    dedup_values = dict(dedup=dedup, shard_size=shard_size, history=history, rows_per_task=rows_per_task, split_languages=split_languages)  # fmt: skip
    try:
        rules = stage_config(ExtractConfig, "extract", preset, **rule_values)
        dedup_config = stage_config(DedupConfig, "dedup", preset, **dedup_values)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    _summarise(
        _run(sources, out, rules, dedup_config, executor_config(executor, workers, ray_address, shared_out)),
        out,
    )


def _run(sources: list[str], out: str, rules: Any, dedup: Any, run: Any) -> Any:
    """run_extract with a progress display: a changed or missing input list exits 2 before anything is
    written to DIR, a dedup that cannot go on exits 1 with its reason."""
    from openpairs.stages.extract_run import InputListChanged, check_inputs, run_extract
    from openpairs.stages.history import HistoryMismatch
    from openpairs.stages.shuffle import PhaseFailed

    try:
        check_inputs(sources, out)  # before anything is written to DIR
    except (InputListChanged, FileNotFoundError) as exc:
        typer.echo(f"extract: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        with stage_progress("extract") as progress:
            return run_extract(sources, out, rules, dedup, run, progress)
    except (PhaseFailed, HistoryMismatch) as exc:
        typer.echo(f"extract: dedup: {exc}", err=True)
        raise typer.Exit(1) from None


def _summarise(outcome: Any, out: str) -> None:
    """Print the tables; exit 1 (with the list) when some input failed (unreadable, or its shard could
    not be written)."""
    print_result("extract", outcome.extract)
    if outcome.dedup is not None:
        _print_dedup(outcome.dedup, out)
    unreadable = outcome.unreadable_inputs()
    if unreadable:
        total = outcome.extract.done + len(unreadable)
        listed = f"{out.rstrip('/')}/extract/failed_shards.jsonl"
        typer.echo(f"{len(unreadable)} of {total} inputs failed (in {listed}; rerun to retry):", err=True)
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
