"""CLIP through open_clip: load once, encode images and captions into L2-normalised float32 vectors.

Weights come only from open_clip's own cache (a pretrained tag) or from a local `checkpoint` file. When
neither is available the error names the file to download and where to put it; nothing ever falls back
to random weights.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

TINY_MODEL = "openpairs-tiny-random"  # 64-d embeddings: the tests' model
# the demo's: 512-d embeddings like ViT-B-32 (so LAION's B/32 heads and TFDS's embeddings config take them)
TINY_MODEL_512 = "openpairs-tiny-random-512"
TINY_MODELS = (TINY_MODEL, TINY_MODEL_512)
# fp32 on CPU: MKL splits small matrix products differently for each thread count, so the same batch gave
# other bytes under another torch thread count (a local worker vs a Ray actor of fewer CPUs). Its strict
# reproducible mode, read at MKL's first call in the process, makes them bit-identical at no measurable cost.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")


class ClipModelError(ValueError):
    """A CLIP model that cannot be built: unknown name, unknown tag, wrong-architecture checkpoint."""


class ClipWeightsMissing(RuntimeError):
    """Pretrained weights are neither cached nor downloadable; the message says what to fetch."""


@dataclass(frozen=True)
class ClipModelSpec:
    """Which CLIP to load and how to run it."""

    model: str = "ViT-B-32"
    pretrained: str | None = "openai"
    checkpoint: str | None = None
    device: str = "auto"
    threads: int = 0
    cpu_int8: bool = False


class ClipEncoder:
    """A loaded CLIP: preprocessing plus image and text encoders returning unit float32 vectors."""

    def __init__(self, model: Any, preprocess: Any, tokenizer: Any, device: str, dim: int, name: str) -> None:
        import torch

        self.model = model
        self._preprocess = preprocess
        self._tokenizer = tokenizer
        self.device = device
        self.dtype = torch.float16 if device.startswith("cuda") else torch.float32
        self.dim = dim
        self.name = name

    @property
    def transform(self) -> Any:
        """open_clip's preprocessing transform (a torchvision Compose over PIL images)."""
        return self._preprocess

    def preprocess(self, image: Any) -> Any:
        """A PIL image -> the model's input tensor (C, H, W)."""
        return self._preprocess(image)

    def encode_images(self, batch: Any) -> np.ndarray:
        """(N, C, H, W) tensor on any device -> (N, dim) float32, L2-normalised (fp16 inference on CUDA)."""
        import torch

        with torch.inference_mode():
            features = self.model.encode_image(to_device(batch, self.device).to(self.dtype))
        return _normalise(features.float().cpu().numpy())

    def encode_text(self, texts: list[str]) -> np.ndarray:
        """Captions -> (N, dim) float32, L2-normalised (truncated to the model's context length)."""
        import torch

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with torch.inference_mode():
            tokens = self._tokenizer(texts).to(self.device)
            features = encode_text_trimmed(self.model, tokens)
        return _normalise(features.float().cpu().numpy())


def to_device(tensor: Any, device: str) -> Any:
    """`tensor` on `device`; a CPU tensor goes to CUDA through pinned memory with a non-blocking copy."""
    if str(tensor.device) == device or tensor.device.type == device:
        return tensor
    if tensor.device.type == "cpu" and device.startswith("cuda"):
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def encode_text_trimmed(model: Any, tokens: Any) -> Any:
    """open_clip CLIP.encode_text on tokens cut after the batch's last end-of-text token.

    The text tower is causal and pools the end-of-text position, so the padding after it never changes the
    result: cutting it is exact and saves most of the text cost (captions are far shorter than 77 tokens).
    Models of another shape use their own encode_text.
    """
    import torch

    trimmable = (
        type(model).__name__ == "CLIP"
        and getattr(model, "text_pool_type", None) == "argmax"
        and getattr(model, "attn_mask", None) is not None
        and hasattr(model, "positional_embedding")
    )
    if not trimmable:
        return model.encode_text(tokens)
    length = int(tokens.argmax(dim=-1).max()) + 1
    tokens = tokens[:, :length]
    try:
        cast_dtype = model.transformer.get_cast_dtype()
    except AttributeError:  # dynamically quantized Linear layers expose weight() as a method
        cast_dtype = torch.float32
    x = model.token_embedding(tokens).to(cast_dtype) + model.positional_embedding[:length].to(cast_dtype)
    x = model.transformer(x, attn_mask=model.attn_mask[:length, :length])
    x = model.ln_final(x)
    x = x[range(x.shape[0]), tokens.argmax(dim=-1)]
    projection = model.text_projection
    if projection is None:
        return x
    return projection(x) if isinstance(projection, torch.nn.Module) else x @ projection


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when a GPU is present, else 'cpu'."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def load_clip(spec: ClipModelSpec) -> ClipEncoder:
    """Build the CLIP named by `spec` with its weights (cache or checkpoint), ready for inference."""
    import open_clip
    import torch

    if spec.model in TINY_MODELS:
        from openpairs.models.tiny import register_tiny_config

        register_tiny_config(spec.model)
    _check_model_name(spec.model)
    if spec.threads > 0:
        torch.set_num_threads(spec.threads)
    device = resolve_device(spec.device)
    if spec.checkpoint:
        model, preprocess = _from_checkpoint(spec)
    else:
        model, preprocess = _from_tag(spec)
    model.eval()
    if device.startswith("cuda"):
        model = model.to(device).half()
    elif spec.cpu_int8:
        model = quantize_int8(model)
    tokenizer = open_clip.get_tokenizer(spec.model)
    dim = int(model.text_projection.shape[1]) if hasattr(model, "text_projection") else _probe_dim(model)
    return ClipEncoder(model, preprocess, tokenizer, device, dim, spec.model)


