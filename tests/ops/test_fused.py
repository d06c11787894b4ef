"""The fused uGMM kernels (compiled C++, chunked PyTorch, Triton on CUDA) against the float64 reference."""

from __future__ import annotations

import math
import os
import warnings

import pytest
import torch
import ugmm_ops_cases as cases  # the shared helpers, registered by tests/conftest.py

from ugmm_vision.functional import resolve_backend, ugmm_log_prob, ugmm_log_prob_reference
from ugmm_vision.heads import UGMMHead
from ugmm_vision.layers import UGMMLayer
from ugmm_vision.ops import chunked, cpu, fused_ugmm_log_prob, registry

FEATURES, FEATURE_IDS = cases.FEATURES, cases.FEATURE_IDS
assert_close_scaled, make_args = cases.assert_close_scaled, cases.make_args
output_and_grads, reference_float64 = cases.output_and_grads, cases.reference_float64

# (device, kernel set): every fused implementation this machine can run.
IMPLS = [("cpu", "cpp"), ("cpu", "chunked")]
if torch.cuda.is_available():
    IMPLS += [("cuda", "triton"), ("cuda", "chunked")]
IMPL_IDS = [f"{device}-{impl}" for device, impl in IMPLS]
RTOL = {torch.float32: 1e-5, torch.float64: 1e-10}
SMALL_TILE = 200  # chunked tiles of at most 200 terms, so that small cases still cross tile borders
# (B, I, O): B = 1, I and O off every tile size, I across the C++ forward's 512-component blocks.
SHAPES = [(1, 1, 1), (1, 37, 3), (5, 33, 17), (13, 515, 9), (4, 1100, 2)]


@pytest.fixture(params=IMPLS, ids=IMPL_IDS)
def fused(request, monkeypatch):
    """``fused(x, mu, log_sigma, mix_logits, mask)`` on the implementation's device, plus that device."""
    device, impl = request.param
    if impl == "cpp" and cpu.load_cpu_library() is None:
        pytest.skip(f"C++ kernel unavailable: {cpu.cpu_library_error()}")
    if impl == "chunked":
        monkeypatch.setattr(chunked, "TILE_ELEMENTS", SMALL_TILE)

    def run(x, mu, log_sigma, mix_logits, mask=None):
        return fused_ugmm_log_prob(x, mu, log_sigma, mix_logits, mask, impl=impl)

    run.device = device
    return run


def on(device, args, mask):
    return [a.to(device) for a in args], None if mask is None else mask.to(device)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(("tied", "use_mask", "dropout"), FEATURES, ids=FEATURE_IDS)
@pytest.mark.parametrize(("batch", "n_in", "n_out"), SHAPES)
def test_output_and_every_gradient_match_reference(fused, dtype, tied, use_mask, dropout, batch, n_in, n_out):
    args, mask = make_args(batch, n_in, n_out, tied=tied, use_mask=use_mask, dropout=dropout, dtype=dtype)
    grad_y = torch.randn(batch, n_out, generator=torch.Generator().manual_seed(1), dtype=dtype)
    expected = reference_float64(args, mask, grad_y)
    args, mask = on(fused.device, args, mask)
    actual = output_and_grads(fused, args, mask, grad_y.to(fused.device))
    for name, got, want in zip(["y", "x", "mu", "log_sigma", "mix_logits"], actual, expected, strict=True):
        assert got.dtype == dtype and got.shape == want.shape, name
        assert torch.isfinite(got).all(), name
        assert_close_scaled(got, want, RTOL[dtype])


@pytest.mark.parametrize(("tied", "use_mask", "dropout"), FEATURES, ids=FEATURE_IDS)
def test_gradcheck_float64(fused, tied, use_mask, dropout):
    args, mask = make_args(2, 7, 3, tied=tied, use_mask=use_mask, dropout=dropout, dtype=torch.float64)
    args, mask = on(fused.device, args, mask)
    leaves = [a.clone().requires_grad_() for a in args]
    assert torch.autograd.gradcheck(lambda *a: fused(*a, mask), leaves)


