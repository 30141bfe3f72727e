#!/usr/bin/env bash
# One command for a machine with a GPU (< 8 min on one modern GPU): the MatAnyone fixture on CUDA
# (fp32 exact, bf16/fp16 error), RVM vs onnxruntime-gpu (when installed), MatAnyone 1080p and RVM
# HD/4K frames/s with peak device memory, VideoMaMa (random weights) 1024x576 chunk time and
# memory; one table at the end. Without a GPU, or with --dry-run, it runs the same code paths on
# the CPU at toy sizes (seconds), so the script itself stays tested.
#     benchmarks/gpu_check.sh            # on the GPU
#     benchmarks/gpu_check.sh --dry-run  # CPU, toy sizes
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
py="${PYTHON:-$root/.venv/bin/python}"
[ -x "$py" ] || py=python3
exec "$py" "$here/gpu_check.py" "$@"
