"""The clip stage's tensor decode path (nvJPEG on CUDA) run on device="cpu": the same code, without a GPU.

Everything is compared with the PIL path on the same bytes, with the tiny RANDOM-weight CLIP (its scores
are meaningless; the embeddings still tell whether two inputs are the same image).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from torchvision import transforms
from typer.testing import CliRunner

from openpairs.cli import app
from openpairs.executors import ExecutorConfig
from openpairs.models.clip import ClipEncoder
from openpairs.models.watermark import watermark_transform
from openpairs.stages import clip_gpu, clip_io
from openpairs.stages.clip import ClipConfig, preload, run_shard, shard_tasks
from openpairs.stages.runner import run_stage
from tests.fixtures import images
from tests.fixtures.pipeline_output import PipelineOutput
from tests.fixtures.tiny_clip import TINY_MODEL, Sample, write_download_shard

LOCAL = ExecutorConfig(kind="local", workers=1)
JPEGS = (
    "jpeg_baseline",
    "jpeg_progressive",
    "cmyk_jpeg",
    "grayscale_jpeg",
    "exif_rotated_jpeg",
    "large_jpeg",
)
FALLBACKS = ("png_rgba", "webp", "animated_gif", "truncated_jpeg", "garbage")


def _decoders(encoder: ClipEncoder) -> tuple[clip_io.Preprocessors, clip_gpu.TensorPreprocessors]:
    """The PIL path's and the tensor path's preprocessing of the clip stage with a watermark model."""
    size = encoder.model.visual.image_size
    side = int(size[0] if isinstance(size, tuple | list) else size)
    pil = clip_io.Preprocessors(clip=encoder.preprocess, clip_size=side, watermark=watermark_transform())
    tensor = clip_gpu.TensorPreprocessors(
        clip_gpu.tensor_transform(encoder.transform),
        side,
        "cpu",
        watermark=clip_gpu.tensor_transform(watermark_transform()),
    )
    return pil, tensor


def _cosine(encoder: ClipEncoder, a: torch.Tensor, b: torch.Tensor) -> float:
    emb = encoder.encode_images(torch.stack([a, b]))
    return float(emb[0] @ emb[1])


def test_tensor_preprocess_matches_pil_per_image(tiny_config: ClipConfig) -> None:
    encoder = preload(tiny_config).clip
    pil, tensor = _decoders(encoder)
    blobs = [images.fixture_bytes(name) for name in JPEGS]
    decoded = clip_gpu.decode_batch(blobs, tensor)
    assert [d.via for d in decoded] == ["tensor"] * len(JPEGS) and all(d.error is None for d in decoded)
    for name, data, mine in zip(JPEGS, blobs, decoded, strict=True):
        reference = clip_io.decode_one(data, pil)
        assert mine.clip.shape == reference.clip.shape and mine.clip.dtype == torch.float32
        assert float((mine.clip - reference.clip).abs().mean()) < 0.1, name  # same pixels, same orientation
        assert _cosine(encoder, mine.clip, reference.clip) >= 0.99, name
        assert mine.watermark.shape == reference.watermark.shape == (3, 256, 256)
        assert float((mine.watermark - reference.watermark).abs().mean()) < 0.1, name


def test_fallback_is_per_image_with_pil_statuses(tiny_config: ClipConfig) -> None:
    encoder = preload(tiny_config).clip
    pil, tensor = _decoders(encoder)
    bomb = images.bomb_jpeg(20000, 20000)  # torchvision would decode it; PIL's pixel limit refuses it
    names = ["jpeg_baseline", *FALLBACKS, "bomb", "grayscale_jpeg"]
    blobs = [bomb if n == "bomb" else images.fixture_bytes(n) for n in names]
    decoded = clip_gpu.decode_batch(blobs, tensor)  # the truncated JPEG fails the batched call
    assert [d.via for d in decoded] == ["tensor"] + ["pil_fallback"] * (len(FALLBACKS) + 1) + ["tensor"]
    for name, data, mine in zip(names, blobs, decoded, strict=True):
        reference = clip_io.decode_one(data, pil)
        assert mine.error == reference.error, name  # the same message as the PIL path, or both None
        if reference.error is None:
            assert _cosine(encoder, mine.clip, reference.clip) >= 0.99, name
    errors = {n: d.error for n, d in zip(names, decoded, strict=True) if d.error}
    assert set(errors) == {"truncated_jpeg", "garbage", "bomb"}
    assert errors["bomb"].startswith("DecompressionBombError")


def _shards_with_fallbacks(source: PipelineOutput, out: Path) -> None:
    """Real downloaded shards (copied) plus one shard of images the tensor path hands to PIL."""
    shutil.copytree(source.root / "shards", out / "shards")
    extra = [Sample(f"fallback {n}", image=images.fixture_bytes(n)) for n in FALLBACKS]
    write_download_shard(out, 99, [*extra, Sample("a jpeg"), Sample("   ")])


def test_clip_stage_tensor_path_matches_pil_path(
    built_pipeline: PipelineOutput, tiny_config: ClipConfig, tmp_path: Path
) -> None:
    runs = {"pil": tmp_path / "pil", "tensor": tmp_path / "tensor", "tensor_1thread": tmp_path / "t1"}
    for out in runs.values():
        _shards_with_fallbacks(built_pipeline, out)
    fallbacks = len(FALLBACKS)
    results = {}
    for name, out in runs.items():
        config = dataclasses.replace(
            tiny_config,
            image_decoder=name.split("_")[0],
            batch_size=16,
            decode_threads=1 if "1" in name else 3,
        )
        results[name] = run_stage(run_shard, config, shard_tasks(str(out)), LOCAL)
        assert results[name].ok and all(s.is_balanced() for s in results[name].shards)
    pil, tensor = results["pil"].total, results["tensor"].total
    assert dict(tensor.statuses) == dict(pil.statuses) and pil.statuses["decode_error"] == 2
    assert tensor.counters["tensor_decode_fallback"] == fallbacks and "tensor_decoded" not in pil.counters
    assert tensor.counters["tensor_decoded"] + fallbacks == pil.counters["images_embedded"] + 2
    for shard in sorted(p.name for p in (runs["pil"] / "clip" / "img_emb").glob("*.npy")):
        _compare_shard(runs["pil"] / "clip", runs["tensor"] / "clip", shard)
        for kind in ("img_emb", "text_emb"):  # decode threads never change a byte
            one = (runs["tensor_1thread"] / "clip" / kind / shard).read_bytes()
            assert one == (runs["tensor"] / "clip" / kind / shard).read_bytes()


def _compare_shard(pil: Path, tensor: Path, shard: str) -> None:
    stem = shard.removesuffix(".npy")
    rows_pil, rows_tensor = (pq.read_table(d / f"{stem}.parquet").to_pydict() for d in (pil, tensor))
    assert rows_tensor["key"] == rows_pil["key"] and rows_tensor["status"] == rows_pil["status"]
    text = [np.load(d / "text_emb" / shard) for d in (pil, tensor)]
    assert text[0].tobytes() == text[1].tobytes()  # the text tower does not depend on the image decoder
    a, b = (np.load(d / "img_emb" / shard).astype(np.float32) for d in (pil, tensor))
    has_image = np.linalg.norm(a, axis=1) > 0
    assert np.array_equal(has_image, np.linalg.norm(b, axis=1) > 0)
    cosine = np.sum(a * b, axis=1)[has_image]
    assert cosine.size == 0 or float(cosine.min()) >= 0.99


def test_auto_keeps_the_pil_path_on_cpu(tiny_config: ClipConfig, tmp_path: Path) -> None:
    write_download_shard(tmp_path, 0, [Sample("a"), Sample("b", image=images.fixture_bytes("png_rgb"))])
    assert tiny_config.image_decoder == "auto" and tiny_config.device == "cpu"
    stats = run_shard(tiny_config, shard_tasks(str(tmp_path))[0])
    assert stats.statuses["ok"] == 2 and not {"tensor_decoded", "tensor_decode_fallback"} & set(
        stats.counters
    )
    with pytest.raises(ValueError, match="image_decoder must be one of auto, tensor, pil"):
        ClipConfig(image_decoder="nvjpeg")
    with pytest.raises(clip_gpu.TensorPreprocessError, match="cannot replay"):
        clip_gpu.tensor_transform(
            transforms.Compose([transforms.RandomResizedCrop(32), transforms.ToTensor()])
        )


def test_cpu_products_do_not_depend_on_the_thread_count() -> None:
    """fp32 products of the MLP output projection's shape (2048 -> 512) under 1 and 2 torch threads: 50 rows
    is one ViT-B-32 image (a last batch of one), 128 rows eight trimmed captions (they differed before)."""
    script = (
        "import openpairs.models.clip, torch\n"
        "g = lambda s: torch.Generator().manual_seed(s)\n"
        "same = []\n"
        "for m in (50, 128, 200):\n"
        "    a, w = torch.randn(m, 2048, generator=g(0)), torch.randn(512, 2048, generator=g(1))\n"
        "    out = [torch.set_num_threads(t) or torch.nn.functional.linear(a, w) for t in (1, 2)]\n"
        "    same.append(torch.equal(*out))\n"
        "print(same)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "[True, True, True]", done.stderr[-2000:]


def test_cli_image_decoder_option(tmp_path: Path, tiny_ckpt: str) -> None:
    write_download_shard(tmp_path, 0, [Sample("a cat"), Sample("a png", image=images.fixture_bytes("webp"))])
    args = ["clip", str(tmp_path), "--clip-model", TINY_MODEL, "--clip-checkpoint", tiny_ckpt]
    done = CliRunner().invoke(
        app, [*args, "--clip-pretrained", "none", "--device", "cpu", "--image-decoder", "tensor"]
    )
    assert done.exit_code == 0, done.output
    assert json.loads((tmp_path / "config.json").read_text())["clip"]["image_decoder"] == "tensor"
    counters = json.loads((tmp_path / "clip" / "00000_stats.json").read_text())["counters"]
    assert counters["tensor_decoded"] == 1 and counters["tensor_decode_fallback"] == 1
    bad = CliRunner().invoke(app, [*args, "--image-decoder", "nvjpeg"])
    assert bad.exit_code == 2 and "image_decoder must be one of auto, tensor, pil" in " ".join(
        bad.output.split()
    )
