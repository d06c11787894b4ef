"""``fit_generative``: minimise a density network's root negative log-density on an in-memory tensor."""

from __future__ import annotations

import torch
from torch import Tensor

from ugmm_vision.checks import check_positive_int
from ugmm_vision.generative.network import UGMMNetwork

__all__ = ["fit_generative"]


def fit_generative(
    network: UGMMNetwork,
    x: Tensor,
    *,
    mask: Tensor | None = None,
    epochs: int = 3000,
    lr: float = 1e-3,
    batch_size: int | None = None,
    seed: int = 0,
) -> list[float]:
    """Train ``network`` by Adam on the mean root negative log-density of ``x`` (the paper's generative training).

    A plain loop rather than a LightningModule, on purpose: the paper's generative experiment is 150 Iris rows
    trained full-batch for thousands of steps, where Lightning's per-epoch machinery (hooks, logging, loader set-up)
    costs more than the step itself. Anything bigger than an in-memory tensor belongs in a LightningModule.

    The network is left in eval mode. ``seed`` drives the shuffling and mixing dropout inside a forked RNG, so the
    global RNG state is untouched; seed the initialisation when you build the network.

    Args:
        network: the density network to train (in place).
        x: training rows, shape (N, I).
        mask: optional boolean (N, I), True where a value is missing (marginalised in the first layer).
        epochs: passes over ``x``.
        lr: Adam learning rate (the paper's code: 1e-3).
        batch_size: rows per step; None for full-batch steps (the paper's code).
        seed: seed of the shuffling and of mixing dropout.

    Returns:
        The mean training NLL of each epoch (averaged over its steps, in training mode).

    Example:
        >>> torch.manual_seed(0) and None
        >>> net = UGMMNetwork(2, hidden=(3,))
        >>> history = fit_generative(net, torch.randn(64, 2), epochs=50, lr=0.05)
        >>> history[-1] < history[0]
        True
    """
    if x.dim() != 2 or x.shape[1] != network.in_features:
        raise ValueError(f"Expected `x` of shape (N, {network.in_features}), got {tuple(x.shape)}")
    if mask is not None and (mask.dtype != torch.bool or mask.shape != x.shape):
        raise ValueError(f"Expected `mask` to be a boolean tensor of shape {tuple(x.shape)}, got {tuple(mask.shape)}")
    check_positive_int("epochs", epochs)
    if batch_size is not None:
        check_positive_int("batch_size", batch_size)
    if not lr > 0:
        raise ValueError(f"Expected `lr` > 0, got {lr}")
    n = x.shape[0]
    batch_size = n if batch_size is None else min(batch_size, n)
    optimizer = torch.optim.Adam(network.parameters(), lr=lr)
    history = []
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        network.train()
        for _ in range(epochs):
            order = torch.randperm(n, device=x.device) if batch_size < n else torch.arange(n, device=x.device)
            total = 0.0
            for start in range(0, n, batch_size):
                rows = order[start : start + batch_size]  # (b,)
                optimizer.zero_grad(set_to_none=True)
                loss = network.nll_loss(x[rows], None if mask is None else mask[rows])
                loss.backward()
                optimizer.step()
                total += loss.item() * len(rows)
            history.append(total / n)
    network.eval()
    return history
