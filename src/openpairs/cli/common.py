"""Options and output shared by the subcommands: executor flags, progress bars, status tables."""

from __future__ import annotations

from collections.abc import Callable, Iterator
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
SharedOutOpt = Annotated[
    bool,
    typer.Option(
        "--shared-out",
        help="with --ray-address: the local --out path is a shared filesystem mounted at the same place on every node",
    ),
]
PresetOpt = Annotated[str, typer.Option("--preset", help="laion400m or laion5b")]


def executor_config(
    executor: str, workers: int, ray_address: str | None, shared_out: bool = False
) -> ExecutorConfig:
    """Validated executor settings from the command line (and pyarrow told to leave pandas unloaded: every
    stage command passes here before it runs, and this process is ours)."""
    from openpairs.core.lean import arrow_without_pandas
    from openpairs.executors import ExecutorConfig

    arrow_without_pandas()

    if executor not in ("local", "ray"):
        raise typer.BadParameter(f"--executor must be local or ray, not {executor!r}")
    return ExecutorConfig(kind=executor, workers=workers, ray_address=ray_address, shared_out=shared_out)  # type: ignore[arg-type]


@contextmanager
def progress_rows() -> Iterator[Callable[[str], Progress]]:
    """One rich display; `row(label)` adds a stage row (shards done/total, rows, rows/s, % ok, ETA) and
    returns the runner callback that updates it."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
    from rich.progress import Progress as Display

    columns = (
        TextColumn("[bold]{task.description:<9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rows]:>9,} rows {task.fields[rate]:>8,.0f}/s {task.fields[ok]:>6.1%} ok"),
        TimeRemainingColumn(),
    )
    with Display(*columns) as display:

        def row(label: str) -> Progress:
            task_id = display.add_task(label, total=None, rows=0, rate=0.0, ok=0.0)
            seen = {"rows": 0, "ok": 0}

            def update(done: int, total: int, stats: ShardStats | None) -> None:
                if stats is not None:
                    seen["rows"] += stats.rows_in
                    seen["ok"] += stats.rows_out
                elapsed = display.tasks[task_id].elapsed or 0.0
                rate = seen["rows"] / elapsed if elapsed else 0.0
                ok = seen["ok"] / seen["rows"] if seen["rows"] else 0.0
                display.update(task_id, completed=done, total=total, rows=seen["rows"], rate=rate, ok=ok)

            return update

        yield row


@contextmanager
def stage_progress(label: str) -> Iterator[Progress]:
    """The display with a single row, for one stage's command."""
    with progress_rows() as row:
        yield row(label)


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
    redone = f", {result.stale} redone: their inputs were rewritten" if result.stale else ""
    console.print(f"{result.done} shards ({result.skipped} already done{redone}) in {result.seconds:.1f}s")
    for failure in result.failed:
        console.print(f"[red]shard {failure['shard']} failed: {failure['error']}")
