#!/usr/bin/env bash
# On a CUDA machine: the fused-kernel correctness tests on the GPU, then the layer benchmark on the GPU
# (with the ResNet-50 training step), in one go and within 10 minutes.
#
#   bash benchmarks/gpu_check.sh            # uses `python` (override with PYTHON=/path/to/python)
#
# tests/ops runs every fused implementation on CUDA (Triton, and the chunked PyTorch kernels) against the
# float64 reference, next to the CPU ones; tests/ops/test_triton.py runs the Triton kernels compiled for the
# GPU instead of under the interpreter. Exit status: non-zero if a test fails or a step times out.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"

"$PY" - <<'EOF'
import torch, triton
assert torch.cuda.is_available(), "no CUDA device visible"
print(f"torch {torch.__version__}, triton {triton.__version__}, {torch.cuda.get_device_name()}")
EOF

echo "== correctness: tests/ops on CUDA (budget 3.5 min) =="
timeout 210 "$PY" -m pytest tests/ops -q -p no:cacheprovider

echo "== benchmark: benchmarks/ugmm_layer.py --device cuda (budget 6 min) =="
timeout 360 "$PY" benchmarks/ugmm_layer.py --device cuda --repeats 10
