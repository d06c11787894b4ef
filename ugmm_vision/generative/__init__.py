"""uGMM networks as density models over observed variables: marginals, brute-force most probable values, training.

The paper's generative use (arXiv 2509.07569, the Iris experiment): a stack of uGMM layers ending in one root
neuron is trained by minimising the root's negative log-density of the data, with the class as one more input
variable, and classifies by the class value that makes the data most probable.
"""

from ugmm_vision.generative.inference import MostProbableValue, most_probable_value, predict_class
from ugmm_vision.generative.network import UGMMNetwork
from ugmm_vision.generative.training import fit_generative

__all__ = ["MostProbableValue", "UGMMNetwork", "fit_generative", "most_probable_value", "predict_class"]
