"""`openpairs scrub DIR --blocklist FILE...`: remove what safety lists match from a finished dataset."""

from __future__ import annotations

from typing import Annotated

import typer

from openpairs.cli.common import ExecutorOpt, RayAddressOpt, SharedOutOpt, WorkersOpt
from openpairs.safety.thresholds import PDQ_MATCH_DISTANCE

BlocklistOpt = Annotated[
    list[str],
    typer.Option("--blocklist", help="safety list: text (one hash per line) or .parquet; repeatable"),
]
PdqOpt = Annotated[int, typer.Option("--pdq-threshold", help="PDQ hashes match within this many bits (0-63)")]


def scrub(
    out: Annotated[str, typer.Argument(help="a finished dataset directory (shards/, clip/, filter/, ...)")],
    blocklist: BlocklistOpt,
    pdq_threshold: PdqOpt = PDQ_MATCH_DISTANCE,
    executor: ExecutorOpt = "local",
    workers: WorkersOpt = 0,
    ray_address: RayAddressOpt = None,
    shared_out: SharedOutOpt = False,
) -> None:
    """Mark matched rows blocklisted_url / blocklisted_image and redo every output that held them, as a
    build with the lists would have written it; writes DIR/scrub/<run>/audit.jsonl. Rerun to resume."""
    from rich.console import Console

    from openpairs.cli.common import executor_config
    from openpairs.safety.blocklist import BlocklistError
    from openpairs.stages.scrub import ScrubConfig, run_scrub
    from openpairs.stages.scrub_steps import NotFinished

    console = Console(stderr=True)
    try:
        config = ScrubConfig(tuple(blocklist), pdq_threshold)
        result = run_scrub(out, config, executor_config(executor, workers, ray_address, shared_out))
    except (BlocklistError, NotFinished, FileNotFoundError) as error:
        console.print(f"[red]scrub: {error}")
        raise typer.Exit(code=2) from error
    except ValueError as error:  # a PDQ threshold out of range
        raise typer.BadParameter(str(error)) from error
    for note in result.notes:
        console.print(f"[yellow]note: {note}")
    removed = (
        ", ".join(f"{n:,} {status}" for status, n in sorted(result.removed.items())) or "nothing matched"
    )
    Console().print(
        f"scrub: {removed}; redone: {', '.join(result.steps) or 'nothing'}; audit: {result.audit}"
    )


def register(app: typer.Typer) -> None:
    """Add the scrub command to the app."""
    app.command("scrub")(scrub)
