"""Displays of pvae's records: a short ``repr`` and a ``_repr_html_`` that holds the real numbers.

Each record is built by the function that returns it, on a small model; its text and HTML
are checked against numbers computed independently here (Bayes' rule by hand, Pyro's own
enumeration for the posterior, the record's own fields), and long content must be cut with a
count so a notebook cell stays short.
"""

import math
import re
import warnings

import pyro
import pyro.distributions as dist
import pytest
import torch

from pvae import _display
from pvae.exact import bayes_rule, enumerate_posterior, toy
from pvae.training.result import FitResult
from pvae.vi import MeanFieldGuide, compare, elbo_decomposition, fit_guide


def _numbers(html: str) -> list[float]:
    text = re.sub(r"<[^>]+>", " ", html.split("</style>")[-1])
    return [float(m) for m in re.findall(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", text)]


def _has(html: str, value: float, digits: int = 6) -> bool:
    return any(math.isclose(v, value, rel_tol=10 ** (1 - digits)) for v in _numbers(html))


def test_text_table_cuts_with_a_count():
    rows = [[i, i / 7] for i in range(200)]
    text = _display.text_table(["h", "p"], rows, max_rows=10)
    assert text.splitlines()[-1] == "... 190 more rows" and len(text.splitlines()) == 12
    assert "0.142857" in text  # 1/7 with 6 significant digits
    full = _display.text_table(["h", "p"], rows, max_rows=None)
    assert len(full.splitlines()) == 201
    html = _display.html_table(["h", "p"], rows, max_rows=10)
    assert "... 190 more rows" in html and html.count("<tr>") == 1 + 10 + 1


def test_bayes_table_html_against_bayes_rule_by_hand():
    t = bayes_rule({"disease": 0.01, "healthy": 0.99}, {"disease": 0.8, "healthy": 0.096})
    html = t._repr_html_()
    # Eddy (1982): p(D | +) = 0.008 / 0.10304
    assert _has(html, 0.008 / 0.10304) and _has(html, 0.10304)
    assert "disease" in html and 'class="pvae-bar"' in html
    assert repr(t) == str(t) and len(str(t).splitlines()) == 4


def test_long_bayes_table_is_cut_and_format_shows_all():
    n = 200
    t = bayes_rule([1 / n] * n, [(i + 1) / n for i in range(n)])
    lines = repr(t).splitlines()
    assert len(lines) == 1 + _display.MAX_ROWS + 2 and lines[-2] == "... 180 more rows"
    assert len(t.format(max_rows=None).splitlines()) == 1 + n + 1
    assert "180 more rows" in t._repr_html_()


def test_exact_posterior_html_against_pyro_marginals():
    post = enumerate_posterior(toy.sprinkler)
    html = post._repr_html_()
    elbo = pyro.infer.TraceEnum_ELBO(max_plate_nesting=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "vars in model but not guide": intended
        marginals = elbo.compute_marginals(
            pyro.infer.config_enumerate(toy.sprinkler, "parallel"), lambda: None
        )
    for site in ("cloudy", "sprinkler", "rain"):
        p1 = float(marginals[site].log_prob(torch.tensor(1.0)).exp())
        assert _has(html, p1, 4), site
    assert _has(html, post.log_evidence)
    # published: P(rain | wet grass) = 0.708 (Murphy 1998)
    assert any(abs(v - 0.708) < 5e-4 for v in _numbers(html))


def test_comparison_of_200_points_is_short():
    x = torch.tensor(toy._TOY_VAE_DATA, dtype=torch.float64).repeat(34, 1)[:200]
    guide = MeanFieldGuide(toy.toy_vae, x, init="random")
    r = compare(toy.toy_vae, guide, x)
    assert len(r.rows) == 600
    text = repr(r)
    assert "... 580 more rows" in text and len(text.splitlines()) < 35
    html = r._repr_html_()
    assert "580 more rows" in html and _has(html, r.kl_qp) and _has(html, r.log_evidence)
    assert html.count("<tr>") < 60


def test_elbo_decomposition_html_adds_up():
    guide = MeanFieldGuide(toy.medical_test)
    d = elbo_decomposition(toy.medical_test, guide)
    html = d._repr_html_()
    assert _has(html, d.log_evidence) and _has(html, d.elbo) and _has(html, d.kl)
    assert math.isclose(d.log_evidence, math.log(0.10304), rel_tol=1e-9)  # Eddy's p(+)
    assert "ELBO" in html and "nats" in html


def test_fit_result_of_200_epochs_is_short_with_a_curve():
    history = [{"epoch": e, "train_elbo": -100 / e, "seconds": 0.01} for e in range(1, 201)]
    res = FitResult(history, 200, {}, "completed", None)
    assert len(repr(res)) < 200 and "200 epochs" in repr(res)
    html = res._repr_html_()
    assert "<svg" in html and "195 more in .history" in html and len(html) < 6000
    assert _has(html, -0.5)  # the last epoch's ELBO, -100/200


def test_guide_fit_and_khat_records_summarise_their_arrays():
    guide = MeanFieldGuide(toy.medical_test)
    r = fit_guide(toy.medical_test, guide, num_steps=8, lr=0.2, progress=False)
    assert "elbos=list of 8" in repr(r) and len(repr(r)) < 150
    assert "<svg" in r._repr_html_() and _has(r._repr_html_(), r.final_elbo)
    from pvae.evaluation.psis import KHatResult

    k = KHatResult(0.31, "good", torch.linspace(0, 0.6, 500), 0, 500, 1000, "data")
    assert "tensor [500] float32, 0 to 0.6" in repr(k) and len(repr(k)) < 250
    assert "0 of 500 above 0.7" in k._repr_html_()


def test_evaluation_and_collapse_html():
    from pvae.evaluation import collapse_diagnostics, evaluate
    from pvae.models import VAE

    def model(x):
        with pyro.plate("data", len(x)):
            z = pyro.sample("z", dist.Normal(0.0, 1.0))
            pyro.sample("x", dist.Normal(z, 1.0), obs=x)

    def guide(x):
        with pyro.plate("data", len(x)):
            pyro.sample("z", dist.Normal(x / 2, 0.5**0.5))  # the exact posterior

    ev = evaluate(model, torch.zeros(3), guide=guide, num_particles=10, progress=False)
    html = ev._repr_html_()
    exact = -0.5 * math.log(2 * math.pi * 2)  # log N(0; 0, 2)
    assert _has(html, ev.log_evidence) and math.isclose(ev.log_evidence, exact, rel_tol=1e-6)
    vae = VAE(4, 3, hidden=(5,), seed=0)
    c = collapse_diagnostics(vae, (torch.rand(20, 4) > 0.5).float())
    chtml = c._repr_html_()
    assert chtml.count("<tr>") == 1 + 4 + 1 + 3  # fields table (4 rows) + one row per dim
    assert _has(chtml, c.kl_prior) and "kl_prior_per_dim=tensor [3]" in repr(c)


@pytest.mark.parametrize("limit", [120])
def test_every_public_record_has_a_short_repr_and_html(limit):
    from pvae.vi.coordinate_ascent import cavi

    records = [
        bayes_rule([0.5, 0.5], [0.2, 0.6]),
        enumerate_posterior(toy.monty_hall),
        cavi(toy.medical_test, seed=0),
    ]
    for record in records:
        assert hasattr(record, "_repr_html_") and "<table>" in record._repr_html_()
        assert all(len(line) <= limit * 4 for line in repr(record).splitlines())
