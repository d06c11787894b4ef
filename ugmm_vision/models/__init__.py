"""LightningModules composing backbone, head, loss and metrics."""

from ugmm_vision.models.classifier import HeadFactory, ImageClassifier

__all__ = ["HeadFactory", "ImageClassifier"]
