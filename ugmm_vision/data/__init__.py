"""LightningDataModules; evaluation sets are named (``"id"``, ``"ood"``, …), never indexed."""

from ugmm_vision.data.digits import DigitsDataModule

__all__ = ["DigitsDataModule"]
