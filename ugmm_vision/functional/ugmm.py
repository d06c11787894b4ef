"""The uGMM neuron's log-density (docs/maths.md §1) as plain functions.

Every output neuron ``j`` is a mixture with one univariate Gaussian component per input ``k``::

    y[b, j] = logsumexp_k ( log π[j,k] − log σ[j,k] − ½·log(2π) − (x[b,k] − μ[j,k])² / (2σ[j,k]²) )

This file holds the component terms (:func:`ugmm_component_log_terms`, shared with :mod:`ugmm_vision.inspect`),
the reference (materialising) formula and the mixing-dropout mask; the fused kernels live in ``ugmm_vision.ops``
and are checked against :func:`ugmm_log_prob_reference`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ugmm_vision.constants import HALF_LOG_2PI
from ugmm_vision.functional.backend import UGMMBackend, resolve_backend
from ugmm_vision.ops.dispatch import compute_dtype, fused_ugmm_log_prob

__all__ = [
    "HALF_LOG_2PI",
    "clamp_log_sigma",
    "mixing_dropout",
    "ugmm_component_log_terms",
    "ugmm_log_prob",
    "ugmm_log_prob_reference",
    "validate_ugmm_args",
]

_NARROW_FLOATS = (torch.float16, torch.bfloat16)  # computed in float32, saturated to their range on the way back


def _cast_back(y: Tensor, dtype: torch.dtype) -> Tensor:
    """Cast a float32 result to ``dtype``; for half types saturate at the type's finite range first.

    A log-density of -1e20 is finite in float32 but -inf in float16, and -inf feeds NaN gradients to the next
    layer; saturating keeps it finite (with a zero gradient where it saturates, like any clamp).
    """
    if dtype in _NARROW_FLOATS and y.dtype != dtype:
        info = torch.finfo(dtype)
        y = y.clamp(min=info.min, max=info.max)
    return y.to(dtype)


class _LowerClamp(torch.autograd.Function):
    """``max(x, floor)`` whose gradient below the floor passes only when it points back above the floor."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor, floor: float) -> Tensor:
        return x.clamp(min=floor)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        x, floor = inputs
        ctx.save_for_backward(x < floor)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        (below,) = ctx.saved_tensors
        # Gradient descent moves x by -grad: a negative gradient raises x back towards the floor, so it passes;
        # a positive one would push x further below, where it has no effect on the output, so it is dropped.
        return torch.where(below & (grad > 0), torch.zeros_like(grad), grad), None


def clamp_log_sigma(log_sigma: Tensor, min_log_sigma: float) -> Tensor:
    """``log_sigma`` floored at ``min_log_sigma``: a σ floor that keeps the densities finite.

    The value is ``max(log_sigma, min_log_sigma)``. Unlike ``torch.clamp``, whose gradient is zero below the
    floor (a parameter that falls below it would never move again), the gradient of an entry below the floor
    passes through when it points back above the floor and is dropped when it points further down; above the
    floor it is the identity.

    Args:
        log_sigma: log standard deviations, any shape.
        min_log_sigma: the floor, e.g. ``math.log(1e-4)``.

    Returns:
        The floored log standard deviations, same shape and dtype.

    Example:
        >>> log_sigma = torch.tensor([-20.0, 0.5], requires_grad=True)
        >>> floored = clamp_log_sigma(log_sigma, -10.0)
        >>> floored.tolist()
        [-10.0, 0.5]
        >>> floored.sum().backward()  # a positive gradient would push the first entry further down: dropped
        >>> log_sigma.grad.tolist()
        [0.0, 1.0]
    """
    if not math.isfinite(min_log_sigma):
        raise ValueError(f"Expected `min_log_sigma` to be finite, got {min_log_sigma}")
    return _LowerClamp.apply(log_sigma, float(min_log_sigma))


