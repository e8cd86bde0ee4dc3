"""The resolved configuration of a build: one frozen dataclass per stage, from a preset plus overrides.

Overrides are `stage.field=value` strings (e.g. `download.image_size=384`, `filter.min_similarity=0.25`),
converted to the field's type, so every stage option is reachable from `build` under its stage's name.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from openpairs.cc.rules import ExtractConfig
from openpairs.presets import stage_config
from openpairs.stages.clip import ClipConfig
from openpairs.stages.dedup import DedupConfig
from openpairs.stages.download_config import DownloadConfig
from openpairs.stages.filter import FilterConfig

STAGE_CLASSES: dict[str, type] = {
    "extract": ExtractConfig,
    "dedup": DedupConfig,
    "download": DownloadConfig,
    "clip": ClipConfig,
    "filter": FilterConfig,
}
VERSIONED = (
    "openpairs",
    "torch",
    "open_clip_torch",
    "pyarrow",
    "fastwarc",
    "aiohttp",
    "pillow",
    "ray",
    "faiss-cpu",
)


@dataclass(frozen=True)
class BuildConfig:
    """Everything a build does, resolved."""

    preset: str
    extract: ExtractConfig
    dedup: DedupConfig
    download: DownloadConfig
    clip: ClipConfig
    filter: FilterConfig
    export_formats: tuple[str, ...] = ()
    samples_per_shard: int = 10_000
    report_warnings: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> str:
        """The resolved configuration and the versions of the packages that matter, for DIR/config.json."""
        data = dataclasses.asdict(self)
        data["versions"] = {name: _version(name) for name in VERSIONED}
        return json.dumps(data, indent=1, default=str)


def build_config(
    preset: str,
    overrides: dict[str, dict[str, Any]] | None = None,
    export_formats: tuple[str, ...] | None = None,
    samples_per_shard: int = 10_000,
    report_warnings: tuple[str, ...] = (),
) -> BuildConfig:
    """Every stage config from `preset` plus `overrides` ({stage: {field: value}})."""
    overrides = overrides or {}
    unknown = set(overrides) - set(STAGE_CLASSES)
    if unknown:
        raise ValueError(
            f"unknown stage(s) {', '.join(sorted(unknown))}; choose from {', '.join(STAGE_CLASSES)}"
        )
    configs: dict[str, Any] = {
        name: _stage_config(cls, name, preset, overrides.get(name, {})) for name, cls in STAGE_CLASSES.items()
    }
    if not configs["extract"].user_agent_token:  # one token names us in every opt-out: page metas too
        configs["extract"] = dataclasses.replace(
            configs["extract"], user_agent_token=configs["download"].user_agent_token
        )
    formats = export_formats if export_formats is not None else (_preset_export(preset), "webdataset")
    return BuildConfig(
        preset=preset,
        export_formats=formats,
        samples_per_shard=samples_per_shard,
        report_warnings=report_warnings,
        **configs,
    )


def _stage_config(cls: type[Any], stage: str, preset: str, values: dict[str, Any]) -> Any:
    """The preset's config of `stage` with `values` applied, an explicit None too (`--set clip.pretrained=none`:
    no pretrained tag), where `stage_config` takes None for an option not given."""
    config = stage_config(cls, stage, preset, **values)
    nones = {name: None for name, value in values.items() if value is None}
    return dataclasses.replace(config, **nones) if nones else config


def parse_settings(settings: list[str]) -> dict[str, dict[str, Any]]:
    """`stage.field=value` strings -> {stage: {field: typed value}} (types from the stage's dataclass)."""
    parsed: dict[str, dict[str, Any]] = {}
    for setting in settings:
        name, sep, raw = setting.partition("=")
        stage, dot, field_name = name.strip().partition(".")
        if not sep or not dot:
            raise ValueError(f"--set {setting!r}: expected STAGE.FIELD=VALUE, e.g. download.image_size=384")
        cls = STAGE_CLASSES.get(stage)
        fields = {f.name: f for f in dataclasses.fields(cls)} if cls else {}
        if field_name.replace("-", "_") not in fields:
            raise ValueError(f"--set {setting!r}: {stage!r} has no option {field_name!r}")
        spec = fields[field_name.replace("-", "_")]
        parsed.setdefault(stage, {})[spec.name] = _typed(raw.strip(), spec)
    return parsed


def _typed(raw: str, spec: dataclasses.Field[Any]) -> Any:
    """Convert a command-line string to the type of the field's default."""
    default = spec.default if spec.default is not dataclasses.MISSING else None
    if raw.lower() in ("none", "null") and "None" in str(spec.type):
        return None
    if isinstance(default, bool):
        if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"{spec.name} takes true or false, not {raw!r}")
        return raw.lower() in ("true", "1", "yes")
    if isinstance(default, tuple):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float) or "float" in str(spec.type):
        return float(raw)
    return raw


def _preset_export(preset: str) -> str:
    return "laion5b" if preset == "laion5b" else "laion400m"


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"
