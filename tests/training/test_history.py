"""Tests for the fit history: symmetric keys, the model's ELBO (beta = 1), deprecated aliases."""

import json
import math
import warnings

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.distributions import constraints

from pvae.models import VAE
from pvae.training.elbos import kl_prior
from pvae.training.history import DEPRECATED_KEYS, HistoryRow
from pvae.training.loop import fit

LOG_2PI = math.log(2 * math.pi)


# ----------------------------------------------------------------------------- rows
def test_old_keys_read_with_a_deprecation_warning():
    row = HistoryRow(epoch=2, train_reconstruction=-4.0, train_kl_prior=1.5, val_kl_prior=2.0)
    assert list(row) == ["epoch", "train_reconstruction", "train_kl_prior", "val_kl_prior"]
    assert json.loads(json.dumps(row)) == dict(row)
    row.update(val_num_active=3, val_mutual_information=0.5, val_marginal_kl=0.25)
    for old, new in DEPRECATED_KEYS.items():
        with pytest.warns(DeprecationWarning, match=f"'{old}' is deprecated.*use '{new}'"):
            assert row[old] == row[new]
    with pytest.warns(DeprecationWarning):
        assert row.get("kl") == 1.5 and "reconstruction" in row
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert row.get("missing", 7) == 7 and "missing" not in row and row.copy() == row
        assert list(row)[:4] == ["epoch", "train_reconstruction", "train_kl_prior", "val_kl_prior"]
        with pytest.raises(KeyError):
            row["nope"]
    assert HistoryRow.from_dict({"reconstruction": 1.0, "epoch": 1}) == {
        "train_reconstruction": 1.0,
        "epoch": 1,
    }


# ----------------------------------------------------------------------------- pvae models
def test_a_beta_vae_reports_the_models_elbo_and_its_objective_apart():
    torch.manual_seed(0)
    x, x_val = torch.rand(64, 6), torch.rand(24, 6)
    vae = VAE(6, 2, hidden=(5,), likelihood="continuous_bernoulli", beta=0.25)
    res = fit(vae, x, epochs=2, batch_size=32, lr=1e-2, elbo="analytic", seed=0, val_data=x_val)
    row = res.history[-1]
    assert list(row) == [
        "epoch",
        "train_elbo",
        "train_objective",
        "train_reconstruction",
        "train_kl_prior",
        "val_elbo",
        "val_reconstruction",
        "val_kl_prior",
        "beta",
        "seconds",
    ]
    assert row["beta"] == 0.25
    assert row["train_elbo"] == row["train_reconstruction"] - row["train_kl_prior"]
    assert row["val_elbo"] == pytest.approx(row["val_reconstruction"] - row["val_kl_prior"])
    with torch.no_grad():  # the KL is analytic, so the reported one is exactly the model's
        kl_train = kl_prior(vae.elbo_terms(x[:32])).mean().item()
        kl_val = kl_prior(vae.elbo_terms(x_val)).mean().item()
    assert row["train_kl_prior"] == pytest.approx(kl_train, rel=1e-5)
    assert row["val_kl_prior"] == pytest.approx(kl_val, rel=1e-5)


def test_a_beta_schedule_adds_the_objective_even_at_beta_one():
    torch.manual_seed(0)
    vae = VAE(6, 2, hidden=(5,), likelihood="continuous_bernoulli")
    res = fit(vae, torch.rand(32, 6), epochs=2, batch_size=32, beta_schedule=lambda e: e / 2)
    assert [r["beta"] for r in res.history] == [0.5, 1.0]
    assert all("train_objective" in r and "train_elbo" in r for r in res.history)


# ----------------------------------------------------------------------------- custom pairs
def _scaled_model(x):
    with pyro.plate("data", len(x)):
        with poutine.scale(scale=0.5):  # a hand-written beta = 1/2
            z = pyro.sample("z", dist.Normal(0.0, 1.0))
        pyro.sample("x", dist.Normal(z, 1.0), obs=x)


def _scaled_guide(x):
    a = pyro.param("a", torch.tensor(0.3))
    s = pyro.param("s", torch.tensor(0.8), constraint=constraints.positive)
    with pyro.plate("data", len(x)):
        with poutine.scale(scale=0.5):
            pyro.sample("z", dist.Normal(a * x, s))