def validate_ugmm_args(
    x: Tensor, mu: Tensor, log_sigma: Tensor, mix_logits: Tensor, mask: Tensor | None = None
) -> None:
    """Check the shapes of a uGMM call and raise a ``ValueError`` naming the argument that is wrong."""
    if x.dim() != 2:
        raise ValueError(f"Expected `x` of shape (B, I), got shape {tuple(x.shape)}")
    if log_sigma.dim() != 2:
        raise ValueError(f"Expected `log_sigma` of shape (O, I), got shape {tuple(log_sigma.shape)}")
    out_features, in_features = log_sigma.shape
    if x.shape[1] != in_features:
        raise ValueError(f"Expected `x` with {in_features} features (the layer's in_features), got {x.shape[1]}")
    if mix_logits.shape != log_sigma.shape:
        raise ValueError(
            f"Expected `mix_logits` of shape {tuple(log_sigma.shape)} like `log_sigma`, got {tuple(mix_logits.shape)}"
        )
    if mu.shape not in ((out_features, in_features), (in_features,)):
        raise ValueError(
            f"Expected `mu` of shape ({out_features}, {in_features}) or ({in_features},) for tied means, "
            f"got {tuple(mu.shape)}"
        )
    if mask is not None:
        if mask.dtype != torch.bool:
            raise ValueError(f"Expected `mask` of dtype torch.bool (True = missing), got {mask.dtype}")
        if mask.shape != x.shape:
            raise ValueError(f"Expected `mask` of shape {tuple(x.shape)} like `x`, got {tuple(mask.shape)}")


def ugmm_component_log_terms(
    x: Tensor, mu: Tensor, log_sigma: Tensor, log_pi: Tensor, mask: Tensor | None = None
) -> Tensor:
    """The per-component log-terms ``t[b, j, k]`` of every uGMM neuron (docs/maths.md §1).

    ``t[b, j, k] = log π[j,k] − log σ[j,k] − ½·log(2π) − (x[b,k] − μ[j,k])² / (2σ[j,k]²)``, or ``log π[j,k]`` where
    input ``k`` of row ``b`` is missing (its Gaussian integrates to one). The layer's log-density is
    ``logsumexp_k t`` (:func:`ugmm_log_prob_reference`) and ``softmax_k t`` is the posterior responsibility of each
    component (:func:`ugmm_vision.inspect.responsibilities`). The (B, O, I) result is materialised; nothing is
    validated or cast, so pass tensors of one floating dtype and device.

    Args:
        x: inputs, shape (B, I).
        mu: component means, shape (O, I), (I,) for tied means, or (B or 1, O, I) for per-row parameters.
        log_sigma: log standard deviations, shape (O, I) or (B or 1, O, I).
        log_pi: log mixing weights, normalised over the last dimension (``torch.log_softmax(mix_logits, -1)``),
            shape (O, I) or (B or 1, O, I).
        mask: optional boolean (B, I); True marks a missing input, whose term is ``log π`` alone.

    Returns:
        The component log-terms, shape (B, O, I).

    Example:
        >>> x = torch.tensor([[0.0, 2.0]], dtype=torch.float64)
        >>> mu, log_sigma = torch.zeros(1, 2, dtype=torch.float64), torch.zeros(1, 2, dtype=torch.float64)
        >>> log_pi = torch.log(torch.tensor([[0.5, 0.5]], dtype=torch.float64))
        >>> t = ugmm_component_log_terms(x, mu, log_sigma, log_pi)
        >>> t.shape, [round(v, 6) for v in t[0, 0].tolist()]  # log ½ − ½·log(2π) − x²/2
        (torch.Size([1, 1, 2]), [-1.612086, -3.612086])
        >>> ugmm_component_log_terms(x, mu, log_sigma, log_pi, torch.tensor([[False, True]]))[0, 0, 1].item()
        -0.6931471805599453
    """
    z = (x.unsqueeze(1) - mu) * torch.exp(-log_sigma)  # (B, 1, I) against (O, I) -> (B, O, I)
    terms = log_pi - log_sigma - HALF_LOG_2PI - 0.5 * z.square()  # (B, O, I)
    if mask is not None:
        terms = torch.where(mask.unsqueeze(1), log_pi, terms)  # (B, 1, I) picks log π: (B, O, I)
    return terms


def ugmm_log_prob_reference(
    x: Tensor, mu: Tensor, log_sigma: Tensor, mix_logits: Tensor, mask: Tensor | None = None
) -> Tensor:
    """Naive uGMM log-density: materialises (B, O, I) tensors, the paper's formulation.

    Kept as the readable definition and as the oracle for the fused kernels. Half-precision inputs are
    computed in float32 and the result cast back, saturated at the half type's finite range.
    """
    in_dtype = x.dtype
    compute = compute_dtype(in_dtype)
    x, mu, log_sigma, mix_logits = (t.to(compute) for t in (x, mu, log_sigma, mix_logits))
    log_pi = torch.log_softmax(mix_logits, dim=-1)  # (O, I)
    log_components = ugmm_component_log_terms(x, mu, log_sigma, log_pi, mask)  # (B, O, I)
    return _cast_back(torch.logsumexp(log_components, dim=-1), in_dtype)  # (B, O)


