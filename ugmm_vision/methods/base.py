"""``UncertaintyMethod``: how predictions and uncertainty scores are produced from trained classifier(s).

A method wraps one or more trained :class:`~ugmm_vision.models.ImageClassifier` (its *members*) and is itself a
``LightningModule`` whose ``predict_step`` returns what the report reads — ``logits`` (for sampling methods the log
of the mean predictive), ``targets``, and per-sample OOD scores named by the method (higher = more
in-distribution). So the evaluation loop stays Lightning's: :func:`ugmm_vision.report.evaluate.collect_outputs`
runs any method over the same named sets (``"id"``, ``"ood/<name>"``, ``"shift/…"``) and gathers them under DDP.

Life cycle (:mod:`ugmm_vision.compare` and ``ugmm-vision evaluate --method`` follow it):

1. ``prepare_head(head)`` — a training-time change of each member's head (MC dropout's feature dropout); identity
   for the others;
2. train ``num_members`` models (or load checkpoints) and ``attach(models)``;
3. ``fit(train_loader)`` — post-hoc fitting on the training set (DDU's Gaussians, Laplace's curvature);
4. ``trainer.predict(method, loaders)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from lightning import LightningModule
from torch import Tensor, nn
from torch.utils.data import DataLoader

from ugmm_vision.heads import head_outputs

__all__ = ["UncertaintyMethod", "base_head", "ready_method"]


def base_head(head: nn.Module) -> nn.Module:
    """The head a method's wrapper wraps (``head.head`` for wrappers that set ``wraps_head``), else ``head``."""
    while getattr(head, "wraps_head", False):
        head = head.head
    return head


class UncertaintyMethod(LightningModule):
    """Base of the methods in :mod:`ugmm_vision.methods`; subclasses implement :meth:`predict_images`.

    Attributes:
        name: short name used in reports (``"mc_dropout"``, ``"ensemble"``, …).
        keeps_head_logits: whether the method's logits are the head's own (so a uGMM head's density scores still
            apply to them); False for methods that average or integrate predictives.
        num_members: how many independently trained models the method needs.
    """

    name: ClassVar[str] = "method"
    keeps_head_logits: ClassVar[bool] = False

    def __init__(self) -> None:
        super().__init__()
        self.members = nn.ModuleList()

    # -- contract ------------------------------------------------------------------------------------------------
    @property
    def num_members(self) -> int:
        return 1

    @property
    def forward_passes(self) -> int:
        """Passes through the head per test image (all members and samples together)."""
        return self.num_members

    def cost(self) -> dict[str, int | str]:
        """Test-time cost: the method's name, forward passes per image and members."""
        return {"method": self.name, "forward_passes": self.forward_passes, "members": self.num_members}

    def prepare_head(self, head: nn.Module) -> nn.Module:
        """A training-time change of a member's head (identity here)."""
        return head

    def attach(self, models: Sequence[nn.Module]) -> UncertaintyMethod:
        """Take the trained members (``ImageClassifier``-like: ``backbone``, ``head``, ``num_classes``)."""
        models = list(models)
        if len(models) != self.num_members:
            raise ValueError(f"Expected `models` to hold {self.num_members} trained model(s), got {len(models)}")
        for i, model in enumerate(models):
            if not all(hasattr(model, key) for key in ("backbone", "head", "num_classes")):
                raise TypeError(
                    f"Expected `models[{i}]` to be an ImageClassifier (backbone, head, num_classes), "
                    f"got {type(model).__name__}"
                )
        self.members = nn.ModuleList(models)
        return self

    @property
    def model(self) -> nn.Module:
        """The first (for single-model methods: the only) member."""
        if len(self.members) == 0:
            raise ValueError(f"Expected trained models attached to {type(self).__name__} (call `attach`), got none")
        return self.members[0]

    def fit(self, train_loader: DataLoader) -> None:
        """Post-hoc fitting on the training set (nothing for methods that need none)."""

    def predict_images(self, images: Tensor) -> dict[str, Tensor]:
        """``{"logits": (B, C), <score name>: (B,), …}`` for a batch of images (in eval mode, no gradients)."""
        raise NotImplementedError

    # -- shared helpers ------------------------------------------------------------------------------------------
    @staticmethod
    def model_outputs(model: nn.Module, features: Tensor) -> dict[str, Tensor]:
        """What ``ImageClassifier.predict_step`` gives from features: logits and, for stacked uGMM heads, the
        hidden log-density sum."""
        return head_outputs(model.head, features)

    def forward(self, images: Tensor, scores: bool = False) -> Tensor | dict[str, Tensor]:
        """The method's logits for ``images`` (with ``scores=True`` the whole :meth:`predict_images` dict)."""
        self.eval()
        out = self.predict_images(images)
        return out if scores else out["logits"]

    def predict_step(self, batch: tuple[Tensor, ...] | Tensor, batch_idx: int, dataloader_idx: int = 0) -> dict:
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        check = getattr(self.model, "check_batch", None)
        if check is not None:
            check(images, "predict")
        out = self.predict_images(images)
        if isinstance(batch, (tuple, list)) and len(batch) > 1:
            out["targets"] = batch[1]
        return out


def ready_method(
    method: UncertaintyMethod,
    model: nn.Module,
    datamodule,
    ckpt_path: str | None = None,
    device: torch.device | str | None = None,
) -> UncertaintyMethod:
    """Attach a trained model (or, for an ensemble with ``checkpoints``, its members) and fit the method.

    ``ugmm-vision evaluate --method`` goes through here: ``model`` is loaded from ``ckpt_path`` (when given), moved
    to ``device`` (where the trainer will predict), attached, and the method is fitted on the data module's
    training loader. Every DDP process does the same on the whole training set, so all ranks agree.
    """
    from ugmm_vision.methods.checkpoint import load_weights

    if not isinstance(method, UncertaintyMethod):
        raise TypeError(f"Expected `method` to be an UncertaintyMethod, got {type(method).__name__}")
    if hasattr(method, "load_members"):  # an ensemble: its members come from its own `checkpoints`
        method.load_members(model)
    else:
        if ckpt_path is not None:
            load_weights(model, ckpt_path, argument="ckpt_path")
        method.attach([model])
    if device is not None:
        method.to(device)
    datamodule.setup("fit")
    method.fit(datamodule.train_dataloader())
    return method
