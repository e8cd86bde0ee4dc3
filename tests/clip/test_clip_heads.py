"""LAION heads in numpy: NSFW detector vs TensorFlow goldens, aesthetic ranking, head choice, NSFW tags."""

from __future__ import annotations

import numpy as np
import pytest

from openpairs.models.heads import aesthetic_head, choose_heads, nsfw_detector
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


def test_heads_follow_the_architecture_on_openai_weights() -> None:
    b32 = choose_heads("ViT-B-32", "openai", 512)
    assert (b32.punsafe, b32.aesthetic, b32.note) == (nsfw_detector("b32"), aesthetic_head("v1-b32"), None)
    l14 = choose_heads("ViT-L-14-quickgelu", "OpenAI", 768, checkpoint="/models/ViT-L-14.pt")
    assert (l14.punsafe, l14.aesthetic, l14.note) == (nsfw_detector("l14"), aesthetic_head("v2-l14"), None)
    b16 = choose_heads("ViT-B-16", "openai", 512)
    assert (b16.punsafe, b16.aesthetic) == (None, aesthetic_head("v1-b16"))
    assert b16.note == "LAION has no NSFW head for ViT-B-16: punsafe is null"
    for model, dim in [("openpairs-tiny-random", 64), ("ViT-B-32", 768), ("RN50", 1024)]:
        unfit = choose_heads(model, "openai", dim)  # a dim that does not fit is never scored
        assert (unfit.punsafe, unfit.aesthetic) == (None, None) and f"no LAION head fits {model}" in str(
            unfit.note
        )


@pytest.mark.parametrize(
    ("pretrained", "checkpoint", "weights"),
    [
        ("laion2b_s34b_b79k", None, "pretrained tag 'laion2b_s34b_b79k'"),
        (None, "/m/finetuned.pt", "checkpoint /m/finetuned.pt (no pretrained tag)"),
        ("", None, "no pretrained tag"),
    ],
)
def test_heads_stay_off_other_weights_unless_forced(
    pretrained: str | None, checkpoint: str | None, weights: str
) -> None:
    auto = choose_heads("ViT-B-32", pretrained, 512, "auto", checkpoint)
    assert (auto.punsafe, auto.aesthetic) == (None, None)
    assert auto.note == (
        "punsafe and aesthetic are null: LAION's heads were trained on OpenAI's ViT-B-32 weights, not on "
        f"{weights} (--clip-heads force, or clip.heads=force, applies them anyway)"
    )
    forced = choose_heads("ViT-B-32", pretrained, 512, "force", checkpoint)
    assert (forced.punsafe, forced.aesthetic) == (nsfw_detector("b32"), aesthetic_head("v1-b32"))
    assert forced.note == f"LAION heads forced onto {weights}: punsafe and aesthetic may be meaningless"
    off = choose_heads("ViT-B-32", "openai", 512, "off")
    assert (off.punsafe, off.aesthetic) == (None, None) and "turned off" in str(off.note)
    with pytest.raises(ValueError, match="heads must be one of auto, force, off"):
        choose_heads("ViT-B-32", "openai", 512, "sometimes")


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
