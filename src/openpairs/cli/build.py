"""`openpairs build` and `openpairs demo`: every stage in one command, with one progress display."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from openpairs.cli.clip import (
    CpusPerActorOpt,
    GpusPerActorOpt,
    MaxActorsOpt,
    actor_overrides,
    refuse_missing_weights,
)
from openpairs.cli.common import (
    ExecutorOpt,
    PresetOpt,
    RayAddressOpt,
    SharedOutOpt,
    WorkersOpt,
    executor_config,
    progress_rows,
)
from openpairs.cli.download import (
    BlocklistOpt,
    C2paOpt,
    RespectAiTxtOpt,
    RespectContentSignalOpt,
    RespectContentUsageOpt,
    RespectRobotsTxtOpt,
    RespectTdmrepOpt,
    RespectXRobotsTagOpt,
    RobotsAgentOpt,
    XmpDataMiningOpt,
    opt_out_options,
)
from openpairs.cli.extract import PageMetaOptOut

if TYPE_CHECKING:
    from openpairs.build import BuildResult


def build(
    inputs: Annotated[list[str], typer.Argument(help="WAT files: paths, globs, http(s):// or s3:// URLs")],
    out: Annotated[str, typer.Option("--out", help="output directory (local or any fsspec URL)")] = "out",
    preset: PresetOpt = "laion400m",
    settings: Annotated[
        list[str] | None, typer.Option("--set", help="a stage option, STAGE.FIELD=VALUE (repeatable)")
    ] = None,
    clip_model: Annotated[str | None, typer.Option(help="open_clip model name")] = None,
    clip_pretrained: Annotated[str | None, typer.Option(help="open_clip pretrained tag")] = None,
    clip_checkpoint: Annotated[str | None, typer.Option(help="local CLIP weights file")] = None,
    gpus_per_actor: GpusPerActorOpt = None,
    cpus_per_actor: CpusPerActorOpt = 0,
    max_actors: MaxActorsOpt = 0,
    image_size: Annotated[int | None, typer.Option(help="download: output image size")] = None,
    xmp_data_mining: XmpDataMiningOpt = None,
    c2pa: C2paOpt = None,
    blocklist: BlocklistOpt = None,
    min_similarity: Annotated[float | None, typer.Option(help="filter: threshold (English)")] = None,
    safety: Annotated[
        str | None, typer.Option(help="filter: LAION safety variant, research or research-safe")
    ] = None,
    export: Annotated[str | None, typer.Option(help="export formats, e.g. laion400m,webdataset")] = None,
    samples_per_shard: Annotated[int, typer.Option(help="export: samples per output shard")] = 10_000,
    page_meta_opt_out: PageMetaOptOut = None,
    respect_robots_txt: RespectRobotsTxtOpt = None,
    respect_content_usage: RespectContentUsageOpt = None,
    respect_content_signal: RespectContentSignalOpt = None,
    respect_tdmrep: RespectTdmrepOpt = None,
    respect_x_robots_tag: RespectXRobotsTagOpt = None,
    respect_ai_txt: RespectAiTxtOpt = None,
    robots_agent: RobotsAgentOpt = None,
    executor: ExecutorOpt = "local",
    workers: WorkersOpt = 0,
    ray_address: RayAddressOpt = None,
    shared_out: SharedOutOpt = False,
) -> None:
    """Run extract, dedup, download, clip, filter, export and report; a re-run resumes where it stopped."""
    from openpairs.build import run_build

    config = _config(dict(locals()))
    _prepare(inputs, out, config)
    with refuse_missing_weights("build"), progress_rows() as progress_for:
        result = run_build(
            inputs, out, config, executor_config(executor, workers, ray_address, shared_out), progress_for
        )
    _finish(result)


# build options that set one stage field each: parameter -> (stage, field)
_STAGE_FIELDS = {
    "clip_model": ("clip", "model"),
    "clip_pretrained": ("clip", "pretrained"),
    "clip_checkpoint": ("clip", "checkpoint"),
    "image_size": ("download", "image_size"),
    "xmp_data_mining": ("download", "xmp_data_mining"),
    "c2pa": ("download", "c2pa"),
    "min_similarity": ("filter", "min_similarity"),
    "safety": ("filter", "safety"),
    "page_meta_opt_out": ("extract", "page_meta_opt_out"),
}


def _config(options: dict[str, Any]) -> Any:
    """The build's configuration: the preset, then `--set`, then the options given here (unset ones keep
    the preset's); a bad value or safety list stops here, naming it."""
    from openpairs.build import build_config
    from openpairs.build.config import parse_settings

    try:
        direct: dict[str, dict[str, Any]] = {"clip": {}, "download": {}, "filter": {}, "extract": {}}
        for name, (stage, field) in _STAGE_FIELDS.items():
            direct[stage][field] = options[name]
        direct["clip"].update(
            actor_overrides(options["gpus_per_actor"], options["cpus_per_actor"], options["max_actors"])
        )
        direct["download"].update(opt_out_options(options["robots_agent"], options))
        direct["download"]["blocklist"] = tuple(options["blocklist"]) if options["blocklist"] else None
        overrides = parse_settings(list(options["settings"] or []))
        for stage, values in direct.items():
            overrides.setdefault(stage, {}).update({k: v for k, v in values.items() if v is not None})
        export = options["export"]
        formats = tuple(f.strip() for f in export.split(",")) if export else None
        config = build_config(options["preset"], overrides, formats, options["samples_per_shard"])
        config.download.body_checks().lists()  # a bad safety list stops here, naming file:line
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return config


