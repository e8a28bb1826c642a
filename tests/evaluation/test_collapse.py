"""Tests for pvae.evaluation.collapse: KL per dimension, active units, mutual information."""

import math

import numpy as np
import pyro
import pytest
import torch

from pvae.evaluation.collapse import CollapseDiagnostics, collapse_callback, collapse_diagnostics


class HandEncoder:
    """loc = (x0, x1, 0), scale = (1, 0.5, 1): dims 0 and 1 active, dim 2 collapsed."""

    def encode(self, x):
        loc = torch.stack([x[:, 0], x[:, 1], torch.zeros(len(x))], -1)
        scale = torch.tensor([1.0, 0.5, 1.0]).expand(len(x), 3)
        return loc, scale


def test_collapse_closed_form_kl_and_active_units():
    x = torch.randn(300, 2, dtype=torch.float64) * torch.tensor([1.0, 0.05], dtype=torch.float64)
    d = collapse_diagnostics(HandEncoder(), x)
    assert isinstance(d, CollapseDiagnostics)
    x = x.float().double()
    expected_kl = torch.stack(
        [
            0.5 * (x[:, 0] ** 2).mean(),
            0.5 * ((x[:, 1] ** 2).mean() + 0.25 - 1) - math.log(0.5),
            torch.tensor(0.0, dtype=torch.float64),
        ]
    )
    np.testing.assert_allclose(d.kl_prior_per_dim.double(), expected_kl, atol=1e-6)
    np.testing.assert_allclose(d.activity[:2].double(), x.var(0), rtol=1e-5)
    # Var(x1) = 0.0025 < 0.01: inactive even though it moves a little
    assert d.active_units.tolist() == [True, False, False] and d.num_active == 1
    assert d.kl_prior == pytest.approx(float(expected_kl.sum()), abs=1e-5)
    assert d.marginal_kl == pytest.approx(d.kl_prior - d.mutual_information, abs=1e-12)
    with pytest.warns(DeprecationWarning, match="renamed `kl_prior`"):
        assert d.kl == d.kl_prior


def test_mutual_information_known_values():
    class Ignore:  # q(z | x) = N(0, 1) for every x: I(x; z) = 0 exactly
        def encode(self, x):
            return torch.zeros(len(x), 2), torch.ones(len(x), 2)

    mi = collapse_diagnostics(Ignore(), torch.randn(200, 3)).mutual_information
    assert mi == pytest.approx(0.0, abs=1e-12)

    class Copy:  # x ~ N(0, 1), z | x ~ N(x, 1): I = 0.5 log 2 nats per dimension
        def encode(self, x):
            return x, torch.ones_like(x)

    x = torch.randn(1000, 2)
    mi = collapse_diagnostics(Copy(), x, num_samples=2).mutual_information
    # two dims; the batch-aggregate estimator over N = 1000, 2000 draws has sd ~ 0.025
    assert abs(mi - math.log(2)) < 0.1

    class Sharp:  # near-deterministic codes of distinct points: I -> log N (its upper bound)
        def encode(self, x):
            return x, torch.full_like(x, 1e-3)

    mi = collapse_diagnostics(Sharp(), torch.randn(100, 2)).mutual_information
    assert mi <= math.log(100) + 1e-9 and mi > math.log(100) - 0.01


def test_collapse_callback_and_errors():
    cb = collapse_callback(torch.randn(50, 2), every=2)
    assert cb(1, HandEncoder(), {}) is None
    row = cb(2, HandEncoder(), {"epoch": 2})
    assert set(row) == {"val_num_active", "val_mutual_information", "val_marginal_kl"} | {
        f"val_kl_prior_dim_{i}" for i in range(3)
    }
    assert row["val_kl_prior_dim_2"] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="`vae` must have `encode"):
        collapse_diagnostics(object(), torch.randn(5, 2))
    with pytest.raises(ValueError, match="at least 2 data points"):
        collapse_diagnostics(HandEncoder(), torch.randn(1, 2))
    with pytest.raises(ValueError, match="`every` must be a positive int"):
        collapse_callback(torch.randn(5, 2), every=0)


def test_large_beta_vae_has_fewer_active_units():
    from pvae.data import digits
    from pvae.models.vae import VAE
    from pvae.training.loop import fit

    data = digits(binarize="static")
    x, x_val = data.x_train[:300], data.x_test[:200]
    found = {}
    for beta in (1.0, 20.0):
        pyro.clear_param_store()
        vae = VAE(x_dim=64, z_dim=4, hidden=(32,), likelihood="bernoulli", beta=beta)
        result = fit(
            vae, x, epochs=12, batch_size=50, lr=1e-2, seed=0, progress=False,
            elbo="analytic", callbacks=[collapse_callback(x_val, every=4)],
        )  # fmt: skip
        rows = [r for r in result.history if "val_num_active" in r]
        assert [r["epoch"] for r in rows] == [4, 8, 12]
        found[beta] = collapse_diagnostics(vae, x_val)
        assert rows[-1]["val_num_active"] == found[beta].num_active  # same x_val, same encoder
    assert found[1.0].num_active >= 2
    assert found[20.0].num_active < found[1.0].num_active
    assert found[20.0].mutual_information < found[1.0].mutual_information


def test_front_door_for_a_conditional_vae_and_a_clear_error_for_an_autoencoder():
    from pvae.models import VAE, Autoencoder, ConditionalVAE

    x = (torch.rand(20, 4) > 0.5).float()
    y = torch.arange(20) % 2
    cvae = ConditionalVAE(4, 2, num_classes=2, hidden=(), seed=0)
    loc, scale = cvae.encode(x, y)
    d = collapse_diagnostics(cvae, (x, y))  # the data as fit takes it
    expected = (0.5 * (loc**2 + scale**2 - 1) - scale.log()).mean(0).double()
    assert torch.allclose(d.kl_prior_per_dim.double(), expected.detach(), atol=1e-6)
    assert collapse_diagnostics(cvae, x, y).num_active == d.num_active
    with pytest.raises(ValueError, match="an Autoencoder's code is a point"):
        collapse_diagnostics(Autoencoder(4, 2), x)
    with pytest.warns(DeprecationWarning, match="renamed `kl_prior_per_dim`"):
        assert collapse_diagnostics(VAE(4, 2, hidden=()), x).kl_per_dim.shape == (2,)


def test_the_callbacks_old_history_keys_still_read():
    from pvae.training.history import HistoryRow

    row = HistoryRow(val_num_active=3, val_kl_prior_dim_0=0.5)
    with pytest.warns(DeprecationWarning, match="use 'val_num_active'"):
        assert row["active_units"] == 3
    with pytest.warns(DeprecationWarning, match="use 'val_kl_prior_dim_0'"):
        assert row["kl_dim_0"] == 0.5
