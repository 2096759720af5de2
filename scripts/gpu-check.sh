#!/usr/bin/env bash
# One command for the first machine with a GPU: build the GPU stack into .venv
# (scripts/setup.sh --gpu: tensorflow[and-cuda] 2.17.1, Horovod 0.28.1 with
# NCCL, MPI and Gloo), check the build (scripts/check-gpu-build.sh), then run
# scripts/gpu_check.py: the tiny workflow through the dgx profile on this
# machine's GPUs (float32, mixed_float16, XLA), GPU against CPU predictions and
# images/s, peak GPU memory against the planner, NCCL allreduce with 2+ GPUs.
# Writes one JSON of results; exits non-zero on any failure.
#   bash scripts/gpu-check.sh [RESULTS.json]      (default: gpu_check.json)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$(realpath -m "${1:-gpu_check.json}")
if ! nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
  echo "gpu-check: nvidia-smi lists no GPU on this machine" >&2
  exit 2
fi
bash scripts/check-gpu-build.sh "$(pwd)/.venv"   # runs setup.sh --gpu into .venv first
export PATH="$(pwd)/.venv/bin:$PATH"
start=$(date +%s)
python scripts/gpu_check.py --out "$OUT"
echo "gpu check passed in $(( $(date +%s) - start )) s after the build; results in $OUT"
