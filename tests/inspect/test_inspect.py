"""Inspection tools checked against numbers worked out by hand, and their figures by the data they draw."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ugmm_vision.backbones import SmallCNN, TimmBackbone
from ugmm_vision.heads import LinearHead, UGMMHead
from ugmm_vision.inspect import (
    class_density_map,
    layer_inputs,
    neuron_density_curves,
    posterior,
    responsibilities,
    strongest_components,
    top_responsibilities,
)
from ugmm_vision.layers import UGMMLayer
from ugmm_vision.report import (
    plot_class_density_map,
    plot_mixing_weights_heatmap,
    plot_neuron_components,
    plot_responsibilities,
    plot_sigma_distribution,
)

F64 = torch.float64
SQRT_2PI = math.sqrt(2.0 * math.pi)

# The hand-built layer: 2 neurons × 3 inputs.
#   neuron 0: π = (1/8, 2/8, 5/8), μ = (0, 1, −1),  σ = (1, 2, 0.5)
#   neuron 1: π = (0.5, 0.3, 0.2), μ = (2, 0, 0.5), σ = (1, 1, 2)
PI = [[0.125, 0.25, 0.625], [0.5, 0.3, 0.2]]
MU = [[0.0, 1.0, -1.0], [2.0, 0.0, 0.5]]
SIGMA = [[1.0, 2.0, 0.5], [1.0, 1.0, 2.0]]
# Rows of x: row 0 sits on neuron 0's means, row 1 on neuron 1's.
X = [[0.0, 1.0, -1.0], [2.0, 0.0, 0.5]]
# r[b, j, k] ∝ π·N(x; μ, σ²) = π / (σ√2π) · exp(−z²/2), z = (x − μ)/σ:
#   b0 j0: z = 0 everywhere, π/σ = (0.125, 0.125, 1.25)                 → (1/12, 1/12, 10/12)
#   b0 j1: z = (−2, 1, −0.75), π/σ = (0.5, 0.3, 0.1)
#          → ∝ (0.5e^−2, 0.3e^−0.5, 0.1e^−0.28125)                      → (0.2081371695, 0.5596836465, 0.2321791840)
#   b1 j0: z = (2, −0.5, 3), π/σ = (0.125, 0.125, 1.25)
#          → ∝ (0.125e^−2, 0.125e^−0.125, 1.25e^−4.5)                   → (0.1198800848, 0.7817163492, 0.0984035660)
#   b1 j1: z = 0 everywhere, π/σ = (0.5, 0.3, 0.1)                      → (5/9, 3/9, 1/9)
HAND_R = [
    [[1 / 12, 1 / 12, 10 / 12], [0.2081371695, 0.5596836465, 0.2321791840]],
    [[0.1198800848, 0.7817163492, 0.0984035660], [5 / 9, 3 / 9, 1 / 9]],
]


def hand_layer(tied: bool = False) -> UGMMLayer:
    layer = UGMMLayer(3, 2, tied_means=tied, dtype=F64)
    with torch.no_grad():
        layer.mu.copy_(torch.tensor(MU[0] if tied else MU, dtype=F64))
        layer.log_sigma.copy_(torch.tensor(SIGMA, dtype=F64).log())
        layer.mix_logits.copy_(torch.tensor(PI, dtype=F64).log() + 0.7)  # softmax ignores the shift
    return layer


def x_hand() -> torch.Tensor:
    return torch.tensor(X, dtype=F64)


def by_gid(artists, gid: str) -> list:
    return [a for a in artists if a.get_gid() == gid]


# -- per neuron -------------------------------------------------------------------------------------------------
def test_strongest_components_equal_hand_values():
    layer = hand_layer()
    top0 = strongest_components(layer, 0, k=2)
    assert top0.index.tolist() == [2, 1]
    torch.testing.assert_close(top0.weight, torch.tensor([0.625, 0.25], dtype=F64))
    torch.testing.assert_close(top0.mean, torch.tensor([-1.0, 1.0], dtype=F64))
    torch.testing.assert_close(top0.sigma, torch.tensor([0.5, 2.0], dtype=F64))
    top1 = strongest_components(layer, 1, k=5)  # k beyond in_features: all three
    assert top1.index.tolist() == [0, 1, 2]
    torch.testing.assert_close(top1.weight, torch.tensor([0.5, 0.3, 0.2], dtype=F64))
    torch.testing.assert_close(top1.mean, torch.tensor([2.0, 0.0, 0.5], dtype=F64))
    torch.testing.assert_close(top1.sigma, torch.tensor([1.0, 1.0, 2.0], dtype=F64))


def test_strongest_components_tied_means_and_ties():
    layer = hand_layer(tied=True)  # μ = (0, 1, −1) shared by both neurons
    assert strongest_components(layer, 1, k=3).mean.tolist() == [0.0, 1.0, -1.0]
    with torch.no_grad():
        layer.mix_logits.zero_()
    assert strongest_components(layer, 0, k=3).index.tolist() == [0, 1, 2]  # equal weights: lower index first


def test_density_curves_equal_hand_values_and_integrate_to_the_weight():
    layer = hand_layer()
    curves = neuron_density_curves(layer, 0, [2, 0], grid=[-1.0, 0.0])
    # input 2: π = 0.625, μ = −1, σ = 0.5: at x = −1 the peak 0.625 / (0.5√2π); at x = 0, z = 2: × e^−2
    # input 0: π = 0.125, μ = 0, σ = 1: at x = −1, z = −1: 0.125 e^−0.5 / √2π; at x = 0 the peak 0.125 / √2π
    expected = torch.tensor(
        [[1.25 / SQRT_2PI, 1.25 / SQRT_2PI * math.exp(-2.0)], [0.125 * math.exp(-0.5) / SQRT_2PI, 0.125 / SQRT_2PI]],
        dtype=F64,
    )
    torch.testing.assert_close(curves.density, expected)
    assert curves.inputs.tolist() == [2, 0]
    default = neuron_density_curves(layer, 1, [0, 1, 2])  # default grid: μ ± 4σ of all three
    assert default.grid[0] == pytest.approx(0.5 - 8.0) and default.grid[-1] == pytest.approx(0.5 + 8.0)
    areas = torch.trapezoid(default.density, default.grid, dim=-1)
    torch.testing.assert_close(areas, torch.tensor([0.5, 0.3, 0.2], dtype=F64), atol=2e-3, rtol=0)


# -- per input ----------------------------------------------------------------------------------------------------
def test_responsibilities_equal_hand_values():
    r = responsibilities(hand_layer(), x_hand())
    assert r.shape == (2, 2, 3) and r.dtype == F64
    torch.testing.assert_close(r, torch.tensor(HAND_R, dtype=F64), atol=1e-9, rtol=0)


def test_responsibilities_of_tied_means_equal_the_broadcast_means():
    tied = hand_layer(tied=True)  # μ (I,) shared by both neurons
    untied = UGMMLayer(3, 2, dtype=F64)
    untied.load_state_dict({**tied.state_dict(), "mu": tied.mu.detach().expand(2, 3).clone()})
    torch.testing.assert_close(responsibilities(tied, x_hand()), responsibilities(untied, x_hand()))
    # row 0 sits on the shared means, so neuron 1's shares are ∝ π/σ = (0.5, 0.3, 0.1): (5/9, 3/9, 1/9)
    torch.testing.assert_close(responsibilities(tied, x_hand())[0, 1], torch.tensor([5 / 9, 3 / 9, 1 / 9], dtype=F64))


def test_responsibilities_are_the_shares_of_the_layer_output():
    torch.manual_seed(0)
    layer = UGMMLayer(7, 5, dtype=F64).eval()
    with torch.no_grad():
        layer.log_sigma[2, 3] = -20.0  # below any σ floor: the layer's forward decides which σ counts
    x = torch.randn(4, 7, dtype=F64)
    r = responsibilities(layer, x)  # (B, O, I)
    torch.testing.assert_close(r.sum(-1), torch.ones(4, 5, dtype=F64))
    # r = exp(term − y): term from torch.distributions with the σ and π the layer reports, y from its forward
    normal = torch.distributions.Normal(layer.mu.detach(), layer.sigma.detach())
    terms = layer.mixing_weights.detach().log() + normal.log_prob(x.unsqueeze(1))  # (B, O, I)
    torch.testing.assert_close(r, (terms - layer(x).detach().unsqueeze(-1)).exp())


def test_responsibilities_chunked_neurons_and_mask(monkeypatch):
    torch.manual_seed(1)
    layer = UGMMLayer(5, 4, dtype=F64)
    x = torch.randn(9, 5, dtype=F64)
    full = responsibilities(layer, x)
    monkeypatch.setattr(posterior, "_CHUNK_ELEMENTS", 2 * 4 * 5)  # two rows per chunk
    torch.testing.assert_close(responsibilities(layer, x), full)
    torch.testing.assert_close(responsibilities(layer, x, neurons=[3, 1]), full[:, [3, 1]])
    # a missing input's component keeps only log π: mark everything missing and the shares are π itself
    everything = torch.ones_like(x, dtype=torch.bool)
    torch.testing.assert_close(responsibilities(layer, x, everything), layer.mixing_weights.detach().expand(9, 4, 5))


def test_top_responsibilities_equal_hand_values():
    layer = hand_layer()
    top = top_responsibilities(layer, x_hand(), torch.tensor([1, 0]), k=2)  # row 0 → neuron 1, row 1 → neuron 0
    assert top.neuron.tolist() == [1, 0]
    assert top.index.tolist() == [[1, 2], [1, 0]]
    torch.testing.assert_close(
        top.responsibility, torch.tensor([[0.5596836465, 0.2321791840], [0.7817163492, 0.1198800848]], dtype=F64)
    )
    same = top_responsibilities(layer, x_hand(), 1, k=3)  # one neuron for every row
    assert same.index.tolist() == [[1, 2, 0], [0, 1, 2]]
    torch.testing.assert_close(same.responsibility[1], torch.tensor([5 / 9, 3 / 9, 1 / 9], dtype=F64))


def test_layer_inputs_feed_each_layer():
    torch.manual_seed(0)
    head = UGMMHead(6, 3, hidden=(4,)).eval()
    features = torch.randn(5, 6)
    inputs = layer_inputs(head, features)
    torch.testing.assert_close(head.layers[-1](inputs[-1]), head(features))
    torch.testing.assert_close(inputs[0], head.norm(features))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda layer: strongest_components(layer, 2), "`neuron`"),
        (lambda layer: strongest_components(layer, 0, k=0), "`k`"),
        (lambda layer: neuron_density_curves(layer, 0, [3]), "`inputs`"),
        (lambda layer: neuron_density_curves(layer, 0, [0], grid=[]), "`grid`"),
        (lambda layer: responsibilities(layer, torch.zeros(2, 4, dtype=F64)), "`x`"),
        (lambda layer: responsibilities(layer, x_hand(), torch.zeros(2, 3)), "`mask`"),
        (lambda layer: responsibilities(layer, x_hand(), neurons=[5]), r"`neurons\[0\]`"),
        (lambda layer: top_responsibilities(layer, x_hand(), torch.tensor([0, 2])), "`neuron`"),
        (lambda layer: strongest_components(torch.nn.Linear(3, 2), 0), "`layer`"),
    ],
)
def test_invalid_arguments_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call(hand_layer())


# -- figures draw the returned data -----------------------------------------------------------------------------
def test_plot_neuron_components_draws_the_curves():
    layer = hand_layer()
    fig = plot_neuron_components(layer, 0, k=2, grid=torch.linspace(-3, 3, 13, dtype=F64))
    top = strongest_components(layer, 0, k=2)
    curves = neuron_density_curves(layer, 0, top.index, torch.linspace(-3, 3, 13, dtype=F64))
    ax = fig.axes[0]
    for row, index in enumerate(top.index.tolist()):
        (line,) = by_gid(ax.lines, f"neuron_components/{index}")
        np.testing.assert_allclose(line.get_xydata()[:, 0], curves.grid.numpy())
        np.testing.assert_allclose(line.get_xydata()[:, 1], curves.density[row].numpy())


def test_plot_responsibilities_draws_the_bars():
    top = top_responsibilities(hand_layer(), x_hand(), torch.tensor([1, 0]), k=2)
    ax = plot_responsibilities(top, row=0).axes[0]
    bars = by_gid(ax.patches, "responsibilities/bar")
    np.testing.assert_allclose([b.get_height() for b in bars], [0.5596836465, 0.2321791840], atol=1e-9)
    (rest,) = by_gid(ax.patches, "responsibilities/rest")
    assert rest.get_height() == pytest.approx(0.2081371695, abs=1e-9)  # the third component's share
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "rest"]
    with pytest.raises(ValueError, match="`row`"):
        plot_responsibilities(top, row=2)


def test_plot_mixing_weights_and_sigma_draw_the_layer():
    layer = hand_layer()
    heat = plot_mixing_weights_heatmap(layer, class_names=["zero", "one"]).axes[0]
    (image,) = by_gid(heat.images, "mixing_weights/heatmap")
    np.testing.assert_allclose(image.get_array(), PI)
    ax = plot_sigma_distribution(layer, bins=3, log_bins=True).axes[0]
    bars = by_gid(ax.patches, "sigma/hist")
    # σ = (1, 2, 0.5, 1, 1, 2) in 3 log-spaced bins over [0.5, 2]: edges 0.5, 0.794, 1.26, 2 → counts 1, 3, 2
    assert [b.get_height() for b in bars] == [1.0, 3.0, 2.0]
    np.testing.assert_allclose([b.get_x() for b in bars], [0.5, 0.5 * 4 ** (1 / 3), 0.5 * 4 ** (2 / 3)])
    (median,) = by_gid(ax.lines, "sigma/median")
    assert median.get_xdata()[0] == 1.0


# -- class density maps -------------------------------------------------------------------------------------------
def test_class_density_map_on_small_cnn_shapes_modes_and_plot():
    torch.manual_seed(0)
    backbone, head = SmallCNN(in_chans=1), UGMMHead(128, 10)
    backbone.train()
    head.eval()
    images = torch.randn(3, 1, 8, 8)
    low = class_density_map(backbone, head, images, 4, mode=None)  # 8×8 → 2×2 feature map
    assert low.shape == (3, 2, 2) and bool(torch.isfinite(low).all())
    assert all(m.training for m in backbone.modules()) and not head.training  # modes restored
    one = class_density_map(backbone, head, images[1], 4)
    assert one.shape == (8, 8) and bool(torch.isfinite(one).all())
    nearest = class_density_map(backbone, head, images, 4, mode="nearest")  # each position covers a 4×4 block
    torch.testing.assert_close(nearest, low.repeat_interleave(4, dim=1).repeat_interleave(4, dim=2))
    # position (0, 1) is exactly the head applied to that position's feature vector
    backbone.eval()
    fmap = backbone.forward_features(images)  # (3, 128, 2, 2)
    torch.testing.assert_close(low[:, 0, 1], head.eval()(fmap[:, :, 0, 1])[:, 4])

    fig = plot_class_density_map(images[1], one, class_name="4")
    (drawn,) = by_gid(fig.axes[1].images, "density_map/map")
    np.testing.assert_allclose(drawn.get_array(), one.double().numpy())
    (picture,) = by_gid(fig.axes[0].images, "density_map/image")
    pixels = images[1, 0].double()
    np.testing.assert_allclose(picture.get_array(), ((pixels - pixels.min()) / (pixels.max() - pixels.min())).numpy())


def test_class_density_map_of_a_linear_head_averages_to_the_pooled_logit():
    torch.manual_seed(0)
    backbone, head = SmallCNN(in_chans=1).eval(), LinearHead(128, 10, norm_layer=None)
    images = torch.randn(2, 1, 8, 8)
    low = class_density_map(backbone, head, images, 7, mode=None)
    torch.testing.assert_close(low.mean(dim=(1, 2)), head(backbone(images))[:, 7])  # class activation mapping


def test_class_density_map_on_timm_resnet_and_refusals():
    backbone = TimmBackbone("resnet18", in_chans=3)
    head = UGMMHead(backbone.num_features, 5)
    out = class_density_map(backbone, head, torch.randn(3, 64, 64), 2)  # 64×64 → 2×2 feature map
    assert out.shape == (64, 64) and bool(torch.isfinite(out).all())
    with pytest.raises(ValueError, match="`class_index`"):
        class_density_map(backbone, head, torch.randn(3, 64, 64), 5)
    with pytest.raises(ValueError, match="`backbone`"):
        class_density_map(torch.nn.Conv2d(3, 4, 1), head, torch.randn(3, 64, 64), 0)
    mobilenet = TimmBackbone("mobilenetv3_small_050")  # conv head after pooling: map width ≠ head width
    with pytest.raises(ValueError, match="no spatial map"):
        class_density_map(mobilenet, UGMMHead(mobilenet.num_features, 5), torch.randn(3, 64, 64), 0)
