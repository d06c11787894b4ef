"""Feature density (DDU, Mukhoti et al. 2023): one Gaussian per class on the features the head receives.

After training, a Gaussian ``N(f; μ_c, Σ_c)`` per class is fitted on the training set's penultimate features (the
backbone's output, i.e. what the head receives — so it applies to any head, uGMM included). Its log marginal
density ``log Σ_c π_c N(f; μ_c, Σ_c)`` (π_c: training class frequencies) is an OOD score; the predictions stay the
head's. For a uGMM head the report puts the head's own density (``density_logsumexp``) beside this one.

Written by hand (plain torch, float64): it is a class-conditional Gaussian fit and a Cholesky solve. The fit
accumulates sufficient statistics (counts, sums, outer products) batch by batch, so the training features are never
held in memory at once. ``covariance="full"`` fits one covariance per class (DDU); ``"shared"`` one pooled
covariance (linear discriminant analysis; Lee et al. 2018's Mahalanobis score), better when classes have fewer
samples than feature dimensions. The covariance gets the smallest jitter ``ε·I`` (0, then 1e-20, 1e-19, … 1,
relative to the mean feature variance) that makes every Cholesky factorisation succeed, as DDU's code does.

Under DDP every process fits on the whole training loader (the loader is iterated directly, without a distributed
sampler), so every rank holds the same Gaussians and no gather is needed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from ugmm_vision.methods.base import UncertaintyMethod

__all__ = [
    "ClassGaussians",
    "FeatureDensity",
    "class_gaussian_log_density",
    "fit_class_gaussians",
    "log_marginal_density",
]

Covariance = Literal["full", "shared"]


@dataclass
class ClassGaussians:
    """Fitted class Gaussians: ``means`` (C, F), lower Cholesky factors ``chol`` (C, F, F) (the same matrix C
    times when shared), ``log_priors`` (C,), and the ``jitter`` that was added to the covariances."""

    means: Tensor
    chol: Tensor
    log_priors: Tensor
    jitter: float


def _accumulate(batches: Iterable[tuple[Tensor, Tensor]], num_classes: int) -> tuple[Tensor, Tensor, Tensor]:
    counts = sums = outer = None
    for features, targets in batches:
        f = features.detach().double().flatten(1)  # (B, F)
        onehot = torch.nn.functional.one_hot(targets.long(), num_classes).double()  # (B, C)
        if counts is None:
            counts = torch.zeros(num_classes, dtype=torch.float64, device=f.device)
            sums = torch.zeros(num_classes, f.shape[1], dtype=torch.float64, device=f.device)
            outer = torch.zeros(num_classes, f.shape[1], f.shape[1], dtype=torch.float64, device=f.device)
        counts += onehot.sum(0)
        sums += onehot.T @ f  # (C, F)
        outer += torch.einsum("bc,bi,bj->cij", onehot, f, f)  # (C, F, F)
    if counts is None:
        raise ValueError("Expected at least one batch of features to fit the class Gaussians, got none")
    return counts, sums, outer


def fit_class_gaussians(
    features: Tensor | Iterable[tuple[Tensor, Tensor]],
    targets: Tensor | None = None,
    num_classes: int | None = None,
    covariance: Covariance = "full",
) -> ClassGaussians:
    """Fit one Gaussian per class (maximum likelihood, float64), with the smallest jitter that keeps it positive
    definite.

    Args:
        features: features (N, F) with ``targets`` (N,), or an iterable of ``(features, targets)`` batches.
        targets: class labels when ``features`` is a tensor.
        num_classes: number of classes C (default: ``targets.max() + 1``; required for batches).
        covariance: ``"full"`` (one covariance per class) or ``"shared"`` (one pooled covariance).

    Returns:
        The fitted :class:`ClassGaussians`.

    Example:
        >>> g = fit_class_gaussians(torch.tensor([[0.0], [2.0], [10.0], [12.0]]), torch.tensor([0, 0, 1, 1]))
        >>> g.means.flatten().tolist(), (g.chol**2).flatten().tolist()  # variances (1 each, ML)
        ([1.0, 11.0], [1.0, 1.0])
    """
    if covariance not in ("full", "shared"):
        raise ValueError(f"Expected `covariance` to be 'full' or 'shared', got {covariance!r}")
    if isinstance(features, Tensor):
        if targets is None or targets.shape != features.shape[:1]:
            raise ValueError(f"Expected `targets` of shape ({features.shape[0]},), got {targets}")
        num_classes = int(targets.max()) + 1 if num_classes is None else num_classes
        batches: Iterable = [(features, targets)]
    else:
        if num_classes is None:
            raise ValueError("Expected `num_classes` when `features` is an iterable of batches, got None")
        batches = features
    counts, sums, outer = _accumulate(batches, num_classes)
    if bool((counts < 1).any()):
        raise ValueError(f"Expected every class to have training features, got counts {counts.tolist()}")
    means = sums / counts[:, None]  # (C, F)
    scatter = outer - counts[:, None, None] * means[:, :, None] * means[:, None, :]  # (C, F, F) Σ (f−μ)(f−μ)ᵀ
    if covariance == "full":
        cov = scatter / counts[:, None, None]
    else:
        cov = (scatter.sum(0) / counts.sum()).expand_as(scatter)
    cov = (cov + cov.transpose(1, 2)) / 2
    eye = torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device)
    scale = float(cov.diagonal(dim1=1, dim2=2).mean().clamp_min(1e-12))
    for jitter in [0.0, *(10.0**k for k in range(-20, 1))]:
        chol, info = torch.linalg.cholesky_ex(cov + jitter * scale * eye)
        if int(info.abs().max()) == 0 and bool(torch.isfinite(chol).all()):
            return ClassGaussians(means, chol, (counts / counts.sum()).log(), jitter * scale)
    raise ValueError(
        "Expected the class covariances to become positive definite with a jitter up to their mean variance, "
        "got a failing Cholesky factorisation; are the features finite?"
    )


def class_gaussian_log_density(features: Tensor, gaussians: ClassGaussians) -> Tensor:
    """Per-class log densities ``log N(f; μ_c, Σ_c)`` (float64).

    Args:
        features: features (B, F).
        gaussians: from :func:`fit_class_gaussians`.

    Returns:
        Log densities (B, C); ``logsumexp(out + gaussians.log_priors, -1)`` is the log marginal density.

    Example:
        >>> g = fit_class_gaussians(torch.tensor([[0.0], [2.0], [10.0], [12.0]]), torch.tensor([0, 0, 1, 1]))
        >>> round(float(class_gaussian_log_density(torch.tensor([[1.0]]), g)[0, 0]), 4)  # log N(1; 1, 1)
        -0.9189
    """
    f = features.double().flatten(1).to(gaussians.means.device)  # (B, F)
    diff = f[None] - gaussians.means[:, None, :]  # (C, B, F)
    z = torch.linalg.solve_triangular(gaussians.chol, diff.transpose(1, 2), upper=False)  # (C, F, B)
    maha = (z**2).sum(dim=1)  # (C, B)
    log_det = 2 * gaussians.chol.diagonal(dim1=1, dim2=2).log().sum(-1)  # (C,)
    dim = f.shape[1]
    return (-0.5 * (maha + log_det[:, None] + dim * math.log(2 * math.pi))).T  # (B, C)


def log_marginal_density(features: Tensor, gaussians: ClassGaussians) -> Tensor:
    """``log Σ_c π_c N(f; μ_c, Σ_c)`` (B,), the DDU OOD score (higher = more in-distribution)."""
    return torch.logsumexp(class_gaussian_log_density(features, gaussians) + gaussians.log_priors, dim=-1)  # (B,)


class FeatureDensity(UncertaintyMethod):
    """DDU's feature density as an OOD score beside the head's own predictions (one forward pass).

    Args:
        covariance: ``"full"`` (one covariance per class, DDU) or ``"shared"`` (pooled).

    Example:
        >>> from ugmm_vision.backbones import SmallCNN
        >>> from ugmm_vision.heads import LinearHead
        >>> from ugmm_vision.models import ImageClassifier
        >>> from torch.utils.data import TensorDataset
        >>> model = ImageClassifier(SmallCNN(in_chans=1, widths=(4, 8)), LinearHead, num_classes=2)
        >>> data = TensorDataset(torch.randn(40, 1, 8, 8), torch.arange(40) % 2)
        >>> method = FeatureDensity(covariance="shared").attach([model])
        >>> method.fit(DataLoader(data, batch_size=16))
        >>> sorted(method(torch.randn(3, 1, 8, 8), scores=True))
        ['feature_density', 'logits']
    """

    name = "feature_density"
    keeps_head_logits = True

    def __init__(self, covariance: Covariance = "full") -> None:
        super().__init__()
        if covariance not in ("full", "shared"):
            raise ValueError(f"Expected `covariance` to be 'full' or 'shared', got {covariance!r}")
        self.covariance = covariance
        self.gaussians: ClassGaussians | None = None

    @torch.no_grad()
    def fit(self, train_loader: DataLoader) -> None:
        """Fit the class Gaussians on the backbone's features of ``train_loader``'s images (eval mode)."""
        model = self.model
        model.eval()
        device = next(model.parameters()).device

        def batches():
            for images, targets in train_loader:
                yield model.backbone(images.to(device)), targets.to(device)

        self.gaussians = fit_class_gaussians(batches(), num_classes=model.num_classes, covariance=self.covariance)

    def predict_images(self, images: Tensor) -> dict[str, Tensor]:
        if self.gaussians is None:
            raise ValueError("Expected `fit(train_loader)` before predicting with FeatureDensity, got no fit")
        features = self.model.backbone(images)
        out = self.model_outputs(self.model, features)
        density = log_marginal_density(features, self.gaussians)  # (B,) float64, where the Gaussians are
        out["feature_density"] = density.to(features.device, features.dtype)
        return out
