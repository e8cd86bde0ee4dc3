"""`openpairs report DIR`: an HTML report (funnel, LAION-400M Table 1, plots) and a dataset card."""

from __future__ import annotations

from typing import Annotated

import typer

from openpairs.cli.common import ExecutorOpt, RayAddressOpt, WorkersOpt

WarningOpt = Annotated[
    list[str] | None,
    typer.Option("--warning", help="a warning banner for the page and card (repeatable)"),
]
TitleOpt = Annotated[str | None, typer.Option("--title", help="dataset name in the report and card")]


def report(
    out: Annotated[str, typer.Argument(help="build output directory (local path or fsspec URL)")],
    warning: WarningOpt = None,
    title: TitleOpt = None,
    executor: ExecutorOpt = "local",
    workers: WorkersOpt = 0,
    ray_address: RayAddressOpt = None,
) -> None:
    """Write DIR/report/index.html (+ PNG plots) and the dataset card DIR/README.md."""
    from rich.console import Console

    from openpairs.cli.common import executor_config
    from openpairs.report import build_report

    config = executor_config(executor, workers, ray_address)
    result = build_report(out, warnings=tuple(warning or ()), title=title, executor=config)
    console = Console()
    for line in result.summary_lines():
        console.print(line)
    console.print(f"report: {result.html}\ndataset card: {result.card}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the report command to the app."""
    app.command("report")(report)