def test_a_custom_pair_reports_the_unscaled_elbo_per_example_from_the_weights():
    """Closed form at the final parameters: q(z|x) = N(a x, s^2), p(z) = N(0, 1), p(x|z) = N(z, 1).

    The reported terms are one-draw estimates per example, averaged over 2,000 examples:
    the tolerance is 4 standard errors of that average, measured by drawing from q.
    """
    x = 2.0 * torch.randn(2000)
    res = fit(_scaled_model, x, guide=_scaled_guide, epochs=3, batch_size=2000, lr=0.05, seed=0)
    row = res.history[-1]
    assert res.per_example and res.note == ""
    assert {"train_objective", "train_elbo"} <= set(row)  # poutine.scale: they differ
    a, s = pyro.param("a").item(), pyro.param("s").item()
    m = a * x
    kl = -math.log(s) + (s**2 + m**2) / 2 - 0.5
    rec = -0.5 * LOG_2PI - ((x - m) ** 2 + s**2) / 2
    z = m + s * torch.randn(2000)  # the spread of one-draw estimates, per example
    kl_draw = dist.Normal(m, s).log_prob(z) - dist.Normal(0.0, 1.0).log_prob(z)
    rec_draw = dist.Normal(z, 1.0).log_prob(x)
    for key, exact, draws in [
        ("train_kl_prior", kl, kl_draw),
        ("train_reconstruction", rec, rec_draw),
    ]:
        se = float((draws - exact).std()) / math.sqrt(len(x))
        assert abs(row[key] - float(exact.mean())) < 4 * se, key
    assert row["train_elbo"] == row["train_reconstruction"] - row["train_kl_prior"]
    # the trained objective weights the KL by 1/2
    assert row["train_objective"] - row["train_elbo"] == pytest.approx(
        0.5 * float(kl.mean()), abs=0.1
    )


def _global_model(x, num_examples=None):
    mu = pyro.sample("mu", dist.Normal(0.0, 10.0))
    with pyro.plate("data", num_examples or len(x), subsample_size=len(x)):
        pyro.sample("x", dist.Normal(mu, 1.0), obs=x)


def _global_guide(x, num_examples=None):
    m = pyro.param("m", torch.tensor(0.0))
    s = pyro.param("s", torch.tensor(0.2), constraint=constraints.positive)
    pyro.sample("mu", dist.Normal(m, s))


def test_a_global_latent_gives_the_joint_elbo_over_the_number_of_examples():
    x = 1.5 + torch.randn(200)
    res = fit(_global_model, x, guide=_global_guide, epochs=3, batch_size=50, lr=0.05, seed=0)
    assert not res.per_example and "joint ELBO of the data set" in res.note
    assert "latent 'mu' is outside plate 'data'" in res.note
    assert "joint nats / number of examples" in repr(res)
    row = res.history[-1]
    assert "train_objective" not in row  # the plate's N/B scale is not a change of objective
    m, s = pyro.param("m").item(), pyro.param("s").item()
    kl = math.log(10.0 / s) + (s**2 + m**2) / 200.0 - 0.5  # KL(N(m, s^2) || N(0, 10^2))
    # one draw of log q - log p: its spread is about 1/sqrt(2) nats; / N = 200
    assert row["train_kl_prior"] == pytest.approx(kl / 200, abs=4 * 0.71 / 200)
    rec = float((-0.5 * LOG_2PI - ((x - m) ** 2 + s**2) / 2).mean())
    assert row["train_reconstruction"] == pytest.approx(rec, abs=4 * float(x.std()) * s)


def _map_guide(x):
    pyro.sample("mu", dist.Delta(pyro.param("mu_map", torch.tensor(0.0))))


def _map_model(x):
    mu = pyro.sample("mu", dist.Normal(0.0, 10.0))
    with pyro.plate("data", len(x)):
        pyro.sample("x", dist.Normal(mu, 1.0), obs=x)


def test_a_point_mass_guide_has_no_elbo_columns_only_its_objective():
    x, x_val = 2.0 + torch.randn(40), 2.0 + torch.randn(20)
    res = fit(_map_model, x, guide=_map_guide, epochs=30, batch_size=40, lr=0.1, val_data=x_val)
    row = res.history[-1]
    assert list(row) == ["epoch", "train_objective", "val_objective", "seconds"]
    assert "point mass" in res.note
    # the MAP objective per example on validation data: log p(x | mu) + log p(mu) / 20
    mu = pyro.param("mu_map").item()
    exact = dist.Normal(mu, 1.0).log_prob(x_val).mean() + dist.Normal(0.0, 10.0).log_prob(
        torch.tensor(mu)
    ) / len(x_val)
    assert row["val_objective"] == pytest.approx(float(exact), abs=1e-5)
    assert res.best_epoch == max(range(1, 31), key=lambda e: res.history[e - 1]["val_objective"])


def test_old_keys_of_a_fit_history_still_read():
    torch.manual_seed(0)
    vae = VAE(6, 2, hidden=(5,), likelihood="continuous_bernoulli")
    res = fit(vae, torch.rand(32, 6), epochs=1, val_data=torch.rand(8, 6))
    row = res.history[0]
    with pytest.warns(DeprecationWarning, match="'kl' is deprecated"):
        assert row["kl"] == row["train_kl_prior"]
    with pytest.warns(DeprecationWarning, match="'val_kl' is deprecated"):
        assert row["val_kl"] == row["val_kl_prior"]
    with pytest.warns(DeprecationWarning, match="'reconstruction' is deprecated"):
        assert row["reconstruction"] == row["train_reconstruction"]
