"""Tests for pvae.exact.toy: every toy model against its published or analytic answer."""

import itertools
import math

import pytest
import torch
from scipy.special import betaln, logsumexp
from scipy.stats import beta, norm

from pvae import toy
from pvae.exact import enumerate_posterior

F64 = torch.float64


def close(a, b, atol=1e-9):
    torch.testing.assert_close(
        torch.as_tensor(a, dtype=F64), torch.as_tensor(b, dtype=F64), rtol=0, atol=atol
    )


def test_registry_names_and_defaults():
    assert list(toy.TOYS) == [
        "medical-test",
        "burglary-alarm",
        "sprinkler",
        "monty-hall",
        "coin-bias",
        "gaussian-mixture",
        "toy-vae",
    ]
    plated = {"coin-bias", "gaussian-mixture", "toy-vae"}  # the factor engine takes no plates
    for name, model in toy.TOYS.items():
        assert model.__doc__ and "Examples" in model.__doc__, name
        post = enumerate_posterior(model)  # callable with no arguments
        assert post.method == ("parallel" if name in plated else "factor"), name
        assert math.isfinite(post.log_evidence)


@pytest.mark.parametrize("name", list(toy.PUBLISHED))
def test_published_answers(name):
    post = enumerate_posterior(toy.TOYS[name])
    for site, value, published, _source in toy.PUBLISHED[name]:
        digits = 4 if name == "medical-test" else 3
        assert round(post.prob(**{site: value}), digits) == round(published, digits)


def test_medical_test_exact():
    post = enumerate_posterior(toy.medical_test)
    assert post.prob(disease=1) == pytest.approx(0.01 * 0.8 / 0.10304, abs=1e-12)
    neg = enumerate_posterior(toy.medical_test, test=0.0)  # data as a keyword
    assert neg.prob(disease=1) == pytest.approx(
        0.01 * 0.2 / (0.01 * 0.2 + 0.99 * 0.904), abs=1e-12
    )


def _brute_force_burglary(j, m):
    p_a = {(1, 1): 0.95, (1, 0): 0.94, (0, 1): 0.29, (0, 0): 0.001}
    joint = {}
    for b, e, a in itertools.product((0, 1), repeat=3):
        pa = p_a[(b, e)] if a else 1 - p_a[(b, e)]
        pj = (0.90 if a else 0.05) if j else (0.10 if a else 0.95)
        pm = (0.70 if a else 0.01) if m else (0.30 if a else 0.99)
        joint[(b, e, a)] = (0.001 if b else 0.999) * (0.002 if e else 0.998) * pa * pj * pm
    return joint


@pytest.mark.parametrize(("j", "m"), [(1, 1), (1, 0), (0, 1)])
def test_burglary_alarm_against_brute_force(j, m):
    joint = _brute_force_burglary(j, m)
    evidence = sum(joint.values())
    post = enumerate_posterior(toy.burglary_alarm, float(j), float(m))
    assert post.log_evidence == pytest.approx(math.log(evidence), abs=1e-12)
    for i, site in enumerate(("burglary", "earthquake", "alarm")):
        p1 = sum(p for k, p in joint.items() if k[i] == 1) / evidence
        close(post.marginal(site), [1 - p1, p1])
    if (j, m) == (1, 1):
        assert round(post.prob(burglary=1), 3) == 0.284


def test_sprinkler_explaining_away():
    post = enumerate_posterior(toy.sprinkler)
    assert post.prob(sprinkler=1) == pytest.approx(0.2781 / 0.6471, abs=1e-9)
    assert post.prob(rain=1) == pytest.approx(0.4581 / 0.6471, abs=1e-9)
    assert post.log_evidence == pytest.approx(math.log(0.6471), abs=1e-9)
    # explaining away: learning it rained lowers the probability of the sprinkler
    p_s_given_wr = post.prob(sprinkler=1, rain=1) / post.prob(rain=1)
    assert p_s_given_wr < post.prob(sprinkler=1)


@pytest.mark.parametrize(
    ("chosen", "opened", "expected"), [(0, 1, [1 / 3, 0, 2 / 3]), (1, 2, [2 / 3, 1 / 3, 0])]
)
def test_monty_hall(chosen, opened, expected):
    post = enumerate_posterior(toy.monty_hall, chosen, opened)
    close(post.marginal("car"), expected, atol=1e-12)
    assert int(post.map()["car"]) == max(range(3), key=lambda d: expected[d])
    with pytest.raises(ValueError, match=r"`chosen` and `opened` must be doors"):
        toy.monty_hall(3, 1)


