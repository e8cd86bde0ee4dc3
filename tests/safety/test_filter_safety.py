"""The filter's LAION safety presets on a copy of the pipeline build: punsafe just above and just below each
preset's limit, and the caption keyword filter (shipped list, word boundaries, case, a user's file).

The tiny test CLIP has no punsafe head (punsafe is null), so the copy's clip parquet gets punsafe values
written into it, and a few kept rows get new captions in the download parquet, before the filter re-runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from openpairs.cli import app
from openpairs.safety.captions import caption_filter
from tests.fixtures.pipeline_output import PipelineOutput

PUNSAFE = (0.951, 0.95, 0.451, 0.45)
CAPTIONS = {
    "Teen NUDE photo shoot": "unsafe_caption",  # a minor term with a sexual term, any case
    "Under-age  naked models": "unsafe_caption",  # a phrase, hyphen or spaces between its words
    "jailbait": "unsafe_caption",  # an [always] term alone
    "A child's drawing of the sunset": "ok",  # a minor term alone
    "Sexy red sports car at the show": "ok",  # a sexual term alone
    "Kids on a farm in Essex": "ok",  # 'sex' inside a word is no match
    "The zorblax poster from the fair": "extended",  # only in the user's file
}


def _rewrite(path: Path, column: str, values: dict[str, object], kind: pa.DataType) -> None:
    table = pq.read_table(path)
    keys = table.column("key").to_pylist()
    old = table.column(column).to_pylist()
    new = pa.array([values.get(k, v) for k, v in zip(keys, old, strict=True)], kind)
    pq.write_table(table.set_column(table.schema.get_field_index(column), column, new), path)


@pytest.fixture(scope="module")
def planted(built_pipeline: PipelineOutput, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A copy whose first kept rows carry the punsafe values and captions above."""
    root = tmp_path_factory.mktemp("safety")
    built = built_pipeline.copy(root / "run")
    kept = built.kept
    punsafe = dict(zip(kept, PUNSAFE, strict=False))
    captions = dict(zip(kept[len(PUNSAFE) :], CAPTIONS, strict=False))
    for name in built.shards:
        _rewrite(built.root / "clip" / f"{name}.parquet", "punsafe", punsafe, pa.float32())
        _rewrite(built.root / "shards" / f"{name}.parquet", "caption", captions, pa.string())
    blocklist = root / "extra.txt"
    blocklist.write_text("# terms before any section block alone\nzorblax\n")
    recorded = json.loads((built.root / "filter" / "filter_config.json").read_text())
    thresholds = ["--min-similarity", str(recorded["min_similarity"])]
    thresholds += ["--min-similarity-other", str(recorded["min_similarity_other"])]
    return {
        "root": built.root,
        "punsafe": punsafe,
        "captions": captions,
        "blocklist": blocklist,
        "args": thresholds,
    }


def _filter(planted: dict, *options: str) -> dict[str, str]:
    args = ["filter", str(planted["root"]), "--workers", "1", *planted["args"], *options]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return PipelineOutput(planted["root"]).statuses


@pytest.mark.parametrize(("preset", "limit"), [("research", 0.95), ("research-safe", 0.45)])
def test_safety_presets_drop_punsafe_above_their_limit(planted: dict, preset: str, limit: float) -> None:
    statuses = _filter(planted, "--safety", preset)
    for key, value in planted["punsafe"].items():
        assert statuses[key] == ("unsafe" if value > limit else "ok"), (key, value)


def test_caption_keywords_with_and_without_a_users_file(planted: dict) -> None:
    shipped = _filter(planted, "--safety", "research")
    extended = _filter(planted, "--safety", "research", "--caption-blocklist", str(planted["blocklist"]))
    plain = _filter(planted)
    for key, caption in planted["captions"].items():
        expected = CAPTIONS[caption]
        assert shipped[key] == ("ok" if expected == "extended" else expected), caption
        assert extended[key] == ("unsafe_caption" if expected == "extended" else expected), caption
        assert plain[key] == "ok", caption


def test_caption_filter_terms() -> None:
    captions = caption_filter(shipped=True, extra_file=None)
    assert captions is not None
    assert captions.blocked("PRETEEN girls in LINGERIE") == "PRETEEN + LINGERIE"
    assert captions.blocked("sextant for kids") is None  # no word-boundary match of 'sex'
    assert captions.blocked("Child pornography") == "Child pornography"
    assert caption_filter(shipped=False, extra_file=None) is None
