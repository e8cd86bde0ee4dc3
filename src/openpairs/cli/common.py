"""Options and output shared by the subcommands: executor flags, progress bars, status tables."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from openpairs.core.stats import ShardStats
    from openpairs.executors import ExecutorConfig
    from openpairs.stages.runner import Progress, StageResult

ExecutorOpt = Annotated[str, typer.Option("--executor", help="local (process pool) or ray")]
WorkersOpt = Annotated[int, typer.Option("--workers", help="worker processes (0: one per core)")]
RayAddressOpt = Annotated[
    str | None, typer.Option("--ray-address", help="Ray cluster address (default: start a local Ray)")
]
PresetOpt = Annotated[str, typer.Option("--preset", help="laion400m or laion5b")]


def executor_config(executor: str, workers: int, ray_address: str | None) -> ExecutorConfig:
    """Validated executor settings from the command line."""
    from openpairs.executors import ExecutorConfig

    if executor not in ("local", "ray"):
        raise typer.BadParameter(f"--executor must be local or ray, not {executor!r}")
    return ExecutorConfig(kind=executor, workers=workers, ray_address=ray_address)  # type: ignore[arg-type]


@contextmanager
def stage_progress(label: str) -> Iterator[Progress]:
    """A rich progress bar (shards done, rows/s, ETA) for one stage, as a runner callback."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rows]} rows"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=False) as bar:
        task_id = bar.add_task(label, total=None, rows=0)
        rows = 0

        def update(done: int, total: int, stats: ShardStats | None) -> None:
            nonlocal rows
            if stats is not None:
                rows += stats.rows_in
            bar.update(task_id, completed=done, total=total, rows=rows)

        yield update


def print_result(title: str, result: StageResult) -> None:  # type: ignore[type-arg]
    """Print a stage's status table, counters and failed shards."""
    from rich.console import Console
    from rich.table import Table

    total = result.total
    table = Table(title=f"{title}: {total.rows_in:,} rows in, {total.rows_out:,} kept")
    table.add_column("status")
    table.add_column("rows", justify="right")
    table.add_column("%", justify="right")
    for status, count in total.statuses.most_common():
        table.add_row(status, f"{count:,}", f"{100 * count / max(total.rows_in, 1):.1f}")
    console = Console()
    console.print(table)
    if total.counters:
        counters = Table(title="counters")
        counters.add_column("counter")
        counters.add_column("value", justify="right")
        for name, value in sorted(total.counters.items()):
            counters.add_row(name, f"{value:,}")
        console.print(counters)
    console.print(f"{len(result.shards)} shards ({result.skipped} already done) in {result.seconds:.1f}s")
    for failure in result.failed:
        console.print(f"[red]shard {failure['shard']} failed: {failure['error']}")
