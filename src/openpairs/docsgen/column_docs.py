"""What each column of the data contract means; a column without an entry here fails the docs build."""

from __future__ import annotations

# By column name; an (output, column) entry overrides one where the same name means something else.
COLUMNS: dict[str, str] = {
    "key": "the sample key, minted once at extract as `<shard:09d><row:07d>`; every file joins on it",
    "url": "the image URL (relative ones resolved against the page under laion5b)",
    "caption": "the cleaned alt text",
    "page_url": "the page the image link was found on",
    "language": "CLD3's language code, or `` for no language",
    "language_score": "CLD3's probability for `language`",
    "license": "the Creative Commons licence URL found near the image, or `?`",
    "hash": "`mmh3.hash64(url + caption)[0]`, LAION-5B's join key",
    "source": "the WAT file the link came from",
    "page_robots": "the page's `noai`/`noimageai` robots metas, or null",
    "page_tdm_reservation": "the page's `tdm-reservation` meta (0 or 1), or null",
    "status": "`ok` or the reason the row was dropped (docs: each stage's statuses)",
    "error": "the error message behind a failed status (capped), or null",
    "width": "stored image width in pixels",
    "height": "stored image height in pixels",
    "original_width": "the image's width before resizing",
    "original_height": "the image's height before resizing",
    "sha256": "hex SHA-256 of the stored image bytes",
    "bytes": "size of the downloaded body in bytes",
    "mime": "the stored image's MIME type",
    "opt_out_signal": "the signal that opted the row out (status `opted_out`), else null",
    "similarity": "cosine of the image and caption embeddings; -1.0 where either is missing",
    "punsafe": "LAION's safety head: probability the image is unsafe (null without the head)",
    "nsfw": "LAION-400M's tag: UNLIKELY, UNSURE, NSFW or UNTAGGED",
    "pwatermark": "LAION's watermark model: probability of a watermark (null without it)",
    "aesthetic": "LAION's aesthetic predictor score (null without it)",
    "phash": "the image's perceptual hash (hex) for image dedup, or null",
    "dup_group": "the image dedup group the key belongs to (its smallest key is kept)",
    "method": "how the match was found: `clip` (embedding), `pdq` (hash) or `clip+pdq`",
    "eval_set": "the evaluation set the image near-duplicates",
    "eval_item": "the matched evaluation image's name",
    "pdq_distance": "PDQ Hamming distance to the evaluation image, or null",
    "SAMPLE_ID": "the sample key as an integer",
    "URL": "the image URL",
    "TEXT": "the caption",
    "WIDTH": "the original image width",
    "HEIGHT": "the original image height",
    "LICENSE": "the licence URL, or `?`",
    "NSFW": "UNLIKELY, UNSURE, NSFW or UNTAGGED",
    "LANGUAGE": "the caption's language (laion2B-multi only)",
}

BY_OUTPUT: dict[tuple[str, str], str] = {
    ("download", "status"): "`ok` or why the image was not stored, e.g. `http_404`, `opted_out`",
    (
        "clip",
        "status",
    ): "`ok`, `missing_image` (listed ok, absent from the tar), `decode_error` or `empty_caption`",
    ("clip", "nsfw"): "`UNLIKELY` / `UNSURE` / `NSFW` (zero-shot prompts); `UNTAGGED` without an image",
    (
        "clip",
        "punsafe",
    ): "LAION's CLIP-based NSFW detector (ViT-B/32 or ViT-L/14 head); null when the heads do not apply",
    (
        "clip",
        "aesthetic",
    ): "LAION's aesthetic predictor (v1 B/32, v1 B/16, v2 L/14); null when the heads do not apply",
    ("clip", "pwatermark"): "LAION-5B's watermark classifier; null without `--watermark-checkpoint`",
    ("clip", "phash"): "with `--image-dedup`: the image's 64-bit pHash (hex); groups in `clip/dup_groups/`",
    ("filter", "status"): "`ok` (kept) or the first rule that dropped the sample, e.g. `below_similarity`",
    ("decontaminate", "similarity"): "cosine to the evaluation image (CLIP matches), or null",
    ("dup_groups", "method"): "`exact` (same sha256 as another member) or `near` (perceptual match)",
}


def describe(output: str, column: str) -> str:
    """The meaning of `column` in `output`; KeyError for an undocumented column."""
    found = BY_OUTPUT.get((output, column), COLUMNS.get(column))
    if found is None:
        raise KeyError(f"column {column!r} of {output!r} has no description in docsgen/column_docs.py")
    return found
