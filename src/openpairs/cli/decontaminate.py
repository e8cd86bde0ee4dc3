"""`openpairs decontaminate DIR --against PATH`: mark near-duplicates of evaluation images `eval_duplicate`."""

from __future__ import annotations

from typing import Annotated, Any, NoReturn

import typer

from openpairs.cli.common import ExecutorOpt, RayAddressOpt, SharedOutOpt, WorkersOpt
from openpairs.safety.thresholds import EVAL_MIN_SIMILARITY, PDQ_MATCH_DISTANCE

AgainstOpt = Annotated[
    list[str],
    typer.Option(
        "--against", help="an evaluation set: a folder of images, a .tar or a folder of .tar (repeatable)"
    ),
]
NameOpt = Annotated[
    list[str] | None,
    typer.Option("--name", help="the name of the n-th --against set (default: its folder or file stem)"),
]
SimilarityOpt = Annotated[
    float,
    typer.Option("--min-similarity", help="CLIP cosine at or above which an image is an eval duplicate"),
]
PdqOpt = Annotated[
    int,
    typer.Option("--max-pdq-distance", help="PDQ Hamming distance (of 256 bits) at or below which it is one"),
]
ClipOnOpt = Annotated[bool, typer.Option("--clip/--no-clip", help="match by CLIP cosine")]
PdqOnOpt = Annotated[bool, typer.Option("--pdq/--no-pdq", help="match by PDQ distance")]
DeviceOpt = Annotated[str | None, typer.Option("--device", help="embed the sets on: auto, cpu or cuda[:N]")]
BatchOpt = Annotated[int | None, typer.Option("--batch-size", help="images per CLIP batch")]


def decontaminate(
    out: Annotated[str, typer.Argument(help="a dataset directory the clip stage has run on")],
    against: AgainstOpt,
    name: NameOpt = None,
    min_similarity: SimilarityOpt = EVAL_MIN_SIMILARITY,
    max_pdq_distance: PdqOpt = PDQ_MATCH_DISTANCE,
    clip_match: ClipOnOpt = True,
    pdq_match: PdqOnOpt = True,
    device: DeviceOpt = None,
    batch_size: BatchOpt = None,
    executor: ExecutorOpt = "local",
    workers: WorkersOpt = 0,
    ray_address: RayAddressOpt = None,
    shared_out: SharedOutOpt = False,
) -> None:
    """Find the dataset's near-duplicates of evaluation images (CLIP embedding or PDQ hash) and re-run the
    filter, the exports and the report so they end as `eval_duplicate`; a rerun resumes."""
    from openpairs.cli.clip import load_models
    from openpairs.cli.common import executor_config, stage_progress
    from openpairs.stages.decontaminate import DecontaminateConfig
    from openpairs.stages.decontaminate_run import NotDecontaminable, recorded_clip_config, run_decontaminate

    try:
        sets = eval_sets(against, list(name or []))
        config = DecontaminateConfig(
            tuple(s.name for s in sets),
            min_similarity if clip_match else None,
            max_pdq_distance if pdq_match else None,
        )
        clip = recorded_clip_config(out, device=device, batch_size=batch_size)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    load_models(clip, "decontaminate")  # the dataset's model must load before anything is written
    runner = executor_config(executor, workers, ray_address, shared_out)
    try:
        with stage_progress("decontaminate") as progress:
            result = run_decontaminate(out, sets, config, clip, runner, progress)
    except NotDecontaminable as error:
        _fail(str(error), 2)
    _finish(out, result, config.set_names, runner)


def _finish(out: str, result: Any, set_names: tuple[str, ...], runner: Any) -> None:
    """Print the outcome; when every shard is done, re-run filter, exports and report (exit 1 if not)."""
    from openpairs.cli.common import print_result
    from openpairs.stages.decontaminate_run import refresh_downstream

    print_result("decontaminate: eval sets", result.eval_sets)
    if result.shards is not None:
        print_result("decontaminate", result.shards)
    if not result.ok:
        raise typer.Exit(code=1)
    _summary(result.shards.total.counters if result.shards else {}, set_names)
    refreshed = refresh_downstream(out, runner)
    typer.echo(f"re-ran: {', '.join(refreshed) or 'nothing (no filter output yet)'}")
    _warn_index(out)


def eval_sets(paths: list[str], names: list[str]) -> tuple[Any, ...]:
    """The named evaluation sets (the n-th name names the n-th path; the rest take their stem)."""
    from openpairs.stages.decontaminate_eval import EvalSet, eval_set_name

    if len(names) > len(paths):
        raise ValueError(f"{len(names)} --name for {len(paths)} --against")
    sets = tuple(
        EvalSet(names[i] if i < len(names) else eval_set_name(path), path) for i, path in enumerate(paths)
    )
    from openpairs.io import fs as ofs

    missing = [path for path in paths if not ofs.exists(path)]
    if missing:
        raise ValueError(f"evaluation set(s) not found: {', '.join(missing)}")
    seen = [s.name for s in sets]
    if len(set(seen)) != len(seen):
        raise ValueError(f"evaluation set names must differ ({', '.join(seen)}): give --name")
    return sets


def _summary(counters: dict[str, int], names: tuple[str, ...]) -> None:
    for set_name in names:
        typer.echo(f"eval duplicates of {set_name}: {counters.get(f'eval_duplicate:{set_name}', 0):,}")


def _warn_index(out: str) -> None:
    from openpairs.io import fs as ofs

    if ofs.exists(ofs.join(out, "index", "index.json")):
        typer.echo(
            f"note: the search index {out}/index is built from every embedded image (clip/), whatever the "
            "filter decides, so it still holds the eval duplicates",
            err=True,
        )


def _fail(message: str, code: int) -> NoReturn:
    from rich.console import Console

    Console(stderr=True).print(f"decontaminate: {message}", style="red", markup=False, highlight=False)
    raise typer.Exit(code=code)


def register(app: typer.Typer) -> None:
    """Add the decontaminate command to the app."""
    app.command("decontaminate")(decontaminate)
