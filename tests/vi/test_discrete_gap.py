"""discrete_amortization_gap: the KL of two probability tables, checked by hand."""

from __future__ import annotations

import pytest
import torch

import pvae
from pvae.models import SemiSupervisedVAE


class Tables:
    """A stand-in model with fixed q(y | x) and p(y | x) tables."""

    def __init__(self, q, p):
        self.q = torch.tensor(q, dtype=torch.float64)
        self.p = torch.tensor(p, dtype=torch.float64)

    def discrete_guide(self, x, num_particles=1):
        return self.q

    def discrete_posterior(self, x, num_particles=1):
        return self.p


def test_gap_is_the_mean_kl_by_hand():
    q = [[0.5, 0.5, 0.0], [0.9, 0.05, 0.05]]
    p = [[0.25, 0.25, 0.5], [0.2, 0.3, 0.5]]
    gap = pvae.discrete_amortization_gap(Tables(q, p), torch.zeros(2, 1))
    import math

    kl0 = 0.5 * math.log(0.5 / 0.25) * 2  # the zero of q contributes nothing
    kl1 = 0.9 * math.log(0.9 / 0.2) + 0.05 * math.log(0.05 / 0.3) + 0.05 * math.log(0.05 / 0.5)
    assert gap.kl == pytest.approx((kl0 + kl1) / 2, abs=1e-12)
    assert gap.kl_per_datapoint.tolist() == pytest.approx([kl0, kl1], abs=1e-12)
    assert gap.agreement == 0.0 and gap.num_examples == 2  # argmax 0 vs 2 in both rows
    assert "nats per example" in str(gap)


def test_gap_of_the_posterior_itself_is_zero():
    p = [[0.1, 0.9], [0.6, 0.4]]
    assert pvae.discrete_amortization_gap(Tables(p, p), torch.zeros(2, 1)).kl == 0.0


def test_m2_gap_uses_its_classifier_and_its_posterior():
    m2 = SemiSupervisedVAE(4, 3, z_dim=1, hidden=(), seed=0)
    x = torch.bernoulli(torch.full((5, 4), 0.5), generator=torch.Generator().manual_seed(0))
    gap = pvae.discrete_amortization_gap(m2, x, num_particles=50, seed=1)
    assert torch.allclose(gap.guide, m2.predict_proba(x).double())
    assert torch.allclose(gap.posterior, m2.discrete_posterior(x, num_particles=50, seed=1))
    assert gap.kl > 0


def test_refusals():
    with pytest.raises(TypeError, match="discrete_guide"):
        pvae.discrete_amortization_gap(object(), torch.zeros(2, 1))
    with pytest.raises(ValueError, match="summing to 1"):
        pvae.discrete_amortization_gap(
            Tables([[0.5, 0.6], [0.5, 0.5]], [[0.5, 0.5]] * 2), torch.zeros(2, 1)
        )
    with pytest.raises(ValueError, match=r"\[N=3, K\]"):
        pvae.discrete_amortization_gap(Tables([[1.0]] * 2, [[1.0]] * 2), torch.zeros(3, 1))
