"""SemiSupervisedVAE (M2): the label's posterior against quadrature, the data interface."""

from __future__ import annotations

import pyro
import pytest
import torch

import pvae
from pvae.models import SemiSupervisedVAE


def binary(n, d, seed=0):
    return torch.bernoulli(torch.full((n, d), 0.4), generator=torch.Generator().manual_seed(seed))


def test_discrete_posterior_converges_to_bayes_rule_by_quadrature():
    """z_dim = 1: p(y | x) from p(x | y) = integral of p(x | y, z) N(z; 0, 1) dz on a grid."""
    m2 = SemiSupervisedVAE(4, 3, z_dim=1, hidden=(5,), seed=0)
    with torch.no_grad():  # a proposal wider than the posterior: importance sampling converges
        m2.head.scale.weight.zero_()
        m2.head.scale.bias.fill_(2.5)
    x = binary(3, 4, seed=1)
    grid = torch.linspace(-9, 9, 3601).reshape(-1, 1, 1)  # [G, 1, 1]
    with torch.no_grad():
        log_px_y = []
        for label in range(3):
            y = torch.full((3,), label)
            log_lik = m2.decode(y, grid.expand(-1, 3, 1)).log_prob(x).double()  # [G, N]
            log_prior = torch.distributions.Normal(0.0, 1.0).log_prob(grid[:, :, 0]).double()
            log_px_y.append(torch.logsumexp(log_lik + log_prior, 0))
    exact = torch.softmax(torch.stack(log_px_y, -1), -1)  # uniform p(y): the grid step cancels
    estimate = m2.discrete_posterior(x, num_particles=4000, seed=0)
    assert torch.allclose(estimate, exact, atol=0.01)


def test_predict_and_predict_proba():
    m2 = SemiSupervisedVAE((2, 2), 3, z_dim=2, hidden=(4,), seed=0)
    x = binary(5, 4).reshape(5, 2, 2)
    p = m2.predict_proba(x)
    assert p.shape == (5, 3) and torch.allclose(p.sum(-1), torch.ones(5))
    assert torch.equal(m2.predict(x), p.argmax(-1))
    assert torch.allclose(m2.discrete_guide(x), p.double())


@pytest.mark.slow
def test_mixed_batches_train_the_classifier_on_labels():
    """Labelled examples only: alpha * log q(y|x) lifts the classifier to the labels."""
    x = torch.cat([torch.zeros(16, 4), torch.ones(16, 4)])
    x[:, 0] = torch.tensor([0.0, 1.0]).repeat(16)  # a little noise in one pixel
    y = torch.cat([torch.zeros(16), torch.ones(16)]).long()
    y_obs = y.clone()
    y_obs[4:16] = -1
    y_obs[20:] = -1  # 4 labels per class
    m2 = SemiSupervisedVAE(4, 2, z_dim=1, hidden=(8,), alpha=5.0, seed=0)
    pvae.fit(m2, (x, y_obs), epochs=15, batch_size=32, lr=5e-2, elbo="enum", seed=0)
    assert float((m2.predict(x) == y).float().mean()) == 1.0


def test_bad_labels_are_refused():
    m2 = SemiSupervisedVAE(4, 3, z_dim=1, hidden=())
    x = binary(2, 4)
    with pytest.raises(ValueError, match=r"labels in 0..2 or -1"):
        m2.model(x, torch.tensor([0, 3]))
    with pytest.raises(ValueError, match=r"integer tensor of shape \[2\]"):
        m2.guide(x, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="alpha"):
        SemiSupervisedVAE(4, 3, alpha=-1.0)


def test_save_and_load(tmp_path):
    m2 = SemiSupervisedVAE(4, 3, z_dim=2, hidden=(5,), alpha=0.5, seed=3)
    pvae.save(m2, tmp_path / "m2.safetensors")
    again = pvae.load(tmp_path / "m2.safetensors")
    x = binary(3, 4)
    assert again.alpha == 0.5 and torch.equal(again.predict_proba(x), m2.predict_proba(x))


def test_history_elbo_of_labelled_data_is_the_labelled_bound():
    """All labelled: train_reconstruction - train_kl_prior estimates sum of L(x, y)."""
    m2 = SemiSupervisedVAE(4, 2, z_dim=1, hidden=(), seed=0)
    x, y = binary(32, 4), torch.tensor([0, 1] * 16)
    res = pvae.fit(m2, (x, y), epochs=1, batch_size=32, lr=1e-9, elbo="enum", seed=0)
    row = res.history[0]
    elbo = pyro.infer.TraceEnum_ELBO(
        num_particles=200, vectorize_particles=True, max_plate_nesting=1
    )
    reference = -elbo.loss(m2.model, m2.guide, x, y) / 32
    assert row["train_reconstruction"] - row["train_kl_prior"] == pytest.approx(reference, abs=0.5)


def test_enumerated_labels_encode_as_the_concatenated_one_hot_input(float64):
    """encode(x, labels [K, 1]) shares x's part of the first layer; the numbers and the
    parameters (names, shapes: the checkpoint layout) are those of cat(x, one_hot(y))."""
    m2 = SemiSupervisedVAE(5, 3, z_dim=2, hidden=(4, 6), seed=0)
    shapes = {name: tuple(p.shape) for name, p in m2.state_dict().items()}
    assert shapes["encoder.net.0.weight"] == (4, 5 + 3)  # x's columns, then one per label
    assert shapes["decoder.net.0.weight"] == (6, 2 + 3)
    x, labels = binary(7, 5).double(), torch.arange(3).reshape(3, 1)
    loc, scale = m2.encode(x, labels)
    one_hot = torch.nn.functional.one_hot(labels, 3).double().expand(3, 7, 3)
    ref_loc, ref_scale = m2.head(m2.encoder(torch.cat([x.expand(3, 7, 5), one_hot], -1)))
    assert torch.allclose(loc, ref_loc, atol=1e-12) and torch.allclose(
        scale, ref_scale, atol=1e-12
    )
    sampled = torch.tensor([2, 0, 1, 1, 0, 2, 0])  # one label per example: the plain input
    assert torch.allclose(m2.encode(x, sampled)[0], loc[sampled, torch.arange(7)], atol=1e-12)
