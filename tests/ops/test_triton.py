"""The Triton kernels against the float64 reference: on CUDA where there is a GPU, else on CPU tensors under
Triton's interpreter.

The interpreter must be switched on (``TRITON_INTERPRET=1``) before Triton is first imported, which other tests
or libraries may already have done in this process; without a GPU the tests below therefore run in a fresh
Python process started by :func:`test_kernels_under_the_interpreter_in_a_fresh_process`.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import ugmm_ops_cases as cases  # the shared helpers, registered by tests/conftest.py

pytest.importorskip("triton")

from ugmm_vision.ops import fused_ugmm_log_prob

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
RUN_HERE = torch.cuda.is_available() or INTERPRET
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
here = pytest.mark.skipif(not RUN_HERE, reason="runs in a fresh process with TRITON_INTERPRET=1 (see below)")


RTOL = {torch.float32: 1e-5, torch.float64: 1e-10}


@pytest.mark.skipif(RUN_HERE, reason="the kernels run in this process")
def test_kernels_under_the_interpreter_in_a_fresh_process():
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    command = [sys.executable, "-m", "pytest", __file__, "-q", "-p", "no:cacheprovider"]
    root = Path(__file__).parents[2]
    proc = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    summary = proc.stdout.strip().splitlines()[-1]  # e.g. "41 passed, 1 skipped in 9.10s"
    assert re.search(r"\b4[0-9] passed, 1 skipped\b", summary), summary


def triton_log_prob(x, mu, log_sigma, mix_logits, mask=None):
    return fused_ugmm_log_prob(x, mu, log_sigma, mix_logits, mask, impl="triton")


def _on_device(args, mask):
    return [a.to(DEVICE) for a in args], None if mask is None else mask.to(DEVICE)


@here
def test_interpreter_mode_is_what_runs_without_a_gpu():
    from ugmm_vision.ops import triton_kernels

    kind = type(triton_kernels._forward_kernel).__name__
    assert kind == ("InterpretedFunction" if INTERPRET else "JITFunction")


@here
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


@here
def test_gradcheck_float64():
    args, mask = cases.make_args(2, 5, 3, tied=True, use_mask=True, dropout=True, dtype=torch.float64)
    args, mask = _on_device(args, mask)
    leaves = [a.clone().requires_grad_() for a in args]
    assert torch.autograd.gradcheck(lambda *a: triton_log_prob(*a, mask), leaves)


@here
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


@here
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


@here
def test_missing_inputs_fully_masked_rows_and_nan_holes():
    args, _ = cases.make_args(3, 20, 4, dropout=True, dtype=torch.float64)
    mask = torch.rand(3, 20, generator=torch.Generator().manual_seed(3)) < 0.4
    mask[1] = True  # every input missing: log Σ π = 0
    holes = [args[0].masked_fill(mask, float("nan")), *args[1:]]  # missing values never enter the arithmetic
    expected = cases.reference_float64(args, mask, torch.ones(3, 4, dtype=torch.float64))
    actual = cases.output_and_grads(triton_log_prob, *_on_device(holes, mask), torch.ones(3, 4, device=DEVICE))
    torch.testing.assert_close(actual[0][1].cpu(), torch.zeros(4, dtype=torch.float64), rtol=0, atol=1e-12)
    for got, want in zip(actual, expected, strict=True):
        cases.assert_close_scaled(got, want, RTOL[torch.float64])


@here
def test_triton_kernel_set_runs_as_a_triton_op():
    from ugmm_vision.ops import triton_ops

    assert triton_ops.TRITON_OPS_AVAILABLE
    args, mask = cases.make_args(4, 9, 3, use_mask=True, dtype=torch.float64)
    x, mu, log_sigma, mix_logits = _on_device(args, mask)[0]
    mask = mask.to(DEVICE)
    log_pi = torch.log_softmax(mix_logits, dim=-1)
    direct = torch.ops.ugmm_vision.triton_log_prob(x, mu, log_sigma, log_pi, mask)
    torch.testing.assert_close(triton_log_prob(x, mu, log_sigma, mix_logits, mask), direct)
    leaves = [t.requires_grad_() for t in (x, mu, log_sigma, log_pi)]
    # The fake implementation of a triton_op is traced from its body, which needs CUDA tensors: on CPU tensors
    # under the interpreter only the schema and the autograd registration are checked (the GPU check runs all).
    utils = None if torch.cuda.is_available() else ("test_schema", "test_autograd_registration")
    torch.library.opcheck(torch.ops.ugmm_vision.triton_log_prob.default, (*leaves, mask), test_utils=utils)


def _load_nan_cases():
    spec = importlib.util.spec_from_file_location("ugmm_nan_cases", Path(__file__).with_name("test_nan.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@here
@pytest.mark.parametrize("case", ["nan-x", "one-input-dropped", "only-kept-component-nan", "inf-mix-logits-row"])
def test_non_finite_values_match_the_reference(case):
    nan_cases = _load_nan_cases()
    shape, edit = nan_cases.CASES[case]
    args = nan_cases._args(*shape, torch.float64)
    edit(args)
    expected = nan_cases._output_and_grads(nan_cases.ugmm_log_prob_reference, args)
    actual = nan_cases._output_and_grads(triton_log_prob, [a.to(DEVICE) for a in args])
    for got, want in zip(actual, expected, strict=True):
        torch.testing.assert_close(got.cpu(), want, rtol=1e-10, atol=1e-10, equal_nan=True)
