"""The generative API: marginals against independent computations, brute-force most probable values, training."""

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import norm

from ugmm_vision.generative import UGMMNetwork, fit_generative, most_probable_value, predict_class

BACKENDS = ["reference", "fused"]


def randomised(net: UGMMNetwork, seed: int = 0, sigma_range: tuple[float, float] = (0.3, 1.5)) -> UGMMNetwork:
    """Spread the parameters so that no test passes by symmetry (equal σ, equal weights)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in net.layers:
            layer.mu.copy_(torch.randn(layer.mu.shape, generator=gen, dtype=layer.mu.dtype))
            low, high = sigma_range
            sigma = low + (high - low) * torch.rand(layer.log_sigma.shape, generator=gen, dtype=layer.mu.dtype)
            layer.log_sigma.copy_(sigma.log())
            layer.mix_logits.copy_(torch.randn(layer.mix_logits.shape, generator=gen, dtype=layer.mu.dtype))
    return net.eval()


def scipy_single_layer(net: UGMMNetwork, x: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """log Σ_k π_k · (1 if x_k missing else N(x_k; μ_k, σ_k)) for the root of a single-layer network, in float64."""
    layer = net.layers[0]
    mu = layer.mu.detach().double().numpy()[0]
    sigma = layer.log_sigma.detach().double().exp().numpy()[0]
    logits = layer.mix_logits.detach().double().numpy()[0]
    log_pi = logits - logsumexp(logits)
    log_gauss = norm.logpdf(x, loc=mu, scale=sigma)  # (B, I)
    return logsumexp(log_pi + np.where(missing, 0.0, log_gauss), axis=1)  # (B,)


# -- marginalisation ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_single_layer_marginal_matches_float64_formula(backend):
    net = randomised(UGMMNetwork(4, hidden=(), backend=backend, dtype=torch.float64))
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(16, 4, generator=gen, dtype=torch.float64)
    missing = torch.rand(16, 4, generator=gen) < 0.4
    missing[0] = True  # every variable missing: the root is log Σ π = 0
    missing[1] = False
    got = net.log_prob(x, missing).detach()
    want = scipy_single_layer(net, x.numpy(), missing.numpy())
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)
    assert got[0].abs().item() < 1e-12


@pytest.mark.parametrize("backend", BACKENDS)
def test_marginal_equals_trapezoid_integral_over_the_missing_variable(backend):
    # A component is a density over its own variable only, so ∫ p dx_m over the real line diverges: the other
    # components are constant in x_m. The part of p that depends on x_m is p − p(x_m → ∞); integrating it and adding
    # the constant back gives the marginal, using nothing but evaluations of the network.
    torch.manual_seed(0)
    net = randomised(UGMMNetwork(3, hidden=(), backend=backend, dtype=torch.float64), seed=3)
    x = torch.tensor([[0.4, -1.1, 0.7], [2.0, 0.3, -0.5]], dtype=torch.float64)
    grid = torch.linspace(-30.0, 30.0, 24_001, dtype=torch.float64)  # (G,)
    for m, row in itertools.product(range(3), x):
        with torch.no_grad():
            rows = row.repeat(len(grid), 1)  # (G, 3)
            rows[:, m] = grid
            density = net.log_prob(rows).exp()  # (G,)
            far = row.clone().unsqueeze(0)
            far[0, m] = 1e6
            constant = net.log_prob(far).exp()  # (1,) the components that do not involve x_m
            integral = constant + torch.trapezoid(density - constant, grid)
            mask = torch.zeros(1, 3, dtype=torch.bool)
            mask[0, m] = True
            marginal = net.log_prob(row.unsqueeze(0), mask)
            assert abs(marginal.item() - math.log(integral.item())) < 1e-8, (m, row)


@pytest.mark.parametrize("backend", BACKENDS)
def test_deep_network_marginalises_in_the_first_layer_only(backend):
    net = randomised(UGMMNetwork(5, hidden=(6, 3), backend=backend, dtype=torch.float64), seed=2)
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(8, 5, generator=gen, dtype=torch.float64)
    missing = torch.rand(8, 5, generator=gen) < 0.5
    # First layer against the float64 formula, one neuron at a time.
    first = net.layers[0]
    for j in range(first.out_features):
        mu = first.mu[j].detach().numpy()
        sigma = first.log_sigma[j].detach().exp().numpy()
        log_pi = first.mix_logits[j].detach().log_softmax(-1).numpy()
        log_gauss = norm.logpdf(x.numpy(), loc=mu, scale=sigma)  # (B, I)
        want = logsumexp(log_pi + np.where(missing.numpy(), 0.0, log_gauss), axis=1)  # (B,)
        got = net.forward_hidden(x, missing)[0][:, j]
        np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-10)
    # Later layers see plain log-densities.
    y = first(x, missing)
    for layer in net.layers[1:]:
        y = layer(y)
    torch.testing.assert_close(net.log_prob(x, missing), y.squeeze(-1))


def test_missing_values_are_never_read():
    torch.manual_seed(0)
    net = UGMMNetwork(4, hidden=(3,)).train()
    x = torch.randn(6, 4)
    mask = torch.zeros(6, 4, dtype=torch.bool)
    mask[:, 1] = True
    with_nan = x.clone()
    with_nan[:, 1] = float("nan")
    net.eval()
    torch.testing.assert_close(net.log_prob(with_nan, mask), net.log_prob(x, mask))
    net.train()
    net.nll_loss(with_nan, mask).backward()
    for name, p in net.named_parameters():
        assert torch.isfinite(p.grad).all(), name


# -- most probable values ----------------------------------------------------------------------------------------
def explicit_search(net, x, indices, sets, mask=None):
    """For each row, loop over every combination (itertools.product order) and keep the first strict maximum."""
    best_values, best_scores, all_scores = [], [], []
    for b in range(x.shape[0]):
        best, best_score, scores = None, -math.inf, []
        for combo in itertools.product(*[s.tolist() for s in sets]):
            row = x[b : b + 1].clone()
            row_mask = None if mask is None else mask[b : b + 1].clone()
            for i, value in zip(indices, combo, strict=True):
                row[0, i] = value
                if row_mask is not None:
                    row_mask[0, i] = False
            score = net.log_prob(row, row_mask).item()
            scores.append(score)
            if score > best_score:
                best, best_score = combo, score
        best_values.append(best)
        best_scores.append(best_score)
        all_scores.append(scores)
    return torch.tensor(best_values), torch.tensor(best_scores), torch.tensor(all_scores)


def test_most_probable_value_equals_explicit_loop():
    torch.manual_seed(0)
    net = randomised(UGMMNetwork(4, hidden=(5, 3)), seed=5)
    x = torch.randn(10, 4)
    mask = torch.zeros(10, 4, dtype=torch.bool)
    mask[::3, 0] = True  # a marginalised variable besides the queried one
    candidates = torch.tensor([-1.5, 0.0, 0.5, 2.0])
    with torch.no_grad():
        got = net.most_probable_value(x, 2, candidates, mask)
        values, scores, all_scores = explicit_search(net, x, [2], [candidates], mask)
    torch.testing.assert_close(got.values, values.squeeze(-1))
    torch.testing.assert_close(got.log_prob, scores.float(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got.candidate_log_probs, all_scores.float(), rtol=1e-5, atol=1e-5)
    assert got.combinations.shape == (4, 1)


def test_multi_variable_brute_force_covers_every_combination():
    torch.manual_seed(1)
    net = randomised(UGMMNetwork(5, hidden=(4,)), seed=6)
    x = torch.randn(7, 5)
    sets = [torch.tensor([0.0, 1.0, 2.0]), torch.tensor([-1.0, 1.0])]
    with torch.no_grad():
        got = most_probable_value(net.log_prob, x, [3, 0], sets)
        values, scores, all_scores = explicit_search(net, x, [3, 0], sets)
    assert got.values.shape == (7, 2) and got.candidate_log_probs.shape == (7, 6)
    torch.testing.assert_close(got.combinations, torch.tensor(list(itertools.product([0.0, 1.0, 2.0], [-1.0, 1.0]))))
    torch.testing.assert_close(got.values, values.float())
    torch.testing.assert_close(got.log_prob, scores.float(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got.candidate_log_probs, all_scores.float(), rtol=1e-5, atol=1e-5)
    # Negative indices name the same variables.
    torch.testing.assert_close(most_probable_value(net.log_prob, x, [-2, -5], sets).values, got.values)


def test_predict_class_inserts_the_class_variable():
    torch.manual_seed(2)
    net = randomised(UGMMNetwork(4, hidden=(5,)), seed=7)
    features = torch.randn(9, 3)
    class_values = torch.tensor([-1.0, 0.0, 1.0])
    with torch.no_grad():
        labels = net.predict_class(features, 3, class_index=1, class_values=class_values)
        full = torch.cat([features[:, :1], torch.zeros(9, 1), features[:, 1:]], dim=1)
        want = torch.stack([net.log_prob(full.index_fill(1, torch.tensor([1]), v)) for v in class_values], dim=1)
    assert labels.dtype == torch.long
    torch.testing.assert_close(labels, want.argmax(dim=1))
    # Default: raw class indices 0 … K−1 as the last variable (the paper's encoding).
    with torch.no_grad():
        default = net.predict_class(features, 3)
        last = torch.stack([net.log_prob(torch.cat([features, torch.full((9, 1), float(c))], 1)) for c in range(3)])
    torch.testing.assert_close(default, last.argmax(dim=0))


# -- gradients and training --------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_every_parameter_receives_a_finite_gradient(backend):
    torch.manual_seed(0)
    net = UGMMNetwork(5, hidden=(10, 5), mixing_dropout=(0.2, 0.0, 0.0), backend=backend).train()
    x = torch.randn(32, 5)
    mask = torch.rand(32, 5) < 0.2
    (net.nll_loss(x, mask) - net.most_probable_value(x, 4, [0.0, 1.0, 2.0]).log_prob.mean()).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_fit_generative_lowers_the_nll_reproducibly_without_touching_the_global_rng():
    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (60,), generator=gen)
    features = torch.randn(60, 2, generator=gen) * 0.5 + (labels.unsqueeze(1) * 4.0 - 2.0)  # two clusters
    data = torch.cat([features, labels.unsqueeze(1).float()], dim=1)  # the class as a third variable
    mask = torch.rand(60, 3, generator=gen) < 0.1

    def train(batch_size):
        torch.manual_seed(0)
        net = UGMMNetwork(3, hidden=(4,), mixing_dropout=0.1, init="unit")
        before = net.eval().nll_loss(data, mask).item()
        state = torch.random.get_rng_state()
        history = fit_generative(net, data, mask=mask, epochs=25, lr=0.05, batch_size=batch_size, seed=1)
        assert torch.equal(torch.random.get_rng_state(), state), "fit_generative must not touch the global RNG"
        return net, before, history

    net, before, history = train(batch_size=32)
    assert len(history) == 25 and not net.training
    with torch.no_grad():
        assert net.nll_loss(data, mask).item() < before - 1.0
    assert train(batch_size=32)[2] == history  # same seed, same run
    assert train(batch_size=None)[2] != history  # full-batch steps: another run


# -- argument checks ---------------------------------------------------------------------------------------------
NET = UGMMNetwork(3, hidden=(2,))
X = torch.zeros(2, 3)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: UGMMNetwork(0), "`in_features`"),
        (lambda: UGMMNetwork(3, hidden=(4, 0)), r"`hidden\[1\]`"),
        (lambda: UGMMNetwork(3, hidden=(4,), mixing_dropout=(0.1,)), "`mixing_dropout`.*2 floats"),
        (lambda: UGMMNetwork(3, init="xavier"), "`init`"),
        (lambda: UGMMNetwork(3, backend="cuda"), "`backend`"),
        (lambda: NET.log_prob(torch.zeros(2, 4)), r"`x` of shape \(B, 3\)"),
        (lambda: NET.log_prob(X, torch.zeros(2, 3)), "`mask`.*boolean"),
        (lambda: NET.most_probable_value(X, 3, [0.0]), "`index`"),
        (lambda: NET.most_probable_value(X, [0, -3], [[0.0], [1.0]]), "distinct.*`index`"),
        (lambda: NET.most_probable_value(X, 0, []), "`candidates`"),
        (lambda: NET.most_probable_value(X, [0, 1], [[0.0]]), "`candidates`.*2 value sets"),
        (lambda: NET.most_probable_value(X, [0, 1], [[0.0], []]), r"`candidates\[1\]`"),
        (lambda: NET.predict_class(torch.zeros(2, 2), 1), "`num_classes`"),
        (lambda: NET.predict_class(torch.zeros(2, 2), 3, class_index=3), "`class_index`"),
        (lambda: NET.predict_class(torch.zeros(2, 2), 3, class_values=[0.0, 1.0]), "`class_values`"),
        (lambda: NET.predict_class(torch.zeros(2, 2), 3, mask=torch.zeros(2, 3, dtype=torch.bool)), "`mask`"),
        (lambda: predict_class(NET.log_prob, torch.zeros(2), 3), "`features`"),
        (lambda: fit_generative(NET, X, epochs=0), "`epochs`"),
        (lambda: fit_generative(NET, X, batch_size=0), "`batch_size`"),
        (lambda: fit_generative(NET, X, lr=0.0), "`lr`"),
        (lambda: fit_generative(NET, torch.zeros(2, 4)), "`x`"),
    ],
)
def test_invalid_arguments_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()
