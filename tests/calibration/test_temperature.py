"""Temperature scaling against an independent float64 1-D search (scipy + scikit-learn's log loss)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize_scalar
from scipy.special import softmax
from sklearn.metrics import log_loss

from ugmm_vision.calibration import TemperatureScaler, fit_temperature
from ugmm_vision.functional import negative_log_likelihood


def calibrated_case(n: int = 4000, c: int = 5, seed: int = 0, scale: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels drawn from softmax(logits): a perfectly calibrated model (its best T is 1)."""
    g = torch.Generator().manual_seed(seed)
    logits = scale * torch.randn(n, c, generator=g)
    targets = torch.multinomial(logits.softmax(-1), 1, generator=g).squeeze(1)  # (N, 1) -> (N,)
    return logits, targets


def reference_temperature(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Minimise scikit-learn's float64 log loss of softmax(logits / T) over log T with a bounded 1-D search."""
    z, y = logits.double().numpy(), targets.numpy()
    labels = list(range(z.shape[1]))

    def nll(log_t: float) -> float:
        return log_loss(y, softmax(z / math.exp(log_t), axis=1), labels=labels)

    result = minimize_scalar(nll, bounds=(math.log(1e-2), math.log(1e2)), method="bounded", options={"xatol": 1e-9})
    return math.exp(result.x)


def test_overconfident_model_nll_drops_and_accuracy_is_unchanged() -> None:
    logits, targets = calibrated_case(seed=1)
    assert (logits.argmax(1) == targets).float().mean() > 0.6  # a decent classifier
    overconfident = 5 * logits
    temperature = fit_temperature(overconfident, targets)
    scaled = TemperatureScaler(temperature)(overconfident)
    assert temperature == pytest.approx(5.0, rel=0.05)
    assert negative_log_likelihood(scaled, targets) < 0.8 * negative_log_likelihood(overconfident, targets)
    assert torch.equal(scaled.argmax(1), overconfident.argmax(1))


@pytest.mark.parametrize(("scale", "seed"), [(5.0, 0), (0.3, 1), (1.0, 2), (2.5, 3)])
def test_matches_independent_one_dimensional_search(scale: float, seed: int) -> None:
    logits, targets = calibrated_case(n=2000, c=4, seed=seed)
    expected = reference_temperature(scale * logits, targets)
    assert fit_temperature(scale * logits, targets) == pytest.approx(expected, rel=1e-3)


def test_underconfident_model_gets_temperature_below_one() -> None:
    logits, targets = calibrated_case(seed=4)
    temperature = fit_temperature(0.3 * logits, targets)
    assert temperature < 1
    assert temperature == pytest.approx(0.3, rel=0.05)


@pytest.mark.parametrize("seed", [5, 6])
def test_calibrated_model_keeps_temperature_one(seed: int) -> None:
    logits, targets = calibrated_case(n=20000, seed=seed)
    assert fit_temperature(logits, targets) == pytest.approx(1.0, abs=0.03)


def test_float32_float64_and_grad_inputs_agree() -> None:
    logits, targets = calibrated_case(n=1000, seed=7)
    reference = fit_temperature(logits.double(), targets)
    assert fit_temperature(logits.requires_grad_(), targets) == pytest.approx(reference, rel=1e-6)
    assert logits.grad is None  # the input is detached, never back-propagated into


def test_works_on_inference_tensors_and_inside_inference_mode() -> None:
    logits, targets = calibrated_case(n=500, seed=10)
    reference = fit_temperature(2 * logits, targets)
    with torch.inference_mode():  # Lightning's predict/test loops produce inference tensors
        frozen_logits, frozen_targets = 2 * logits.double(), targets.clone()
        assert fit_temperature(frozen_logits, frozen_targets) == pytest.approx(reference, rel=1e-6)
        scaler = TemperatureScaler().fit(frozen_logits, frozen_targets)
    assert fit_temperature(frozen_logits, frozen_targets) == pytest.approx(reference, rel=1e-6)
    assert scaler.temperature.item() == pytest.approx(reference, rel=1e-6)


def test_separable_and_all_wrong_cases_stay_finite_and_in_bounds() -> None:
    logits = torch.tensor([[3.0, 0.0], [0.0, 3.0], [2.0, -1.0]])
    targets = torch.tensor([0, 1, 0])
    small = fit_temperature(logits, targets)  # every prediction right: NLL falls as T -> 0
    large = fit_temperature(-logits, targets)  # every prediction wrong: NLL falls as T -> inf
    assert 1e-4 <= small < 1 and math.isfinite(small)
    assert large == 1e4


def test_scaler_fit_forward_and_state_dict() -> None:
    logits, targets = calibrated_case(n=1000, seed=8)
    scaler = TemperatureScaler()
    torch.testing.assert_close(scaler(logits), logits)  # T = 1 before fitting
    assert scaler.fit(3 * logits, targets) is scaler
    assert scaler.temperature.item() == pytest.approx(fit_temperature(3 * logits, targets), rel=1e-6)
    torch.testing.assert_close(scaler(3 * logits), 3 * logits / scaler.temperature)
    assert list(dict(scaler.named_parameters())) == []  # a buffer, never trained by the model's optimiser

    restored = TemperatureScaler()
    restored.load_state_dict(scaler.state_dict())
    assert restored.temperature.item() == scaler.temperature.item()
    half = logits.half()
    assert restored(half).dtype == torch.float16
    assert restored.double()(logits.double()).dtype == torch.float64


@pytest.mark.parametrize(
    ("logits", "targets", "kwargs", "name"),
    [
        (torch.randn(4), torch.zeros(4, dtype=torch.long), {}, "`logits`"),
        (torch.randn(4, 1), torch.zeros(4, dtype=torch.long), {}, "`logits`"),
        (torch.randn(0, 3), torch.zeros(0, dtype=torch.long), {}, "`logits`"),
        (torch.randint(0, 3, (4, 3)), torch.zeros(4, dtype=torch.long), {}, "`logits`"),
        (torch.tensor([[0.0, float("nan")]]), torch.tensor([0]), {}, "`logits`"),
        (torch.tensor([[0.0, float("inf")]]), torch.tensor([0]), {}, "`logits`"),
        (torch.randn(4, 3), torch.zeros(3, dtype=torch.long), {}, "`targets`"),
        (torch.randn(4, 3), torch.zeros(4), {}, "`targets`"),
        (torch.randn(4, 3), torch.zeros(4, 1, dtype=torch.long), {}, "`targets`"),
        (torch.randn(4, 3), torch.tensor([0, 1, 2, 3]), {}, "`targets`"),
        (torch.randn(4, 3), torch.tensor([0, -1, 2, 0]), {}, "`targets`"),
        (torch.randn(4, 3), torch.zeros(4, dtype=torch.long), {"max_iter": 0}, "`max_iter`"),
    ],
)
def test_invalid_inputs_name_the_argument(logits: torch.Tensor, targets: torch.Tensor, kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        fit_temperature(logits, targets, **kwargs)
    with pytest.raises(ValueError, match=name):
        TemperatureScaler().fit(logits, targets, **kwargs)


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan"), float("inf"), True])
def test_scaler_rejects_bad_temperature(temperature: float) -> None:
    with pytest.raises(ValueError, match="`temperature`"):
        TemperatureScaler(temperature)


def test_scaler_rejects_integer_logits() -> None:
    with pytest.raises(ValueError, match="`logits`"):
        TemperatureScaler()(torch.ones(2, 3, dtype=torch.long))


def test_nll_of_fitted_temperature_is_a_minimum() -> None:
    logits, targets = calibrated_case(n=2000, seed=9)
    z = 2 * logits.double()
    t = fit_temperature(z, targets)
    nll = [negative_log_likelihood(z / (t * f), targets).item() for f in (0.99, 1.0, 1.01)]
    assert nll[1] <= min(nll[0], nll[2])
    np.testing.assert_allclose(
        nll[1], log_loss(targets.numpy(), softmax(z.numpy() / t, axis=1), labels=list(range(5))), rtol=1e-9
    )
