"""Tiny open_clip architectures with RANDOM weights, for tests and the offline demo only.

Nothing defaults to them: they are used only when asked for by name. `openpairs-tiny-random` (64-d
embeddings) is the tests' model; `openpairs-tiny-random-512` has the same tiny towers but 512-d embeddings,
ViT-B-32's width, so the demo's output fits LAION's B/32 heads and TFDS's `laion400m` embeddings config.
Their similarities, NSFW tags and scores are meaningless; anyone using them must say so.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from openpairs.models.clip import TINY_MODEL, TINY_MODELS

CONFIGS = Path(__file__).parent / "weights" / "configs"


def random_weights_warning(model: str = TINY_MODEL) -> str:
    """The warning every use of a tiny model's random weights must carry."""
    return f"{model} has RANDOM weights: similarities, NSFW tags and scores computed with it are meaningless"


def register_tiny_config(model: str = TINY_MODEL) -> str:
    """Register tiny config `model` with open_clip (idempotent); returns the model name."""
    import open_clip

    if model not in TINY_MODELS:
        raise ValueError(f"{model!r} is not a tiny model; choose one of {', '.join(TINY_MODELS)}")
    if model not in open_clip.list_models():
        open_clip.add_model_config(CONFIGS / f"{model}.json")
    return model


def make_random_checkpoint(
    path: str | Path, seed: int = 0, model: str = TINY_MODEL, content_only: bool = False
) -> str:
    """Save tiny model `model`'s random weights as a state-dict checkpoint at `path`; returns the path.

    `content_only` zeroes the image tower's class and position embeddings: their random values otherwise
    outweigh the pixels, so every image gets nearly the same embedding (the demo's photos: median pairwise
    cosine 0.97, 0.17 without them)."""
    import open_clip
    import torch

    warnings.warn(random_weights_warning(model), stacklevel=2)
    register_tiny_config(model)
    torch.manual_seed(seed)
    network = open_clip.create_model(model, pretrained=None)
    if content_only:
        with torch.no_grad():
            network.visual.class_embedding.zero_()
            network.visual.positional_embedding.zero_()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(network.state_dict(), str(path))
    return str(path)
