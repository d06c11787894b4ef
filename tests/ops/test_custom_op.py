"""The ``ugmm_vision::fused_log_prob`` custom op: ``torch.library.opcheck`` for every kernel set, and vmap."""

from __future__ import annotations

import pytest
import torch
from torch.library import opcheck

from ugmm_vision.functional import ugmm_log_prob_reference
from ugmm_vision.ops import cpu, fused_ugmm_log_prob

# Kernel sets that run on this machine's CPU. Triton's are opchecked under its interpreter in test_triton.py.
IMPLS = ["cpp", "chunked"]


@pytest.fixture(params=IMPLS)
def impl(request):
    if request.param == "cpp" and cpu.load_cpu_library() is None:
        pytest.skip(f"C++ kernel unavailable: {cpu.cpu_library_error()}")
    return request.param


def op_args(dtype, tied, use_mask, seed=0):
    g = torch.Generator().manual_seed(seed)
    batch, n_in, n_out = 3, 7, 4
    x = torch.randn(batch, n_in, generator=g, dtype=dtype)
    mu = torch.randn((n_in,) if tied else (n_out, n_in), generator=g, dtype=dtype)
    log_sigma = torch.randn(n_out, n_in, generator=g, dtype=dtype) * 0.3
    log_pi = torch.log_softmax(torch.randn(n_out, n_in, generator=g, dtype=dtype), dim=-1)
    mask = torch.rand(batch, n_in, generator=g) < 0.3 if use_mask else None
    return x, mu, log_sigma, log_pi, mask


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(
    ("tied", "use_mask"), [(False, False), (True, False), (False, True)], ids=["plain", "tied", "mask"]
)
def test_opcheck_forward_and_backward_ops(impl, dtype, tied, use_mask):
    x, mu, log_sigma, log_pi, mask = op_args(dtype, tied, use_mask)
    leaves = [t.requires_grad_() for t in (x, mu, log_sigma, log_pi)]
    opcheck(torch.ops.ugmm_vision.fused_log_prob.default, (*leaves, mask, impl))  # schema, fake, autograd, AOT
    y = torch.ops.ugmm_vision.fused_log_prob(*leaves, mask, impl).detach()
    grad_y = torch.randn_like(y)
    plain = [t.detach() for t in leaves]
    opcheck(torch.ops.ugmm_vision.fused_log_prob_backward.default, (*plain, mask, y, grad_y, impl))


def _vmapped(fn, x, mu, log_sigma, mix_logits, in_dims):
    return torch.func.vmap(lambda *a: fn(*a), in_dims=in_dims)(x, mu, log_sigma, mix_logits)


@pytest.mark.parametrize("batched", ["x", "x-and-mu"])
def test_vmap_matches_the_reference_with_gradients(impl, batched):
    g = torch.Generator().manual_seed(1)
    n, batch, n_in, n_out = 5, 3, 9, 4
    x = torch.randn(n, batch, n_in, generator=g, dtype=torch.float64)
    mu = torch.randn(*((n,) if batched == "x-and-mu" else ()), n_out, n_in, generator=g, dtype=torch.float64)
    log_sigma = torch.randn(n_out, n_in, generator=g, dtype=torch.float64) * 0.3
    mix_logits = torch.randn(n_out, n_in, generator=g, dtype=torch.float64)
    in_dims = (0, 0 if batched == "x-and-mu" else None, None, None)
    results = []
    for fn in (lambda *a: fused_ugmm_log_prob(*a, impl=impl), ugmm_log_prob_reference):
        leaves = [t.clone().requires_grad_() for t in (x, mu, log_sigma, mix_logits)]
        y = _vmapped(fn, *leaves, in_dims)
        y.square().sum().backward()  # ordinary autograd through the vmapped call
        results.append([y.detach(), *(t.grad for t in leaves)])
    assert results[0][0].shape == (n, batch, n_out)
    for got, want in zip(*results, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_vmap_over_x_is_one_kernel_call(monkeypatch):
    from ugmm_vision.ops import registry

    calls = []
    real = registry.kernel_set

    def counting(impl, device):
        calls.append(impl)
        return real(impl, device)

    monkeypatch.setattr("ugmm_vision.ops.autograd.kernel_set", counting)
    x, mu, log_sigma, log_pi, _ = op_args(torch.float32, False, False)
    torch.func.vmap(lambda xx: fused_ugmm_log_prob(xx, mu, log_sigma, log_pi, impl="chunked"))(x.expand(6, 3, 7))
    assert calls == ["chunked"]


def test_func_grad_is_not_supported_and_says_so():
    x, mu, log_sigma, log_pi, _ = op_args(torch.float64, False, False)
    with pytest.raises(RuntimeError, match="functorch transforms"):
        torch.func.grad(lambda m: fused_ugmm_log_prob(x, m, log_sigma, log_pi).sum())(mu)
