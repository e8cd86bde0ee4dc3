"""Decontaminate stage: find the dataset's near-duplicates of evaluation images, one dataset shard per task.

Reads `clip/<i>.parquet` with `clip/img_emb/<i>.npy` (the embeddings the clip stage stored) and
`shards/<i>.tar` (for PDQ hashes), and the embedded evaluation sets (stages/decontaminate_eval.py). A
dataset image is an eval duplicate of a set when its cosine similarity to one of the set's images is at
least `min_similarity`, or its PDQ distance to one is at most `max_pdq_distance` (both images' PDQ quality
at least safety.pdq.MIN_QUALITY). Writes `decontaminate/<i>.parquet`: one row per (key, eval set) matched,
with the best similarity and the nearest PDQ distance in that set, the eval item that matched and the
method (`clip`, `pdq` or `clip+pdq`). The filter stage turns those keys into `eval_duplicate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from openpairs.core.stats import ShardStats
from openpairs.core.status import Status
from openpairs.io import commit
from openpairs.io import fs as ofs
from openpairs.safety.pdq import MIN_QUALITY, PDQ_BITS
from openpairs.safety.thresholds import EVAL_MIN_SIMILARITY, PDQ_MATCH_DISTANCE
from openpairs.stages import clip_io
from openpairs.stages.decontaminate_eval import image_pdq, read_eval_set
from openpairs.stages.runner import ShardTask

STAGE = "decontaminate"
DONE_FILE = "_done.json"
SETTINGS_FILE = "_settings.json"
# Chosen from measurements on planted near-duplicates against unrelated pairs (docs/decontaminate.md,
# benchmarks/decontaminate_threshold.py); calibrate for another model with that benchmark.
DEFAULT_MIN_SIMILARITY = EVAL_MIN_SIMILARITY
DEFAULT_MAX_PDQ_DISTANCE = PDQ_MATCH_DISTANCE
OUTPUT_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("eval_set", pa.string()),
        ("eval_item", pa.string()),
        ("similarity", pa.float32()),
        ("pdq_distance", pa.int32()),
        ("method", pa.string()),
    ]
)


@dataclass(frozen=True)
class DecontaminateConfig:
    """The match thresholds and the evaluation sets' names (in order: eval task j embeds set j)."""

    set_names: tuple[str, ...]
    min_similarity: float | None = DEFAULT_MIN_SIMILARITY  # None: no CLIP matching
    max_pdq_distance: int | None = DEFAULT_MAX_PDQ_DISTANCE  # None: no PDQ matching

    def __post_init__(self) -> None:
        if self.min_similarity is not None and not -1.0 <= self.min_similarity <= 1.0:
            raise ValueError(f"min_similarity must be a cosine in [-1, 1], not {self.min_similarity}")
        if self.max_pdq_distance is not None and not 0 <= self.max_pdq_distance <= PDQ_BITS:
            raise ValueError(f"max_pdq_distance must be 0 to {PDQ_BITS}, not {self.max_pdq_distance}")
        if self.min_similarity is None and self.max_pdq_distance is None:
            raise ValueError("both matching methods are off: keep the CLIP or the PDQ threshold")


def shard_tasks(out: str) -> list[ShardTask]:
    """One task per clip shard: (clip parquet, its image embeddings, the download tar)."""
    tasks = []
    for path in ofs.list_files(ofs.join(out, "clip"), ".parquet"):
        stem = path.rsplit("/", 1)[-1].removesuffix(".parquet")
        if stem.isdigit():
            emb = ofs.join(out, "clip", "img_emb", f"{stem}.npy")
            tar = ofs.join(out, "shards", f"{stem}.tar")
            tasks.append(ShardTask(stage=STAGE, index=int(stem), inputs=(path, emb, tar), out=out))
    return tasks


def slice_path(out: str, shard: int) -> str:
    """The eval duplicates found in dataset shard `shard`: decontaminate/<i>.parquet."""
    return ofs.join(out, STAGE, f"{commit.shard_name(shard)}.parquet")


def done_record(out: str) -> str:
    """The record a finished decontamination writes last (stages/decontaminate_run.py)."""
    return ofs.join(out, STAGE, DONE_FILE)


def eval_duplicate_keys(out: str, path: str) -> set[str] | None:
    """The keys of one shard's slice `path` that duplicate an evaluation image; None when the dataset was
    never decontaminated. A run that has not finished is an error, not an empty slice."""
    if not ofs.exists(done_record(out)):
        if ofs.exists(ofs.join(out, STAGE, SETTINGS_FILE)):
            raise FileNotFoundError(
                f"the decontamination of {out} did not finish: rerun `openpairs decontaminate` "
                f"(or remove {ofs.join(out, STAGE)} to drop it)"
            )
        return None
    if not ofs.exists(path):
        raise FileNotFoundError(f"{path} is missing: rerun `openpairs decontaminate` on {out}")
    return set(ofs.read_parquet(path, ["key"]).column("key").to_pylist())


