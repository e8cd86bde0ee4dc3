"""TFDS's own `laion400m` builder (tensorflow-datasets 4.9.10 with Beam's DirectRunner, in its own venv)
builds its `images` and `embeddings` configs from `openpairs export --format tfds` of the demo build, with
`num_shards` set to the export's; `tfds.load` then yields the same examples as `openpairs.load`: every
example, every feature, the image bytes and their decoded pixels. The client runs with no network at all
(a fresh network namespace), so it can only have read the export.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import openpairs

CLIENT = Path(__file__).with_name("tfds_client.py")
FEATURES = ("caption", "license", "nsfw", "original_height", "original_width", "similarity", "url")


@pytest.fixture(scope="module")
def manual_dir(demo_dir: Path) -> tuple[Path, dict[str, Any]]:
    """`openpairs export DEMO --format tfds`, run as a user would; the folder and its manifest."""
    command = [sys.executable, "-m", "openpairs", "export", str(demo_dir), "--format", "tfds", "--samples-per-shard", "64"]  # fmt: skip
    printed = subprocess.run(command, check=True, capture_output=True, text=True, timeout=600).stdout
    folder = demo_dir / "dataset" / "tfds"
    manifest = json.loads((folder / "_manifest.json").read_text())
    assert f"num_shards={manifest['tfds']['num_shards']}" in printed, printed
    return folder, manifest


def _build_and_dump(venv: Callable[[str], Path], folder: Path, shards: int, config: str, tmp: Path) -> Path:
    """Build `config` with TFDS's builder in its venv, offline; returns the folder of its dumped examples."""
    python = venv("tfds") / "python"
    dump = tmp / "dump"
    command = ["unshare", "--net", str(python), str(CLIENT), str(folder), str(shards), config, str(tmp / "tfds"), str(dump)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-4000:]
    assert f"laion400m/{config}: " in result.stdout, result.stdout
    return dump


def _by_pair(examples: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Examples by (url, caption): laion400m's dedup key, so unique in both datasets."""
    keyed = {(e["url"], e["caption"]): e for e in examples}
    assert len(keyed) == len(examples)
    return keyed


def _tfds_examples(dump: Path, config: str) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (dump / f"{config}.jsonl").read_text().splitlines()]
    with np.load(dump / f"{config}.npz") as arrays:
        for i, row in enumerate(rows):
            for name in ("bytes", "pixels", "accurate", "image_embedding", "text_embedding"):
                if f"{name}_{i}" in arrays:
                    row[name] = arrays[f"{name}_{i}"]
    return rows


def _check_features(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    for name in FEATURES:
        if name == "similarity":  # TFDS stores its float64 feature in tf.train.Example's float32 list
            assert np.float32(theirs[name]) == np.float32(ours[name]), (theirs[name], ours[name])
        else:
            assert theirs[name] == ours[name], (name, theirs[name], ours[name])


def test_tfds_builds_images_config_equal_to_openpairs_load(
    manual_dir: tuple[Path, dict[str, Any]], demo_dir: Path, venv: Callable[[str], Path], tmp_path: Path
) -> None:
    folder, manifest = manual_dir
    assert manifest["tfds"]["num_shards"] >= 2 and manifest["tfds"]["configs"] == ["images", "embeddings"]
    dump = _build_and_dump(venv, folder, manifest["tfds"]["num_shards"], "images", tmp_path)
    theirs = _by_pair(_tfds_examples(dump, "images"))
    ours = _by_pair(list(openpairs.load(str(demo_dir), config="images")))
    assert len(ours) == manifest["samples"] > 100 and theirs.keys() == ours.keys()
    stored = _stored_bytes(demo_dir)
    for pair, example in ours.items():
        _check_features(example, theirs[pair])
        assert theirs[pair]["bytes"].tobytes() == stored[pair]  # the very bytes the download stage stored
        assert np.array_equal(theirs[pair]["accurate"], example["image"])  # decoded alike: every pixel
        # TFDS's own decode (the fast integer IDCT) differs from an accurate one by a few levels
        pixels = theirs[pair]["pixels"].astype(np.int16)
        assert pixels.shape == example["image"].shape and np.abs(pixels - example["image"]).mean() < 2


def test_tfds_builds_embeddings_config_equal_to_openpairs_load(
    manual_dir: tuple[Path, dict[str, Any]], demo_dir: Path, venv: Callable[[str], Path], tmp_path: Path
) -> None:
    folder, manifest = manual_dir
    dump = _build_and_dump(venv, folder, manifest["tfds"]["num_shards"], "embeddings", tmp_path)
    theirs = _by_pair(_tfds_examples(dump, "embeddings"))
    ours = _by_pair(list(openpairs.load(str(demo_dir), config="embeddings")))
    assert len(ours) == manifest["samples"] and theirs.keys() == ours.keys()
    for pair, example in ours.items():
        _check_features(example, theirs[pair])
        for name in ("image_embedding", "text_embedding"):
            assert theirs[pair][name].dtype == np.float16 and theirs[pair][name].shape == (512,)
            assert np.array_equal(theirs[pair][name], example[name])


def _stored_bytes(demo_dir: Path) -> dict[tuple[str, str], bytes]:
    """Image bytes by (url, caption), straight from the download stage's tars (not through any export)."""
    from openpairs.stages.export_join import image_of, iter_tar

    found = {}
    for tar in sorted((demo_dir / "shards").glob("*.tar")):
        for _, parts in iter_tar(str(tar)):
            row = json.loads(parts["json"])
            image = image_of(parts)
            if image is not None:
                found[(row["url"], row["caption"])] = image[1]
    return found
