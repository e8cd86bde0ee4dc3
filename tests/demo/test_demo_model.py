"""The demo's RANDOM-weight CLIP checkpoint: made as the demo makes it, loaded as a user's file is loaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from openpairs.demo import data_dir
from openpairs.demo.run import DEMO_MODEL, DEMO_SEED, demo_checkpoint
from openpairs.index.search import DEDUP_THRESHOLD
from openpairs.models.clip import ClipModelSpec, load_clip
from openpairs.models.tiny import make_random_checkpoint


def _photo_cosines(checkpoint: Path) -> np.ndarray:
    """Cosines between the embeddings of every pair of the demo's bundled photos."""
    encoder = load_clip(ClipModelSpec(DEMO_MODEL, pretrained=None, checkpoint=str(checkpoint), device="cpu"))
    photos = sorted(path for path in (data_dir() / "images").iterdir() if path.is_file())
    batch = torch.stack([encoder.preprocess(Image.open(path).convert("RGB")) for path in photos])
    images = encoder.encode_images(batch)
    return (images @ images.T)[np.triu_indices(len(photos), 1)]


def test_the_demos_photos_get_distinct_embeddings(tmp_path: Path) -> None:
    """~3 s: with the random class and position embeddings kept, every photo lands near one direction (the
    search page's dedup folds them into one result); the demo's checkpoint zeroes them and spreads them."""
    with pytest.warns(UserWarning, match="RANDOM"):
        kept = make_random_checkpoint(tmp_path / "kept.pt", seed=DEMO_SEED, model=DEMO_MODEL)
    checkpoint = demo_checkpoint(tmp_path / "demo")
    assert checkpoint == tmp_path / "demo" / "_demo" / f"{DEMO_MODEL}.pt"
    before, after = _photo_cosines(Path(kept)), _photo_cosines(checkpoint)
    assert np.median(before) > DEDUP_THRESHOLD  # the fault the demo's checkpoint avoids is real
    assert np.median(after) < 0.8 and np.mean(after >= DEDUP_THRESHOLD) < 0.1
    assert demo_checkpoint(tmp_path / "demo").stat().st_mtime_ns == checkpoint.stat().st_mtime_ns  # made once
