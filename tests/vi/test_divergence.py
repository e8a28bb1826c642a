import math

import numpy as np
import pyro.distributions as pdist
import pytest
import scipy.stats
import torch
import torch.distributions as td

from pvae.vi.divergence import KLEstimate, kl_divergence, total_variation


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kl_tables_match_scipy_entropy(seed):
    rng = np.random.default_rng(seed)
    p, q = rng.dirichlet(np.ones(7)), rng.dirichlet(np.ones(7))
    assert kl_divergence(p, q) == pytest.approx(scipy.stats.entropy(p, q), abs=1e-12)
    assert kl_divergence(torch.tensor(p), list(q)) == pytest.approx(
        scipy.stats.entropy(p, q), abs=1e-12
    )


def test_kl_lecture_formula_by_hand():
    p, q = [0.36, 0.48, 0.16], [1 / 3, 1 / 3, 1 / 3]
    by_hand = sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))
    assert kl_divergence(p, q) == pytest.approx(by_hand, abs=1e-12)
    assert by_hand == pytest.approx(0.0852996, abs=1e-7)


def test_kl_zero_conventions():
    # 0 log 0 = 0: a zero in p contributes nothing, even when q is also 0 there.
    assert kl_divergence([0.0, 1.0], [0.0, 1.0]) == 0.0
    assert kl_divergence([0.0, 1.0], [0.5, 0.5]) == pytest.approx(math.log(2), abs=1e-12)
    assert kl_divergence([0.5, 0.5], [1.0, 0.0]) == math.inf
    assert kl_divergence([0.3, 0.7], [0.3, 0.7]) == 0.0


def test_kl_batched_tables():
    p = torch.tensor([[0.5, 0.5], [0.1, 0.9]], dtype=torch.float64)
    q = torch.tensor([[0.9, 0.1], [0.1, 0.9]], dtype=torch.float64)
    kl = kl_divergence(p, q)
    assert kl.shape == (2,)
    assert kl[0].item() == pytest.approx(scipy.stats.entropy([0.5, 0.5], [0.9, 0.1]), abs=1e-12)
    assert kl[1].item() == 0.0


@pytest.mark.parametrize(
    "p, q, match",
    [
        ([0.5, 0.5], [0.2, 0.3, 0.5], "same shape"),
        ([1.2, -0.2], [0.5, 0.5], "non-negative"),
        ([0.5, 0.4], [0.5, 0.5], "sum to 1"),
        ([0.5, float("nan")], [0.5, 0.5], "finite"),
        ([], [], "at least one entry"),
        ("ab", [0.5, 0.5], "probability table"),
    ],
)
def test_kl_table_errors(p, q, match):
    with pytest.raises(ValueError, match=match):
        kl_divergence(p, q)


def test_kl_mixed_inputs_error():
    with pytest.raises(ValueError, match="both be probability tables"):
        kl_divergence([0.5, 0.5], td.Bernoulli(0.5))


def test_kl_closed_forms_match_torch_and_analytic():
    # Normal: log(s2/s1) + (s1^2 + (m1-m2)^2) / (2 s2^2) - 1/2
    m1, s1, m2, s2 = 0.3, 0.7, -1.0, 1.5
    analytic = math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5
    assert kl_divergence(td.Normal(m1, s1), td.Normal(m2, s2)) == pytest.approx(analytic, abs=1e-6)
    # Categorical closed form agrees with the table formula.
    p, q = torch.tensor([0.2, 0.3, 0.5]), torch.tensor([0.4, 0.4, 0.2])
    assert kl_divergence(td.Categorical(p), td.Categorical(q)) == pytest.approx(
        kl_divergence(p, q), abs=1e-6
    )
    # Pyro distributions and batches work too; batches come back as tensors.
    kl = kl_divergence(pdist.Normal(torch.zeros(3), 1.0), pdist.Normal(torch.ones(3), 1.0))
    assert torch.allclose(kl, torch.full((3,), 0.5, dtype=torch.float64))


def test_kl_monte_carlo_agrees_with_closed_form():
    torch.manual_seed(0)
    p, q = td.Normal(0.3, 0.7), td.Normal(-1.0, 1.5)
    exact = kl_divergence(p, q)
    r = kl_divergence(p, q, num_samples=20_000, method="monte_carlo")
    assert isinstance(r, KLEstimate) and r.num_samples == 20_000
    assert 0 < r.standard_error < 0.02
    assert abs(r.estimate - exact) < 4 * r.standard_error


def test_kl_monte_carlo_when_no_closed_form():
    torch.manual_seed(0)
    r = kl_divergence(td.Normal(0.0, 1.0), td.StudentT(3.0), num_samples=20_000)
    # Numerical integration of the same integral for reference.
    xs = np.linspace(-12, 12, 200_001)
    p = scipy.stats.norm.pdf(xs)
    ref = np.trapezoid(p * (scipy.stats.norm.logpdf(xs) - scipy.stats.t.logpdf(xs, 3)), xs)
    assert abs(r.estimate - ref) < 4 * r.standard_error + 1e-4
    with pytest.raises(ValueError, match="num_samples"):
        kl_divergence(td.Normal(0.0, 1.0), td.StudentT(3.0))
    with pytest.raises(ValueError, match="No closed-form KL"):
        kl_divergence(td.Normal(0.0, 1.0), td.StudentT(3.0), method="closed_form")
    with pytest.raises(ValueError, match="`method`"):
        kl_divergence(td.Normal(0.0, 1.0), td.Normal(0.0, 1.0), method="exact")


def test_total_variation():
    assert total_variation([0.5, 0.5], [0.9, 0.1]) == pytest.approx(0.4, abs=1e-12)
    assert total_variation([1.0, 0.0], [0.0, 1.0]) == 1.0
    assert total_variation(td.Bernoulli(0.3), td.Bernoulli(0.5)) == pytest.approx(0.2, abs=1e-7)
    assert total_variation(
        td.Categorical(torch.tensor([0.2, 0.8])), td.Categorical(torch.tensor([0.5, 0.5]))
    ) == pytest.approx(0.3, abs=1e-7)
    with pytest.raises(ValueError, match="finite support"):
        total_variation(td.Normal(0.0, 1.0), td.Normal(0.0, 1.0))
    with pytest.raises(ValueError, match="same shape"):
        total_variation([1.0], [0.5, 0.5])
