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
    min_similarity: Annotated[float | None, typer.Option(help="filter: threshold (English)")] = None,
    export: Annotated[str | None, typer.Option(help="export formats, e.g. laion400m,webdataset")] = None,
    samples_per_shard: Annotated[int, typer.Option(help="export: samples per output shard")] = 10_000,
    page_meta_opt_out: PageMetaOptOut = None,
    executor: ExecutorOpt = "local",
    workers: WorkersOpt = 0,
    ray_address: RayAddressOpt = None,
    shared_out: SharedOutOpt = False,
) -> None:
    """Run extract, dedup, download, clip, filter, export and report; a re-run resumes where it stopped."""
    from openpairs.build import build_config, run_build
    from openpairs.build.config import parse_settings

    try:
        overrides = parse_settings(list(settings or []))
        direct: dict[str, dict[str, Any]] = {
            "clip": {
                "model": clip_model,
                "pretrained": clip_pretrained,
                "checkpoint": clip_checkpoint,
                **actor_overrides(gpus_per_actor, cpus_per_actor, max_actors),
            },
            "download": {"image_size": image_size},
            "filter": {"min_similarity": min_similarity},
            "extract": {"page_meta_opt_out": page_meta_opt_out},
        }
        for stage, values in direct.items():
            overrides.setdefault(stage, {}).update({k: v for k, v in values.items() if v is not None})
        formats = tuple(f.strip() for f in export.split(",")) if export else None
        config = build_config(preset, overrides, formats, samples_per_shard)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    _prepare(inputs, out, config)
    with refuse_missing_weights("build"), progress_rows() as progress_for:
        result = run_build(
            inputs, out, config, executor_config(executor, workers, ray_address, shared_out), progress_for
        )
    _finish(result)


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