def run_shard(config: DecontaminateConfig, task: ShardTask) -> ShardStats:
    """Match one dataset shard against every evaluation set; writes its matches atomically."""
    stats = ShardStats(stage=STAGE, shard=task.index)
    clip_path, emb_path, tar_path = task.inputs
    clip = ofs.read_parquet(clip_path, ["key", "status"]).to_pydict()
    keys: list[str] = clip["key"]
    with ofs.open_file(emb_path, "rb") as handle:
        emb = np.load(handle).astype(np.float32)
    if len(emb) != len(keys):
        raise ValueError(f"{emb_path} has {len(emb)} rows but {clip_path} has {len(keys)}")
    has_image = np.linalg.norm(emb, axis=1) > 0
    hashes = _dataset_pdq(tar_path, {k: i for i, k in enumerate(keys)}, stats)
    found: dict[str, list[Any]] = {name: [] for name in OUTPUT_SCHEMA.names}
    matched: set[str] = set()
    for index, name in enumerate(config.set_names):
        table, eval_emb = read_eval_set(task.out, index)
        rows = _match_set(config, name, keys, emb, has_image, hashes, table, eval_emb)
        stats.bump(f"{Status.EVAL_DUPLICATE}:{name}", len(rows["key"]))
        matched.update(rows["key"])
        for column, values in rows.items():
            found[column] += values
    for key, status, image in zip(keys, clip["status"], has_image, strict=True):
        stats.count(Status.EVAL_DUPLICATE if key in matched else Status.OK if image else str(status))
    commit.write_parquet_atomic(pa.table(found, schema=OUTPUT_SCHEMA), task.paths.file("parquet"))
    return stats


def _dataset_pdq(tar_path: str, position: dict[str, int], stats: ShardStats) -> list[Any]:
    """The PDQ hash of every image of the shard's tar, in clip-row order (None where there is none)."""
    hashes: list[Any] = [None] * len(position)
    for key, data in clip_io.iter_tar_images(tar_path, stats):
        if key in position:
            hashes[position[key]] = image_pdq(data)
            if hashes[position[key]] is None:
                stats.bump("pdq_failed")  # the image does not decode for PDQ: only CLIP can match it
    stats.bump("pdq_low_quality", sum(1 for h in hashes if h is not None and h.quality < MIN_QUALITY))
    return hashes


def _match_set(
    config: DecontaminateConfig,
    name: str,
    keys: list[str],
    emb: np.ndarray,
    has_image: np.ndarray,
    hashes: list[Any],
    table: Any,
    eval_emb: np.ndarray,
) -> dict[str, list[Any]]:
    """The shard's matches against one evaluation set (columns of OUTPUT_SCHEMA)."""
    items = table.column("eval_item").to_pylist()
    usable = np.array([s == Status.OK for s in table.column("status").to_pylist()], dtype=bool)
    if eval_emb.shape[1] != emb.shape[1]:
        raise ValueError(
            f"evaluation set {name!r} has {eval_emb.shape[1]}-d embeddings but the dataset {emb.shape[1]}-d "
            "ones: DIR/config.json records another CLIP than the one that made clip/img_emb/"
        )
    similarity, by_clip = nearest_by_clip(emb, eval_emb[usable])
    eval_pdq, quality = table.column("pdq").to_pylist(), table.column("pdq_quality").to_pylist()
    pdq_rows = [i for i in range(len(items)) if usable[i] and eval_pdq[i] and quality[i] >= MIN_QUALITY]
    distance, by_pdq = nearest_by_pdq(hashes, [eval_pdq[i] for i in pdq_rows])
    clip_items = np.flatnonzero(usable)
    out: dict[str, list[Any]] = {column: [] for column in OUTPUT_SCHEMA.names}
    for row in np.flatnonzero(has_image | (distance >= 0)):
        clip_hit = (
            config.min_similarity is not None
            and bool(has_image[row])
            and by_clip[row] >= 0
            and similarity[row] >= config.min_similarity
        )
        pdq_hit = config.max_pdq_distance is not None and 0 <= distance[row] <= config.max_pdq_distance
        if not (clip_hit or pdq_hit):
            continue
        item = items[clip_items[by_clip[row]]] if clip_hit else items[pdq_rows[by_pdq[row]]]
        method = "clip+pdq" if clip_hit and pdq_hit else "clip" if clip_hit else "pdq"
        score = float(similarity[row]) if has_image[row] and by_clip[row] >= 0 else None
        pdq = int(distance[row]) if distance[row] >= 0 else None
        values = (keys[row], name, item, score, pdq, method)
        for column, value in zip(OUTPUT_SCHEMA.names, values, strict=True):
            out[column].append(value)
    return out


def nearest_by_clip(emb: np.ndarray, eval_emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row of `emb`, the best inner product with `eval_emb` and its row (-1 when there is none):
    exact search with faiss (an evaluation set is small)."""
    import faiss

    if len(eval_emb) == 0 or len(emb) == 0:
        return np.full(len(emb), -1.0, dtype=np.float32), np.full(len(emb), -1, dtype=np.int64)
    index = faiss.IndexFlatIP(eval_emb.shape[1])
    index.add(np.ascontiguousarray(eval_emb, dtype=np.float32))
    scores, rows = index.search(np.ascontiguousarray(emb, dtype=np.float32), 1)
    return scores[:, 0], rows[:, 0]


def nearest_by_pdq(hashes: list[Any], eval_hashes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """For each dataset hash (PdqHash or None), the Hamming distance to the nearest evaluation hash and its
    position (-1, -1 without a usable hash): exact binary search with faiss."""
    import faiss

    distance = np.full(len(hashes), -1, dtype=np.int64)
    nearest = np.full(len(hashes), -1, dtype=np.int64)
    rows = [i for i, h in enumerate(hashes) if h is not None and h.quality >= MIN_QUALITY]
    if not rows or not eval_hashes:
        return distance, nearest
    index = faiss.IndexBinaryFlat(PDQ_BITS)
    index.add(_packed(eval_hashes))
    found, positions = index.search(_packed([hashes[i].hex for i in rows]), 1)
    distance[rows], nearest[rows] = found[:, 0], positions[:, 0]
    return distance, nearest


def _packed(hexes: list[str]) -> np.ndarray:
    return np.frombuffer(b"".join(bytes.fromhex(h) for h in hexes), dtype=np.uint8).reshape(len(hexes), -1)
