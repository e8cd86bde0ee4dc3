"""The filter stage: thresholds per language group, safety/watermark/duplicate rules, recompute on rerun."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

from openpairs.cli import app
from openpairs.executors import ExecutorConfig
from openpairs.presets import stage_config
from openpairs.stages.clip_dedup import component_roots, dup_groups
from openpairs.stages.clip_table import output_schema
from openpairs.stages.filter import FilterConfig, run_filter
from openpairs.stages.image_dedup import ImageDedupConfig, run_image_dedup
from tests.fixtures.tiny_clip import Sample, write_download_shard

LOCAL = ExecutorConfig(kind="local", workers=1)
# (language, clip status, similarity, punsafe, pwatermark, image: rows with the same image are duplicates)
ROWS = [
    ("en", "ok", 0.29, 0.1, 0.1, 0),  # below 0.3, above 0.28
    ("en", "ok", 0.31, 0.9, 0.1, 1),  # unsafe when --max-punsafe 0.5
    ("de", "ok", 0.27, 0.1, 0.8, 2),  # other language: below 0.3, above 0.26; watermark at 0.5
    ("", "ok", 0.25, 0.1, 0.1, 3),  # no language: below 0.26
    ("fr", "ok", 0.40, None, None, 1),  # near duplicate of row 1; null scores pass
    ("en", "empty_caption", -1.0, 0.1, 0.1, 5),
]


def _dataset(out: Path) -> list[str]:
    samples = [Sample("c", language=lang) for lang, *_ in ROWS] + [Sample("gone", status="http_404")]
    keys = write_download_shard(out, 0, samples)
    columns: dict[str, list[object]] = {name: [] for name in output_schema().names}
    for key, (_, status, sim, punsafe, wm, _) in zip(keys, ROWS, strict=False):
        values = {"key": key, "similarity": sim, "punsafe": punsafe, "nsfw": "UNLIKELY", "pwatermark": wm}
        values |= {"aesthetic": 5.0, "status": status, "phash": None}
        for name in columns:
            columns[name].append(values[name])
    (out / "clip" / "img_emb").mkdir(parents=True)
    pq.write_table(pa.table(columns, schema=output_schema()), out / "clip" / "00000.parquet")
    images = np.eye(8, dtype=np.float16)[[image for *_, image in ROWS]]
    np.save(out / "clip" / "img_emb" / "00000.npy", images)
    return keys


def _statuses(out: Path) -> list[str | None]:
    return pq.read_table(out / "filter" / "00000.parquet").column("status").to_pylist()


def test_filter_presets_and_rerun_with_other_thresholds(tmp_path: Path) -> None:
    _dataset(tmp_path)
    laion400m = stage_config(FilterConfig, "filter", "laion400m")
    result = run_filter(str(tmp_path), laion400m, LOCAL)
    expected = ["below_similarity", "ok", "below_similarity", "below_similarity", "ok", "empty_caption"]
    assert _statuses(tmp_path) == [*expected, "not_downloaded"]
    assert result.total.is_balanced() and result.total.statuses["below_similarity"] == 3
    laion5b = stage_config(FilterConfig, "filter", "laion5b")
    again = run_filter(str(tmp_path), laion5b, LOCAL)
    assert again.skipped == 0  # recomputed, not skipped as done
    assert _statuses(tmp_path)[:4] == ["ok", "ok", "ok", "below_similarity"]
    strict = FilterConfig(0.28, 0.26, max_punsafe=0.5, max_pwatermark=0.5, drop_duplicates=True)
    ungrouped = run_filter(str(tmp_path), strict, ExecutorConfig(kind="local", workers=1, retries=0))
    assert not ungrouped.ok and "needs the image dedup groups" in ungrouped.failed[0]["error"]
    run_image_dedup(str(tmp_path), ImageDedupConfig(), LOCAL)  # rows 1 and 4: one image
    third = run_filter(str(tmp_path), strict, LOCAL)
    assert _statuses(tmp_path)[:5] == ["ok", "unsafe", "watermark", "below_similarity", "near_duplicate"]
    assert third.total.counters["punsafe_missing"] == 1  # row 4: a null punsafe passes, counted
    table = pq.read_table(tmp_path / "filter" / "00000.parquet")
    assert table.num_rows == 7 and table.column("language").to_pylist()[2] == "de"


def test_filter_cli_counts_reasons(tmp_path: Path) -> None:
    _dataset(tmp_path)
    done = CliRunner().invoke(app, ["filter", str(tmp_path), "--min-similarity", "0.1", "--workers", "1"])
    assert done.exit_code == 0, done.output
    assert "not_downloaded" in done.output and "7 rows in, 3 kept" in done.output.replace("\n", " ")
    missing = CliRunner().invoke(app, ["filter", str(tmp_path / "nothing")])
    assert missing.exit_code == 2


def test_filter_without_clip_output_fails_the_shard_clearly(tmp_path: Path) -> None:
    write_download_shard(tmp_path, 0, [Sample("a")])
    result = run_filter(str(tmp_path), FilterConfig(), ExecutorConfig(kind="local", workers=1, retries=0))
    assert not result.ok and "run `openpairs clip`" in result.failed[0]["error"]


def test_near_duplicate_components_on_synthetic_embeddings() -> None:
    rng = np.random.default_rng(0)
    base = rng.standard_normal((3, 16)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    near = base[0] + 0.05 * rng.standard_normal(16).astype(np.float32)
    emb = np.stack([base[0], base[1], near / np.linalg.norm(near), base[2], base[1]])
    assert component_roots(emb, 0.95).tolist() == [0, 1, 0, 3, 1]
    keys = ["a", "b", "c", "d", "e"]
    has = np.array([True, True, True, False, True])
    assert dup_groups(keys, emb, has, 0.95) == ["a", "b", "a", None, "b"]
