"""The branch-free keep-one-component guard of ``mixing_dropout``, checked against the mask it derives from."""

from __future__ import annotations

import torch
from scipy.stats import chisquare

from ugmm_vision.functional import mixing_dropout


def test_guard_keeps_exactly_the_largest_draw_and_leaves_other_rows_alone():
    torch.manual_seed(3)
    logits = torch.randn(500, 6)
    p = 0.7
    torch.manual_seed(4)
    draws = torch.rand(logits.shape)  # the draws mixing_dropout makes at the same seed
    torch.manual_seed(4)
    out = mixing_dropout(logits, p)
    drop = draws < p
    all_dropped = drop.all(dim=1)
    assert 0 < all_dropped.sum() < 500  # both kinds of rows occur at this seed
    # Rows with a survivor: exactly the Bernoulli mask.
    torch.testing.assert_close(out[~all_dropped], logits[~all_dropped].masked_fill(drop[~all_dropped], -torch.inf))
    # Rows that lost every component: only the component with the largest draw survives, with its logit.
    kept = torch.isfinite(out[all_dropped])
    assert (kept.sum(dim=1) == 1).all()
    assert torch.equal(kept.float().argmax(dim=1), draws[all_dropped].argmax(dim=1))
    assert torch.equal(out[all_dropped][kept], logits[all_dropped][kept])


def test_rescued_component_is_uniform_over_the_inputs():
    torch.manual_seed(0)
    out = mixing_dropout(torch.zeros(6000, 5), p=0.95)  # most rows lose every component
    kept = torch.isfinite(out)
    single = kept.sum(dim=1) == 1
    counts = kept[single].sum(dim=0).numpy()
    assert counts.sum() > 4000
    assert chisquare(counts).pvalue > 1e-3  # a fixed seed: deterministic, and far from a biased choice
