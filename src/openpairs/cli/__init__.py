"""The `openpairs` command: one subcommand per stage plus build, demo, serve and report.

Each subcommand lives in its own module with a `register(app)` function; heavy libraries are imported
inside the command bodies so that `openpairs --help` stays instant.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="openpairs",
    help="Build LAION-style image-text datasets from Common Crawl, on a laptop or a Ray cluster.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

COMMAND_MODULES = (
    "extract",
    "download",
    "clip",
    "filter",
    "export",
    "report",
    "build",
    "index",
    "serve",
    "decontaminate",
    "scrub",
)


def _register_all() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(f"openpairs.cli.{name}").register(app)


_register_all()


def main() -> None:
    """Console entry point; a full output disk or a cluster that cannot run the work as asked ends the
    run with one clear line, not a traceback."""
    try:
        app()
    except Exception as error:
        from openpairs.executors import ClusterRefused
        from openpairs.io.commit import OutOfSpace, out_of_space

        if isinstance(error, ClusterRefused):
            typer.echo(f"openpairs: {error}", err=True)
            raise SystemExit(2) from None

        full = out_of_space(error)
        if not isinstance(error, OutOfSpace) and full is None:
            raise
        message = error if isinstance(error, OutOfSpace) else f"{full}; free space, then rerun to resume"
        typer.echo(f"openpairs: {message}", err=True)
        raise SystemExit(1) from None
