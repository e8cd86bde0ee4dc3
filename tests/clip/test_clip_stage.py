"""The clip stage end to end on small download shards, with the tiny RANDOM-weight CLIP checkpoint."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from openpairs.executors import ExecutorConfig
from openpairs.stages.clip import ClipConfig, preload, run_shard, shard_tasks
from openpairs.stages.image_dedup import ImageDedupConfig, run_image_dedup
from openpairs.stages.runner import run_stage
from tests.fixtures.tiny_clip import Sample, jpeg, write_download_shard

LOCAL = ExecutorConfig(kind="local", workers=1)


def _mixed_shard(out: Path) -> list[str]:
    return write_download_shard(
        out,
        0,
        [
            Sample("a red bicycle"),
            Sample("   "),  # empty caption
            Sample("lost image", image=None),  # listed ok but absent from the tar
            Sample("corrupt image", image=b"\xff\xd8\xff garbage"),
            Sample("never downloaded", status="http_404"),
            Sample("ein Hund im Park", language="de"),
            Sample("a png", image=_png()),
        ],
    )


def _png() -> bytes:
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 90)).save(buffer, "PNG")
    return buffer.getvalue()


def test_clip_stage_outputs_are_aligned_and_counted(tmp_path: Path, tiny_config: ClipConfig) -> None:
    keys = _mixed_shard(tmp_path)
    write_download_shard(tmp_path, 1, [Sample("x", status="timeout"), Sample("y", status="http_403")])
    config = dataclasses.replace(tiny_config, batch_size=2, decode_threads=2)
    result = run_stage(run_shard, config, shard_tasks(str(tmp_path)), LOCAL)
    assert result.ok and len(result.shards) == 2
    first = result.shards[0]
    assert first.is_balanced() and first.rows_in == 6 and first.counters["not_downloaded"] == 1
    assert dict(first.statuses) == {"ok": 3, "empty_caption": 1, "missing_image": 1, "decode_error": 1}
    table = pq.read_table(tmp_path / "clip" / "00000.parquet").to_pydict()
    assert table["key"] == [k for i, k in enumerate(keys) if i != 4]  # download order, downloaded rows only
    assert table["status"] == ["ok", "empty_caption", "missing_image", "decode_error", "ok", "ok"]
    sim = np.array(table["similarity"])
    assert np.all(sim[[1, 2, 3]] == -1.0) and np.all(np.abs(sim[[0, 4, 5]]) <= 1.0)
    assert table["nsfw"][2:4] == ["UNTAGGED", "UNTAGGED"]
    assert set(table["nsfw"][:2] + table["nsfw"][4:]) <= {"UNLIKELY", "UNSURE", "NSFW"}
    assert table["punsafe"] == [None] * 6 and table["aesthetic"] == [None] * 6  # no head for this model
    assert table["pwatermark"] == [None] * 6
    img = np.load(tmp_path / "clip" / "img_emb" / "00000.npy")
    txt = np.load(tmp_path / "clip" / "text_emb" / "00000.npy")
    assert img.dtype == np.float16 and txt.dtype == np.float16 and img.shape == txt.shape == (6, 64)
    np.testing.assert_allclose(np.linalg.norm(img.astype(np.float32), axis=1), [1, 1, 0, 0, 1, 1], atol=2e-3)
    np.testing.assert_allclose(np.linalg.norm(txt.astype(np.float32), axis=1), [1, 0, 1, 1, 1, 1], atol=2e-3)
    _check_alignment(config, img, txt, sim)
    empty = pq.read_table(tmp_path / "clip" / "00001.parquet")
    assert empty.num_rows == 0 and np.load(tmp_path / "clip" / "img_emb" / "00001.npy").shape == (0, 64)
    assert result.shards[1].counters["not_downloaded"] == 2 and result.shards[1].rows_in == 0


def _check_alignment(config: ClipConfig, img: np.ndarray, txt: np.ndarray, sim: np.ndarray) -> None:
    """Row 5 (the PNG) and row 0 (the first JPEG) re-encoded directly land on their own rows."""
    encoder = preload(config).clip
    png = encoder.encode_images(torch.stack([encoder.preprocess(Image.new("RGB", (40, 30), (10, 200, 90)))]))
    assert float(png[0] @ img[5].astype(np.float32)) > 0.999
    first = encoder.encode_images(
        torch.stack([encoder.preprocess(Image.open(__import__("io").BytesIO(jpeg(0))))])
    )
    assert float(first[0] @ img[0].astype(np.float32)) > 0.99
    caption = encoder.encode_text(["ein Hund im Park"])
    assert float(caption[0] @ txt[4].astype(np.float32)) > 0.999
    assert abs(float(img[0].astype(np.float32) @ txt[0].astype(np.float32)) - sim[0]) < 5e-3


def test_clip_stage_resumes_and_annotates_dedup(tmp_path: Path, tiny_config: ClipConfig) -> None:
    write_download_shard(tmp_path, 0, [Sample("a"), Sample("b"), Sample("c", image=jpeg(0))])
    config = dataclasses.replace(tiny_config, image_dedup=True)
    tasks = shard_tasks(str(tmp_path))
    assert run_stage(run_shard, config, tasks, LOCAL).skipped == 0
    again = run_stage(run_shard, config, tasks, LOCAL)
    assert again.skipped == 1 and again.total.rows_in == 3
    table = pq.read_table(tmp_path / "clip" / "00000.parquet").to_pydict()
    assert all(isinstance(h, str) and len(h) == 16 for h in table["phash"])
    assert table["phash"][2] == table["phash"][0]  # the same image bytes: the same pHash
    run_image_dedup(str(tmp_path), ImageDedupConfig(), LOCAL)
    groups = pq.read_table(tmp_path / "clip" / "dup_groups" / "00000.parquet").to_pydict()
    group_of = dict(zip(groups["key"], groups["dup_group"], strict=True))
    assert group_of[table["key"][2]] == group_of[table["key"][0]] == table["key"][0]  # ...one image group


def test_truncated_tar_counts_the_lost_images(tmp_path: Path, tiny_config: ClipConfig) -> None:
    write_download_shard(tmp_path, 0, [Sample(f"caption {i}", image=jpeg(i, (200, 160))) for i in range(4)])
    tar = tmp_path / "shards" / "00000.tar"
    data = tar.read_bytes()
    tar.write_bytes(data[: len(data) // 2])  # a download killed mid-write
    stats = run_shard(tiny_config, shard_tasks(str(tmp_path))[0])
    assert stats.is_balanced() and stats.rows_in == 4
    assert stats.statuses["missing_image"] >= 2 and stats.statuses["ok"] >= 1
    assert stats.counters["tar_read_errors"] == 1 and any("tar read error" in m for m in stats.errors)
    (tmp_path / "shards" / "00000.tar").unlink()
    with pytest.raises(FileNotFoundError, match="download shard is incomplete"):
        run_shard(tiny_config, shard_tasks(str(tmp_path))[0])