def _prepare(inputs: list[str], out: str, config: Any) -> None:
    """Before anything is written to DIR: load the models (a missing one stops here, with its message),
    say which annotations are null and why, and refuse a different input list for the same DIR."""
    from rich.console import Console

    from openpairs.cli.clip import announce, load_models
    from openpairs.stages.extract_run import InputListChanged, check_inputs

    models = load_models(config.clip, "build")
    console = Console(stderr=True)
    try:
        check_inputs(inputs, out)
    except (InputListChanged, FileNotFoundError) as error:
        console.print(f"build: {error}", style="red", markup=False, highlight=False)
        raise typer.Exit(code=2) from error
    announce(console, config.clip, models)


def demo(
    out: Annotated[str, typer.Option("--out", help="where to write the demo dataset")] = "demo-out",
    executor: ExecutorOpt = "local",
    workers: WorkersOpt = 0,
) -> None:
    """Build a small dataset offline from bundled Common Crawl samples served by a local mini web."""
    from openpairs.demo.run import WARNING, run_demo

    typer.secho(WARNING, fg="yellow", bold=True)
    with progress_rows() as progress_for:
        outcome = run_demo(out, executor_config(executor, workers, None), progress_for)
    _finish(outcome.build)
    typer.echo(f"search index: {outcome.index}")
    typer.echo(f"search page:  openpairs serve {out}   (then open http://127.0.0.1:1234/)")


def _finish(result: BuildResult) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"build: {result.out}")
    for column in ("stage", "rows in", "kept", "dropped by status"):
        table.add_column(column)
    for stage, stats in result.totals.items():
        drops = ", ".join(f"{s} {n:,}" for s, n in stats.statuses.most_common() if s != "ok")
        table.add_row(stage, f"{stats.rows_in:,}", f"{stats.rows_out:,}", drops)
    console.print(table)
    for stage, failures in result.failed.items():
        for failure in failures:
            console.print(f"[red]{stage} shard {failure['shard']} failed: {failure['error']}")
    for name, export in result.exports.items():
        console.print(f"dataset ({name}): {export.directory} ({export.samples:,} samples)")
    if result.report:
        console.print(f"report: {result.report.html}")
    if not result.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the build and demo commands."""
    app.command(name="build")(build)
    app.command(name="demo")(demo)
