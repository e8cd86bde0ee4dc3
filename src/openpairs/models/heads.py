"""LAION heads on CLIP image embeddings, in numpy: the punsafe NSFW detector and the aesthetic predictors.

Weights ship in `weights/` (converted to .npz; licences next to them). Every head takes L2-normalised
float32 image embeddings (N, d) and returns float32 (N,).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from openpairs.models.clip import TINY_MODEL_512

WEIGHTS = Path(__file__).parent / "weights"
NSFW_FILES = {
    "b32": WEIGHTS / "laion-clip-nsfw-detector" / "clip_autokeras_nsfw_b32_weights.npz",
    "l14": WEIGHTS / "laion-clip-nsfw-detector" / "clip_autokeras_nsfw_l14_weights.npz",
}
AESTHETIC_FILES = {
    "v1-b32": WEIGHTS / "laion-aesthetic-v1" / "sa_0_4_vit_b_32_linear.npz",
    "v1-b16": WEIGHTS / "laion-aesthetic-v1" / "sa_0_4_vit_b_16_linear.npz",
    "v1-l14": WEIGHTS / "laion-aesthetic-v1" / "sa_0_4_vit_l_14_linear.npz",
    "v2-l14": WEIGHTS / "laion-aesthetic-v2" / "sac+logos+ava1-l14-linearMSE-collapsed.npz",
}
# open_clip architecture -> (NSFW head, aesthetic head, embedding dim). The heads were trained on OpenAI
# CLIP embeddings of these architectures (`choose_heads` applies them to OpenAI's weights only, unless
# forced); other architectures get no head (null column). The demo's random 512-d model stands in for
# ViT-B-32: it has no OpenAI weights, so its heads run only when forced (the demo forces them and says so).
HEADS_BY_MODEL: dict[str, tuple[str | None, str | None, int]] = {
    "ViT-B-32": ("b32", "v1-b32", 512),
    "ViT-B-16": (None, "v1-b16", 512),
    "ViT-L-14": ("l14", "v2-l14", 768),
    TINY_MODEL_512: ("b32", "v1-b32", 512),
}

Head = Callable[[np.ndarray], np.ndarray]


class NsfwDetector:
    """The LAION CLIP-based NSFW detector (AutoKeras MLP), ported with its categorical-lookup quirk."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        self.columns = [int(c) for c in weights["category_columns"]]
        self.vocab = {
            c: {str(s): i + 1 for i, s in enumerate(weights[f"vocab_col{c}"])} for c in self.columns
        }
        self.mean = weights["norm_mean"].astype(np.float32)
        self.std = np.maximum(np.sqrt(weights["norm_variance"].astype(np.float32)), np.float32(1e-7))
        count = sum(1 for k in weights if k.startswith("dense") and k.endswith("_kernel"))
        self.layers = [(weights[f"dense{i}_kernel"], weights[f"dense{i}_bias"]) for i in range(count)]

    def __call__(self, embeddings: np.ndarray) -> np.ndarray:
        """P(NSFW) per row."""
        x = np.asarray(embeddings, dtype=np.float32)
        features = x.copy()
        for c in self.columns:
            lookup = self.vocab[c]
            # AutoKeras typed these dims as categorical: "%f"-formatted value -> vocabulary index (0 = OOV).
            features[:, c] = [lookup.get(f"{float(v):f}", 0) for v in x[:, c]]
        h = (features - self.mean) / self.std
        for kernel, bias in self.layers[:-1]:
            h = np.maximum(h @ kernel + bias, 0.0)
        kernel, bias = self.layers[-1]
        logits = (h @ kernel + bias)[:, 0]
        return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)


class LinearHead:
    """score = x @ w.T + b (aesthetic v1, and v2 whose activation-free MLP collapses to this form)."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray) -> None:
        self.weight = np.asarray(weight, dtype=np.float32).reshape(1, -1)
        self.bias = np.float32(np.asarray(bias).reshape(-1)[0])

    def __call__(self, embeddings: np.ndarray) -> np.ndarray:
        """One score per row."""
        return (np.asarray(embeddings, dtype=np.float32) @ self.weight[0] + self.bias).astype(np.float32)


@cache
def nsfw_detector(name: str) -> NsfwDetector:
    """The bundled NSFW detector `b32` (ViT-B/32) or `l14` (ViT-L/14, LAION-5B's punsafe)."""
    with np.load(NSFW_FILES[name]) as data:
        return NsfwDetector({k: data[k] for k in data.files})


@cache
def aesthetic_head(name: str) -> LinearHead:
    """A bundled aesthetic head: v1-b32, v1-b16, v1-l14 or v2-l14."""
    with np.load(AESTHETIC_FILES[name]) as data:
        return LinearHead(data["weight"], data["bias"])


def base_architecture(model: str) -> str:
    """open_clip name without the QuickGELU suffix, e.g. ViT-B-32-quickgelu -> ViT-B-32."""
    return model.removesuffix("-quickgelu")


HEADS_MODES = ("auto", "force", "off")
TRAINED_ON = "openai"  # the pretrained tag of the weights every bundled head was trained on


@dataclass(frozen=True)
class HeadChoice:
    """The heads a CLIP run applies, and `note`: why a column stays null (or is forced), else None."""

    punsafe: Head | None
    aesthetic: Head | None
    note: str | None = None


def is_openai(pretrained: str | None) -> bool:
    """True when the weights are OpenAI's: the `openai` tag, or a checkpoint file declared with it."""
    return (pretrained or "").strip().lower() == TRAINED_ON


def choose_heads(
    model: str, pretrained: str | None, dim: int, mode: str = "auto", checkpoint: str | None = None
) -> HeadChoice:
    """The punsafe and aesthetic heads for a CLIP run.

    The heads were trained on OpenAI CLIP embeddings of one architecture: `auto` applies them only to
    OpenAI's weights of that architecture, `force` to any weights of that architecture (scores may be
    meaningless), `off` never.
    """
    if mode not in HEADS_MODES:
        raise ValueError(f"heads must be one of {', '.join(HEADS_MODES)}, not {mode!r}")
    entry = HEADS_BY_MODEL.get(base_architecture(model))
    if entry is None or entry[2] != dim:
        return HeadChoice(None, None, f"no LAION head fits {model} ({dim}-d): punsafe and aesthetic are null")
    if mode == "off":
        return HeadChoice(
            None, None, "LAION heads turned off (clip.heads=off): punsafe and aesthetic are null"
        )
    weights = _describe_weights(pretrained, checkpoint)
    openai = is_openai(pretrained)
    if not openai and mode == "auto":
        return HeadChoice(
            None,
            None,
            f"punsafe and aesthetic are null: LAION's heads were trained on OpenAI's {model} weights, not on "
            f"{weights} (--clip-heads force, or clip.heads=force, applies them anyway)",
        )
    nsfw_name, aesthetic_name, _ = entry
    notes = [] if openai else [f"LAION heads forced onto {weights}: punsafe and aesthetic may be meaningless"]
    if nsfw_name is None:
        notes.append(f"LAION has no NSFW head for {model}: punsafe is null")
    return HeadChoice(
        nsfw_detector(nsfw_name) if nsfw_name else None,
        aesthetic_head(aesthetic_name) if aesthetic_name else None,
        "; ".join(notes) or None,
    )


def _describe_weights(pretrained: str | None, checkpoint: str | None) -> str:
    tag = f"pretrained tag {pretrained!r}" if pretrained else "no pretrained tag"
    return f"checkpoint {checkpoint} ({tag})" if checkpoint else tag
