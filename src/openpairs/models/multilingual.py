"""LAION-5B's multilingual caption encoder: sentence-transformers clip-ViT-B-32-multilingual-v1.

It maps captions of ~50 languages into OpenAI ViT-B/32's image-embedding space; LAION scored non-English
pairs with it. A local directory (a saved SentenceTransformer) may replace the hub name.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

MULTILINGUAL_MODEL = "sentence-transformers/clip-ViT-B-32-multilingual-v1"


class MultilingualModelError(RuntimeError):
    """The multilingual text encoder cannot be loaded; the message says what to fetch."""


class MultilingualEncoder:
    """Captions -> (N, dim) float32 unit vectors in the CLIP image space."""

    def __init__(self, model: Any) -> None:
        self.model = model
        dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dim = int(dimension())

    def encode_text(self, texts: list[str]) -> np.ndarray:
        """Encode and L2-normalise."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self.model.encode(
            texts, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(out, dtype=np.float32)


def load_multilingual(name_or_path: str = MULTILINGUAL_MODEL, device: str = "cpu") -> MultilingualEncoder:
    """Load the encoder from a local directory or the Hugging Face cache (never random weights)."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise MultilingualModelError(
            "the laion5b multilingual text encoder needs the sentence-transformers package"
        ) from exc
    try:
        model = SentenceTransformer(name_or_path, device=device)
    except Exception as exc:
        where = (
            ""
            if os.path.isdir(name_or_path)
            else (
                f" Download it on a machine with network (`huggingface-cli download {name_or_path}`),"
                " copy the Hugging Face cache (HF_HOME) here"
                " or pass the saved directory with --multilingual-model DIR,"
                " or use --text-encoder clip."
            )
        )
        raise MultilingualModelError(
            f"cannot load multilingual text encoder {name_or_path!r}: {type(exc).__name__}: {exc}.{where}"
        ) from exc
    return MultilingualEncoder(model)
