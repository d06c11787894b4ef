"""The reliability diagram does not let nearly empty bins dominate: bars shaded by count, sparse bins hollow."""

import numpy as np
import pytest
import torch

from ugmm_vision.functional import reliability_diagram_data
from ugmm_vision.report import plot_reliability_diagram


def _case() -> tuple[torch.Tensor, torch.Tensor]:
    """Two-class probabilities: 200 confident samples, 40 mid-confidence, 2 in the 0.6–0.7 bin (both wrong)."""
    g = torch.Generator().manual_seed(0)
    confident = 0.95 + 0.04 * torch.rand(200, generator=g)
    middle = 0.80 + 0.05 * torch.rand(40, generator=g)
    sparse = torch.tensor([0.62, 0.64])
    top = torch.cat([confident, middle, sparse])
    probs = torch.stack([top, 1 - top], dim=1)  # (N, 2): class 0 predicted everywhere
    target = torch.cat([(torch.rand(200, generator=g) > 0.97).long(), (torch.rand(40, generator=g) > 0.8).long()])
    target = torch.cat([target, torch.ones(2, dtype=torch.long)])  # the two sparse samples are wrong
    return probs, target


def _by_gid(ax, gid):
    return [p for p in ax.patches if p.get_gid() == gid]


@pytest.mark.parametrize("min_count", [0, 10, 50])
def test_bars_are_shaded_by_count_and_sparse_bins_hollow(min_count):
    probs, target = _case()
    data = reliability_diagram_data(probs, target, n_bins=10)
    count = data.count[data.count > 0].double().numpy()  # non-empty bins, in drawing order
    ax = plot_reliability_diagram(probs, target, n_bins=10, min_count=min_count).axes[0]
    bars, gaps = _by_gid(ax, "reliability/accuracy"), _by_gid(ax, "reliability/gap")
    expected_alpha = 0.15 + 0.85 * count / count.max()
    for bar, gap, n, alpha in zip(bars, gaps, count, expected_alpha, strict=True):
        if n < min_count:
            assert bar.get_facecolor()[3] == 0 and gap.get_facecolor()[3] == 0  # hollow
            assert bar.get_linestyle() == "--"
        else:
            assert bar.get_facecolor()[3] == pytest.approx(alpha)
            assert gap.get_facecolor()[3] == pytest.approx(0.6 * alpha)
    # The two-sample bin has full accuracy error, yet is the faintest (or hollow) bar of the figure.
    sparse = int(np.argmin(count))
    assert count[sparse] == 2 and bars[sparse].get_height() == 0.0
    assert bars[sparse].get_facecolor()[3] == min(bar.get_facecolor()[3] for bar in bars)
    assert ("hollow" in ax.get_title()) == (min_count > 2)


def test_each_bin_is_labelled_with_its_count():
    probs, target = _case()
    data = reliability_diagram_data(probs, target, n_bins=10)
    ax = plot_reliability_diagram(probs, target, n_bins=10).axes[0]
    labels = [t for t in ax.texts if t.get_gid() == "reliability/count_label"]
    nonempty = data.count > 0
    assert [int(t.get_text()) for t in labels] == data.count[nonempty].tolist()
    centres = ((data.bin_edges[:-1] + data.bin_edges[1:]) / 2)[nonempty].double().numpy()
    np.testing.assert_allclose([t.get_position()[0] for t in labels], centres, rtol=1e-6)


@pytest.mark.parametrize("min_count", [-1, 1.5, True])
def test_min_count_is_checked(min_count):
    probs, target = _case()
    with pytest.raises(ValueError, match="`min_count`"):
        plot_reliability_diagram(probs, target, min_count=min_count)
