"""clip_benchmark (1.6.2) runs zero-shot image<->text retrieval on the eval split openpairs wrote, unchanged,
with the checkpoint open_clip's trainer made from the training shards."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from compat.open_clip_run import MODEL, MODEL_CONFIG, WRAPPER, TrainedClip


def test_zeroshot_retrieval_recall_on_the_eval_split(
    trained_clip: TrainedClip, venv: Callable[[str], Path], tmp_path: Path
) -> None:
    root = trained_clip.export / "eval"
    samples = sum(json.loads((root / "test" / "sizes.json").read_text()).values())
    ks = (1, 5, samples)
    output = tmp_path / "result.json"
    subprocess.run(
        [
            str(venv("clip_benchmark") / "python"), str(WRAPPER), str(MODEL_CONFIG), "clip_benchmark.cli", "eval",
            "--dataset", "wds/openpairs", "--dataset_root", str(root), "--task", "zeroshot_retrieval",
            "--model", MODEL, "--pretrained", str(trained_clip.checkpoint), "--recall_k", *map(str, ks),
            "--batch_size", "64", "--num_workers", "0", "--no_amp", "--output", str(output),
        ],
        check=True,
        timeout=900,
    )  # fmt: skip
    metrics = json.loads(output.read_text())["metrics"]
    print(f"\nclip_benchmark on {samples} held-out samples: {metrics} (chance at 5: {5 / samples:.3f})")
    for direction in ("image_retrieval", "text_retrieval"):
        recalls = [metrics[f"{direction}_recall@{k}"] for k in ks]
        assert all(0.0 <= r <= 1.0 for r in recalls) and recalls == sorted(recalls)
        assert all(
            abs(r * samples - round(r * samples)) < 1e-4 for r in recalls
        )  # a share of `samples` items
        assert recalls[-1] == 1.0  # k = samples needs that many items: the whole split was read
