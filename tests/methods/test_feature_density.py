"""DDU feature density: class Gaussians against scipy, streaming fit, jitter, the method on a model."""

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from torch.utils.data import DataLoader, TensorDataset

from ugmm_vision.backbones import SmallCNN
from ugmm_vision.heads import LinearHead, UGMMHead
from ugmm_vision.methods import (
    FeatureDensity,
    class_gaussian_log_density,
    fit_class_gaussians,
    log_marginal_density,
)
from ugmm_vision.models import ImageClassifier


def _data(n=90, f=3, c=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    targets = torch.arange(n) % c
    mix = torch.randn(c, f, f, generator=gen)
    features = torch.randn(n, f, generator=gen)
    features = torch.einsum("nf,ngf->ng", features, mix[targets]) + 3 * targets[:, None].float()
    return features, targets


@pytest.mark.parametrize("covariance", ["full", "shared"])
def test_class_gaussian_log_density_matches_scipy(covariance):
    features, targets = _data()
    g = fit_class_gaussians(features, targets, covariance=covariance)
    x = torch.randn(7, 3, dtype=torch.float64) * 2
    ours = class_gaussian_log_density(x, g).numpy()
    f, t = features.double().numpy(), targets.numpy()
    pooled = sum(np.cov(f[t == c].T, bias=True) * (t == c).sum() for c in range(3)) / len(t)
    expected = np.stack(
        [
            multivariate_normal(
                f[t == c].mean(0), np.cov(f[t == c].T, bias=True) if covariance == "full" else pooled
            ).logpdf(x.numpy())
            for c in range(3)
        ],
        axis=1,
    )
    assert g.jitter == 0.0
    np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-10)
    priors = np.log(np.bincount(t) / len(t))
    np.testing.assert_allclose(log_marginal_density(x, g).numpy(), logsumexp(expected + priors, axis=1), rtol=1e-10)


def test_streaming_fit_equals_one_shot():
    features, targets = _data(n=61)
    one = fit_class_gaussians(features, targets)
    batches = [(features[i : i + 10], targets[i : i + 10]) for i in range(0, 61, 10)]
    streamed = fit_class_gaussians(batches, num_classes=3)
    torch.testing.assert_close(streamed.means, one.means)
    torch.testing.assert_close(streamed.chol, one.chol)


def test_jitter_makes_a_singular_covariance_positive_definite():
    features = torch.randn(4, 10, dtype=torch.float64)  # 2 samples per class in 10 dimensions: rank ≤ 1
    g = fit_class_gaussians(features, torch.tensor([0, 0, 1, 1]))
    assert g.jitter > 0
    assert torch.isfinite(class_gaussian_log_density(torch.randn(3, 10), g)).all()


def test_bad_arguments_are_named():
    features, targets = _data()
    with pytest.raises(ValueError, match="`covariance`"):
        fit_class_gaussians(features, targets, covariance="diag")
    with pytest.raises(ValueError, match="every class"):
        fit_class_gaussians(features, targets, num_classes=4)
    with pytest.raises(ValueError, match="`covariance`"):
        FeatureDensity(covariance="tied")
    with pytest.raises(ValueError, match="fit"):
        FeatureDensity().attach([ImageClassifier(SmallCNN(in_chans=1, widths=(4,)), LinearHead, num_classes=2)])(
            torch.randn(1, 1, 8, 8)
        )


@pytest.mark.parametrize("head", [LinearHead, UGMMHead])
def test_method_keeps_the_head_predictions_and_scores_the_backbone_features(head):
    torch.manual_seed(0)
    model = ImageClassifier(SmallCNN(in_chans=1, widths=(4, 8)), head, num_classes=3).eval()
    images, targets = torch.randn(60, 1, 8, 8), torch.arange(60) % 3
    method = FeatureDensity(covariance="shared").attach([model])
    method.fit(DataLoader(TensorDataset(images, targets), batch_size=16))
    out = method(images[:5], scores=True)
    with torch.no_grad():
        features = model.backbone(images)
        torch.testing.assert_close(out["logits"], model(images[:5]))
    expected = log_marginal_density(features[:5], fit_class_gaussians(features, targets, covariance="shared"))
    torch.testing.assert_close(out["feature_density"], expected.float())
    assert method.cost() == {"method": "feature_density", "forward_passes": 1, "members": 1}
