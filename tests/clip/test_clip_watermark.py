"""pwatermark: the LAION watermark architecture with RANDOM weights, loaded as a user's checkpoint."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from openpairs.executors import ExecutorConfig
from openpairs.models.watermark import (
    WatermarkModelError,
    build_watermark_model,
    load_watermark,
    watermark_transform,
)
from openpairs.stages.clip import ClipConfig, run_shard, shard_tasks
from openpairs.stages.runner import run_stage
from tests.fixtures.images import photo
from tests.fixtures.tiny_clip import Sample, write_download_shard


@pytest.fixture(scope="module")
def watermark_ckpt(tmp_path_factory: pytest.TempPathFactory) -> str:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("watermark") / "watermark_model_v1.pt"
    torch.save(build_watermark_model().state_dict(), path)
    return str(path)


def test_watermark_architecture_and_scores(watermark_ckpt: str) -> None:
    scorer = load_watermark(watermark_ckpt)
    head = [type(m).__name__ for m in scorer.model.classifier]
    assert head == ["Linear", "ReLU", "Dropout", "Linear", "ReLU", "Linear"]
    assert scorer.model.classifier[0].in_features == 1536 and scorer.model.classifier[-1].out_features == 2
    transform = watermark_transform()
    batch = torch.stack([transform(photo(300, 200, seed=s)) for s in range(2)])
    assert batch.shape == (2, 3, 256, 256)
    scores = scorer.score(batch)
    assert scores.shape == (2,) and scores.dtype == np.float32 and np.all((scores >= 0) & (scores <= 1))


def test_wrong_watermark_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "not_watermark.pt"
    torch.save(torch.nn.Linear(3, 2).state_dict(), path)
    with pytest.raises(WatermarkModelError, match="not a LAION watermark checkpoint"):
        load_watermark(str(path))
    with pytest.raises(WatermarkModelError, match="does not exist"):
        load_watermark(str(tmp_path / "absent.pt"))


def test_clip_stage_fills_pwatermark(tmp_path: Path, tiny_config: ClipConfig, watermark_ckpt: str) -> None:
    write_download_shard(tmp_path, 0, [Sample("a"), Sample("b", image=None)])
    config = dataclasses.replace(tiny_config, watermark_checkpoint=watermark_ckpt)
    result = run_stage(run_shard, config, shard_tasks(str(tmp_path)), ExecutorConfig(kind="local", workers=1))
    assert result.ok
    pw = pq.read_table(tmp_path / "clip" / "00000.parquet").column("pwatermark").to_pylist()
    assert pw[1] is None and isinstance(pw[0], float) and 0.0 <= pw[0] <= 1.0