@pytest.mark.parametrize("half", [torch.bfloat16, torch.float16], ids=["bf16", "f16"])
@pytest.mark.parametrize("half_params", [False, True], ids=["f32-params", "half-params"])
def test_half_precision_inputs_accumulate_in_float32(fused, half, half_params):
    args, mask = make_args(6, 70, 5, use_mask=True, dropout=True)
    args = [args[0].to(half), *(a.to(half) if half_params else a for a in args[1:])]
    grad_y = torch.randn(6, 5, generator=torch.Generator().manual_seed(2)).to(half)
    expected = output_and_grads(ugmm_log_prob_reference, args, mask, grad_y)  # also computed in float32
    args, mask = on(fused.device, args, mask)
    actual = output_and_grads(fused, args, mask, grad_y.to(fused.device))
    assert actual[0].dtype == half
    for arg, grad in zip(args, actual[1:], strict=True):
        assert grad.dtype == arg.dtype
    for got, want in zip(actual, expected, strict=True):
        assert torch.isfinite(got).all()
        # Both paths compute in float32 and round once to the half dtype: at most a few half-precision ulps.
        assert_close_scaled(got, want, 2e-2 if half == torch.bfloat16 else 4e-3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_extreme_inputs_and_tiny_sigma_stay_finite_and_accurate(fused, dtype):
    x = torch.tensor([[1e4, -1e4, 0.0, 3.0], [-1e4, 1e4, 1e-3, -2.0]], dtype=dtype)
    mu = torch.tensor([[0.0, 1.0, 2.0, 3.0], [1e4, -1e4, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0]], dtype=dtype)
    log_sigma = torch.tensor([[-10.0, -10.0, -10.0, -10.0], [-10.0, 0.0, 5.0, -3.0], [2.0, 2.0, 2.0, 2.0]])
    mix_logits = torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, -1.0, 0.0, float("-inf")], [0.0, 5.0, -5.0, 0.0]])
    args = [x, mu, log_sigma.to(dtype), mix_logits.to(dtype)]
    grad_y = torch.ones(2, 3, dtype=dtype)
    expected = reference_float64(args, None, grad_y)
    args, _ = on(fused.device, args, None)
    actual = output_and_grads(fused, args, None, grad_y.to(fused.device))
    for got, want in zip(actual, expected, strict=True):
        assert torch.isfinite(got).all()
        assert_close_scaled(got, want, RTOL[dtype])


def test_missing_inputs_may_hold_nan(fused):
    # A marginalised input never enters the arithmetic: NaN there changes nothing, and its gradient is 0.
    args, mask = make_args(4, 40, 3, use_mask=True)
    expected = output_and_grads(fused, *on(fused.device, args, mask), torch.ones(4, 3, device=fused.device))
    args[0] = args[0].masked_fill(mask, float("nan"))
    actual = output_and_grads(fused, *on(fused.device, args, mask), torch.ones(4, 3, device=fused.device))
    for got, want in zip(actual, expected, strict=True):
        torch.testing.assert_close(got, want)
    assert (actual[1][mask.to(fused.device)] == 0).all()


def test_fully_masked_row_is_log_one(fused):
    args, _ = make_args(3, 50, 4, dropout=True, dtype=torch.float64)
    mask = torch.zeros(3, 50, dtype=torch.bool)
    mask[1] = True
    args, mask = on(fused.device, args, mask)
    out = fused(*args, mask)
    torch.testing.assert_close(out[1], torch.zeros(4, dtype=torch.float64, device=fused.device))


def _largest_tensor_in_training_step(probe_type, fn, batch, n_in, n_out, device):
    args, _ = make_args(batch, n_in, n_out)
    leaves = [a.to(device).requires_grad_() for a in args]
    with probe_type() as probe:
        fn(*leaves, None).sum().backward()
    return probe.largest


def test_no_batch_by_neuron_by_input_tensor_in_forward_or_backward(fused, monkeypatch, largest_tensor):
    monkeypatch.setattr(chunked, "TILE_ELEMENTS", 1 << 18)  # an eighth of B·O·I below
    batch, n_in, n_out = 32, 1000, 64  # B·O·I = 2 048 000 terms
    reference = _largest_tensor_in_training_step(
        largest_tensor, ugmm_log_prob_reference, batch, n_in, n_out, fused.device
    )
    assert reference >= batch * n_in * n_out  # the probe sees the reference's (B, O, I) tensors
    largest = _largest_tensor_in_training_step(largest_tensor, fused, batch, n_in, n_out, fused.device)
    assert largest <= max(1 << 18, n_out * n_in)  # one chunked tile, or an (O, I) parameter-sized tensor


def test_cpp_results_do_not_depend_on_the_thread_count():
    if cpu.load_cpu_library() is None:
        pytest.skip(f"C++ kernel unavailable: {cpu.cpu_library_error()}")
    args, mask = make_args(33, 300, 21, use_mask=True, dropout=True)
    threads = torch.get_num_threads()
    try:
        runs = []
        for n in (1, 3):
            torch.set_num_threads(n)
            runs.append(output_and_grads(fused_ugmm_log_prob, args, mask, torch.ones(33, 21)))
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*runs, strict=True):
        assert torch.equal(a, b)


