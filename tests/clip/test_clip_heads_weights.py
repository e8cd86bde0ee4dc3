"""LAION's punsafe/aesthetic heads run only on the weights they were trained on (OpenAI's), unless forced.

A full-size ViT-B-32 with RANDOM weights is saved to a checkpoint file and loaded through `--clip-checkpoint`
like a user's file; it scores real download shards, made by the download stage from the local image server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from openpairs.executors import ExecutorConfig
from openpairs.models.heads import aesthetic_head, nsfw_detector
from openpairs.stages.clip import ClipConfig, run_shard, shard_tasks
from openpairs.stages.runner import run_stage
from tests.download.helpers import download, write_input
from tests.fixtures.tiny_clip import random_checkpoint
from tests.fixtures.webserver import ImageServer, image_server_fixture

image_server = pytest.fixture(scope="module")(image_server_fixture)

IMAGES = ("jpeg_baseline", "png_rgb", "webp", "grayscale_jpeg")
NULL_NOTE = "punsafe and aesthetic are null: LAION's heads were trained on OpenAI's ViT-B-32 weights"


@pytest.fixture(scope="module")
def vit_b32(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A ViT-B-32 checkpoint file of RANDOM weights (512-d embeddings, the architecture the heads fit)."""
    return random_checkpoint(tmp_path_factory.mktemp("vit-b-32") / "vit-b-32-random.pt")


@pytest.fixture(scope="module")
def downloaded(tmp_path_factory: pytest.TempPathFactory, image_server: ImageServer) -> Path:
    """A DIR with one download shard of four real images."""
    root = tmp_path_factory.mktemp("heads")
    urls: list[str | None] = [image_server.url(f"/img/{name}") for name in IMAGES]
    captions = ["a cat on a sofa", "a red car", "a bowl of fruit", "a mountain lake"]
    inp = write_input(root / "in.parquet", urls, captions)
    result = download(inp, root / "out", min_bytes=0)
    assert result.ok and result.total.statuses == {"ok": len(IMAGES)}
    return root / "out"


def _copy(downloaded: Path, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(downloaded, out)
    return out


@pytest.mark.parametrize(("pretrained", "heads"), [("", "force"), ("openai", "auto")])
def test_heads_score_the_stage_embeddings(
    downloaded: Path, vit_b32: str, tmp_path: Path, pretrained: str, heads: str
) -> None:
    """Forced onto undeclared weights, or by default on a file declared as OpenAI's: the columns are the
    bundled B/32 heads applied to the very embeddings the stage wrote."""
    out = _copy(downloaded, tmp_path)
    config = ClipConfig(
        model="ViT-B-32", pretrained=pretrained, checkpoint=vit_b32, device="cpu", threads=1, heads=heads
    )
    result = run_stage(run_shard, config, shard_tasks(str(out)), ExecutorConfig(kind="local", workers=1))
    assert result.ok and result.total.statuses == {"ok": len(IMAGES)}
    table = pq.read_table(out / "clip" / "00000.parquet").to_pydict()
    written = np.load(out / "clip" / "img_emb" / "00000.npy").astype(np.float32)
    assert written.shape == (len(IMAGES), 512)

    # The stage scores the image embeddings exactly as it writes them (float16, as LAION scored its released
    # embeddings), so the heads applied by hand to img_emb/ give the same float32 values: tolerance 0.
    aesthetic = np.array(table["aesthetic"], dtype=np.float32)
    np.testing.assert_array_equal(aesthetic, aesthetic_head("v1-b32")(written))
    assert not np.array_equal(aesthetic, aesthetic_head("v1-b16")(written))  # the other 512-d head
    punsafe = np.array(table["punsafe"], dtype=np.float32)
    np.testing.assert_array_equal(punsafe, nsfw_detector("b32")(written))
    assert len(set(punsafe.tolist())) == len(IMAGES) and len(set(aesthetic.tolist())) == len(IMAGES)

    notes = list(result.total.errors)
    if pretrained == "openai":
        assert notes == []
    else:
        assert notes == [f"LAION heads forced onto checkpoint {vit_b32} (no pretrained tag): punsafe and "
                         "aesthetic may be meaningless"]  # fmt: skip
        assert result.total.errors[notes[0]] == len(IMAGES)


def test_heads_default_to_null_on_other_weights_and_say_why_once(
    downloaded: Path, vit_b32: str, tmp_path: Path
) -> None:
    """`openpairs clip` on a ViT-B-32 file not declared as OpenAI's: null columns, one warning, and the
    reason in the shard's stats (where the report reads its messages)."""
    out = _copy(downloaded, tmp_path)
    command = [sys.executable, "-m", "openpairs", "clip", str(out), "--clip-model", "ViT-B-32",
               "--clip-checkpoint", vit_b32, "--clip-pretrained", "none", "--device", "cpu", "--threads", "1"]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=600, env={**os.environ, "COLUMNS": "400"}
    )
    output = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 0, output
    assert output.count(NULL_NOTE) == 1 and "--clip-heads force" in output
    table = pq.read_table(out / "clip" / "00000.parquet").to_pydict()
    assert table["status"] == ["ok"] * len(IMAGES)
    assert table["punsafe"] == [None] * len(IMAGES) and table["aesthetic"] == [None] * len(IMAGES)
    errors = json.loads((out / "clip" / "00000_stats.json").read_text())["errors"]
    assert [(message.startswith(NULL_NOTE), count) for message, count in errors.items()] == [(True, 4)]
