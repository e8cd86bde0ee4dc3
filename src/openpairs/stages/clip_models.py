"""Per-worker model cache for the clip stage: each process loads its models once, on first use."""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from openpairs.models.clip import ClipEncoder, ClipModelSpec, load_clip
from openpairs.models.heads import HeadChoice, choose_heads

if TYPE_CHECKING:
    from openpairs.models.multilingual import MultilingualEncoder
    from openpairs.models.watermark import WatermarkScorer

log = logging.getLogger(__name__)
_CACHE: dict[tuple[str, Any], Any] = {}
_LOADS: Counter[str] = Counter()  # models of each kind this process loaded (once each, when the cache works)


@dataclass
class WorkerModels:
    """Everything one worker needs to score a shard."""

    clip: ClipEncoder
    prompt_emb: np.ndarray
    sexual: np.ndarray
    heads: HeadChoice  # punsafe and aesthetic heads, and why they are null when they are
    watermark: WatermarkScorer | None
    multilingual: MultilingualEncoder | None


def _cached(kind: str, key: Any, build: Any) -> Any:
    if (kind, key) not in _CACHE:
        _CACHE[(kind, key)] = build()
        _LOADS[kind] += 1
    return _CACHE[(kind, key)]


def local_path(path: str | None) -> str | None:
    """`path` with ~ and $VARS expanded in this process: each node may keep its model files at its own place."""
    return os.path.expandvars(os.path.expanduser(path)) if path else path


def load_count(kind: str) -> int:
    """How many models of `kind` ("clip", "watermark", "multilingual") this process has loaded."""
    return _LOADS[kind]


def worker_models(
    spec: ClipModelSpec,
    prompts: tuple[tuple[str, ...], tuple[str, ...]],
    watermark_checkpoint: str | None,
    multilingual_model: str | None,
    heads: str = "auto",
) -> WorkerModels:
    """The models for this config, loaded once per process and reused for every shard."""
    clip: ClipEncoder = _cached("clip", spec, lambda: load_clip(spec))
    neutral, sexual_prompts = prompts
    prompt_emb = _cached("prompts", (spec, prompts), lambda: clip.encode_text(list(neutral + sexual_prompts)))
    sexual = np.array([False] * len(neutral) + [True] * len(sexual_prompts))
    head_choice = choose_heads(spec.model, spec.pretrained, clip.dim, heads, spec.checkpoint)
    watermark = None
    if watermark_checkpoint:
        from openpairs.models.watermark import load_watermark

        watermark = _cached(
            "watermark", watermark_checkpoint, lambda: load_watermark(watermark_checkpoint, clip.device)
        )
    multilingual = None
    if multilingual_model:
        multilingual = _cached(
            "multilingual", multilingual_model, lambda: _load_multilingual(multilingual_model, clip)
        )
    return WorkerModels(clip, prompt_emb, sexual, head_choice, watermark, multilingual)


def _load_multilingual(name: str, clip: ClipEncoder) -> MultilingualEncoder:
    from openpairs.models.multilingual import MultilingualModelError, load_multilingual

    encoder = load_multilingual(name, clip.device)
    if encoder.dim != clip.dim:
        raise MultilingualModelError(
            f"multilingual text encoder {name!r} makes {encoder.dim}-d vectors but CLIP {clip.name} makes "
            f"{clip.dim}-d ones: it must be trained for this CLIP (LAION's is for ViT-B-32)"
        )
    return encoder
