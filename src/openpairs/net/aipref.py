"""What usage preferences mean for an AI training set: IETF AIPREF (`Content-Usage`, draft-ietf-aipref-vocab)
and Cloudflare's `Content-Signal`.

AIPREF categories nest: `bots` (any automated processing) holds `train-ai` (AI training), which holds
`train-genai` (generative AI training). A category's own preference wins over the one of the category that
holds it; an unstated one inherits it. openpairs datasets train AI models, generative ones included, so a
`n` that reaches `train-ai` or `train-genai` opts the content out.
"""

from __future__ import annotations

from openpairs.net.robots_lines import parse_preferences

# each category we are, with the categories it inherits from, nearest first
_AIPREF_CHAINS = (("train-ai", "bots"), ("train-genai", "train-ai", "bots"))


def aipref_refusal(prefs: dict[str, str]) -> str | None:
    """The preference that refuses AI training (e.g. `train-ai=n`), or None."""
    for chain in _AIPREF_CHAINS:
        for category in chain:
            choice = prefs.get(category)
            if choice is None:
                continue
            if choice == "n":
                return f"{category}=n"
            break
    return None


def content_usage_header_refusal(values: list[str]) -> str | None:
    """The `Content-Usage` response header's refusal of AI training, or None (several headers: merged)."""
    prefs: dict[str, str] = {}
    for value in values:
        for key, choice in parse_preferences(value).items():
            if prefs.get(key) != "n":
                prefs[key] = choice
    return aipref_refusal(prefs)


def content_signal_refusal(prefs: dict[str, str]) -> str | None:
    """Cloudflare `Content-Signal`: `ai-train=no` refuses training (`search`, `ai-input` do not concern us)."""
    choice = prefs.get("ai-train")
    return f"ai-train={choice}" if choice in ("no", "n") else None
