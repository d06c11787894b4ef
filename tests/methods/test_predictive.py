"""MC dropout and deep ensembles: p = 0 is the deterministic model, identical members are one member, MI by hand."""

import copy

import numpy as np
import pytest
import torch

from ugmm_vision.backbones import SmallCNN
from ugmm_vision.heads import LinearHead, MLPHead, UGMMHead
from ugmm_vision.methods import (
    DeepEnsemble,
    FeatureDropoutHead,
    MCDropout,
    member_disagreement,
    mutual_information,
    predictive_log_probs,
)
from ugmm_vision.models import ImageClassifier


def _model(head, **kwargs):
    torch.manual_seed(0)
    return ImageClassifier(SmallCNN(in_chans=1, widths=(4, 8)), lambda f, c: head(f, c, **kwargs), num_classes=4)


@pytest.mark.parametrize(
    ("head", "kwargs"), [(MLPHead, {"hidden": (8,), "dropout": 0.0}), (UGMMHead, {"hidden": (6,)}), (LinearHead, {})]
)
def test_mc_dropout_with_p_zero_equals_the_deterministic_model(head, kwargs):
    model = _model(head, **kwargs).eval()
    images = torch.randn(5, 1, 8, 8)
    with torch.no_grad():
        expected = model(images).log_softmax(-1)
    out = MCDropout(n_samples=3, feature_dropout=0.0).attach([copy.deepcopy(model)])(images, scores=True)
    torch.testing.assert_close(out["logits"], expected)
    torch.testing.assert_close(out["neg_mutual_information"], torch.zeros(5), atol=1e-12, rtol=0)
    assert torch.equal(out["neg_disagreement"], torch.zeros(5))


@pytest.mark.parametrize(
    ("head", "kwargs", "p"), [(MLPHead, {"hidden": (8,), "dropout": 0.5}, 0.0), (UGMMHead, {}, 0.3)]
)
def test_mc_dropout_samples_differ_and_restores_eval_mode(head, kwargs, p):
    model = _model(head, mixing_dropout=0.5, **kwargs) if head is UGMMHead else _model(head, **kwargs)
    method = MCDropout(n_samples=8, feature_dropout=p).attach([model])
    assert isinstance(model.head, FeatureDropoutHead) == (p > 0)
    out = method(torch.randn(6, 1, 8, 8), scores=True)
    assert (out["neg_mutual_information"] < 0).all()  # samples disagree somewhat: MI > 0
    assert not any(m.training for m in model.modules())
    assert method.cost() == {"method": "mc_dropout", "forward_passes": 8, "members": 1}


def test_ensemble_of_identical_members_equals_one_member():
    model = _model(UGMMHead).eval()
    images = torch.randn(5, 1, 8, 8)
    method = DeepEnsemble(members=3).attach([copy.deepcopy(model) for _ in range(3)])
    out = method(images, scores=True)
    with torch.no_grad():
        torch.testing.assert_close(out["logits"], model(images).log_softmax(-1))
    torch.testing.assert_close(out["neg_mutual_information"], torch.zeros(5), atol=1e-12, rtol=0)
    assert torch.equal(out["neg_disagreement"], torch.zeros(5))
    assert method.cost() == {"method": "ensemble", "forward_passes": 3, "members": 3}


def test_mutual_information_and_disagreement_by_hand():
    probs = np.array([[[0.7, 0.2, 0.1]], [[0.1, 0.6, 0.3]], [[0.6, 0.3, 0.1]]])  # (S=3, B=1, C=3)
    mean = probs.mean(0)
    entropy = lambda p: -(p * np.log(p)).sum(-1)  # noqa: E731
    expected = entropy(mean) - entropy(probs).mean(0)
    log_probs = torch.tensor(probs).log()
    np.testing.assert_allclose(mutual_information(log_probs).numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(predictive_log_probs(log_probs).exp().numpy(), mean, rtol=1e-12)
    assert member_disagreement(log_probs).tolist() == [pytest.approx(1 / 3)]  # mean's top is class 0; one says 1


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="`n_samples`"):
        MCDropout(n_samples=0)
    with pytest.raises(ValueError, match="`feature_dropout`"):
        MCDropout(feature_dropout=1.0)
    with pytest.raises(ValueError, match="`members`"):
        DeepEnsemble(members=0)
    with pytest.raises(ValueError, match="`models`"):
        DeepEnsemble(members=2).attach([_model(LinearHead)])
    with pytest.raises(ValueError, match="`checkpoints`"):
        DeepEnsemble().load_members(_model(LinearHead))
    with pytest.raises(ValueError, match="`log_probs`"):
        mutual_information(torch.zeros(3, 4))
