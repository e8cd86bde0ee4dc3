"""CLIP loading: the tiny RANDOM-weight model from a checkpoint file, and every way loading can go wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from openpairs.executors import ExecutorConfig
from openpairs.executors.local import LocalExecutor
from openpairs.models.clip import ClipModelError, ClipModelSpec, load_clip
from openpairs.stages.clip import ClipConfig, preload
from tests.fixtures.images import photo
from tests.fixtures.tiny_clip import TINY_MODEL


def test_tiny_checkpoint_encodes_unit_vectors(tiny_ckpt: str) -> None:
    encoder = load_clip(ClipModelSpec(TINY_MODEL, pretrained=None, checkpoint=tiny_ckpt, device="cpu"))
    batch = torch.stack([encoder.preprocess(photo(80, 60, seed=s)) for s in range(3)])
    images = encoder.encode_images(batch)
    texts = encoder.encode_text(["a red car", "ein Hund", "x" * 2000])  # long captions are truncated
    assert images.shape == (3, encoder.dim) and texts.shape == (3, encoder.dim) and encoder.dim == 64
    assert images.dtype == np.float32 and texts.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    assert encoder.encode_text([]).shape == (0, 64)


def test_checkpoint_weights_are_really_loaded(tiny_ckpt: str, tmp_path: Path) -> None:
    """Two different checkpoint files give different embeddings: the file's weights are used."""
    from openpairs.models.tiny import make_random_checkpoint

    with pytest.warns(UserWarning, match="RANDOM"):
        other = make_random_checkpoint(tmp_path / "other.pt", seed=1)
    text = ["a photo of a cat"]
    a = load_clip(ClipModelSpec(TINY_MODEL, pretrained=None, checkpoint=tiny_ckpt)).encode_text(text)
    b = load_clip(ClipModelSpec(TINY_MODEL, pretrained=None, checkpoint=other)).encode_text(text)
    again = load_clip(ClipModelSpec(TINY_MODEL, pretrained=None, checkpoint=tiny_ckpt)).encode_text(text)
    assert not np.allclose(a, b) and np.allclose(a, again)


def test_int8_agrees_with_fp32(tiny_ckpt: str) -> None:
    fp32 = load_clip(ClipModelSpec(TINY_MODEL, pretrained=None, checkpoint=tiny_ckpt, device="cpu"))
    int8 = load_clip(
        ClipModelSpec(TINY_MODEL, pretrained=None, checkpoint=tiny_ckpt, device="cpu", cpu_int8=True)
    )
    batch = torch.stack(
        [fp32.preprocess(Image.new("RGB", (50, 40), (200, 30, 30))), fp32.preprocess(photo(64, 64))]
    )
    cosine = np.sum(fp32.encode_images(batch) * int8.encode_images(batch), axis=1)
    assert np.all(cosine > 0.9), cosine
    text = ["a photo of a dog", "ein Hund"]
    assert np.all(np.sum(fp32.encode_text(text) * int8.encode_text(text), axis=1) > 0.9)
    assert any(
        "Quantized" in type(m).__name__ or "quantized" in type(m).__module__ for m in int8.model.modules()
    )


def test_unknown_model_name_is_a_clear_error() -> None:
    with pytest.raises(ClipModelError, match="does not know the CLIP model 'ViT-Q-99'"):
        load_clip(ClipModelSpec("ViT-Q-99"))


def test_unknown_pretrained_tag_is_a_clear_error() -> None:
    with pytest.raises(ClipModelError, match=r"not a pretrained tag of 'ViT-B-32'.*openai"):
        load_clip(ClipModelSpec("ViT-B-32", pretrained="no-such-tag"))


def test_wrong_architecture_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "resnet-ish.pt"
    torch.save(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Linear(8, 2)).state_dict(), path)
    with pytest.raises(
        ClipModelError, match="does not match the architecture of CLIP model 'openpairs-tiny-random'"
    ):
        load_clip(ClipModelSpec(TINY_MODEL, pretrained=None, checkpoint=str(path)))
    with pytest.raises(ClipModelError, match="does not exist"):
        load_clip(ClipModelSpec(TINY_MODEL, pretrained=None, checkpoint=str(tmp_path / "absent.pt")))


def test_no_weights_never_means_random_weights() -> None:
    with pytest.raises(ClipModelError, match="random weights are never used"):
        load_clip(ClipModelSpec(TINY_MODEL, pretrained=None))


def test_missing_weights_offline_says_what_to_download(tmp_path: Path) -> None:
    """No network, empty cache: the CLI names the file and where it goes (run offline in a subprocess)."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "XDG_CACHE_HOME": str(tmp_path),
    }
    (tmp_path / "out" / "shards").mkdir(parents=True)
    code = "from openpairs.cli import main; main()"
    done = subprocess.run(
        [sys.executable, "-c", code, "clip", str(tmp_path / "out")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    message = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 2, message
    assert "timm/vit_base_patch32_clip_224.openai" in message and "open_clip_pytorch_model.bin" in message
    assert "--clip-checkpoint" in message and str(tmp_path / "hf") in message


def test_trimmed_text_encoding_equals_open_clip(tiny_ckpt: str) -> None:
    """Cutting the padding after the last end-of-text token gives open_clip's own text embedding."""
    from openpairs.models.clip import encode_text_trimmed

    encoder = load_clip(ClipModelSpec(TINY_MODEL, pretrained=None, checkpoint=tiny_ckpt, device="cpu"))
    tokens = encoder._tokenizer(["a dog", "a much longer caption about a red car parked in the rain", ""])
    with torch.inference_mode():
        full = encoder.model.encode_text(tokens)
        trimmed = encode_text_trimmed(encoder.model, tokens)
    assert int(tokens.argmax(dim=-1).max()) + 1 < tokens.shape[1]  # there was padding to cut
    torch.testing.assert_close(trimmed, full, atol=1e-5, rtol=1e-4)


def _torch_threads_after_loading(config: ClipConfig, _item: int) -> int:
    torch.set_num_threads(7)  # whatever torch started with
    preload(config)
    return torch.get_num_threads()


def test_a_local_worker_runs_clip_on_its_share_of_the_cores(tiny_ckpt: str) -> None:
    """~10 s: with --threads 0, each of 2 local workers loads CLIP with cores // 2 torch threads (on Ray, an
    actor's CPUs, through the same executors.task_threads), not every core each."""
    config = ClipConfig(model=TINY_MODEL, pretrained=None, checkpoint=tiny_ckpt, device="cpu", threads=0)
    pool = LocalExecutor(ExecutorConfig(kind="local", workers=2))
    try:
        seen = [count for _, count in pool.imap(partial(_torch_threads_after_loading, config), [0, 1])]
    finally:
        pool.close()
    assert seen == [max(1, (os.cpu_count() or 1) // 2)] * 2
