"""Looking inside uGMM neurons: strongest components, responsibilities, class density maps.

Maths only; the matching figures are in :mod:`ugmm_vision.report.neuron_plots` (``plot_neuron_components``,
``plot_responsibilities``, ``plot_class_density_map``, ``plot_mixing_weights_heatmap``,
``plot_sigma_distribution``).

* Per neuron — :func:`strongest_components` (its top-k components by mixing weight: input index, π, μ, σ) and
  :func:`neuron_density_curves` (each component's π·N(x; μ, σ²) over a grid).
* Per input — :func:`responsibilities` (B, O, I) posterior share of each component, :func:`top_responsibilities`
  (the strongest per row for one neuron), :func:`layer_inputs` (what each layer of a head sees), and
  :func:`class_density_map` (a class's log-density at every position of a CNN's feature map).
"""

from ugmm_vision.inspect._common import check_layer  # public: report/neuron_plots.py checks its layers alike
from ugmm_vision.inspect.components import DensityCurves, NeuronComponents, neuron_density_curves, strongest_components
from ugmm_vision.inspect.density_map import class_density_map
from ugmm_vision.inspect.posterior import (
    TopResponsibilities,
    layer_inputs,
    responsibilities,
    top_responsibilities,
)

__all__ = [
    "DensityCurves",
    "NeuronComponents",
    "TopResponsibilities",
    "check_layer",
    "class_density_map",
    "layer_inputs",
    "neuron_density_curves",
    "responsibilities",
    "strongest_components",
    "top_responsibilities",
]
