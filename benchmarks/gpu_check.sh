#!/usr/bin/env bash
# On a CUDA machine, in one go and within 10 minutes:
#   1. correctness on the GPU: tests/ops — every fused implementation on CUDA (Triton compiled for the device, the
#      chunked PyTorch kernels) against the float64 reference, NaN propagation, the custom ops' full opcheck
#      (the triton_op's fake tensor and AOT checks need CUDA), and the heads compiled with the Triton kernels;
#   2. the layer benchmark on the GPU (benchmarks/ugmm_layer.py, without its own ResNet run);
#   3. a ResNet-50 training step at batch 256, 224×224, bf16 autocast, channels-last, with a 2048→1000 uGMM head
#      against a linear head, eager and compiled, and the head's share of the step (benchmarks/head_step.py).
#
#   bash benchmarks/gpu_check.sh            # uses `python` (override with PYTHON=/path/to/python)
#
# Exit status: non-zero if a test fails or a step runs past its budget.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"

"$PY" - <<'PYEOF'
import torch, triton
assert torch.cuda.is_available(), "no CUDA device visible"
print(f"torch {torch.__version__}, triton {triton.__version__}, {torch.cuda.get_device_name()}")
PYEOF

echo "== 1. correctness: tests/ops and the compiled heads on CUDA (budget 2.5 min) =="
timeout 150 "$PY" -m pytest tests/ops -q -p no:cacheprovider -x
timeout 60 "$PY" - <<'PYEOF'
# A uGMM head compiled with fullgraph=True on the GPU: the Triton kernels appear in Inductor's graph (triton_op),
# and the compiled training step matches eager.
import torch
from torch._inductor.utils import run_and_get_code
from ugmm_vision.heads import UGMMHead

torch.manual_seed(0)
head = UGMMHead(256, 100, hidden=(32,)).cuda()
x = torch.randn(64, 256, device="cuda", requires_grad=True)
compiled = torch.compile(head, fullgraph=True)
out, codes = run_and_get_code(lambda: compiled(x))
assert any("_forward_kernel" in code for code in codes), "the Triton forward kernel is not in the compiled graph"
torch.testing.assert_close(out, head(x), rtol=1e-5, atol=1e-4)
print("compiled uGMM head on CUDA: Triton kernels in Inductor's code, output matches eager")
PYEOF

echo "== 2. benchmark: benchmarks/ugmm_layer.py --device cuda (budget 2.5 min) =="
timeout 150 "$PY" benchmarks/ugmm_layer.py --device cuda --repeats 10 --no-resnet

echo "== 3. ResNet-50 step, batch 256, 224x224: uGMM 2048->1000 vs linear (budget 4 min) =="
timeout 240 "$PY" benchmarks/head_step.py --device cuda --setups c --heads linear "uGMM single" --repeats 10