def ugmm_log_prob(
    x: Tensor,
    mu: Tensor,
    log_sigma: Tensor,
    mix_logits: Tensor,
    mask: Tensor | None = None,
    *,
    backend: UGMMBackend = "auto",
) -> Tensor:
    """Log-density of every uGMM neuron of a layer at every input row.

    By default (``backend="auto"``) this runs the fused kernels of :mod:`ugmm_vision.ops` on CPU, and on CUDA
    where Triton is installed: they never hold the (B, O, I) component terms beyond a bounded tile, in forward
    or backward. They are differentiable once; use ``backend="reference"`` for higher-order gradients,
    forward-mode AD or ``torch.func`` transforms.

    Args:
        x: inputs, shape (B, I).
        mu: component means, shape (O, I), or (I,) for means tied across the layer's neurons.
        log_sigma: log standard deviations, shape (O, I).
        mix_logits: unnormalised mixing weights, shape (O, I); π[j] = softmax(mix_logits[j]). Entries set to
            −inf are dropped components (mixing dropout); every row must keep at least one finite entry.
        mask: optional boolean (B, I); True marks a missing input, which is marginalised out (its component
            contributes log π only).
        backend: ``"auto"`` — the fused kernels where available for the device, else the reference;
            ``"fused"`` — always the fused kernels (chunked PyTorch ones where no compiled kernel exists);
            ``"reference"`` — :func:`ugmm_log_prob_reference`, which materialises (B, O, I) tensors.

    Returns:
        Log-densities, shape (B, O), in the dtype of ``x``. Float16 and bfloat16 inputs are computed in float32
        and the result saturated at the type's finite range, so a density too small for float16 reads as its
        lowest finite value, never −inf.

    Example:
        >>> import torch
        >>> x = torch.zeros(1, 2, dtype=torch.float64)
        >>> mu, log_sigma, mix = (torch.zeros(1, 2, dtype=torch.float64) for _ in range(3))
        >>> round(ugmm_log_prob(x, mu, log_sigma, mix).item(), 6)  # N(0; 0, 1) = 1/sqrt(2π)
        -0.918939
    """
    validate_ugmm_args(x, mu, log_sigma, mix_logits, mask)
    in_dtype = x.dtype
    if in_dtype in _NARROW_FLOATS:
        x = x.float()  # both backends compute half types in float32; the saturating cast back is done here
    empty = x.shape[0] == 0 or x.shape[1] == 0  # nothing to fuse: the reference formula answers (and checks `backend`)
    if resolve_backend(backend, x.device) == "fused" and not empty:
        y = fused_ugmm_log_prob(x, mu, log_sigma, mix_logits, mask)
    else:
        y = ugmm_log_prob_reference(x, mu, log_sigma, mix_logits, mask)
    return _cast_back(y, in_dtype)


def mixing_dropout(mix_logits: Tensor, p: float, training: bool = True) -> Tensor:
    """Drop mixture components: a Bernoulli(p) mask over (O, I) sets dropped logits to −inf.

    The softmax then renormalises the surviving weights (the paper's code). A neuron whose every component was
    dropped keeps one random component, so no neuron's log-density becomes −inf (and its gradient NaN): the
    component with the largest of the uniform draws that decided the mask, which is uniformly distributed over
    the neuron's components. The guard is branch-free (no data-dependent ``if``), so the function compiles into
    one graph under ``torch.compile(fullgraph=True)``, and it draws no random numbers beyond the mask's.

    Example:
        >>> torch.manual_seed(0) and None
        >>> out = mixing_dropout(torch.zeros(3, 4), p=0.99)
        >>> bool(torch.isfinite(out).any(dim=1).all())
        True
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"Expected `p` in [0, 1), got {p}")
    if not training or p == 0.0:
        return mix_logits
    draws = torch.rand(mix_logits.shape, device=mix_logits.device)  # (O, I)
    drop = draws < p  # (O, I)
    all_dropped = drop.all(dim=-1, keepdim=True)  # (O, 1)
    columns = torch.arange(mix_logits.shape[-1], device=mix_logits.device)  # (I,)
    rescued = all_dropped & (columns == draws.argmax(dim=-1, keepdim=True))  # (O, I): one per all-dropped row
    return mix_logits.masked_fill(drop & ~rescued, float("-inf"))
