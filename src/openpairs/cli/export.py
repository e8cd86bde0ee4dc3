"""`openpairs export DIR --format laion400m|laion5b|webdataset`: the kept samples in a paper's layout."""

from __future__ import annotations

from typing import Annotated

import typer

from openpairs.cli.common import ExecutorOpt, RayAddressOpt, WorkersOpt

FormatOpt = Annotated[str, typer.Option("--format", help="laion400m, laion5b or webdataset")]
PerShardOpt = Annotated[int, typer.Option("--samples-per-shard", help="samples per output part / tar shard")]
EmbOpt = Annotated[bool, typer.Option("--embeddings/--no-embeddings", help="write img_emb/ and text_emb/")]
SplitOpt = Annotated[
    float,
    typer.Option(
        "--split-eval",
        metavar="FRACTION",
        help="webdataset: hold out this share of the samples (chosen by key) in eval/, laid out for clip_benchmark",
    ),
]


def export(
    out: Annotated[str, typer.Argument(help="build output directory (local path or fsspec URL)")],
    format: FormatOpt = "laion400m",
    samples_per_shard: PerShardOpt = 10_000,
    embeddings: EmbOpt = True,
    split_eval: SplitOpt = 0.0,
    executor: ExecutorOpt = "local",
    workers: WorkersOpt = 0,
    ray_address: RayAddressOpt = None,
) -> None:
    """Export the kept samples of a finished pipeline to DIR/dataset/<format>/ (one task per part)."""
    from rich.console import Console

    from openpairs.cli.common import executor_config
    from openpairs.stages.export import ExportConfig, run_export
    from openpairs.stages.export_join import ExportInputError

    try:
        config = ExportConfig(
            format=format,  # type: ignore[arg-type]
            samples_per_shard=samples_per_shard,
            embeddings=embeddings,
            split_eval=split_eval,
        )
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    try:
        result = run_export(out, config, executor_config(executor, workers, ray_address))
    except ExportInputError as error:
        Console(stderr=True).print(f"[red]export failed: {error}")
        raise typer.Exit(code=1) from error
    groups = ", ".join(
        f"{g or format}: {sum(n.endswith('.parquet') for n in names)} parts"
        for g, names in result.parts.items()
    )
    Console().print(f"exported {result.samples:,} samples to {result.directory} ({groups})", soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the export command to the app."""
    app.command("export")(export)
