"""Per-input inspection: which components (feature dimensions) carried a neuron's log-density for an input.

Neuron ``j``'s log-density at input ``x`` is a logsumexp over one term per input feature ``k`` (docs/maths.md §1)::

    t[j, k] = log π[j,k] − log σ[j,k] − ½·log(2π) − (x[k] − μ[j,k])² / (2σ[j,k]²)
    y[j]    = logsumexp_k t[j, k]

The *responsibility* of component ``k`` is its posterior share ``r[j, k] = exp(t[j, k] − y[j]) = softmax_k t[j]``:
the fraction of the neuron's density that feature ``k`` explains. Responsibilities of a class neuron tell which
feature dimensions made an image likely under that class. Computed in evaluation semantics (no mixing dropout);
the terms ``t`` are :func:`ugmm_vision.functional.ugmm_component_log_terms`, the ones the reference formula sums.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from ugmm_vision.checks import check_positive_int
from ugmm_vision.functional.ugmm import ugmm_component_log_terms
from ugmm_vision.heads.protocol import is_density_head
from ugmm_vision.inspect._common import check_index, check_layer, layer_parameters
from ugmm_vision.layers.ugmm import UGMMLayer

__all__ = ["TopResponsibilities", "layer_inputs", "responsibilities", "top_responsibilities"]

_CHUNK_ELEMENTS = 1 << 22  # (rows × O × I) terms per chunk: bounds the temporaries beyond the output itself


class TopResponsibilities(NamedTuple):
    """The strongest components of one neuron per input row, largest responsibility first.

    Attributes:
        neuron: the neuron inspected for each row, shape (B,), int64.
        index: input (feature) index of each component, shape (B, k), int64.
        responsibility: its responsibility (posterior share, in [0, 1]), shape (B, k).
    """

    neuron: Tensor
    index: Tensor
    responsibility: Tensor


def _check_inputs(layer: UGMMLayer, x: Tensor, mask: Tensor | None) -> None:
    if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != layer.in_features or not x.is_floating_point():
        got = f"shape {tuple(x.shape)} and dtype {x.dtype}" if isinstance(x, Tensor) else repr(x)
        raise ValueError(f"Expected `x` of shape (B, {layer.in_features}) with a floating dtype, got {got}")
    if mask is not None and (not isinstance(mask, Tensor) or mask.dtype != torch.bool or mask.shape != x.shape):
        got = f"shape {tuple(mask.shape)} and dtype {mask.dtype}" if isinstance(mask, Tensor) else repr(mask)
        raise ValueError(f"Expected `mask` of shape {tuple(x.shape)} and dtype torch.bool, got {got}")


@torch.no_grad()
def responsibilities(
    layer: UGMMLayer,
    x: Tensor,
    mask: Tensor | None = None,
    *,
    neurons: Sequence[int] | None = None,
) -> Tensor:
    """Posterior responsibility of every component of every neuron, for every input row.

    ``r[b, j, k] = softmax_k(t[b, j, :])[k]`` with ``t`` the component log-terms (see the module docstring);
    ``logsumexp_k t[b, j, k]`` is the layer's output ``layer(x)[b, j]``. The rows are processed in chunks, so
    beyond the (B, O, I) result only a bounded number of terms is held; pass ``neurons`` to keep a few neurons
    of a wide layer.

    Args:
        layer: the uGMM layer.
        x: the layer's inputs, shape (B, I) (for a head's first layer: the normalised features, see
            :func:`layer_inputs`).
        mask: optional boolean (B, I), True where an input is missing (marginalised: its term is ``log π``).
        neurons: indices of the neurons to return (None: all ``O``).

    Returns:
        Responsibilities, shape (B, O) + (I,) — or (B, len(neurons), I) — summing to 1 over the last dimension,
        in ``x``'s dtype promoted to at least float32.

    Example:
        >>> layer = UGMMLayer(2, 1, dtype=torch.float64)
        >>> with torch.no_grad():
        ...     _ = layer.mu.copy_(torch.tensor([[0.0, 5.0]])), layer.log_sigma.zero_(), layer.mix_logits.zero_()
        >>> r = responsibilities(layer, torch.tensor([[0.0, 5.0], [0.0, 3.0]], dtype=torch.float64))
        >>> r.shape, [round(v, 4) for v in r[1, 0].tolist()]  # second row: x[1] is 2σ from its mean
        (torch.Size([2, 1, 2]), [0.8808, 0.1192])
    """
    layer = check_layer(layer)
    _check_inputs(layer, x, mask)
    dtype = torch.promote_types(x.dtype, torch.float32)
    mu, log_sigma, log_pi = (p.to(x.device) for p in layer_parameters(layer, dtype))  # (O, I) each
    if neurons is not None:
        chosen = [check_index(f"neurons[{i}]", n, layer.out_features, "neurons") for i, n in enumerate(neurons)]
        if not chosen:
            raise ValueError("Expected `neurons` to name at least one neuron, got an empty sequence")
        mu, log_sigma, log_pi = mu[chosen], log_sigma[chosen], log_pi[chosen]  # (O', I) each
    x = x.detach().to(dtype)
    out = torch.empty(x.shape[0], *log_sigma.shape, dtype=dtype, device=x.device)  # (B, O, I)
    rows = max(1, _CHUNK_ELEMENTS // log_sigma.numel())
    for start in range(0, x.shape[0], rows):
        part = slice(start, start + rows)
        part_mask = None if mask is None else mask[part]  # (b, I)
        terms = ugmm_component_log_terms(x[part], mu, log_sigma, log_pi, part_mask)  # (b, O, I)
        out[part] = torch.softmax(terms, dim=-1)  # (b, O, I)
    return out


@torch.no_grad()
def top_responsibilities(
    layer: UGMMLayer,
    x: Tensor,
    neuron: int | Tensor,
    k: int = 5,
    mask: Tensor | None = None,
) -> TopResponsibilities:
    """The ``k`` components with the largest responsibility for one neuron, per input row.

    Only the chosen neuron's terms are computed (memory B·I), so this suits wide layers. For a head's class
    layer, pass the predicted (or true) class of each row as ``neuron`` to see which feature dimensions carried
    that class's log-density for each image.

    Args:
        layer: the uGMM layer.
        x: the layer's inputs, shape (B, I).
        neuron: one neuron index for every row, or a (B,) integer tensor with one neuron per row.
        k: how many components per row; at most ``in_features``.
        mask: optional boolean (B, I), True where an input is missing.

    Returns:
        A :class:`TopResponsibilities` with (B, min(k, I)) fields; ties keep the lower input index first.

    Example:
        >>> layer = UGMMLayer(3, 2, dtype=torch.float64)
        >>> with torch.no_grad():
        ...     _ = layer.mu.zero_(), layer.log_sigma.zero_(), layer.mix_logits.zero_()
        >>> top = top_responsibilities(layer, torch.tensor([[0.0, 1.0, 2.0]], dtype=torch.float64), 1, k=2)
        >>> top.index.tolist(), [round(v, 4) for v in top.responsibility[0].tolist()]
        ([[0, 1]], [0.5741, 0.3482])
    """
    layer = check_layer(layer)
    _check_inputs(layer, x, mask)
    check_positive_int("k", k)
    batch = x.shape[0]
    if isinstance(neuron, Tensor):
        if neuron.shape != (batch,) or neuron.is_floating_point() or neuron.dtype == torch.bool:
            raise ValueError(f"Expected `neuron` of shape ({batch},) with an integer dtype, got {tuple(neuron.shape)}")
        rows = neuron.detach().to(device=x.device, dtype=torch.long)  # (B,)
        if bool(((rows < 0) | (rows >= layer.out_features)).any()):
            raise ValueError(f"Expected `neuron` values in [0, {layer.out_features - 1}], got {rows.tolist()}")
    else:
        check_index("neuron", neuron, layer.out_features, "neurons")
        rows = torch.full((batch,), neuron, dtype=torch.long, device=x.device)  # (B,)
    dtype = torch.promote_types(x.dtype, torch.float32)
    mu, log_sigma, log_pi = (p.to(x.device)[rows].unsqueeze(1) for p in layer_parameters(layer, dtype))  # (B, 1, I)
    terms = ugmm_component_log_terms(x.detach().to(dtype), mu, log_sigma, log_pi, mask)  # (B, 1, I)
    terms = terms.squeeze(1)  # (B, I)
    share = torch.softmax(terms, dim=-1)  # (B, I)
    order = torch.sort(share, dim=-1, descending=True, stable=True).indices[:, :k]  # (B, k)
    return TopResponsibilities(rows, order, share.gather(1, order))


@torch.no_grad()
def layer_inputs(head: nn.Module, features: Tensor) -> list[Tensor]:
    """The input of every uGMM layer of a :class:`~ugmm_vision.heads.UGMMHead`, first layer to class layer.

    The first layer's input is the normalised features (``head.norm(features)``); each later layer's input is
    the previous layer's log-densities. Feed ``layer_inputs(head, f)[i]`` with ``head.layers[i]`` to
    :func:`responsibilities` or :func:`top_responsibilities`. Computed in the head's current mode (call
    ``eval()`` first for inference statistics and no mixing dropout).

    Args:
        head: a :class:`~ugmm_vision.heads.DensityHead` (a :class:`~ugmm_vision.heads.UGMMHead`).
        features: backbone features, shape (B, F).

    Returns:
        One (B, I_i) tensor per layer.

    Example:
        >>> from ugmm_vision.heads import UGMMHead
        >>> head = UGMMHead(6, 3, hidden=(4,)).eval()
        >>> [tuple(t.shape) for t in layer_inputs(head, torch.randn(2, 6))]
        [(2, 6), (2, 4)]
    """
    if not is_density_head(head):
        raise ValueError(f"Expected `head` to be a DensityHead such as UGMMHead, got {type(head).__name__}")
    x = head.norm(features)
    inputs = [x]
    for layer in head.layers[:-1]:
        x = layer(x)
        inputs.append(x)
    return inputs
