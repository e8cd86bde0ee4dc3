"""Calibrate `openpairs decontaminate`'s thresholds for a CLIP model: planted near-duplicates vs unrelated pairs.

Every image of FOLDER is copied four ways (resized to 60%, re-encoded as JPEG quality 40, cropped 5% per
side, colour-jittered: tests/fixtures/near_duplicates.py). Originals and copies are embedded with the
model recorded for the clip stage of DATASET (or the one given) through the decontaminate stage's own eval-set
task, and PDQ-hashed. Printed: per copy kind, the lowest and median cosine to its original and the largest
PDQ distance; over all pairs of different originals, the highest and 99th-percentile cosine and the smallest
PDQ distance; and the range in which a threshold separates the two.

Usage:
  python benchmarks/decontaminate_threshold.py --dataset DIR --images FOLDER [--limit 500]
  python benchmarks/decontaminate_threshold.py --clip-model ViT-B-32 --clip-pretrained openai --images FOLDER
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from openpairs.executors import ExecutorConfig
from openpairs.safety.pdq import hamming
from openpairs.stages.clip import ClipConfig
from openpairs.stages.decontaminate_eval import (
    EvalEmbedConfig,
    EvalSet,
    eval_tasks,
    read_eval_set,
    run_eval_set,
)
from openpairs.stages.decontaminate_run import recorded_clip_config
from openpairs.stages.runner import run_stage
from tests.fixtures.near_duplicates import VARIANTS

SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def embed_sets(
    folders: dict[str, Path], clip: ClipConfig, work: Path
) -> dict[str, tuple[list[str], np.ndarray, list[str]]]:
    """Each folder embedded and hashed by the decontaminate stage's eval task: (items, embeddings, pdq)."""
    sets = tuple(EvalSet(name, str(path)) for name, path in folders.items())
    result = run_stage(
        run_eval_set, EvalEmbedConfig(clip, sets), eval_tasks(str(work), sets), ExecutorConfig(workers=1)
    )
    if not result.ok:
        raise SystemExit(f"embedding failed: {result.failed}")
    out = {}
    for index, eval_set in enumerate(sets):
        table, emb = read_eval_set(str(work), index)
        out[eval_set.name] = (table.column("eval_item").to_pylist(), emb, table.column("pdq").to_pylist())
    return out


def _opens(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            image.convert("RGB")
        return True
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", required=True, help="a folder of distinct images")
    parser.add_argument("--dataset", help="use the CLIP recorded for this dataset's clip stage")
    parser.add_argument("--clip-model", default="ViT-B-32")
    parser.add_argument("--clip-pretrained", default="openai")
    parser.add_argument("--clip-checkpoint")
    parser.add_argument("--limit", type=int, default=500)
    args = parser.parse_args()
    if args.dataset:
        clip = recorded_clip_config(args.dataset)
    else:
        clip = ClipConfig(
            model=args.clip_model, pretrained=args.clip_pretrained or None, checkpoint=args.clip_checkpoint
        )
        clip = dataclasses.replace(clip, heads="off")
    paths = [p for p in sorted(Path(args.images).rglob("*")) if p.suffix.lower() in SUFFIXES and _opens(p)]
    paths = paths[: args.limit]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        folders = {"original": work / "original", **{name: work / name for name in VARIANTS}}
        for folder in folders.values():
            folder.mkdir()
        for number, path in enumerate(paths):
            with Image.open(path) as image:
                image = image.convert("RGB")
                image.save(folders["original"] / f"{number:05d}.png")
                for name, make in VARIANTS.items():
                    (folders[name] / f"{number:05d}.jpg").write_bytes(make(image))
        sets = embed_sets(folders, clip, work / "out")
    report(sets, clip)


def report(sets: dict[str, tuple[list[str], np.ndarray, list[str]]], clip: ClipConfig) -> None:
    """Print the near-duplicate and unrelated distributions and the separating ranges."""
    _, original, original_pdq = sets["original"]
    print(f"model {clip.model} / {clip.pretrained or '-'} / {clip.checkpoint or '-'}: {len(original)} images")
    print(f"{'pairs':<22}{'cos min':>9}{'cos p50':>9}{'cos max':>9}{'pdq min':>9}{'pdq max':>9}")
    lowest, farthest = 1.0, 0
    for name in VARIANTS:
        _, emb, pdq = sets[name]
        cos = np.sum(original * emb, axis=1)
        dist = [hamming(a, b) for a, b in zip(original_pdq, pdq, strict=True) if a and b]
        lowest, farthest = min(lowest, float(cos.min())), max(farthest, max(dist))
        print(
            f"{'near-dup ' + name:<22}{cos.min():9.4f}{np.median(cos):9.4f}{cos.max():9.4f}{min(dist):9d}{max(dist):9d}"
        )
    pairs = np.triu_indices(len(original), k=1)
    cos = (original @ original.T)[pairs]
    dist = [hamming(original_pdq[i], original_pdq[j]) for i, j in zip(*pairs, strict=True)]
    print(
        f"{'unrelated':<22}{cos.min():9.4f}{np.median(cos):9.4f}{cos.max():9.4f}{min(dist):9d}{max(dist):9d}"
    )
    print(
        f"unrelated cosine p99: {np.percentile(cos, 99):.4f}; PDQ distance p1: {np.percentile(dist, 1):.0f}"
    )
    print(
        f"cosine separates when {cos.max():.4f} < threshold <= {lowest:.4f}: {'yes' if cos.max() < lowest else 'NO'}"
    )
    print(
        f"PDQ separates when {farthest} <= distance < {min(dist)}: {'yes' if farthest < min(dist) else 'NO'}"
    )


if __name__ == "__main__":
    main()