def quantize_int8(model: Any) -> Any:
    """Dynamic int8 quantisation of every Linear layer (CPU inference)."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization deprecation notices: still the CPU int8 path
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def _probe_dim(model: Any) -> int:
    import torch

    with torch.inference_mode():
        size = model.visual.image_size
        side = size[0] if isinstance(size, tuple | list) else size
        return int(model.encode_image(torch.zeros(1, 3, side, side)).shape[1])


def _check_model_name(name: str) -> None:
    import open_clip

    if name.startswith(("hf-hub:", "local-dir:")) or name in open_clip.list_models():
        return
    close = [m for m in open_clip.list_models() if name.lower().replace("/", "-") in m.lower()][:8]
    hint = f" Did you mean one of: {', '.join(close)}?" if close else ""
    raise ClipModelError(
        f"open_clip does not know the CLIP model {name!r}.{hint} "
        "See `python -c 'import open_clip; print(open_clip.list_models())'`."
    )


def _from_checkpoint(spec: ClipModelSpec) -> tuple[Any, Any]:
    import open_clip

    path = str(spec.checkpoint)
    if not os.path.isfile(path):
        raise ClipModelError(f"--clip-checkpoint {path} does not exist or is not a file")
    tag_cfg = open_clip.get_pretrained_cfg(spec.model, spec.pretrained) if spec.pretrained else {}
    with _quiet_random_init_warning():  # the weights are loaded right below
        model, _, preprocess = open_clip.create_model_and_transforms(
            spec.model, pretrained=None, force_quick_gelu=bool(tag_cfg.get("quick_gelu", False))
        )
    try:
        open_clip.load_checkpoint(model, path)
    except (RuntimeError, KeyError, ValueError, AssertionError) as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ClipModelError(
            f"checkpoint {path} does not match the architecture of CLIP model {spec.model!r} "
            f"({first}). Pass the --clip-model the checkpoint was trained as."
        ) from exc
    except Exception as exc:
        raise ClipModelError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from exc
    return model, preprocess


@contextmanager
def _quiet_random_init_warning() -> Iterator[None]:
    """Hide open_clip's 'initialized randomly' log line while building a model we load a checkpoint into."""

    def drop(record: logging.LogRecord) -> bool:
        return "No pretrained weights loaded" not in record.getMessage()

    root = logging.getLogger()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


def _from_tag(spec: ClipModelSpec) -> tuple[Any, Any]:
    import open_clip

    if not spec.pretrained:
        raise ClipModelError(
            f"no weights for {spec.model!r}: give --clip-pretrained TAG or --clip-checkpoint FILE "
            "(random weights are never used implicitly)"
        )
    tag_cfg = open_clip.get_pretrained_cfg(spec.model, spec.pretrained)
    if not tag_cfg:
        tags = open_clip.list_pretrained_tags_by_model(spec.model)
        raise ClipModelError(
            f"{spec.pretrained!r} is not a pretrained tag of {spec.model!r}; "
            f"known tags: {', '.join(tags) or 'none'}"
        )
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(spec.model, pretrained=spec.pretrained)
    except (RuntimeError, OSError) as exc:
        raise ClipWeightsMissing(missing_weights_message(spec.model, spec.pretrained, tag_cfg)) from exc
    return model, preprocess


def missing_weights_message(model: str, tag: str, tag_cfg: dict[str, Any]) -> str:
    """What to download, and where to put it, when pretrained weights are not cached and cannot be fetched."""
    from huggingface_hub import constants

    hub = str(tag_cfg.get("hf_hub", "")).rstrip("/")
    lines = [f"CLIP weights for {model} / {tag} are not in open_clip's cache and could not be downloaded."]
    if hub:
        parts = hub.split("/")
        repo = "/".join(parts[:2])
        name = parts[2] if len(parts) > 2 else "open_clip_pytorch_model.bin"
        lines.append(
            f"Either download https://huggingface.co/{repo}/resolve/main/{name} and pass it with "
            f"--clip-checkpoint /path/to/{name} --clip-model {model} --clip-pretrained {tag},"
        )
        lines.append(
            f"or fill the Hugging Face cache open_clip reads ({constants.HF_HUB_CACHE}) on a machine with "
            f"network: `huggingface-cli download {repo} {name}` (HF_HOME/HF_HUB_CACHE move it)."
        )
    elif tag_cfg.get("url"):
        lines.append(
            f"Download {tag_cfg['url']} and pass it with --clip-checkpoint FILE --clip-model {model} "
            f"--clip-pretrained {tag} (open_clip caches URL downloads under ~/.cache/clip)."
        )
    return " ".join(lines)
