"""Lightning callbacks: batch prediction to CSV, random-generator state in checkpoints, NaN guard, learning rates."""

from ugmm_vision.callbacks.lr_monitor import LearningRateMonitor
from ugmm_vision.callbacks.nan_guard import NaNGuard, NonFiniteTrainingError
from ugmm_vision.callbacks.prediction_writer import CSVPredictionWriter, prediction_rows
from ugmm_vision.callbacks.rng_state import RNGStateCheckpoint, get_rng_states, set_rng_states

__all__ = [
    "CSVPredictionWriter",
    "LearningRateMonitor",
    "NaNGuard",
    "NonFiniteTrainingError",
    "RNGStateCheckpoint",
    "get_rng_states",
    "prediction_rows",
    "set_rng_states",
]
