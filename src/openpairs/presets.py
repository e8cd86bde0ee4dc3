"""Presets reproduce the papers: each names the stage-config fields that differ from the defaults.

Stage configs are frozen dataclasses defined next to their stage; `stage_config` builds one from a preset
plus the user's overrides, so every rule is a field a user can set on its own.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")

PRESET_NAMES = ("laion400m", "laion5b")

# Field values per preset and stage. A field absent here keeps its dataclass default.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "laion400m": {
        "extract": {
            "relative_urls": "resolve",
            "drop_extensions": (".svg", ".gif", ".webp"),
            "english_only": True,
        },
        "dedup": {"dedup": "url+caption", "split_languages": False},
        "clip": {"text_encoder": "clip"},
        "filter": {"min_similarity": 0.3, "min_similarity_other": 0.3},
        "export": {"format": "laion400m"},
    },
    "laion5b": {
        "extract": {
            "relative_urls": "drop",
            "drop_extensions": (".svg", ".gif"),
            "english_only": False,
        },
        "dedup": {"dedup": "url", "split_languages": False},
        "clip": {"text_encoder": "multilingual"},
        "filter": {"min_similarity": 0.28, "min_similarity_other": 0.26},
        "export": {"format": "laion5b"},
    },
}


def preset_values(preset: str, stage: str) -> dict[str, Any]:
    """The field values `preset` sets for `stage` (a clear error for an unknown preset)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESET_NAMES)}")
    return dict(PRESETS[preset].get(stage, {}))


def stage_config(cls: type[T], stage: str, preset: str, **overrides: Any) -> T:
    """An instance of the dataclass `cls` with the preset's values, then every non-None override."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values = {k: v for k, v in preset_values(preset, stage).items() if k in names}
    unknown = [k for k in overrides if k not in names]
    if unknown:
        raise ValueError(f"{cls.__name__} has no field(s) {', '.join(unknown)}")
    values.update({k: v for k, v in overrides.items() if v is not None})
    return cls(**values)
