"""open_clip's own trainer (open_clip_train.main, open-clip-torch 3.3.0) learns from an openpairs webdataset export."""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Callable
from pathlib import Path
from statistics import mean

from compat.open_clip_run import BATCH_SIZE, EPOCHS, TrainedClip


def test_the_trainer_sizes_the_epoch_by_sizes_json_and_the_loss_falls(trained_clip: TrainedClip) -> None:
    losses = trained_clip.losses()
    assert sorted(losses) == list(range(EPOCHS))
    samples = sum(json.loads((trained_clip.export / "sizes.json").read_text()).values())
    steps_per_epoch = math.ceil(samples / BATCH_SIZE)  # no --train-num-samples: open_clip read sizes.json
    assert all(len(batch_losses) == steps_per_epoch for batch_losses in losses.values())
    first, last = mean(losses[0]), mean(losses[EPOCHS - 1])
    chance = math.log(BATCH_SIZE)  # the contrastive loss of a model that cannot tell the pairs apart
    print(
        f"\nopen_clip_train: {EPOCHS * steps_per_epoch} steps over {samples} samples in "
        f"{trained_clip.seconds:.0f} s; loss first epoch {first:.3f}, last epoch {last:.3f} (chance {chance:.3f})"
    )
    assert abs(first - chance) < 0.3  # an untrained model's epoch mean is within 0.15 of chance
    assert last < chance - 0.5  # learned: the pairs are told apart far beyond that noise


def test_the_trainer_saved_its_final_checkpoint(
    trained_clip: TrainedClip, venv: Callable[[str], Path]
) -> None:
    python = venv("open_clip_train") / "python"
    read = "import sys, torch; c = torch.load(sys.argv[1], weights_only=False); print(c['epoch'], len(c['state_dict']))"
    epoch, tensors = subprocess.run(
        [str(python), "-c", read, str(trained_clip.checkpoint)], check=True, capture_output=True, text=True
    ).stdout.split()
    assert int(epoch) == EPOCHS and int(tensors) > 10
