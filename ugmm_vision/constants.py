"""Numerical constants that the reference maths (:mod:`ugmm_vision.functional`) and the fused kernels
(:mod:`ugmm_vision.ops`) share; a ground-floor module, so that neither has to import the other for them.

Example:
    >>> round(HALF_LOG_2PI, 6)
    0.918939
"""

from __future__ import annotations

import math

__all__ = ["HALF_LOG_2PI"]

HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)  # ½·log(2π), the Gaussian's normalising constant in log space
