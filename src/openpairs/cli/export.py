"""`openpairs export DIR --format laion400m|laion5b|webdataset|tfds`: the kept samples in a paper's layout."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from openpairs.cli.common import ExecutorOpt, RayAddressOpt, WorkersOpt

FormatOpt = Annotated[
    str,
    typer.Option(
        "--format", help="laion400m, laion5b, webdataset or tfds (the manual_dir of TFDS's laion400m builder)"
    ),
]
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
    groups = ", ".join(f"{g or format}: {n} parts" for g, n in result.part_counts.items())
    Console().print(f"exported {result.samples:,} samples to {result.directory} ({groups})", soft_wrap=True)
    if "tfds" in result.extra:
        _print_tfds(result.extra["tfds"], embeddings)


def _print_tfds(tfds: dict[str, Any], embeddings: bool) -> None:
    """Say how to build it with TFDS's laion400m builder, and why the embeddings config cannot be built."""
    from rich.console import Console

    console = Console(highlight=False)
    configs = " and ".join(tfds["configs"])
    console.print(
        f"TFDS laion400m builder: num_shards={tfds['num_shards']} ({configs}); see docs/tfds.md",
        soft_wrap=True,
    )
    if embeddings and "embeddings" not in tfds["configs"]:
        console.print(
            "warning: no embeddings config: TFDS's laion400m embeddings config reads 512-d CLIP embeddings "
            "(ViT-B/32's width) and this build has no embeddings of that width",
            style="yellow",
            soft_wrap=True,
        )


def register(app: typer.Typer) -> None:
    """Add the export command to the app."""
    app.command("export")(export)
