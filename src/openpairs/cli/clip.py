"""`openpairs clip DIR`: CLIP embeddings, similarity, NSFW tag, punsafe, aesthetic, pwatermark, dedup."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from openpairs.cli.common import ExecutorOpt, PresetOpt, RayAddressOpt, SharedOutOpt

ModelOpt = Annotated[
    str | None, typer.Option("--clip-model", help="open_clip architecture [default: ViT-B-32]")
]
PretrainedOpt = Annotated[
    str | None,
    typer.Option(
        "--clip-pretrained", help="open_clip pretrained tag [default: openai]; 'none' with a checkpoint"
    ),
]
CheckpointOpt = Annotated[
    str | None, typer.Option("--clip-checkpoint", help="local weights file for --clip-model")
]
BatchOpt = Annotated[int, typer.Option("--batch-size", help="images per batch (0: 256 on CUDA, 32 on CPU)")]
ThreadsOpt = Annotated[
    int,
    typer.Option(
        "--threads", help="torch CPU threads per task (0: its CPUs: cores / workers, or a Ray actor's)"
    ),
]
Int8Opt = Annotated[bool, typer.Option("--cpu-int8", help="dynamic int8 quantisation on CPU")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu or cuda[:N]")]
DecoderOpt = Annotated[
    str,
    typer.Option(
        "--image-decoder",
        help="tensor (torchvision/nvJPEG, preprocessing on the device), pil, or auto (tensor on CUDA)",
    ),
]
WatermarkOpt = Annotated[
    str | None,
    typer.Option("--watermark-checkpoint", help="LAION watermark_model_v1.pt (else pwatermark is null)"),
]
HeadsOpt = Annotated[
    str,
    typer.Option(
        "--clip-heads",
        help="LAION punsafe/aesthetic heads: auto (only on OpenAI's weights, which they were trained on), "
        "force (on any weights of the architecture) or off",
    ),
]
DedupOpt = Annotated[
    bool,
    typer.Option(
        "--image-dedup", help="pHash + dataset-wide duplicate image groups (same sha256, or cosine >= 0.95)"
    ),
]
TextEncoderOpt = Annotated[
    str | None, typer.Option("--text-encoder", help="clip or multilingual [default: from the preset]")
]
MultiOpt = Annotated[
    str | None, typer.Option("--multilingual-model", help="sentence-transformers name or local directory")
]
GpusPerActorOpt = Annotated[
    float | None,
    typer.Option(
        "--gpus-per-actor",
        help="Ray: GPUs each clip actor holds, fractions allowed (0.5: two actors per GPU), asked for even "
        "with --device cpu [default: 1 with --device cuda, else 0]",
    ),
]
CpusPerActorOpt = Annotated[
    float,
    typer.Option(
        "--cpus-per-actor",
        help="Ray: CPUs each clip actor holds, its decode threads (0: 4 with a GPU, else 1)",
    ),
]
MaxActorsOpt = Annotated[
    int,
    typer.Option("--max-actors", help="Ray: at most this many clip actors (0: as many as the nodes hold)"),
]


def clip(
    out: Annotated[str, typer.Argument(help="build output directory with shards/ from the download stage")],
    clip_model: ModelOpt = None,
    clip_pretrained: PretrainedOpt = None,
    clip_checkpoint: CheckpointOpt = None,
    batch_size: BatchOpt = 0,
    threads: ThreadsOpt = 0,
    cpu_int8: Int8Opt = False,
    device: DeviceOpt = "auto",
    image_decoder: DecoderOpt = "auto",
    watermark_checkpoint: WatermarkOpt = None,
    clip_heads: HeadsOpt = "auto",
    image_dedup: DedupOpt = False,
    text_encoder: TextEncoderOpt = None,
    multilingual_model: MultiOpt = None,
    preset: PresetOpt = "laion400m",
    executor: ExecutorOpt = "local",
    workers: Annotated[int, typer.Option("--workers", help="worker processes (each loads the model)")] = 1,
    ray_address: RayAddressOpt = None,
    shared_out: SharedOutOpt = False,
    gpus_per_actor: GpusPerActorOpt = None,
    cpus_per_actor: CpusPerActorOpt = 0,
    max_actors: MaxActorsOpt = 0,
) -> None:
    """Score every downloaded sample of DIR/shards into DIR/clip (parquet + img_emb/ + text_emb/)."""
    from openpairs.cli.common import executor_config

    overrides: dict[str, Any] = {
        "model": clip_model,
        "pretrained": _pretrained(clip_pretrained),
        "checkpoint": clip_checkpoint,
        "batch_size": batch_size,
        "threads": threads,
        "cpu_int8": cpu_int8,
        "device": device,
        "image_decoder": image_decoder,
        "watermark_checkpoint": watermark_checkpoint,
        "heads": clip_heads,
        "image_dedup": image_dedup,
        "text_encoder": text_encoder,
        "multilingual_model": multilingual_model,
        **actor_overrides(gpus_per_actor, cpus_per_actor, max_actors),
    }
    config, models = _resolve(preset, overrides)
    _execute(out, config, models, executor_config(executor, workers, ray_address, shared_out))


def actor_overrides(gpus: float | None, cpus: float, max_actors: int) -> dict[str, Any]:
    """The Ray actor options as clip config overrides (None: keep the config's value)."""
    return {"gpus_per_actor": gpus, "cpus_per_actor": cpus or None, "max_actors": max_actors or None}


@contextmanager
def refuse_missing_weights(command: str) -> Iterator[None]:
    """Turn a clip model that some Ray node cannot load (stages.clip_nodes) into one line and exit code 2."""
    from openpairs.stages.clip_nodes import WeightsMissingOnNode

    try:
        yield
    except WeightsMissingOnNode as error:
        _console().print(f"{command}: {error}", style="red", markup=False, highlight=False)
        raise typer.Exit(code=2) from error


def _resolve(preset: str, overrides: dict[str, Any]) -> tuple[Any, Any]:
    """The clip config and its models, loaded once (fail fast; an in-process worker reuses them)."""
    from openpairs.presets import stage_config
    from openpairs.stages.clip import ClipConfig

    try:
        config = stage_config(ClipConfig, "clip", preset, **overrides)
    except ValueError as error:
        _console().print(f"clip: {error}", style="red", markup=False, highlight=False)
        raise typer.Exit(code=2) from error
    return config, load_models(config, "clip")


def load_models(config: Any, command: str) -> Any:
    """The clip stage's models for `config` (each process loads them once), or a one-line message and exit
    code 2 when one cannot be loaded; before any shard is touched."""
    from openpairs.stages.clip import preload

    try:
        return preload(config)
    except (ValueError, RuntimeError) as error:
        _console().print(f"{command}: {error}", style="red", markup=False, highlight=False)
        raise typer.Exit(code=2) from error


def _execute(out: str, config: Any, models: Any, executor: Any) -> None:
    """Run the stage over every download shard, then the dataset-wide dedup step, and print the summary."""
    from openpairs.cli.common import print_result, stage_progress
    from openpairs.stages.clip import run_shard, shard_tasks
    from openpairs.stages.clip_nodes import check_weights_on_nodes
    from openpairs.stages.runner import run_stage

    console = _console()
    tasks = shard_tasks(out)
    if not tasks:
        console.print(f"[red]clip: no download shards (shards/<i>.parquet) under {out}")
        raise typer.Exit(code=2)
    with refuse_missing_weights("clip"):
        check_weights_on_nodes(config, executor)
    announce(console, config, models)
    _record_config(out, config)
    with stage_progress("clip") as progress:
        result = run_stage(run_shard, config, tasks, executor, progress, config.resources())
    if config.image_dedup and result.ok:
        from openpairs.stages.image_dedup import ImageDedupConfig, describe, run_image_dedup

        stats = run_image_dedup(out, ImageDedupConfig(threshold=config.dedup_threshold), executor)
        console.print(f"image dedup: {describe(stats)} in {out}/clip/dup_groups/")
    print_result("clip", result)
    if not result.ok:
        raise typer.Exit(code=1)


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def _pretrained(tag: str | None) -> str | None:
    if tag is not None and tag.lower() in ("none", ""):
        return ""  # an explicit "no tag" (empty string survives stage_config's None filtering)
    return tag


def announce(console: Any, config: Any, models: Any) -> None:
    """Say once per run which annotations will be null (or forced) and why."""
    from openpairs.models.clip import TINY_MODELS

    if config.model in TINY_MODELS:
        console.print(f"[bold yellow]WARNING: {config.model} has RANDOM weights: all scores are meaningless")
    if models.heads.note:
        console.print(f"warning: {models.heads.note}", style="yellow", markup=False, highlight=False)
    if not config.watermark_checkpoint:
        console.print("note: no --watermark-checkpoint: pwatermark will be null")


def _record_config(out: str, config: Any) -> None:
    """Merge the resolved clip config into DIR/config.json (its `clip` section)."""
    import dataclasses
    import json

    from openpairs.io import commit
    from openpairs.io import fs as ofs

    path = ofs.join(out, "config.json")
    current = json.loads(ofs.read_text(path)) if ofs.exists(path) else {}
    current["clip"] = dataclasses.asdict(config)
    commit.write_bytes_atomic(path, json.dumps(current, indent=1, default=list).encode("utf-8"))


def register(app: typer.Typer) -> None:
    """Add the clip command to the app."""
    app.command("clip")(clip)
