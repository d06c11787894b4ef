"""The Triton kernels against the float64 reference: on CUDA where there is a GPU, else on CPU tensors under
Triton's interpreter (``TRITON_INTERPRET=1``, set only while this module loads the kernels and runs its tests)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
import torch

pytest.importorskip("triton")

from ugmm_vision.ops import fused_ugmm_log_prob  # noqa: E402

_KERNELS_FILE = Path(__file__).parents[2] / "ugmm_vision" / "ops" / "triton_kernels.py"
INTERPRET = not torch.cuda.is_available()
DEVICE = "cpu" if INTERPRET else "cuda"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load_triton_kernels():
    """The kernel module, or without a GPU a private copy whose kernels were decorated in interpreter mode."""
    if not INTERPRET:
        from ugmm_vision.ops import triton_kernels

        return triton_kernels
    previous = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"  # read by @triton.jit when the module is executed
    try:
        return _load("ugmm_vision.ops._triton_kernels_interpreted", _KERNELS_FILE)
    finally:
        if previous is None:
            del os.environ["TRITON_INTERPRET"]
        else:
            os.environ["TRITON_INTERPRET"] = previous


cases = _load("ugmm_ops_cases", Path(__file__).with_name("ugmm_ops_cases.py"))
triton_kernels = _load_triton_kernels()
RTOL = {torch.float32: 1e-5, torch.float64: 1e-10}


@pytest.fixture(autouse=True)
def _interpreter(monkeypatch):
    if INTERPRET:  # Triton also consults the variable at launch (e.g. when it first imports gluon)
        monkeypatch.setenv("TRITON_INTERPRET", "1")


def triton_log_prob(x, mu, log_sigma, mix_logits, mask=None):
    return fused_ugmm_log_prob(x, mu, log_sigma, mix_logits, mask, impl=triton_kernels.TritonKernels)


def _on_device(args, mask):
    return [a.to(DEVICE) for a in args], None if mask is None else mask.to(DEVICE)


def test_interpreter_mode_is_what_runs_without_a_gpu():
    kind = type(triton_kernels._forward_kernel).__name__
    assert kind == ("InterpretedFunction" if INTERPRET else "JITFunction")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(("tied", "use_mask", "dropout"), cases.FEATURES, ids=cases.FEATURE_IDS)
@pytest.mark.parametrize(("batch", "n_in", "n_out"), [(1, 1, 1), (5, 37, 3), (17, 33, 20)])
def test_output_and_every_gradient_match_reference(dtype, tied, use_mask, dropout, batch, n_in, n_out):
    args, mask = cases.make_args(batch, n_in, n_out, tied=tied, use_mask=use_mask, dropout=dropout, dtype=dtype)
    grad_y = torch.randn(batch, n_out, generator=torch.Generator().manual_seed(1), dtype=dtype)
    expected = cases.reference_float64(args, mask, grad_y)
    actual = cases.output_and_grads(triton_log_prob, *_on_device(args, mask), grad_y.to(DEVICE))
    for got, want in zip(actual, expected, strict=True):
        assert got.dtype == dtype and got.shape == want.shape
        assert torch.isfinite(got).all()
        cases.assert_close_scaled(got, want, RTOL[dtype])


def test_gradcheck_float64():
    args, mask = cases.make_args(2, 5, 3, tied=True, use_mask=True, dropout=True, dtype=torch.float64)
    args, mask = _on_device(args, mask)
    leaves = [a.clone().requires_grad_() for a in args]
    assert torch.autograd.gradcheck(lambda *a: triton_log_prob(*a, mask), leaves)


@pytest.mark.parametrize("half", [torch.bfloat16, torch.float16], ids=["bf16", "f16"])
def test_half_precision_inputs_accumulate_in_float32(half):
    args, mask = cases.make_args(6, 40, 5, use_mask=True)
    args = [args[0].to(half), *args[1:]]
    grad_y = torch.randn(6, 5, generator=torch.Generator().manual_seed(2)).to(half)
    expected = cases.output_and_grads(fused_ugmm_log_prob, args, mask, grad_y)  # reference-checked elsewhere
    actual = cases.output_and_grads(triton_log_prob, *_on_device(args, mask), grad_y.to(DEVICE))
    assert actual[0].dtype == half and actual[1].dtype == half
    for got, want in zip(actual, expected, strict=True):
        cases.assert_close_scaled(got, want, 2e-2 if half == torch.bfloat16 else 4e-3)


def test_extreme_inputs_and_tiny_sigma_stay_finite_and_accurate():
    x = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0]])
    mu = torch.tensor([[0.0, 1.0, 2.0], [1e4, -1e4, 0.5]])
    log_sigma = torch.tensor([[-10.0, -10.0, -10.0], [-10.0, 0.0, 5.0]])
    mix_logits = torch.tensor([[0.0, 0.0, 0.0], [1.0, float("-inf"), 0.0]])
    args = [x, mu, log_sigma, mix_logits]
    expected = cases.reference_float64(args, None, torch.ones(2, 2))
    actual = cases.output_and_grads(triton_log_prob, *_on_device(args, None), torch.ones(2, 2, device=DEVICE))
    for got, want in zip(actual, expected, strict=True):
        assert torch.isfinite(got).all()
        cases.assert_close_scaled(got, want, RTOL[torch.float32])
