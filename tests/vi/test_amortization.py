"""Tests for pvae.vi.amortization: the approximation and amortization gaps (Cremer et al. 2018)."""

import pyro.distributions as dist
import pytest
import torch

from pvae import toy
from pvae.exact import enumerate_posterior
from pvae.vi.amortization import amortization_gap, vae_amortization_gap

pytestmark = pytest.mark.usefixtures("float64")  # exact checks in float64


# Amortization gap (Cremer et al. 2018) on the discrete toy VAE.


def test_amortization_gap_split_and_bottleneck():
    g = amortization_gap(hidden=(1,), num_steps=300, lr=0.1)
    post = enumerate_posterior(toy.toy_vae)
    # nats per example: the mean over the 6 datapoints of the exact log p(x_n)
    assert (g.num_examples, g.estimated) == (6, False)
    assert g.log_evidence == pytest.approx(post.log_evidence / 6, abs=1e-9)
    assert g.log_evidence_per_datapoint.shape == (6,)
    assert float(g.log_evidence_per_datapoint.mean()) == pytest.approx(g.log_evidence, abs=1e-9)
    assert g.approximation_gap == 0.0  # the categorical family contains the posterior
    assert g.total_gap == pytest.approx(g.approximation_gap + g.amortization_gap, abs=1e-12)
    # a one-unit bottleneck cannot represent three posterior logits per image
    assert g.amortization_gap > 0.05  # nats per example
    assert (g.elbo_amortized_per_datapoint <= g.log_evidence_per_datapoint + 1e-12).all()
    assert "amortization gap" in str(g) and "per example" in str(g)


def test_amortization_gap_svi_local_guides_approach_the_posterior():
    g = amortization_gap(hidden=(), num_steps=300, lr=0.1, best="svi")
    # per-datapoint SVI gets within 0.01 nats of the exact optimum; a linear encoder can
    # represent this toy's posterior (its logits are linear in x), so its gap is small too
    assert 0 <= g.approximation_gap < 0.01
    assert abs(g.amortization_gap) < 0.01
    assert g.total_gap == pytest.approx(g.approximation_gap + g.amortization_gap, abs=1e-12)


def test_amortization_gap_errors():
    with pytest.raises(ValueError, match="`best`"):
        amortization_gap(best="local")
    with pytest.raises(ValueError, match="one discrete latent site inside one plate"):
        amortization_gap(toy.burglary_alarm)


def test_vae_amortization_gap_on_a_linear_gaussian_vae():
    # decoder x = W z + b + 0.5 eps: log p(x) = N(x; b, W W^T + 0.25 I) and the posterior is
    # N(mu(x), Lambda^-1) with Lambda = I + W^T W / 0.25, the same for every x. The best
    # diagonal Gaussian has KL(q* || p) = (sum_i log Lambda_ii - log det Lambda) / 2.
    from pvae.models.vae import VAE

    torch.manual_seed(0)
    vae = VAE(x_dim=4, z_dim=2, hidden=(), likelihood="gaussian", scale=0.5).double()
    layer = vae.decoder.mlp.net[0]
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 0.8], [0.5, 1.0], [0.0, 0.7], [0.9, -0.2]]))
    w, b = layer.weight.detach(), layer.bias.detach()
    x = torch.randn(8, 4, dtype=torch.float64)
    g = vae_amortization_gap(vae, x, num_steps=400, lr=0.05, num_particles=20_000)
    cov = w @ w.T + 0.25 * torch.eye(4)
    exact = dist.MultivariateNormal(b, cov).log_prob(x)
    assert torch.allclose(g.log_evidence_per_datapoint, exact, atol=0.03)  # IS estimate
    lam = torch.eye(2) + w.T @ w / 0.25
    approx_gap = 0.5 * float(lam.diagonal().log().sum() - torch.logdet(lam))
    assert g.estimated and g.num_examples == len(x)
    assert g.approximation_gap == pytest.approx(approx_gap, abs=0.02)  # nats per example
    # the untrained encoder is far from the posterior; per-datapoint fitting closes that part
    assert g.amortization_gap > 1.0
    assert g.total_gap == pytest.approx(g.approximation_gap + g.amortization_gap, abs=1e-9)
    assert all(p.requires_grad for p in vae.parameters())  # the decoder is unfrozen again
