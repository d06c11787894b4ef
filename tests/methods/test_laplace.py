"""Laplace: the method's predictive equals laplace-torch's own on the same model and data."""

import copy

import pytest
import torch
from laplace import Laplace
from laplace.curvature import GGNInterface
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ugmm_vision.backbones import SmallCNN
from ugmm_vision.heads import LinearHead, MLPHead, UGMMHead, count_parameters
from ugmm_vision.methods import LastLayerLaplace, head_last_layer_is_linear
from ugmm_vision.models import ImageClassifier


def _setup(head):
    torch.manual_seed(0)
    model = ImageClassifier(SmallCNN(in_chans=1, widths=(4, 8)), head, num_classes=3).eval()
    data = TensorDataset(torch.randn(48, 1, 8, 8), torch.arange(48) % 3)
    return model, DataLoader(data, batch_size=16), torch.randn(5, 1, 8, 8)


@pytest.mark.parametrize("head", [LinearHead, lambda f, c: MLPHead(f, c, hidden=(6,))])
def test_last_layer_laplace_equals_the_library(head):
    model, loader, images = _setup(head)
    method = LastLayerLaplace().attach([copy.deepcopy(model)])
    method.fit(loader)
    assert method.subset == "last_layer"
    reference = Laplace(nn.Sequential(model.backbone, model.head), "classification", hessian_structure="kron")
    reference.fit(loader)
    reference.optimize_prior_precision(method="marglik", pred_type="glm", link_approx="probit")
    expected = reference(images, pred_type="glm", link_approx="probit")
    torch.testing.assert_close(method(images).exp(), expected.float())
    assert not torch.allclose(expected.float(), model(images).softmax(-1), atol=1e-4)  # it is not the plain softmax


@pytest.mark.parametrize("subset", ["last_layer", "head"])
def test_ugmm_head_gets_a_diagonal_laplace_equal_to_the_library(subset):
    model, loader, images = _setup(lambda f, c: UGMMHead(f, c, hidden=(4,)))
    method = LastLayerLaplace(ugmm_subset=subset).attach([copy.deepcopy(model)])
    method.fit(loader)
    random = model.head.layers[-1] if subset == "last_layer" else model.head
    assert method.subset == ("ugmm_last_layer" if subset == "last_layer" else "head")
    assert method.laplace.n_params == count_parameters(random)  # nothing else is part of the posterior
    net = copy.deepcopy(nn.Sequential(model.backbone, model.head))
    net.requires_grad_(False)
    (net[1].layers[-1] if subset == "last_layer" else net[1]).requires_grad_(True)
    for layer in net[1].layers:
        layer.backend = "reference"
    reference = Laplace(net, "classification", subset_of_weights="all", hessian_structure="diag", backend=GGNInterface)
    reference.fit(loader)
    reference.optimize_prior_precision(method="marglik", pred_type="glm", link_approx="probit")
    expected = reference(images, pred_type="glm", link_approx="probit")
    torch.testing.assert_close(method(images).exp(), expected.float())


def test_last_layer_rule_and_arguments():
    assert head_last_layer_is_linear(LinearHead(4, 2))
    assert head_last_layer_is_linear(MLPHead(4, 2, hidden=(3,)))
    assert not head_last_layer_is_linear(UGMMHead(4, 2))
    with pytest.raises(ValueError, match="`hessian_structure`"):
        LastLayerLaplace(hessian_structure="lowrank")
    with pytest.raises(ValueError, match="`ugmm_subset`"):
        LastLayerLaplace(ugmm_subset="backbone")
    with pytest.raises(ValueError, match="`ugmm_hessian_structure`"):
        LastLayerLaplace(ugmm_hessian_structure="kron")
    model, _, images = _setup(LinearHead)
    with pytest.raises(ValueError, match="fit"):
        LastLayerLaplace().attach([model])(images)


def test_per_sample_jacobians_equal_the_librarys_batched_ones():
    from ugmm_vision.methods.laplace import _per_sample_ggn

    torch.manual_seed(0)
    head = UGMMHead(6, 3, hidden=(4,)).eval()
    for layer in head.layers:
        layer.backend = "reference"
    x = torch.randn(7, 6)
    expected_js, expected_f = GGNInterface(head, "classification").jacobians(x)
    js, f = _per_sample_ggn()(head, "classification").jacobians(x)
    assert js.shape == (7, 3, count_parameters(head))
    torch.testing.assert_close(js, expected_js)
    torch.testing.assert_close(f, expected_f)
    assert js.abs().sum() > 0