def test_gaussian_mixture_responsibilities():
    x = torch.tensor(toy._MIXTURE_DATA, dtype=F64)
    post = enumerate_posterior(toy.gaussian_mixture)
    logp = torch.stack(
        [torch.as_tensor(norm.logpdf(x.numpy(), loc, 1.0)) + math.log(0.5) for loc in (-2, 2)], -1
    )
    close(post.marginal("z"), torch.softmax(logp, -1))
    assert post.log_evidence == pytest.approx(float(logsumexp(logp.numpy(), -1).sum()), abs=1e-9)
    # other data and weights, positionally
    data = torch.tensor([0.0, 3.0])
    post = enumerate_posterior(toy.gaussian_mixture, data, (-1.0, 0.0, 1.0), 0.5, (0.2, 0.3, 0.5))
    logp = torch.stack(
        [
            torch.as_tensor(norm.logpdf(data.numpy(), mu, 0.5)) + math.log(w)
            for mu, w in ((-1, 0.2), (0, 0.3), (1, 0.5))
        ],
        -1,
    )
    close(post.marginal("z"), torch.softmax(logp, -1))


@pytest.mark.parametrize(("flips", "num_points"), [(None, 20), ([1, 1, 0, 1], 7)])
def test_coin_bias_grid_is_beta_on_the_grid(flips, num_points):
    post = enumerate_posterior(toy.coin_bias_grid, flips=flips, num_points=num_points)
    data = torch.tensor(toy._FLIPS if flips is None else flips, dtype=F64)
    h, n = float(data.sum()), data.numel()
    grid = toy.bias_grid(num_points)
    density = torch.as_tensor(beta.pdf(grid.numpy(), h + 1, n - h + 1))
    close(post.marginal("bias"), density / density.sum())
    # evidence = grid average of p^h (1-p)^(n-h): a midpoint rule for B(h+1, n-h+1)
    riemann = float((grid**h * (1 - grid) ** (n - h)).mean())
    assert post.log_evidence == pytest.approx(math.log(riemann), abs=1e-12)


def test_coin_bias_evidence_tends_to_beta_binomial():
    post = enumerate_posterior(toy.coin_bias_grid, num_points=2000)
    assert post.log_evidence == pytest.approx(float(betaln(8, 4)), abs=1e-5)


def test_toy_vae_against_hand_computation():
    x = torch.tensor(toy._TOY_VAE_DATA, dtype=F64)
    theta = torch.tensor(toy.TOY_VAE_PIXEL_PROBS, dtype=F64)
    pi = torch.tensor(toy.TOY_VAE_WEIGHTS, dtype=F64)
    log_lik = (x[:, None] * theta.log() + (1 - x[:, None]) * (1 - theta).log()).sum(-1)
    log_joint = log_lik + pi.log()
    post = enumerate_posterior(toy.toy_vae)
    close(post.marginal("z"), torch.softmax(log_joint, -1))
    assert post.log_evidence == pytest.approx(float(torch.logsumexp(log_joint, -1).sum()), 1e-12)
    with pytest.raises(ValueError, match=r"`x` must have shape \[N, 4\]"):
        toy.toy_vae(torch.zeros(3, 5))


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("medical-test", ()),
        ("burglary-alarm", ()),
        ("sprinkler", ()),
        ("monty-hall", ()),
        ("coin-bias", ()),
        ("gaussian-mixture", (torch.tensor([-1.0, 0.5, 2.0]),)),
        ("toy-vae", (torch.tensor([[1.0, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 1]]),)),
    ],
)
def test_engines_agree_on_every_toy(name, args):
    par = enumerate_posterior(toy.TOYS[name], *args, method="parallel")
    seq = enumerate_posterior(toy.TOYS[name], *args, method="sequential")
    assert par.sites == seq.sites
    assert par.log_evidence == pytest.approx(seq.log_evidence, abs=1e-9)
    for site in par.sites:
        close(par.support(site), seq.support(site), atol=0)
        close(par.marginal(site), seq.marginal(site))
