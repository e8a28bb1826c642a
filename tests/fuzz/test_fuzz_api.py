"""The rest of the public API (``pvae.__all__``): each entry point called with a valid
baseline in which one argument is replaced by a hostile value. The outcome is a refusal
naming that argument, or a result whose numbers are finite (standard errors excepted) and,
where the hostile value turns out valid, equal to the closed form the baseline is checked
against (the conjugate Gaussian model: log p(x) = log N(x; 0, 2), KL(q || p(z|x)) = 0)."""

from __future__ import annotations

import dataclasses
import math
import tempfile
from pathlib import Path

import numpy as np
import pyro
import pytest
import torch
from hypothesis import strategies as st
from scipy.stats import norm

import pvae
from pvae import data, toy

from .contract import call, fuzz
from .strategies import hostile_data, hostile_scalar, sizes, tensors
from .test_fuzz_training import guide, model

X = torch.tensor([0.5, -1.0, 2.0])
EXACT = float(norm.logpdf(X.numpy(), 0, math.sqrt(2)).mean())
TMP = Path(tempfile.mkdtemp(prefix="pvae-fuzz-api-"))
VAE = pvae.VAE(4, 2, (4,), likelihood="gaussian", seed=0)
XV = torch.rand(6, 4, generator=torch.Generator().manual_seed(0))


def _numbers(result):
    """The float fields of a record (dataclass or NamedTuple), by name."""
    if dataclasses.is_dataclass(result):
        items = {f.name: getattr(result, f.name) for f in dataclasses.fields(result)}
    elif hasattr(result, "_asdict"):
        items = result._asdict()
    else:
        return {}
    return {k: v for k, v in items.items() if isinstance(v, float)}


#: entry -> (function, baseline positional args, baseline kwargs, reference check or None)
def _elbo_check(d):
    # the guide is the exact posterior, so every log weight is log p(x): ELBO = log p(x)
    assert math.isclose(d.elbo, EXACT, abs_tol=1e-3) or math.isclose(
        d.elbo, EXACT * len(X), abs_tol=1e-3
    )
    if d.log_evidence is None:  # three scalar latents: past quadrature's two (documented)
        assert d.evidence_method == "unavailable" and d.kl is None
        return
    assert math.isclose(d.log_evidence, EXACT * len(X), abs_tol=1e-3) or math.isclose(
        d.log_evidence, EXACT, abs_tol=1e-3
    )
    assert abs(d.kl) < 1e-3


ENTRIES = {
    "elbo_decomposition": (pvae.elbo_decomposition, (model, X), {"guide": guide,
                           "num_particles": 20, "seed": 0}, _elbo_check),
    "psis_khat": (pvae.psis_khat, (model, X), {"guide": guide, "num_particles": 50, "seed": 0},
                  None),
    "pareto_khat": (pvae.pareto_khat, (np.random.default_rng(0).normal(size=100),), {}, None),
    "collapse_diagnostics": (pvae.collapse_diagnostics, (VAE, XV), {"threshold": 0.01,
                             "num_samples": 1, "chunk_size": 4, "seed": 0}, None),
    "collapse_callback": (pvae.collapse_callback, (XV,), {"every": 1, "threshold": 0.01}, None),
    "cavi": (pvae.cavi, (toy.sprinkler,), {"num_restarts": 2, "max_iterations": 20,
             "tol": 1e-9, "seed": 0}, None),
    "enumerate_posterior": (pvae.enumerate_posterior, (toy.sprinkler,), {"method": "auto",
                            "max_states": 100}, None),
    "digits": (data.digits, (), {"binarize": None, "seed": 0}, None),
    "DynamicBinarized": (data.DynamicBinarized, (torch.full((3, 2), 0.5),), {"y": None}, None),
    "TensorBatches": (data.TensorBatches, ([torch.arange(5.0)],), {"batch_size": 2,
                      "shuffle": False, "seed": 0}, None),
    "save": (pvae.save, (VAE, TMP / "m.safetensors"), {}, None),
    "load": (pvae.load, (TMP / "m.safetensors",), {}, None),
}  # fmt: skip
pvae.save(VAE, TMP / "m.safetensors")

