"""`openpairs index DIR`: faiss kNN indexes over the dataset's CLIP embeddings, tuned to a target recall."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from openpairs.cli.common import ExecutorOpt, RayAddressOpt, WorkersOpt

if TYPE_CHECKING:
    from openpairs.index.build import Progress


@contextmanager
def _progress() -> Iterator[Progress]:
    """A rich progress bar for the build phases (metadata rows, training, adding vectors, tuning)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ) as bar:
        tasks: dict[str, TaskID] = {}
        rows = 0

        def update(phase: str, done: int, total: int) -> None:
            nonlocal rows
            if phase not in tasks or (phase == "add" and done == 0):
                tasks[phase] = bar.add_task(phase, total=total or None)
            if phase == "metadata":
                rows += done
                bar.update(tasks[phase], completed=rows)
            else:
                bar.update(tasks[phase], completed=done, total=total or None)

        yield update


def index_command(
    directory: Annotated[
        str,
        typer.Argument(
            help="dataset directory or URL, e.g. s3://bucket/out (openpairs or clip-retrieval layout)"
        ),
    ],
    out: Annotated[
        str | None, typer.Option("--out", help="local index directory (default: DIR/index)")
    ] = None,
    memory_budget: Annotated[
        str, typer.Option("--memory-budget", help="bytes the index may take, e.g. 4G")
    ] = "4G",
    target_recall: Annotated[
        float, typer.Option("--target-recall", help="recall@10 vs exact to reach")
    ] = 0.95,
    text: Annotated[bool, typer.Option("--text", help="also index the text embeddings")] = False,
    factory: Annotated[str | None, typer.Option("--factory", help="force a faiss factory string")] = None,
    threads: Annotated[
        int, typer.Option("--threads", help="faiss threads per task (0: cores / workers)")
    ] = 0,
    tune_queries: Annotated[int, typer.Option("--tune-queries", help="held-out queries for tuning")] = 1000,
    tune_sample: Annotated[
        int, typer.Option("--tune-sample", help="vectors whose exact kNN is the tuning truth")
    ] = 100_000,
    shards: Annotated[int, typer.Option("--shards", help="K add tasks over contiguous id ranges")] = 1,
    layout: Annotated[
        str, typer.Option("--layout", help="with --shards > 1: sharded (K files) or merged (on-disk lists)")
    ] = "sharded",
    executor: ExecutorOpt = "local",
    workers: WorkersOpt = 0,
    ray_address: RayAddressOpt = None,
) -> None:
    """Build kNN indexes and DIR/index/index.json (chosen index, parameters, recall, latency)."""
    from openpairs.cli.common import executor_config

    if not 0.0 < target_recall <= 1.0:
        raise typer.BadParameter("--target-recall must be in (0, 1]")
    settings = {
        "target_recall": target_recall,
        "text": text,
        "factory": factory,
        "threads": threads,
        "tune_queries": tune_queries,
        "tune_sample": tune_sample,
        "shards": shards,
        "layout": layout,
        "executor": executor_config(executor, workers, ray_address),
    }
    _run(directory, out, memory_budget, settings)


def _run(directory: str, out: str | None, memory_budget: str, settings: dict[str, Any]) -> None:
    """Validate the settings, build with a progress display, print the result (exit 2 on bad input)."""
    from rich.console import Console

    from openpairs.index.build import IndexConfig, build_index
    from openpairs.index.choose import parse_size
    from openpairs.index.parallel import IndexBuildError
    from openpairs.index.sources import IndexInputError, is_local
    from openpairs.io import fs

    if out is None and not is_local(directory):
        raise typer.BadParameter("the index is written locally: give --out DIR with a remote dataset")
    try:
        config = IndexConfig(memory_budget=parse_size(memory_budget), **settings)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    try:
        with _progress() as progress:
            manifest = build_index(directory, out or fs.join(directory, "index"), config, progress)
    except (IndexInputError, ValueError) as exc:
        Console(stderr=True).print(f"[red]index: {exc}")
        raise typer.Exit(2) from exc
    except IndexBuildError as exc:
        Console(stderr=True).print(f"[red]index: {exc}")
        raise typer.Exit(1) from exc
    _print_manifest(manifest)


def _print_manifest(manifest: dict[str, Any]) -> None:
    """One table row per built index: kind, tuned parameter, recall@10, latency, build time."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{manifest['count']:,} items ({manifest['layout']} layout)")
    for column in ("modality", "index", "param", "recall@10", "p50 ms", "p99 ms", "build s"):
        table.add_column(column)
    for modality, e in manifest["indices"].items():
        param = f"{e['param']}={e['value']}" if e["param"] else "exact"
        recall = e.get("recall_at_10", next((v for k, v in e.items() if k.startswith("recall_at_")), 0.0))
        table.add_row(
            modality,
            e["factory"],
            param,
            f"{recall:.3f}",
            f"{e['p50_ms']:.2f}",
            f"{e['p99_ms']:.2f}",
            f"{e['build_seconds']:.1f}",
        )
    Console().print(table)


def register(app: typer.Typer) -> None:
    """Add the index command to the app."""
    app.command("index")(index_command)
