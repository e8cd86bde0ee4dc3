"""`openpairs demo`: the whole build, offline, on the bundled Common Crawl samples and the mini web."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openpairs.build import BuildResult, build_config, run_build
from openpairs.build.run import ProgressFor
from openpairs.demo import wat_files
from openpairs.demo.miniweb import MiniWeb
from openpairs.executors import ExecutorConfig
from openpairs.models.clip import TINY_MODEL_512 as DEMO_MODEL

WARNING = (
    "DEMO: CLIP runs with a tiny model of RANDOM weights (no real weights can be downloaded here), so "
    "similarities, NSFW tags and scores are meaningless; its embeddings are 512-d like ViT-B/32's, so LAION's "
    "B/32 punsafe and aesthetic heads are forced onto them (their scores too are meaningless). For real "
    "scores install the OpenAI ViT-B/32 weights "
    "(open_clip downloads them on first use: `openpairs clip DIR --clip-model ViT-B-32 --clip-pretrained "
    "openai`, or pass a local file with --clip-checkpoint PATH)."
)
# The random weights decide the (meaningless) NSFW tags: seed 1 tags 184 of the demo's 208 images UNSURE,
# 23 UNLIKELY and 1 NSFW, so the search page's default safe view is not empty.
DEMO_SEED = 1
# The bundled pages are a photo gallery (relative links) and non-English sites: resolve relatives and keep
# every language so the funnel has something to show; random weights give similarities near 0.
DEMO_OVERRIDES: dict[str, dict[str, Any]] = {
    "extract": {"relative_urls": "resolve", "english_only": False},
    "dedup": {"shard_size": 100},
    "download": {"backoff_base": 0.01, "shard_size": 100},
    "filter": {"min_similarity": -1.0, "min_similarity_other": -1.0},
}


def demo_overrides(mirror: str, checkpoint: str, model: str = DEMO_MODEL) -> dict[str, dict[str, Any]]:
    """The demo's overrides, downloading through `mirror` and scoring with tiny CLIP `model` at `checkpoint`."""
    return {
        **DEMO_OVERRIDES,
        "download": {**DEMO_OVERRIDES["download"], "mirror": mirror},
        "clip": {
            "model": model,
            "pretrained": None,
            "checkpoint": checkpoint,
            "device": "cpu",
            "heads": "force",  # DEMO_MODEL stands in for ViT-B-32 (models.heads); WARNING says so
        },
    }


@dataclass
class DemoResult:
    """The finished build and the index made for `openpairs serve`."""

    build: BuildResult
    index: str


def demo_checkpoint(out: str | Path) -> Path:
    """The demo's RANDOM-weight CLIP checkpoint under `out`, made once: DEMO_MODEL, DEMO_SEED, and the image
    tower's class and position embeddings zeroed so the embeddings follow the pixels (and the search
    page's near-duplicate removal does not fold every image into one)."""
    from openpairs.models.tiny import make_random_checkpoint

    checkpoint = Path(out) / "_demo" / f"{DEMO_MODEL}.pt"
    if not checkpoint.exists():
        with warnings.catch_warnings():  # WARNING (printed first by the CLI) says it once, plainly
            warnings.simplefilter("ignore")
            make_random_checkpoint(checkpoint, seed=DEMO_SEED, model=DEMO_MODEL, content_only=True)
    return checkpoint


def run_demo(out: str, executor: ExecutorConfig, progress_for: ProgressFor | None = None) -> DemoResult:
    """Build the demo dataset into `out` (resumes), then index it for the search page."""
    checkpoint = demo_checkpoint(out)
    with MiniWeb(captions_from=out) as web:
        config = build_config(
            "laion400m",
            demo_overrides(web.url, str(checkpoint)),
            export_formats=("laion400m", "webdataset"),
            samples_per_shard=64,
            report_warnings=(WARNING,),
        )
        result = run_build(wat_files(), out, config, executor, progress_for)
    return DemoResult(result, _index(out) if result.ok else "")


def _index(out: str) -> str:
    from openpairs.index.build import IndexConfig, build_index

    directory = str(Path(out) / "index")
    build_index(out, directory, IndexConfig(text=True, tune_queries=50))
    return directory
