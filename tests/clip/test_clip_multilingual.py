"""laion5b text encoder: non-English captions through a sentence-transformers model from a local directory.

The real model (clip-ViT-B-32-multilingual-v1: DistilBERT, mean pooling, Dense 768->512) cannot be downloaded
here, so a tiny model of the same shape (BERT, mean pooling, Dense to the CLIP dim) with RANDOM weights is
built and saved locally, then loaded by path exactly as a user's saved model would be.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from openpairs.executors import ExecutorConfig
from openpairs.models.multilingual import MultilingualModelError, load_multilingual
from openpairs.stages.clip import ClipConfig, preload, run_shard, shard_tasks
from openpairs.stages.runner import run_stage
from tests.fixtures.tiny_clip import Sample, write_download_shard

WORDS = ["ein", "hund", "im", "park", "le", "chat", "noir", "a", "dog"]


def _tiny_sentence_model(directory: Path, out_dim: int) -> str:
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules as models
    from transformers import BertConfig, BertModel, BertTokenizer

    bert = directory / "bert"
    bert.mkdir(parents=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    (bert / "vocab.txt").write_text("\n".join(vocab) + "\n")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
    )
    BertModel(config).save_pretrained(bert)
    BertTokenizer(str(bert / "vocab.txt")).save_pretrained(bert)
    transformer = models.Transformer(str(bert), max_seq_length=32)
    dense = models.Dense(16, out_dim, activation_function=torch.nn.Identity())
    model = SentenceTransformer(modules=[transformer, models.Pooling(16), dense], device="cpu")
    model.save(str(directory / "st"))
    return str(directory / "st")


def test_non_english_captions_use_the_multilingual_encoder(tmp_path: Path, tiny_config: ClipConfig) -> None:
    path = _tiny_sentence_model(tmp_path / "model", out_dim=64)
    captions = [("a dog", "en"), ("ein hund im park", "de"), ("le chat noir", "fr"), ("a dog", "")]
    write_download_shard(tmp_path, 0, [Sample(text, language=lang) for text, lang in captions])
    config = dataclasses.replace(tiny_config, text_encoder="multilingual", multilingual_model=path)
    assert run_stage(
        run_shard, config, shard_tasks(str(tmp_path)), ExecutorConfig(kind="local", workers=1)
    ).ok
    txt = np.load(tmp_path / "clip" / "text_emb" / "00000.npy").astype(np.float32)
    models = preload(config)
    assert models.multilingual is not None
    clip_en = models.clip.encode_text(["a dog"])[0]
    multi = models.multilingual.encode_text(["ein hund im park", "le chat noir", "a dog"])
    assert float(txt[0] @ clip_en) > 0.999  # English: CLIP's own text tower
    assert float(txt[1] @ multi[0]) > 0.999 and float(txt[2] @ multi[1]) > 0.999
    assert float(txt[3] @ multi[2]) > 0.999  # no language counts as non-English (LAION-5B's third group)
    np.testing.assert_allclose(np.linalg.norm(txt, axis=1), 1.0, atol=2e-3)


def test_multilingual_errors_are_clear(tmp_path: Path, tiny_config: ClipConfig) -> None:
    with pytest.raises(MultilingualModelError, match="cannot load multilingual text encoder"):
        load_multilingual(str(tmp_path / "absent-dir"))
    path = _tiny_sentence_model(tmp_path / "model", out_dim=32)  # not the tiny CLIP's 64 dims
    config = dataclasses.replace(tiny_config, text_encoder="multilingual", multilingual_model=path)
    with pytest.raises(MultilingualModelError, match="32-d vectors but CLIP"):
        preload(config)
