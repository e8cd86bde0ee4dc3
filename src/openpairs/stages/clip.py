"""Clip stage: CLIP embeddings, image-caption similarity and LAION annotations, one download shard at a time.

Input: `shards/<i>.parquet` (one row per candidate, with `status`) and `shards/<i>.tar`. Output: one row per
downloaded sample (download status ok), in download-parquet order, in `clip/<i>.parquet`, with the rows of
`clip/img_emb/<i>.npy` and `clip/text_emb/<i>.npy` (float16, L2-normalised; an all-zero row where the image
or the caption is missing) aligned with it. Candidates that were not downloaded have no row here.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from openpairs.core import crashpoints
from openpairs.core.stats import ShardStats
from openpairs.executors import ActorRequest, task_threads, worker_place
from openpairs.io import commit
from openpairs.io import fs as ofs
from openpairs.models.clip import ClipModelSpec
from openpairs.models.heads import HEADS_MODES
from openpairs.models.multilingual import MULTILINGUAL_MODEL
from openpairs.models.nsfw_tags import NEUTRAL_PROMPTS, SEXUAL_PROMPTS
from openpairs.stages import clip_io
from openpairs.stages.clip_gpu import batch_decoder, check_decoder
from openpairs.stages.clip_models import WorkerModels, load_count, local_path, worker_models
from openpairs.stages.clip_table import ShardImages, annotate
from openpairs.stages.runner import ShardTask

STAGE = "clip"


@dataclass(frozen=True)
class ClipConfig:
    """Clip stage settings (preset defaults: see presets.PRESETS['*']['clip'])."""

    model: str = ClipModelSpec.model  # the model fields and their defaults are ClipModelSpec's
    pretrained: str | None = ClipModelSpec.pretrained
    checkpoint: str | None = ClipModelSpec.checkpoint
    device: str = ClipModelSpec.device
    threads: int = ClipModelSpec.threads  # torch CPU threads; 0: the task's CPUs (executors.task_threads)
    cpu_int8: bool = ClipModelSpec.cpu_int8
    batch_size: int = 0  # 0: 256 on CUDA, 32 on CPU
    decode_threads: int = 0  # 0: the task's CPUs
    image_decoder: str = "auto"  # "tensor" (torchvision/nvJPEG + on-device preprocessing), "pil"; auto: CUDA
    text_encoder: str = "clip"  # "clip" or "multilingual" (non-English captions, LAION-5B)
    multilingual_model: str = MULTILINGUAL_MODEL
    english_codes: tuple[str, ...] = ("en",)
    watermark_checkpoint: str | None = None
    heads: str = "auto"  # LAION punsafe/aesthetic heads: auto (OpenAI's weights only), force or off
    image_dedup: bool = False
    dedup_threshold: float = 0.95
    nsfw_neutral_prompts: tuple[str, ...] = NEUTRAL_PROMPTS
    nsfw_sexual_prompts: tuple[str, ...] = SEXUAL_PROMPTS
    # Ray actors (docs/ray.md): GPUs each holds (None: 1 on cuda, else 0; 0.5: two share a GPU), CPUs each
    # holds, its decode threads (0: 4 with a GPU, else 1), and at most this many (0: as many as nodes hold)
    gpus_per_actor: float | None = None
    cpus_per_actor: float = 0
    max_actors: int = 0

    def __post_init__(self) -> None:
        if self.text_encoder not in ("clip", "multilingual"):
            raise ValueError(f"text_encoder must be 'clip' or 'multilingual', not {self.text_encoder!r}")
        check_decoder(self.image_decoder)
        if self.heads not in HEADS_MODES:
            raise ValueError(f"heads must be one of {', '.join(HEADS_MODES)}, not {self.heads!r}")
        gpus = self.gpus_per_actor or 0
        if gpus < 0 or (gpus > 1 and gpus != int(gpus)) or min(self.cpus_per_actor, self.max_actors) < 0:
            raise ValueError(
                f"gpus_per_actor ({gpus}) must be a fraction of one GPU or a whole number of GPUs, "
                f"cpus_per_actor ({self.cpus_per_actor}) and max_actors ({self.max_actors}) 0 or more"
            )

    def resources(self) -> ActorRequest:
        """What each clip actor holds on Ray: its GPUs (asked for even when the model runs on CPU, and
        independent of `device`) and CPUs, and how many actors at most."""
        gpus = (
            self.gpus_per_actor if self.gpus_per_actor is not None else float(self.device.startswith("cuda"))
        )
        cpus = self.cpus_per_actor or (4.0 if gpus > 0 else 1.0)
        return ActorRequest(num_cpus=cpus, num_gpus=gpus, max_actors=self.max_actors)

    @property
    def spec(self) -> ClipModelSpec:
        """The CLIP model to load, as the process that loads it sees it: a checkpoint path's ~ and $VARS
        expanded, torch threads bounded by the task's CPUs (cores / workers locally, an actor's CPUs on Ray)."""
        checkpoint, threads = local_path(self.checkpoint), task_threads(self.threads)
        return ClipModelSpec(self.model, self.pretrained, checkpoint, self.device, threads, self.cpu_int8)


def preload(config: ClipConfig) -> WorkerModels:
    """Load (once per process) every model the config needs; raises a clear error if one cannot load."""
    return worker_models(
        config.spec,
        (config.nsfw_neutral_prompts, config.nsfw_sexual_prompts),
        local_path(config.watermark_checkpoint),
        config.multilingual_model if config.text_encoder == "multilingual" else None,
        config.heads,
    )


def run_shard(config: ClipConfig, task: ShardTask) -> ShardStats:
    """Score one download shard; writes the clip parquet and both embedding files atomically."""
    stats = ShardStats(stage=STAGE, shard=task.index)
    tar_path, parquet_path = task.inputs
    rows = clip_io.read_downloaded_rows(parquet_path, stats)
    started = time.perf_counter()
    models = preload(config)
    stats.time("load_models", time.perf_counter() - started)
    stats.worker.update(worker_place(), clip_loads=str(load_count("clip")))
    images = _embed_images(config, models, tar_path, rows, stats)
    started = time.perf_counter()
    text_emb, has_text = _embed_captions(config, models, rows)
    stats.time("text", time.perf_counter() - started)
    table = annotate(config.image_dedup, models, rows, images, text_emb, has_text, stats)
    _write(task, table, images.emb, text_emb)
    return stats


def _embed_images(
    config: ClipConfig, models: WorkerModels, tar_path: str, rows: clip_io.ShardRows, stats: ShardStats
) -> ShardImages:
    n, position = len(rows.keys), rows.position
    out = ShardImages(
        emb=clip_io.zeros(n, models.clip.dim),
        has_image=np.zeros(n, dtype=bool),
        decode_error=np.zeros(n, dtype=bool),
        pwatermark=np.full(n, np.nan, dtype=np.float32),
        phash=[None] * n,
    )
    if n == 0:
        return out
    images = ((k, b) for k, b in clip_io.iter_tar_images(tar_path, stats) if _listed(k, position, stats))
    started = time.perf_counter()
    for batch in image_batches(config, models, images):
        _score_batch(models, batch, position, out, stats)
        crashpoints.reached("clip.shard", stats.shard)
    stats.time("images", time.perf_counter() - started)
    return out


def image_batches(
    config: ClipConfig, models: WorkerModels, images: Iterator[tuple[str, bytes]]
) -> Iterator[clip_io.ImageBatch]:
    """(key, encoded image) pairs decoded and preprocessed for the CLIP in batches, as this stage does it
    (the config's batch size, decode threads and image decoder)."""
    batch_size = config.batch_size or (256 if models.clip.device.startswith("cuda") else 32)
    size = models.clip.model.visual.image_size
    pre = clip_io.Preprocessors(
        clip=models.clip.preprocess,
        clip_size=int(size[0] if isinstance(size, tuple | list) else size),
        watermark=_watermark_transform() if models.watermark else None,
        phash=config.image_dedup,
    )
    decoder = batch_decoder(config.image_decoder, models, pre)
    return clip_io.decoded_batches(images, pre, batch_size, task_threads(config.decode_threads), decoder)


def _listed(key: str, position: dict[str, int], stats: ShardStats) -> bool:
    if key in position:
        return True
    stats.bump("tar_images_not_in_parquet")
    return False


def _watermark_transform() -> Any:
    from openpairs.models.watermark import watermark_transform

    return watermark_transform()


def _score_batch(
    models: WorkerModels,
    batch: clip_io.ImageBatch,
    position: dict[str, int],
    out: ShardImages,
    stats: ShardStats,
) -> None:
    for key, decoded in zip(batch.keys, batch.decoded, strict=True):
        if decoded.via is not None:
            stats.bump("tensor_decoded" if decoded.via == "tensor" else "tensor_decode_fallback")
        if decoded.error is not None:
            out.decode_error[position[key]] = True
            stats.error(f"decode_error: {decoded.error}")
    good = batch.good()
    if not good:
        return
    rows = [position[batch.keys[i]] for i in good]
    device = models.clip.device
    out.emb[rows] = models.clip.encode_images(clip_io.stack([batch.decoded[i].clip for i in good], device))
    out.has_image[rows] = True
    if models.watermark is not None:
        out.pwatermark[rows] = models.watermark.score(
            clip_io.stack([batch.decoded[i].watermark for i in good], device)
        )
    for i, row in zip(good, rows, strict=True):
        out.phash[row] = batch.decoded[i].phash
    stats.bump("images_embedded", len(rows))


def _embed_captions(
    config: ClipConfig, models: WorkerModels, rows: clip_io.ShardRows
) -> tuple[np.ndarray, np.ndarray]:
    """Caption embeddings (zero rows for empty captions); multilingual encoder for non-English ones."""
    n = len(rows.keys)
    emb = clip_io.zeros(n, models.clip.dim)
    has_text = np.array([bool(c.strip()) for c in rows.captions], dtype=bool)
    english = np.array([lang in config.english_codes for lang in rows.languages], dtype=bool)
    use_multi = models.multilingual is not None
    groups = [(has_text & (english | (not use_multi)), models.clip.encode_text)]
    if models.multilingual is not None:
        groups.append((has_text & ~english, models.multilingual.encode_text))
    batch = max(config.batch_size or 64, 1) * 4
    for mask, encode in groups:
        index = np.flatnonzero(mask)
        for start in range(0, len(index), batch):
            part = index[start : start + batch]
            emb[part] = encode([rows.captions[i] for i in part])
    return emb, has_text


def _write(task: ShardTask, table: Any, img: np.ndarray, txt: np.ndarray) -> None:
    for subdir, emb in (("img_emb", img), ("text_emb", txt)):
        buffer = io.BytesIO()
        np.save(buffer, emb.astype(np.float16))
        commit.write_bytes_atomic(task.paths.file("npy", subdir), buffer.getvalue())
    crashpoints.reached("clip.commit", task.index)
    commit.write_parquet_atomic(table, task.paths.file("parquet"))


def shard_tasks(out: str) -> list[ShardTask]:
    """One task per download shard (`shards/<i>.parquet` with its tar) under `out`."""
    tasks = []
    for path in ofs.list_files(ofs.join(out, "shards"), ".parquet"):
        stem = path.rsplit("/", 1)[-1].removesuffix(".parquet")
        if stem.isdigit():
            tar = path.removesuffix(".parquet") + ".tar"
            tasks.append(ShardTask(stage=STAGE, index=int(stem), inputs=(tar, path), out=out))
    return tasks
