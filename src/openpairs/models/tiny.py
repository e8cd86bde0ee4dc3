"""A tiny open_clip architecture with RANDOM weights, for tests and the offline demo only.

Nothing defaults to it: it is used only when asked for by name (`openpairs-tiny-random`). Its similarities,
NSFW tags and scores are meaningless; anyone using it must say so.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from openpairs.models.clip import TINY_MODEL

CONFIG_FILE = Path(__file__).parent / "weights" / "configs" / f"{TINY_MODEL}.json"
RANDOM_WEIGHTS_WARNING = (
    f"{TINY_MODEL} has RANDOM weights: similarities, NSFW tags and scores computed with it are meaningless"
)


def register_tiny_config() -> str:
    """Register the tiny config with open_clip (idempotent); returns the model name."""
    import open_clip

    if TINY_MODEL not in open_clip.list_models():
        open_clip.add_model_config(CONFIG_FILE)
    return TINY_MODEL


def make_random_checkpoint(path: str | Path, seed: int = 0) -> str:
    """Save the tiny model's random weights as a state-dict checkpoint at `path`; returns the path."""
    import open_clip
    import torch

    warnings.warn(RANDOM_WEIGHTS_WARNING, stacklevel=2)
    register_tiny_config()
    torch.manual_seed(seed)
    model = open_clip.create_model(TINY_MODEL, pretrained=None)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), str(path))
    return str(path)
