"""Language identification with CLD3 (the cld3-py wheel, imported as gcld3), LAION-5B's way.

CLD3 reads letters only: digits separate words exactly as spaces do. So captions that differ only in
their digits ("photo No. 12", "photo No. 13") get the same answer, and we ask CLD3 once per digit-free
form and cache it (tests check the answers equal CLD3's on the original text).
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_BYTES = 5
MAX_BYTES = 2000
CACHE_ENTRIES = 200_000
DIGITS_TO_SPACES = str.maketrans("0123456789", " " * 10)


@dataclass(frozen=True)
class Language:
    """An ISO code without script suffix (`""` when CLD3 is not reliable) and CLD3's probability."""

    code: str
    score: float


NO_LANGUAGE = Language("", 0.0)


class LanguageIdentifier:
    """Wraps one CLD3 model instance (build one per process; it is not picklable)."""

    def __init__(self) -> None:
        import gcld3

        self._model = gcld3.NNetLanguageIdentifier(min_num_bytes=MIN_BYTES, max_num_bytes=MAX_BYTES)
        self._cache: dict[str, Language] = {}

    def identify(self, text: str) -> Language:
        """CLD3's answer for `text`: the code when reliable (e.g. `zh` for `zh-Latn`), else no language."""
        key = text.translate(DIGITS_TO_SPACES)
        found = self._cache.get(key)
        if found is None:
            found = self.identify_uncached(key)
            if len(self._cache) >= CACHE_ENTRIES:
                self._cache.clear()
            self._cache[key] = found
        return found

    def identify_uncached(self, text: str) -> Language:
        """CLD3 on `text` itself, no cache."""
        result = self._model.FindLanguage(text=text)
        if not result.is_reliable or result.language == "und":
            return Language("", float(result.probability))
        return Language(result.language.split("-", 1)[0], float(result.probability))
