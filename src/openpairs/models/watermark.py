"""The LAION-5B watermark classifier: timm efficientnet_b3a, head 1536->625->256->2, softmax.

Weights are the user's file (`watermark_model_v1.pt` from LAION-AI/LAION-5B-WatermarkDetection, a state dict
of this exact module); input is 256x256 RGB, ImageNet-normalised; pwatermark is the softmax of class 0.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np

IMAGE_SIZE = 256
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WATERMARK_CLASS = 0


class WatermarkModelError(ValueError):
    """The watermark checkpoint is missing or does not fit the architecture."""


def build_watermark_model() -> Any:
    """The architecture with random weights (no download): efficientnet_b3a + the LAION head."""
    import timm
    from torch import nn

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # timm maps the deprecated name efficientnet_b3a to efficientnet_b3
        model = timm.create_model("efficientnet_b3a", pretrained=False, num_classes=2)
    model.classifier = nn.Sequential(
        nn.Linear(1536, 625), nn.ReLU(), nn.Dropout(p=0.3), nn.Linear(625, 256), nn.ReLU(), nn.Linear(256, 2)
    )
    return model


def watermark_transform() -> Any:
    """PIL image -> (3, 256, 256) ImageNet-normalised tensor."""
    from torchvision import transforms

    return transforms.Compose(
        [
            transforms.Resize((IMAGE_SIZE, IMAGE_SIZE)),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


class WatermarkScorer:
    """Loaded watermark model: `score(batch) -> pwatermark` per image."""

    def __init__(self, model: Any, device: str) -> None:
        self.model = model.eval().to(device)
        self.device = device

    def score(self, batch: Any) -> np.ndarray:
        """(N, 3, 256, 256) tensor -> P(watermark) float32 (N,)."""
        import torch

        with torch.inference_mode():
            logits = self.model(batch.to(self.device))
            probs = torch.softmax(logits.float(), dim=1)[:, WATERMARK_CLASS]
        return probs.cpu().numpy().astype(np.float32)


def load_watermark(checkpoint: str, device: str = "cpu") -> WatermarkScorer:
    """Load the user's watermark checkpoint (a state dict, or a pickled module) into the architecture."""
    import torch

    if not os.path.isfile(checkpoint):
        raise WatermarkModelError(f"--watermark-checkpoint {checkpoint} does not exist or is not a file")
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WatermarkModelError(
            f"cannot read watermark checkpoint {checkpoint} as a state dict: {type(exc).__name__}: {exc}"
        ) from exc
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    model = build_watermark_model()
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0][:300]
        raise WatermarkModelError(
            f"{checkpoint} is not a LAION watermark checkpoint "
            f"(efficientnet_b3a + 1536-625-256-2 head): {first}"
        ) from exc
    return WatermarkScorer(model, device)
