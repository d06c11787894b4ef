"""Laplace approximation of the head's posterior with ``laplace-torch`` (Daxberger et al. 2021), GLM predictive.

Library: ``laplace-torch`` (PyPI; ``import laplace``) — maintained, it fits the curvature, tunes the prior
precision by marginal likelihood and computes the linearised (GLM) predictive with the probit approximation.
Nothing of that is written here; this module only picks what the library applies to:

* heads whose last layer is an ``nn.Linear`` (:class:`~ugmm_vision.heads.LinearHead`, MLP heads): the standard
  **last-layer Laplace** with a Kronecker-factored (KFAC) GGN, ``subset_of_weights="last_layer"``;
* **uGMM heads**: a uGMM layer is not a linear layer — its outputs are log-densities, non-linear in μ, σ and π —
  so last-layer Laplace (which needs an ``nn.Linear``) and KFAC (whose factors exist for linear and convolution
  layers only) do not apply. What is done instead: a **diagonal GGN Laplace over the class uGMM layer** — the
  uGMM analogue of "last layer" (``ugmm_subset="last_layer"``: its μ, σ and π are random, every other parameter
  is frozen at its trained value) — or over all parameters of the head (``ugmm_subset="head"``), through
  laplace-torch's ``subset_of_weights="all"`` with its ``torch.func`` GGN backend, which differentiates any module
  (with per-sample Jacobians, see :func:`_per_sample_ggn`).
  The uGMM layers of that copy compute with the reference backend because the fused kernel's
  ``autograd.Function`` does not support ``torch.func`` transforms. Same predictive (GLM, probit), same prior
  tuning. The class layer is the default because the Jacobians cost classes backward passes per image through every
  random layer: over a whole head with a 64-wide hidden layer on digits, fitting took over ten
  minutes on 2 CPU cores (measured with the library's batched Jacobians, before the per-sample ones), against
  seconds for the class layer.

The approximation lives outside the module tree (laplace-torch holds its own deep copy of the network, on the
device where it was fitted). Under DDP every process fits on the whole training loader (iterated directly), so all
ranks hold the same posterior.
"""

from __future__ import annotations

import copy
from typing import Literal

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from ugmm_vision.checks import check_choice
from ugmm_vision.layers import UGMMLayer
from ugmm_vision.methods.base import UncertaintyMethod, base_head

__all__ = ["LastLayerLaplace", "head_last_layer_is_linear"]

HessianStructure = Literal["kron", "diag", "full"]
JACOBIAN_CHUNK = 256
"""Images per Jacobian on the uGMM path (memory: chunk × classes × random parameters floats)."""


def _per_sample_ggn():
    """laplace-torch's ``GGNInterface`` with per-sample Jacobians (built lazily: laplace-torch is imported on use).

    Why written here: ``GGNInterface.jacobians`` differentiates the batch's whole output ``(B, C)`` with one
    ``jacrev`` — B·C backward passes, each over the whole batch, so O(B²·C) work, which made the uGMM predictive
    take minutes per 10,000 images. In eval mode the samples are independent, so ``vmap`` over samples of a
    single-sample ``jacrev`` gives the same Jacobians with O(B·C) work. Everything else (GGN, prior tuning,
    predictive) stays the library's; ``tests/methods/test_laplace.py`` checks the Jacobians against the library's.
    """
    from laplace.curvature import GGNInterface

    class PerSampleGGN(GGNInterface):
        def jacobians(self, x, enable_backprop: bool = False):
            def one_sample(x_i):
                def outputs(params):
                    out = torch.func.functional_call(self.model, (params, self.buffers_dict), x_i.unsqueeze(0))
                    return out.squeeze(0), out.squeeze(0)

                return torch.func.jacrev(outputs, has_aux=True)(self.params_dict)

            js, f = torch.func.vmap(one_sample)(x)
            js = torch.cat([j.flatten(start_dim=2) for j in js.values()], dim=-1)  # (B, C, P)
            if self.subnetwork_indices is not None:
                js = js[:, :, self.subnetwork_indices]
            return (js, f) if enable_backprop else (js.detach(), f.detach())

    return PerSampleGGN


def head_last_layer_is_linear(head: nn.Module) -> bool:
    """Whether the last module with parameters of ``head`` is an ``nn.Linear`` (last-layer Laplace applies).

    Example:
        >>> from ugmm_vision.heads import LinearHead, UGMMHead
        >>> head_last_layer_is_linear(LinearHead(4, 2)), head_last_layer_is_linear(UGMMHead(4, 2))
        (True, False)
    """
    with_params = [m for m in base_head(head).modules() if any(True for _ in m.parameters(recurse=False))]
    return bool(with_params) and isinstance(with_params[-1], nn.Linear)