def test_backend_resolution_and_validation():
    assert resolve_backend("auto", torch.device("cpu")) == "fused"
    assert resolve_backend("auto", torch.device("meta")) == "reference"
    assert resolve_backend("reference", torch.device("cpu")) == "reference"
    args, _ = make_args(2, 3, 2)
    with pytest.raises(ValueError, match="`backend` to be one of 'auto', 'reference', 'fused', got 'fast'"):
        ugmm_log_prob(*args, backend="fast")


def test_reference_backend_is_used_when_asked():
    # Only the reference supports double backward; the fused Function is differentiable once and says so.
    args, _ = make_args(3, 4, 2, dtype=torch.float64)
    x = args[0].clone().requires_grad_()
    (grad,) = torch.autograd.grad(ugmm_log_prob(x, *args[1:], backend="reference").sum(), x, create_graph=True)
    grad.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    with pytest.raises(RuntimeError, match="differentiable once; use backend='reference'"):
        torch.autograd.grad(ugmm_log_prob(x, *args[1:], backend="fused").sum(), x, create_graph=True)


def test_layer_and_head_pass_the_backend_on():
    torch.manual_seed(0)
    fused_layer = UGMMLayer(20, 7, tied_means=True, backend="fused", dtype=torch.float64)
    reference_layer = UGMMLayer(20, 7, tied_means=True, backend="reference", dtype=torch.float64)
    reference_layer.load_state_dict(fused_layer.state_dict())
    assert "backend='fused'" in repr(fused_layer) and "backend" not in repr(UGMMLayer(3, 2))
    x = torch.randn(5, 20, dtype=torch.float64)
    outs = []
    for layer in (fused_layer, reference_layer):
        out = layer(x)
        out.sum().backward()
        outs.append([out, *(p.grad for p in layer.parameters())])
    for a, b in zip(*outs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    head = UGMMHead(12, 3, hidden=(6,), backend="reference")
    assert [layer.backend for layer in head.layers] == ["reference", "reference"]
    with pytest.raises(ValueError, match="`backend`"):
        UGMMLayer(3, 2, backend="gpu")
    with pytest.raises(ValueError, match="`backend`"):
        UGMMHead(3, 2, backend="gpu")


def test_cpu_fallback_warns_once_and_stays_exact(monkeypatch):
    monkeypatch.setattr(cpu, "_state", {"lib": None, "error": "no C++ compiler found"})
    monkeypatch.setattr(registry, "_warned_fallback", False)
    args, mask = make_args(4, 30, 5, use_mask=True, dtype=torch.float64)
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler found.*chunked PyTorch kernel"):
        out = ugmm_log_prob(*args, mask)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = ugmm_log_prob(*args, mask)
    expected = ugmm_log_prob_reference(*args, mask)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(again, expected, rtol=1e-12, atol=1e-12)


def test_no_compiler_means_no_library_and_a_reason(monkeypatch):
    monkeypatch.setattr(cpu, "_state", {})
    monkeypatch.setattr(cpu, "_find_compiler", lambda: None)
    assert cpu.load_cpu_library() is None
    assert "compiler" in cpu.cpu_library_error()


def test_library_is_built_once_into_the_extensions_dir(monkeypatch, tmp_path):
    compiler = cpu._find_compiler()
    if compiler is None or cpu.load_cpu_library() is None:
        pytest.skip("no working C++ compiler")
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    lib = cpu._build_and_load(compiler)
    (built,) = (tmp_path / "ugmm_vision_cpu").glob("ugmm_cpu_*.so")
    stamp = os.stat(built).st_mtime_ns
    assert cpu._build_and_load(compiler).ugmm_abi_version() == lib.ugmm_abi_version() == cpu._ABI_VERSION
    assert os.stat(built).st_mtime_ns == stamp  # loaded from the cache, not rebuilt


def test_log_density_example_value():
    # One neuron, one input at its mean with σ = 1: log N(0; 0, 1) = −½·log(2π), on every implementation.
    zeros = torch.zeros(1, 1, dtype=torch.float64)
    for impl in ("cpp", "chunked") if cpu.load_cpu_library() is not None else ("chunked",):
        out = fused_ugmm_log_prob(zeros, zeros, zeros, zeros, impl=impl)
        assert out.item() == pytest.approx(-0.5 * math.log(2 * math.pi), abs=1e-14)
