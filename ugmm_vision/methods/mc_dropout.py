"""MC dropout (Gal & Ghahramani 2016): dropout kept on at test time, N samples, their mean as the prediction.

Dropout here is the head's own (``nn.Dropout`` of an :class:`~ugmm_vision.heads.MLPHead`, the mixing dropout of
uGMM layers) plus, optionally, a ``feature_dropout`` on the features before the head (:class:`FeatureDropoutHead`).
In :mod:`ugmm_vision.compare` the member is trained with that feature dropout (:meth:`MCDropout.prepare_head`);
with ``ugmm-vision evaluate --method`` it is added to the loaded checkpoint at test time only — set
``feature_dropout: 0`` to use the dropout the model was trained with. The backbone runs once per image in eval
mode (its batch norms stay frozen) and only the head is sampled, so the cost is one backbone pass and N head passes.
Mutual information and sample disagreement are the OOD scores (:mod:`ugmm_vision.methods.predictive`).

Written by hand: switching dropout modules to training mode for N passes is a few lines, and doing it here keeps
the uGMM layers' mixing dropout (which no library knows) in the same mechanism.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor, nn

from ugmm_vision.checks import check_positive_int
from ugmm_vision.layers import UGMMLayer
from ugmm_vision.methods.base import UncertaintyMethod
from ugmm_vision.methods.predictive import sample_scores

__all__ = ["FeatureDropoutHead", "MCDropout", "dropout_enabled"]

DROPOUT_TYPES = (nn.modules.dropout._DropoutNd, UGMMLayer)  # UGMMLayer reads `training` for its mixing dropout only


@contextlib.contextmanager
def dropout_enabled(module: nn.Module) -> Iterator[int]:
    """Put the dropout modules of ``module`` (``nn.Dropout*``, uGMM layers' mixing dropout) in training mode, the
    rest untouched; restores every mode on exit. Yields how many modules were switched.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)).eval()
        >>> with dropout_enabled(net) as n:
        ...     n, net[1].training, net[0].training
        (1, True, False)
        >>> net[1].training
        False
    """
    switched = [m for m in module.modules() if isinstance(m, DROPOUT_TYPES)]
    modes = [m.training for m in switched]
    try:
        for m in switched:
            m.training = True
        yield len(switched)
    finally:
        for m, mode in zip(switched, modes, strict=True):
            m.training = mode


class FeatureDropoutHead(nn.Module):
    """``head(dropout(features))``: a head with dropout on its input features.

    Args:
        head: the head to wrap (keeps its ``in_features`` and ``num_classes``).
        p: dropout probability on the features.

    Example:
        >>> from ugmm_vision.heads import LinearHead
        >>> FeatureDropoutHead(LinearHead(8, 3), 0.1)(torch.randn(2, 8)).shape
        torch.Size([2, 3])
    """

    wraps_head = True

    def __init__(self, head: nn.Module, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Expected `p` in [0, 1), got {p}")
        self.dropout = nn.Dropout(p)
        self.head = head
        self.in_features = getattr(head, "in_features", None)
        self.num_classes = getattr(head, "num_classes", None)

    def forward(self, features: Tensor) -> Tensor:
        return self.head(self.dropout(features))


class MCDropout(UncertaintyMethod):
    """Monte Carlo dropout over the head.

    Args:
        n_samples: stochastic head passes per image (20 is a common default; the cost grows linearly).
        feature_dropout: dropout probability on the features before the head (0: only the head's own dropout).

    Example:
        >>> from ugmm_vision.backbones import SmallCNN
        >>> from ugmm_vision.heads import MLPHead
        >>> from ugmm_vision.models import ImageClassifier
        >>> model = ImageClassifier(SmallCNN(in_chans=1, widths=(4, 8)), MLPHead, num_classes=3)
        >>> method = MCDropout(n_samples=4, feature_dropout=0.2).attach([model])
        >>> out = method(torch.randn(2, 1, 8, 8), scores=True)
        >>> out["logits"].exp().sum(-1).allclose(torch.ones(2)), sorted(out)[1:]
        (True, ['neg_disagreement', 'neg_mutual_information'])
    """

    name = "mc_dropout"

    def __init__(self, n_samples: int = 20, feature_dropout: float = 0.1) -> None:
        super().__init__()
        check_positive_int("n_samples", n_samples)
        if not 0.0 <= feature_dropout < 1.0:
            raise ValueError(f"Expected `feature_dropout` in [0, 1), got {feature_dropout}")
        self.n_samples = n_samples
        self.feature_dropout = feature_dropout

    @property
    def forward_passes(self) -> int:
        return self.n_samples

    def prepare_head(self, head: nn.Module) -> nn.Module:
        if self.feature_dropout == 0 or isinstance(head, FeatureDropoutHead):
            return head
        return FeatureDropoutHead(head, self.feature_dropout)

    def attach(self, models: Sequence[nn.Module]) -> MCDropout:
        super().attach(models)
        self.model.head = self.prepare_head(self.model.head)  # no-op when trained with it (compare)
        return self

    @torch.no_grad()
    def predict_images(self, images: Tensor) -> dict[str, Tensor]:
        model = self.model
        features = model.backbone(images)  # (B, F), backbone in eval mode
        with dropout_enabled(model.head):
            log_probs = torch.stack([model.head(features).log_softmax(dim=-1) for _ in range(self.n_samples)])
        return sample_scores(log_probs)  # (S, B, C) → logits (B, C) and scores (B,)
