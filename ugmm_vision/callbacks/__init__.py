"""Lightning callbacks: batch prediction to CSV, random-generator state in checkpoints, NaN guard."""

from ugmm_vision.callbacks.nan_guard import NaNGuard, NonFiniteTrainingError
from ugmm_vision.callbacks.prediction_writer import CSVPredictionWriter, prediction_rows
from ugmm_vision.callbacks.rng_state import RNGStateCheckpoint, get_rng_states, set_rng_states

__all__ = [
    "CSVPredictionWriter",
    "NaNGuard",
    "NonFiniteTrainingError",
    "RNGStateCheckpoint",
    "get_rng_states",
    "prediction_rows",
    "set_rng_states",
]
