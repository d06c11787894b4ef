"""Post-hoc calibration of a trained classifier's logits (fitted on held-out data, applied to any head)."""

from ugmm_vision.calibration.temperature import TemperatureScaler, fit_temperature

__all__ = ["TemperatureScaler", "fit_temperature"]
