"""`openpairs filter DIR`: apply similarity / punsafe / pwatermark / duplicate thresholds."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from openpairs.cli.common import ExecutorOpt, PresetOpt, RayAddressOpt, SharedOutOpt, WorkersOpt

SimOpt = Annotated[
    float | None, typer.Option("--min-similarity", help="English captions [default: preset, 0.3 / 0.28]")
]
SimOtherOpt = Annotated[
    float | None,
    typer.Option("--min-similarity-other", help="other and no language [default: preset, 0.3 / 0.26]"),
]
PunsafeOpt = Annotated[float | None, typer.Option("--max-punsafe", help="drop punsafe above this")]
WatermarkOpt = Annotated[float | None, typer.Option("--max-pwatermark", help="drop pwatermark above this")]
DupOpt = Annotated[bool, typer.Option("--drop-duplicates", help="keep one sample per near-duplicate group")]
SafetyOpt = Annotated[
    str | None,
    typer.Option(
        "--safety",
        help="LAION safety variant: research (drop punsafe > 0.95) or research-safe (> 0.45), both with the "
        "caption keyword filter",
    ),
]
BlocklistOpt = Annotated[
    str | None,
    typer.Option(
        "--caption-blocklist", help="a keyword file extending the caption filter (docs/decontaminate.md)"
    ),
]


def filter_(
    out: Annotated[str, typer.Argument(help="build output directory with shards/ and clip/")],
    min_similarity: SimOpt = None,
    min_similarity_other: SimOtherOpt = None,
    max_punsafe: PunsafeOpt = None,
    max_pwatermark: WatermarkOpt = None,
    drop_duplicates: DupOpt = False,
    safety: SafetyOpt = None,
    caption_blocklist: BlocklistOpt = None,
    preset: PresetOpt = "laion400m",
    executor: ExecutorOpt = "local",
    workers: WorkersOpt = 0,
    ray_address: RayAddressOpt = None,
    shared_out: SharedOutOpt = False,
) -> None:
    """Mark every candidate ok or dropped (with its reason) into DIR/filter; re-running recomputes."""
    from rich.console import Console

    from openpairs.cli.common import executor_config, print_result, stage_progress
    from openpairs.presets import stage_config
    from openpairs.safety.captions import caption_filter
    from openpairs.stages.filter import FilterConfig, run_filter

    overrides: dict[str, Any] = {
        "min_similarity": min_similarity,
        "min_similarity_other": min_similarity_other,
        "max_punsafe": max_punsafe,
        "max_pwatermark": max_pwatermark,
        "drop_duplicates": drop_duplicates or None,
        "safety": safety,
        "caption_blocklist": caption_blocklist,
    }
    try:
        config = stage_config(FilterConfig, "filter", preset, **overrides)
        caption_filter(bool(config.safety), config.caption_blocklist)  # a bad keyword file stops here
    except (ValueError, FileNotFoundError) as error:
        raise typer.BadParameter(str(error)) from error
    with stage_progress("filter") as progress:
        result = run_filter(
            out, config, executor_config(executor, workers, ray_address, shared_out), progress
        )
    if not result.done and not result.failed:
        Console(stderr=True).print(f"[red]filter: no download shards (shards/<i>.parquet) under {out}")
        raise typer.Exit(code=2)
    print_result("filter", result)
    if not result.ok:
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    """Add the filter command to the app."""
    app.command("filter")(filter_)
