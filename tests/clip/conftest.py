"""Clip-stage fixtures: the tiny RANDOM-weight CLIP, loaded from a checkpoint file like a user's."""

from __future__ import annotations

from pathlib import Path

import pytest

from openpairs.stages.clip import ClipConfig
from tests.fixtures.tiny_clip import TINY_MODEL, tiny_checkpoint

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A checkpoint file of the tiny model's random weights (scores made with it are meaningless)."""
    return tiny_checkpoint(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture
def tiny_config(tiny_ckpt: str) -> ClipConfig:
    """Clip config loading the tiny random model through `checkpoint`, as --clip-checkpoint does."""
    return ClipConfig(model=TINY_MODEL, pretrained=None, checkpoint=tiny_ckpt, device="cpu", threads=1)
