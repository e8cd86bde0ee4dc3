"""The whole pipeline on the bundled demo data, through `run_build` with the demo's settings."""

from __future__ import annotations

import hashlib

from openpairs.build import BuildResult, build_config, run_build
from openpairs.demo import wat_files
from openpairs.demo.run import WARNING, demo_overrides
from openpairs.executors import ExecutorConfig
from openpairs.io import fs as ofs
from openpairs.models.clip import TINY_MODEL
from openpairs.stages.export import FORMATS


def demo_settings(mirror: str, checkpoint: str) -> list[str]:
    """The demo's overrides, with the 64-d tiny CLIP at `checkpoint`, as `--set STAGE.FIELD=VALUE` arguments."""
    overrides = demo_overrides(mirror, checkpoint, TINY_MODEL)
    return [
        f"{stage}.{name}={'none' if value is None else value}"
        for stage, fields in overrides.items()
        for name, value in fields.items()
    ]


def run_demo_build(
    out: str, mirror: str, checkpoint: str, executor: ExecutorConfig | None = None
) -> BuildResult:
    """Build the demo dataset with the 64-d tiny CLIP at `checkpoint` into `out` (every export format);
    resumes like `openpairs build`."""
    overrides = demo_overrides(mirror, checkpoint, TINY_MODEL)
    config = build_config("laion400m", overrides, FORMATS, samples_per_shard=64, report_warnings=(WARNING,))
    return run_build(wat_files(), out, config, executor or ExecutorConfig(kind="local", workers=1))


def dataset_digests(out: str) -> dict[str, str]:
    """sha256 of every file under DIR/dataset, by relative path: equal digests mean equal datasets."""
    fs, root = ofs.filesystem(ofs.join(out, "dataset"))
    prefix = root.rstrip("/") + "/"
    return {str(p)[len(prefix) :]: hashlib.sha256(fs.cat_file(p)).hexdigest() for p in sorted(fs.find(root))}
