"""open_clip's own trainer on an openpairs export, run once per session for the open_clip and clip_benchmark tests.

The demo build is copied (the shared `demo_dir` stays as it is), exported by `openpairs export --format
webdataset --split-eval` and handed to `python -m open_clip_train.main` (through open_clip/with_config.py,
which only registers our small model config first) in the client's own venv, with the options a user of an
img2dataset dataset passes: `--dataset-type webdataset`, `--train-data` a brace pattern over the shards, and
no `--train-num-samples` (the export's sizes.json sizes the epoch).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from compat.venvs import ROOT

HERE = ROOT / "compat" / "open_clip"
WRAPPER = HERE / "with_config.py"
MODEL_CONFIG = HERE / "openpairs-tiny-train.json"
MODEL = MODEL_CONFIG.stem
EVAL_FRACTION = "0.2"
BATCH_SIZE = 32
EPOCHS = 60
# "Train Epoch: 3 [ 64/192 (33%)] ... Contrastive_loss: 3.4713 (3.4612) ...": the batch's loss, then the mean
LOSS_LINE = re.compile(r"Train Epoch: (\d+) \[.*?Contrastive_loss: ([0-9.]+) \(")


@dataclass(frozen=True)
class TrainedClip:
    """What one training run left: the export it read, open_clip's log, the final checkpoint, the cost."""

    export: Path
    log: str
    checkpoint: Path
    seconds: float

    def losses(self) -> dict[int, list[float]]:
        """The logged batch losses of each epoch."""
        by_epoch: dict[int, list[float]] = {}
        for epoch, loss in LOSS_LINE.findall(self.log):
            by_epoch.setdefault(int(epoch), []).append(float(loss))
        return by_epoch


def openpairs_cli() -> Path:
    """The `openpairs` console script of the project's venv (the one the demo was built with)."""
    return Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "openpairs"


def export_with_eval_split(demo_dir: Path, work: Path) -> Path:
    """A copy of the demo build exported as webdataset with an eval split; returns the export folder."""
    copy = work / "build"
    shutil.copytree(demo_dir, copy, ignore=shutil.ignore_patterns("dataset", "index", "report"))
    command = [str(openpairs_cli()), "export", str(copy), "--format", "webdataset"]
    subprocess.run([*command, "--samples-per-shard", "32", "--split-eval", EVAL_FRACTION], check=True)
    return copy / "dataset" / "webdataset"


def brace_pattern(folder: Path) -> str:
    """`folder/{first..last}.tar` over the shards its sizes.json lists, as a user would write it."""
    stems = sorted(name.removesuffix(".tar") for name in json.loads((folder / "sizes.json").read_text()))
    return str(folder / f"{{{stems[0]}..{stems[-1]}}}.tar")


def train(bin_dir: Path, export: Path, work: Path) -> TrainedClip:
    """Train MODEL on the export's training shards with open_clip_train.main on CPU."""
    logs = work / "logs"
    started = time.monotonic()
    subprocess.run(
        [
            str(bin_dir / "python"), str(WRAPPER), str(MODEL_CONFIG), "open_clip_train.main",
            "--dataset-type", "webdataset", "--train-data", brace_pattern(export),
            "--model", MODEL, "--batch-size", str(BATCH_SIZE), "--epochs", str(EPOCHS),
            "--lr", "2e-3", "--warmup", "20", "--workers", "1", "--device", "cpu", "--seed", "0",
            "--log-every-n-steps", "1", "--save-frequency", "0", "--logs", str(logs), "--name", "openpairs",
        ],
        check=True,
        timeout=2400,
    )  # fmt: skip
    seconds = time.monotonic() - started
    run = logs / "openpairs"
    return TrainedClip(
        export, (run / "out.log").read_text(), run / "checkpoints" / f"epoch_{EPOCHS}.pt", seconds
    )
