"""Caption keyword filter of the LAION-style safety presets: word-boundary, case-insensitive term matching.

The shipped list (safety/data/caption_keywords.txt) has three sections: a caption is blocked when it holds a
`[minor]` term together with a `[sexual]` term, or any `[always]` term. A user's file in the same format
(`--caption-blocklist FILE`) extends the sections; its lines before any section header are `[always]` terms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from openpairs.io import fs as ofs

SECTIONS = ("minor", "sexual", "always")
# The safety presets: LAION's safety variants. punsafe above the threshold is dropped (status unsafe), and
# the caption keyword filter is on (status unsafe_caption).
SAFETY_PRESETS: dict[str, float] = {"research": 0.95, "research-safe": 0.45}


@dataclass(frozen=True)
class CaptionFilter:
    """Compiled term patterns per section (None: the section is empty)."""

    minor: re.Pattern[str] | None
    sexual: re.Pattern[str] | None
    always: re.Pattern[str] | None

    def blocked(self, caption: str) -> str | None:
        """Why `caption` is blocked (the terms that matched), or None."""
        if self.always is not None and (hit := self.always.search(caption)):
            return hit.group(0)
        if self.minor is None or self.sexual is None:
            return None
        minor, sexual = self.minor.search(caption), self.sexual.search(caption)
        return f"{minor.group(0)} + {sexual.group(0)}" if minor and sexual else None


def parse_terms(text: str, source: str) -> dict[str, list[str]]:
    """Terms per section of a keyword file; a clear error for an unknown section header."""
    terms: dict[str, list[str]] = {name: [] for name in SECTIONS}
    section = "always"
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip().lower()
            if section not in terms:
                raise ValueError(f"{source}:{number}: unknown section [{section}]; use {', '.join(SECTIONS)}")
        elif line:
            terms[section].append(line)
    return terms


def shipped_terms() -> dict[str, list[str]]:
    """The shipped keyword list, per section."""
    text = resources.files("openpairs.safety").joinpath("data/caption_keywords.txt").read_text("utf-8")
    return parse_terms(text, "caption_keywords.txt")


def caption_filter(shipped: bool, extra_file: str | None) -> CaptionFilter | None:
    """The filter of the shipped list (when `shipped`) extended by `extra_file`; None when both are off."""
    if not shipped and not extra_file:
        return None
    terms = shipped_terms() if shipped else {name: [] for name in SECTIONS}
    if extra_file:
        if not ofs.exists(extra_file):
            raise FileNotFoundError(f"caption blocklist {extra_file} does not exist")
        for section, extra in parse_terms(ofs.read_text(extra_file), extra_file).items():
            terms[section] += extra
    return CaptionFilter(*(_pattern(terms[name]) for name in SECTIONS))


def _pattern(terms: list[str]) -> re.Pattern[str] | None:
    """One case-insensitive pattern matching any term as a whole word or phrase (any run of spaces, or a
    hyphen, between a phrase's words)."""
    if not terms:
        return None
    parts = sorted({r"[\s-]+".join(map(re.escape, t.lower().split())) for t in terms}, key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)", re.IGNORECASE)