# A valid but huge count (2**31 particles, restarts, iterations) is work, not a fault: these
# entry points have no cap, run for hours or exhaust memory (reported for issue 15, owned
# elsewhere), so whole numbers >= 10**4 are left out of this suite.
hostile = st.one_of(hostile_scalar, hostile_data, sizes, tensors(max_dims=2)).filter(
    lambda v: not (isinstance(v, int) and not isinstance(v, bool) and v >= 10**4)
)


@st.composite
def cases(draw):
    entry = draw(st.sampled_from(sorted(e for e in ENTRIES if e != "pareto_khat")))
    fn, args, kwargs, _ = ENTRIES[entry]
    slots = [("arg", i) for i in range(len(args))] + [("kw", k) for k in kwargs]
    kind, key = draw(st.sampled_from([s for s in slots if (entry, s[1]) not in KNOWN]))
    value = draw(hostile)
    if kind == "arg":
        args = args[:key] + (value,) + args[key + 1 :]
    else:
        kwargs = {**kwargs, key: value}
    return entry, kind, key, args, kwargs


PARAMETER_NAMES = {"pareto_khat": ["`log_weights`"], "collapse_callback": ["`x_val`"],
                   "DynamicBinarized": ["`x`", "`y`"], "TensorBatches": ["`tensors"],
                   "save": ["`obj`", "`path`"], "load": ["`path`"],
                   "cavi": ["`model`"], "enumerate_posterior": ["`model`"],
                   "collapse_diagnostics": ["`vae`", "`data", "`x`"]}  # fmt: skip

#: (entry, argument) pairs this suite found faults in (now fixed): left out of the random
#: fuzz and pinned by the `test_known_finding*` tests below
KNOWN = {("cavi", 0), ("cavi", "seed"), ("collapse_diagnostics", 0), ("collapse_diagnostics", 1)}
#: the data of a Pyro model function go to the user's own code, whose errors are its own
KNOWN |= {("elbo_decomposition", 1), ("psis_khat", 1)}
KNOWN |= {("pareto_khat", 0)}


def test_public_api(tier, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a hostile string such as "1" is a valid path for `save`

    def check(case):
        entry, kind, key, args, kwargs = case
        fn, _, _, reference = ENTRIES[entry]
        if kind == "kw":
            names = [f"`{key}`"]
        else:
            names = PARAMETER_NAMES.get(entry, ["`model`", "`data`", "`x`", "`args`", "`data"])
        pyro.clear_param_store()
        result = call(entry, fn, *args, names=names, allow=(FileNotFoundError,), **kwargs)
        for name, value in _numbers(result).items():
            assert math.isfinite(value) or name.endswith("_se") or "khat" in name, (name, value)
        if reference is not None:
            reference(result)

    fuzz(cases(), check, tier, fast=80)


def test_known_findings():
    """Found by this suite (issue 15), now fixed: each refusal names its argument."""
    with pytest.raises(ValueError, match="`model`"):
        pvae.cavi(0.0)


def test_known_finding_cavi_seed():
    with pytest.raises(ValueError, match="`seed`"):
        pvae.cavi(toy.sprinkler, num_restarts=2, max_iterations=20, seed=None)


def test_known_finding_collapse_tuple_data():
    with pytest.raises(ValueError, match="`data"):
        pvae.collapse_diagnostics(VAE, (XV, torch.zeros(6)))


def test_known_finding_collapse_duck_typing():
    with pytest.raises(ValueError, match="`vae`"):
        pvae.collapse_diagnostics("abc", XV)


def test_known_finding_pareto_khat_complex():
    with pytest.raises(ValueError, match="`log_weights`"):
        pvae.pareto_khat(torch.zeros(100, dtype=torch.complex64))


def test_known_finding_collapse_huge_num_samples():
    with pytest.raises(ValueError, match="`num_samples`"):
        pvae.collapse_diagnostics(VAE, XV, num_samples=2**40)
