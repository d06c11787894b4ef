"""Figures that look inside uGMM neurons; the numbers come from :mod:`ugmm_vision.inspect`.

Like :mod:`ugmm_vision.report.plots`, every function returns a :class:`matplotlib.figure.Figure` on the Agg
canvas (:func:`~ugmm_vision.report.canvas.new_figure`), built without :mod:`matplotlib.pyplot`, and every drawn
data artist carries a stable ``gid`` (listed in each docstring) so code and tests can read what was drawn:

* ``plot_neuron_components`` — lines ``"neuron_components/<input index>"``;
* ``plot_responsibilities`` — bars ``"responsibilities/bar"`` and ``"responsibilities/rest"``;
* ``plot_class_density_map`` — images ``"density_map/image"``, ``"density_map/map"``, contour ``"density_map/outline"``;
* ``plot_mixing_weights_heatmap`` — image ``"mixing_weights/heatmap"``;
* ``plot_sigma_distribution`` — bars ``"sigma/hist"`` and line ``"sigma/median"``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter
from torch import Tensor

from ugmm_vision.checks import check_int, check_positive_int
from ugmm_vision.inspect import (
    TopResponsibilities,
    check_layer,
    neuron_density_curves,
    strongest_components,
)
from ugmm_vision.layers.ugmm import UGMMLayer
from ugmm_vision.report.canvas import as_numpy, new_figure

__all__ = [
    "plot_class_density_map",
    "plot_mixing_weights_heatmap",
    "plot_neuron_components",
    "plot_responsibilities",
    "plot_sigma_distribution",
]


def _name(index: int, names: Sequence[str] | None) -> str:
    return f"{index}" if names is None else str(names[index])


def plot_neuron_components(
    layer: UGMMLayer,
    neuron: int,
    k: int = 5,
    grid: Sequence[float] | Tensor | None = None,
    *,
    feature_names: Sequence[str] | None = None,
) -> Figure:
    """The weighted densities ``π·N(x; μ, σ²)`` of a neuron's ``k`` strongest components, one line each.

    Components come from :func:`~ugmm_vision.inspect.strongest_components` (largest weight first), the curves
    from :func:`~ugmm_vision.inspect.neuron_density_curves`; line ``"neuron_components/<input index>"`` has
    x = the grid and y = that component's weighted density. Each curve's area is its mixing weight.

    Args:
        layer: the uGMM layer.
        neuron: the neuron (class index for a head's class layer).
        k: how many components to draw.
        grid: x values (None: the components' μ ± 4σ).
        feature_names: names of the layer's inputs for the legend (None: indices).

    Example:
        >>> layer = UGMMLayer(4, 2)
        >>> fig = plot_neuron_components(layer, neuron=1, k=3)
        >>> len([ln for ln in fig.axes[0].lines if ln.get_gid().startswith("neuron_components/")])
        3
    """
    top = strongest_components(layer, neuron, k)
    curves = neuron_density_curves(layer, neuron, top.index, grid)
    fig = new_figure(6.5, 4.0)
    ax = fig.subplots()
    xs = as_numpy(curves.grid)
    for row, index in enumerate(top.index.tolist()):
        label = (
            f"feature {_name(index, feature_names)}: π={top.weight[row]:.3f}, "
            f"μ={top.mean[row]:.2f}, σ={top.sigma[row]:.2f}"
        )
        ax.plot(xs, as_numpy(curves.density[row]), gid=f"neuron_components/{index}", label=label)
    ax.set(
        xlabel="feature value x",
        ylabel="π·N(x; μ, σ²)",
        title=f"Neuron {neuron}: {len(top.index)} strongest components",
    )
    ax.set_ylim(bottom=0)
    ax.legend(fontsize="small")
    return fig


def plot_responsibilities(
    top: TopResponsibilities,
    row: int = 0,
    *,
    feature_names: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Bar chart of one input row's strongest component responsibilities for its neuron.

    Bar ``i`` (gid ``"responsibilities/bar"``, x = i) has height ``top.responsibility[row, i]`` and is labelled
    with the feature index ``top.index[row, i]``; a last grey bar (gid ``"responsibilities/rest"``) holds the
    share of every other component, ``1 − Σ`` of the drawn ones.

    Args:
        top: the output of :func:`~ugmm_vision.inspect.top_responsibilities`.
        row: which input row to draw.
        feature_names: names of the layer's inputs for the tick labels (None: indices).
        title: axes title (None: names the neuron).

    Example:
        >>> import torch
        >>> top = TopResponsibilities(torch.tensor([2]), torch.tensor([[4, 1]]), torch.tensor([[0.7, 0.2]]))
        >>> fig = plot_responsibilities(top)
        >>> [round(float(p.get_height()), 6) for p in fig.axes[0].patches]
        [0.7, 0.2, 0.1]
    """
    if not isinstance(top, TopResponsibilities):
        raise ValueError(f"Expected `top` from top_responsibilities(), got {type(top).__name__}")
    batch = top.index.shape[0]
    check_int("row", row, low=0, high=batch - 1)
    heights = as_numpy(top.responsibility[row])  # (k,)
    indices = top.index[row].tolist()
    fig = new_figure(max(4.0, 0.6 * len(indices) + 2.0), 3.5)
    ax = fig.subplots()
    bars = ax.bar(np.arange(len(indices)), heights, color="tab:blue", edgecolor="black")
    for patch in bars:
        patch.set_gid("responsibilities/bar")
    rest = ax.bar([len(indices)], [max(0.0, 1.0 - float(heights.sum()))], color="0.75", edgecolor="black")
    rest[0].set_gid("responsibilities/rest")
    ax.set_xticks(range(len(indices) + 1), [_name(i, feature_names) for i in indices] + ["rest"])
    neuron = int(top.neuron[row])
    ax.set(
        ylim=(0, 1),
        xlabel="feature (input index)",
        ylabel="responsibility",
        title=title if title is not None else f"Neuron {neuron}: which features carry its log-density",
    )
    return fig


def _image_array(image: Tensor) -> np.ndarray:
    """(C, H, W) or (H, W) → (H, W) grey or (H, W, 3) colour, min–max scaled to [0, 1]."""
    x = as_numpy(image)
    if x.ndim == 3:
        x = x[0] if x.shape[0] == 1 else np.moveaxis(x, 0, -1)  # (H, W) or (H, W, C)
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def plot_class_density_map(
    image: Tensor,
    density_map: Tensor,
    *,
    class_name: str | None = None,
) -> Figure:
    """An image beside its class log-density map (from :func:`~ugmm_vision.inspect.class_density_map`).

    Left: the image (gid ``"density_map/image"``), min–max scaled to [0, 1] — grey (H, W) for one channel,
    (H, W, 3) for three. Right: the density map (gid ``"density_map/map"``, whose array is ``density_map``
    itself) with a colour bar in log-density units, and the image's bright strokes outlined on it (the contour
    at half the image's range, gid ``"density_map/outline"``).

    Args:
        image: the image, (C, H, W) with C in {1, 3}, or (H, W).
        density_map: log-densities, shape (H, W) like the image.
        class_name: name of the mapped class for the title.

    Example:
        >>> import torch
        >>> fig = plot_class_density_map(torch.rand(1, 8, 8), torch.randn(8, 8))
        >>> [im.get_gid() for ax in fig.axes for im in ax.images]
        ['density_map/image', 'density_map/map']
    """
    channels_ok = isinstance(image, Tensor) and (image.dim() == 2 or (image.dim() == 3 and image.shape[0] in (1, 3)))
    if not channels_ok:
        got = tuple(image.shape) if isinstance(image, Tensor) else repr(image)
        raise ValueError(f"Expected `image` of shape (C, H, W) with C in {{1, 3}}, or (H, W), got {got}")
    if not isinstance(density_map, Tensor) or tuple(density_map.shape) != tuple(image.shape[-2:]):
        got = tuple(density_map.shape) if isinstance(density_map, Tensor) else repr(density_map)
        raise ValueError(f"Expected `density_map` of shape {tuple(image.shape[-2:])} like the image, got {got}")
    pixels = _image_array(image)  # (H, W) or (H, W, 3)
    grey = pixels if pixels.ndim == 2 else pixels.mean(axis=-1)  # (H, W)
    fig = new_figure(8.0, 3.6)
    left, right = fig.subplots(1, 2)
    left.imshow(pixels, cmap="gray" if pixels.ndim == 2 else None, vmin=0, vmax=1, gid="density_map/image")
    left.set(title="image", xticks=[], yticks=[])
    shown = right.imshow(as_numpy(density_map), cmap="magma", gid="density_map/map")
    if grey.max() > grey.min():
        outline = right.contour(grey, levels=[0.5], colors="white", linewidths=1.0)
        outline.set_gid("density_map/outline")
    suffix = f" of class {class_name}" if class_name is not None else ""
    right.set(title=f"log-density{suffix} per position", xticks=[], yticks=[])
    fig.colorbar(shown, ax=right, label="log-density")
    return fig


def plot_mixing_weights_heatmap(
    layer: UGMMLayer,
    *,
    class_names: Sequence[str] | None = None,
) -> Figure:
    """Heatmap of a layer's mixing weights π: neurons (classes, for a class layer) × input features.

    The image (gid ``"mixing_weights/heatmap"``) is ``layer.mixing_weights`` (O, I); a bright cell means the
    neuron's density leans on that feature.

    Args:
        layer: the uGMM layer.
        class_names: one name per neuron for the y tick labels (None: indices).

    Example:
        >>> fig = plot_mixing_weights_heatmap(UGMMLayer(6, 3), class_names=["a", "b", "c"])
        >>> fig.axes[0].images[0].get_array().shape
        (3, 6)
    """
    layer = check_layer(layer)
    if class_names is not None and len(class_names) != layer.out_features:
        raise ValueError(f"Expected `class_names` with {layer.out_features} names, got {len(class_names)}")
    weights = as_numpy(layer.mixing_weights)  # (O, I)
    fig = new_figure(min(12.0, 3.0 + 0.06 * layer.in_features), min(8.0, 1.5 + 0.3 * layer.out_features))
    ax = fig.subplots()
    image = ax.imshow(weights, aspect="auto", cmap="viridis", interpolation="nearest", gid="mixing_weights/heatmap")
    if class_names is not None:
        ax.set_yticks(range(layer.out_features), [str(n) for n in class_names])
    ax.set(xlabel="input feature k", ylabel="neuron j (class)", title="Mixing weights π[j, k]")
    fig.colorbar(image, ax=ax, label="π")
    return fig


def plot_sigma_distribution(layer: UGMMLayer, *, bins: int = 40, log_bins: bool = True) -> Figure:
    """Histogram of a layer's learned standard deviations σ (all O·I components).

    Bars (gid ``"sigma/hist"``) are the counts of ``layer.sigma`` in each bin; a vertical line
    (gid ``"sigma/median"``) marks the median σ. With ``log_bins`` the bins are equal in log σ and the x axis is
    logarithmic (σ spans decades once trained; ``init="unit"`` starts every σ at 1).

    Args:
        layer: the uGMM layer.
        bins: number of bins.
        log_bins: bins equally spaced in log σ (else in σ).

    Example:
        >>> fig = plot_sigma_distribution(UGMMLayer(5, 4), bins=10)
        >>> int(sum(p.get_height() for p in fig.axes[0].patches if p.get_gid() == "sigma/hist"))
        20
    """
    layer = check_layer(layer)
    check_positive_int("bins", bins)
    sigma = as_numpy(layer.sigma).ravel()  # (O·I,)
    lo, hi = sigma.min(), sigma.max()
    if hi <= lo:  # every σ equal (e.g. the unit init): one bin around it
        lo, hi = lo * 0.9, hi * 1.1
    edges = np.geomspace(lo, hi, bins + 1) if log_bins else np.linspace(lo, hi, bins + 1)  # (bins + 1,)
    fig = new_figure(5.5, 3.5)
    ax = fig.subplots()
    _, _, patches = ax.hist(sigma, bins=edges, color="tab:purple", edgecolor="black")
    for patch in patches:
        patch.set_gid("sigma/hist")
    median = float(np.median(sigma))
    ax.axvline(median, color="black", linestyle="--", gid="sigma/median", label=f"median σ = {median:.3g}")
    if log_bins:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set(xlabel="σ", ylabel="components", title=f"Learned σ ({sigma.size} components)")
    ax.legend(fontsize="small")
    return fig