class LastLayerLaplace(UncertaintyMethod):
    """Laplace over the head (last layer for linear heads, all head parameters for uGMM heads), GLM predictive.

    Args:
        hessian_structure: curvature of the last linear layer: ``"kron"`` (KFAC), ``"diag"`` or ``"full"``.
        ugmm_hessian_structure: curvature over a uGMM head's parameters: ``"diag"`` or ``"full"`` (full is
            quadratic in 3·I·O; only for small heads).
        ugmm_subset: which uGMM-head parameters are random: ``"last_layer"`` (the class layer) or ``"head"``.
        link_approx: laplace-torch's approximation of the softmax of the Gaussian predictive (``"probit"``,
            ``"mc"``, ``"bridge"``).
        prior_optimization: tune the prior precision by ``"marglik"`` (marginal likelihood on the training
            set), or None to keep precision 1.

    Example:
        >>> from torch.utils.data import TensorDataset
        >>> from ugmm_vision.backbones import SmallCNN
        >>> from ugmm_vision.heads import LinearHead
        >>> from ugmm_vision.models import ImageClassifier
        >>> model = ImageClassifier(SmallCNN(in_chans=1, widths=(4,)), LinearHead, num_classes=3)
        >>> method = LastLayerLaplace().attach([model])
        >>> method.fit(DataLoader(TensorDataset(torch.randn(30, 1, 8, 8), torch.arange(30) % 3), batch_size=10))
        >>> probabilities = method(torch.randn(2, 1, 8, 8)).exp()  # log-probabilities of the predictive
        >>> torch.allclose(probabilities.sum(-1), torch.ones(2))
        True
    """

    name = "laplace"

    def __init__(
        self,
        hessian_structure: HessianStructure = "kron",
        ugmm_hessian_structure: Literal["diag", "full"] = "diag",
        ugmm_subset: Literal["last_layer", "head"] = "last_layer",
        link_approx: Literal["probit", "mc", "bridge"] = "probit",
        prior_optimization: Literal["marglik"] | None = "marglik",
    ) -> None:
        super().__init__()
        self.hessian_structure = check_choice("hessian_structure", hessian_structure, ("kron", "diag", "full"))
        self.ugmm_hessian_structure = check_choice("ugmm_hessian_structure", ugmm_hessian_structure, ("diag", "full"))
        self.ugmm_subset = check_choice("ugmm_subset", ugmm_subset, ("last_layer", "head"))
        self.link_approx = check_choice("link_approx", link_approx, ("probit", "mc", "bridge"))
        self.prior_optimization = check_choice("prior_optimization", prior_optimization, ("marglik", None))
        self.laplace = None
        self.subset: str | None = None

    def build_laplace(self):
        """The (unfitted) laplace-torch object for the attached model; see the module docstring for the choice."""
        from laplace import Laplace

        model = self.model
        if head_last_layer_is_linear(model.head):
            self.subset = "last_layer"
            net = nn.Sequential(model.backbone, model.head)  # laplace-torch deep-copies it
            structure = self.hessian_structure
            return Laplace(net, "classification", subset_of_weights="last_layer", hessian_structure=structure)
        net = copy.deepcopy(nn.Sequential(model.backbone, model.head)).eval()
        ugmm_layers = [m for m in net[1].modules() if isinstance(m, UGMMLayer)]
        for layer in ugmm_layers:
            layer.backend = "reference"  # the fused autograd.Function has no torch.func support
        net.requires_grad_(False)  # only the chosen parameters are random
        if self.ugmm_subset == "head" or not ugmm_layers:
            self.subset = "head"
            net[1].requires_grad_(True)
        else:
            self.subset = "ugmm_last_layer"
            ugmm_layers[-1].requires_grad_(True)
        return Laplace(
            net,
            "classification",
            subset_of_weights="all",
            hessian_structure=self.ugmm_hessian_structure,
            backend=_per_sample_ggn(),
        )

    def fit(self, train_loader: DataLoader) -> None:
        self.model.eval()
        self.laplace = self.build_laplace()
        if self.subset != "last_layer":  # same data in batches of JACOBIAN_CHUNK (bounds the Jacobians' memory)
            train_loader = DataLoader(
                train_loader.dataset,
                batch_size=JACOBIAN_CHUNK,
                num_workers=train_loader.num_workers,
                collate_fn=train_loader.collate_fn,
            )
        self.laplace.fit(train_loader)
        if self.prior_optimization == "marglik":
            self.laplace.optimize_prior_precision(method="marglik", pred_type="glm", link_approx=self.link_approx)

    def predict_images(self, images: Tensor) -> dict[str, Tensor]:
        if self.laplace is None:
            raise ValueError("Expected `fit(train_loader)` before predicting with LastLayerLaplace, got no fit")
        device = self.laplace._device
        chunks = images.split(JACOBIAN_CHUNK) if self.subset != "last_layer" else (images,)
        probs = torch.cat(
            [self.laplace(c.to(device), pred_type="glm", link_approx=self.link_approx) for c in chunks]
        )  # (B, C)
        probs = probs.detach().to(images.device, torch.float32)
        return {"logits": probs.clamp_min(torch.finfo(probs.dtype).tiny).log()}
