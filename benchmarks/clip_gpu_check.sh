#!/usr/bin/env bash
# The clip stage's GPU path on one GPU, in under 5 minutes: needs only this repository and its venv.
# Prints one table per decode path (tensor = nvJPEG + on-device preprocessing; pil = the CPU path) with
# decode / preprocess / model / text / end-to-end samples/s for ViT-B-32 and ViT-L-14 (RANDOM weights)
# beside clip-retrieval's published figures and our target (>= 2,500/s B/32 on one A100-class GPU).
#
#   benchmarks/clip_gpu_check.sh            # PYTHON=/path/to/venv/bin/python, DEVICE=cuda:1 to override
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
DEVICE="${DEVICE:-cuda}"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
"$PYTHON" -c "import torch, sys; torch.cuda.is_available() or sys.exit('no CUDA device visible to torch')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
timeout 280 "$PYTHON" benchmarks/clip.py --device "$DEVICE" --decoder tensor --images 4096
timeout 100 "$PYTHON" benchmarks/clip.py --device "$DEVICE" --decoder pil --images 2048 --models ViT-B-32
