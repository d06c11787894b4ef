"""Non-finite values go through every fused kernel set exactly as through the reference formula.

The reference (:func:`~ugmm_vision.functional.ugmm_log_prob_reference`, i.e. ``torch.logsumexp`` over the
materialised terms) is the oracle: a NaN term makes its output NaN, a row of −inf terms gives −inf. The outputs
and the NaN pattern of every gradient must agree, in float64 and float32.
"""

from __future__ import annotations

import pytest
import torch

from ugmm_vision.functional import ugmm_log_prob, ugmm_log_prob_reference
from ugmm_vision.ops import cpu, fused_ugmm_log_prob

NAN, INF = float("nan"), float("inf")
IMPLS = ["cpp", "chunked"]


def _args(batch, n_in, n_out, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    shapes = [(batch, n_in), (n_out, n_in), (n_out, n_in), (n_out, n_in)]
    return [torch.randn(s, generator=g, dtype=torch.float64).to(dtype) for s in shapes]


def _nan_in(index, position):
    def edit(args):
        args[index][position] = NAN

    return edit


def _keep_only(component, nan_row=None):
    """Every neuron keeps only ``component`` (the others dropped); optionally x[nan_row, component] = NaN."""

    def edit(args):
        keep = torch.zeros_like(args[3], dtype=torch.bool)
        keep[:, component] = True
        args[3] = args[3].masked_fill(~keep, -INF)
        if nan_row is not None:
            args[0][nan_row, component] = NAN

    return edit


def _one_input_dropped(args):
    args[3][1, 0] = -INF  # I = 1 and neuron 1's only logit is −inf: log_softmax gives NaN, never a silent −inf


def _nan_at_dropped(args):
    args[3][:, 2] = -INF  # component 2 dropped in every neuron, the others kept
    args[0][1, 2] = NAN  # the reference gives NaN: −inf − NaN is NaN, and logsumexp propagates it


def _first_block_dropped(args):
    # I = 1100 crosses the C++ forward's 512-component blocks: neuron 0 drops every component of the first block,
    # where row 0 holds a NaN; the later blocks are finite, so only the scan of the skipped block sees the NaN.
    args[3][0, :600] = -INF
    args[0][0, 7] = NAN


def _inf_logits_row(args):
    args[3][1, 3] = INF  # log_softmax of a row holding +inf is NaN: the whole neuron reads NaN


def _huge_features(args):
    args[0][0] = 1e30  # squared z-scores of 1e60: finite in float64, overflow to −inf terms in float32
    args[0][2, :2] = -1e30


CASES = {
    "nan-x": ((3, 5, 4), _nan_in(0, (1, 2))),
    "nan-mu": ((3, 5, 4), _nan_in(1, (2, 0))),
    "nan-log-sigma": ((3, 5, 4), _nan_in(2, (3, 4))),
    "nan-mix-logits": ((3, 5, 4), _nan_in(3, (0, 1))),
    "one-input-nan": ((3, 1, 2), _nan_in(0, (2, 0))),
    "one-input-dropped": ((3, 1, 2), _one_input_dropped),
    "only-kept-component-nan": ((4, 6, 3), _keep_only(component=3, nan_row=2)),
    "nan-at-dropped-component": ((3, 5, 4), _nan_at_dropped),
    "nan-in-skipped-block": ((2, 1100, 3), _first_block_dropped),
    "inf-mix-logits-row": ((3, 5, 4), _inf_logits_row),
    "features-1e30": ((3, 5, 4), _huge_features),
}


def _output_and_grads(fn, args):
    leaves = [a.clone().requires_grad_() for a in args]
    y = fn(*leaves)
    grads = torch.autograd.grad(y, leaves, torch.ones_like(y))
    return [y.detach(), *grads]


@pytest.fixture(params=IMPLS)
def impl(request):
    if request.param == "cpp" and cpu.load_cpu_library() is None:
        pytest.skip(f"C++ kernel unavailable: {cpu.cpu_library_error()}")
    return request.param


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", list(CASES))
def test_non_finite_values_match_the_reference(impl, dtype, case):
    shape, edit = CASES[case]
    args = _args(*shape, dtype)
    edit(args)
    expected = _output_and_grads(ugmm_log_prob_reference, args)
    actual = _output_and_grads(lambda *a: fused_ugmm_log_prob(*a, impl=impl), args)
    names = ["y", "x", "mu", "log_sigma", "mix_logits"]
    if case != "features-1e30":
        assert not torch.isfinite(expected[0]).all(), "the case must reach the output"
    for name, got, want in zip(names, actual, expected, strict=True):
        assert torch.equal(got.isnan(), want.isnan()), f"{name}: NaN pattern differs"
        assert torch.equal(got.isinf() & (got > 0), want.isinf() & (want > 0)), f"{name}: +inf pattern differs"
        assert torch.equal(got.isinf() & (got < 0), want.isinf() & (want < 0)), f"{name}: -inf pattern differs"
        rtol = 1e-10 if dtype == torch.float64 else 1e-5
        torch.testing.assert_close(
            got, want, rtol=rtol, atol=rtol * want.nan_to_num(0, 0, 0).abs().max().item(), equal_nan=True
        )


def test_issue_example_nan_is_nan_through_every_backend():
    z = torch.zeros(1, 1)
    for backend in ("fused", "reference"):
        assert ugmm_log_prob(torch.tensor([[NAN]]), z, z, z, backend=backend).isnan().all(), backend
