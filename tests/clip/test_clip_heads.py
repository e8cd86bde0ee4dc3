"""LAION heads in numpy: NSFW detector vs TensorFlow goldens, aesthetic ranking, head choice, NSFW tags."""

from __future__ import annotations

import numpy as np
import pytest

from openpairs.models.heads import aesthetic_head, heads_for, nsfw_detector
from openpairs.models.nsfw_tags import NSFW, UNLIKELY, UNSURE, UNTAGGED, nsfw_prompts, tag_nsfw
from tests.clip.conftest import DATA


@pytest.mark.parametrize("name", ["b32", "l14"])
def test_nsfw_detector_reproduces_tensorflow_goldens(name: str) -> None:
    golden = np.load(DATA / f"nsfw_{name}_golden.npz")
    got = nsfw_detector(name)(golden["x"])
    assert got.dtype == np.float32 and got.shape == golden["expected"].shape
    np.testing.assert_allclose(got, golden["expected"], atol=1e-5, rtol=0)


def test_nsfw_categorical_lookup_matters() -> None:
    """Without the AutoKeras vocabulary lookup the L/14 output differs: the quirk is really exercised."""
    golden = np.load(DATA / "nsfw_l14_golden.npz")
    detector = nsfw_detector("l14")
    columns = detector.columns
    detector.columns = []
    try:
        plain = detector(golden["x"])
    finally:
        detector.columns = columns
    assert np.abs(plain - golden["expected"]).max() > 1e-5  # would fail the golden tolerance


def test_nsfw_in_vocabulary_value_maps_to_its_index() -> None:
    """A value whose "%f" form is in the vocabulary gets index position + 1; a near miss gets 0 (OOV)."""
    detector = nsfw_detector("b32")
    column = detector.columns[0]
    text, index = next(iter(detector.vocab[column].items()))
    x = np.zeros((2, 512), dtype=np.float32)
    x[0, column] = float(text)
    x[1, column] = float(text) + 0.5
    hit, miss = detector(x)
    assert index == 1 and hit != miss


@pytest.mark.parametrize(
    ("head", "ratings"),
    [("v1-b32", "vit_b_32"), ("v1-l14", "vit_l_14"), ("v2-l14", "vit_l_14")],
)
def test_aesthetic_heads_rank_rating_embeddings(head: str, ratings: str) -> None:
    embeddings = np.load(DATA / f"{ratings}_rating_embeddings_0to9.npy")
    scores = aesthetic_head(head)(embeddings)
    assert scores.shape == (10,)
    assert np.all(np.diff(scores) > 0), scores


def test_heads_follow_the_clip_architecture() -> None:
    punsafe, aesthetic = heads_for("ViT-B-32", 512)
    assert punsafe is nsfw_detector("b32") and aesthetic is aesthetic_head("v1-b32")
    punsafe, aesthetic = heads_for("ViT-L-14-quickgelu", 768)
    assert punsafe is nsfw_detector("l14") and aesthetic is aesthetic_head("v2-l14")
    assert heads_for("ViT-B-16", 512) == (None, aesthetic_head("v1-b16"))
    assert heads_for("openpairs-tiny-random", 64) == (None, None)
    assert heads_for("ViT-B-32", 768) == (None, None)  # a dim that does not fit is never scored


def test_nsfw_tag_top2_rule_on_synthetic_embeddings() -> None:
    prompts, sexual = nsfw_prompts()
    assert sexual.any() and not sexual.all() and len(prompts) == len(sexual)
    prompt_emb = np.eye(len(prompts), dtype=np.float32)
    neutral = np.flatnonzero(~sexual)
    explicit = np.flatnonzero(sexual)

    def image(first: int, second: int) -> np.ndarray:
        v = np.zeros(len(prompts), dtype=np.float32)
        v[first], v[second] = 0.8, 0.6
        return v

    images = np.stack(
        [
            image(explicit[0], explicit[1]),  # both top-2 sexual
            image(neutral[0], neutral[1]),  # both neutral
            image(explicit[0], neutral[0]),  # mixed, sexual first
            image(neutral[2], explicit[2]),  # mixed, neutral first
            image(neutral[0], neutral[1]),  # no image
        ]
    )
    has_image = np.array([True, True, True, True, False])
    assert tag_nsfw(images, prompt_emb, sexual, has_image) == [NSFW, UNLIKELY, UNSURE, UNSURE, UNTAGGED]
    assert tag_nsfw(images[:0], prompt_emb, sexual, has_image[:0]) == []
