"""LAION-400M style NSFW tag: zero-shot CLIP over neutral and sexual-content prompts, top-2 rule.

The image embedding is compared with every prompt embedding; with its two most similar prompts:
both sexual -> NSFW, both neutral -> UNLIKELY, one of each -> UNSURE. Rows without an image -> UNTAGGED.
The prompt lists are ours (LAION did not publish theirs); they are documented in docs/clip.md.
"""

from __future__ import annotations

import numpy as np

NEUTRAL_PROMPTS: tuple[str, ...] = (
    "a photo of a landscape",
    "a photo of a city street",
    "a photo of a building",
    "a photo of food on a plate",
    "a photo of an animal",
    "a photo of a car",
    "a product photo on a white background",
    "a portrait photo of a fully clothed person",
    "a group of people at an event",
    "a photo of people playing sports",
    "a fashion photo of a dressed model",
    "a drawing or illustration",
    "a logo or icon",
    "a screenshot of text",
    "a chart or diagram",
    "a photo of furniture in a room",
    "a photo of flowers and plants",
    "a book cover",
)
SEXUAL_PROMPTS: tuple[str, ...] = (
    "a pornographic photo",
    "an explicit sexual image",
    "a photo of a naked person",
    "a photo of nude people having sex",
    "a photo of exposed genitals",
    "an erotic photo of a topless woman",
    "an erotic photo in lingerie",
    "a hentai drawing with nudity",
)
UNLIKELY, UNSURE, NSFW, UNTAGGED = "UNLIKELY", "UNSURE", "NSFW", "UNTAGGED"


def nsfw_prompts() -> tuple[list[str], np.ndarray]:
    """(all prompts, boolean mask marking the sexual ones), in a fixed order."""
    prompts = list(NEUTRAL_PROMPTS) + list(SEXUAL_PROMPTS)
    sexual = np.array([False] * len(NEUTRAL_PROMPTS) + [True] * len(SEXUAL_PROMPTS))
    return prompts, sexual


def tag_nsfw(
    image_emb: np.ndarray, prompt_emb: np.ndarray, sexual: np.ndarray, has_image: np.ndarray
) -> list[str]:
    """The tag of each row: top-2 prompts both sexual -> NSFW, both neutral -> UNLIKELY, else UNSURE."""
    if len(image_emb) == 0:
        return []
    scores = np.asarray(image_emb, dtype=np.float32) @ np.asarray(prompt_emb, dtype=np.float32).T
    top2 = np.argsort(-scores, axis=1, kind="stable")[:, :2]
    n_sexual = sexual[top2].sum(axis=1)
    tags = np.where(n_sexual == 2, NSFW, np.where(n_sexual == 0, UNLIKELY, UNSURE))
    return [str(t) if ok else UNTAGGED for t, ok in zip(tags, has_image, strict=True)]
