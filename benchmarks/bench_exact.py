"""Exact marginals of every latent on bnlearn networks: pvae vs pgmpy vs Pyro.

Each network ships inside pgmpy (``pgmpy.utils.get_example_model`` reads the .bif files in
the package; nothing is downloaded). It is converted to a Pyro model with float64 CPTs, a
few nodes are observed, and the posterior marginal of every other node is computed by

* pvae: ``enumerate_posterior(model, method="parallel")`` (all marginals in one call);
* pgmpy: ``VariableElimination.query([node], evidence)`` once per latent node (a query of
  several variables at once builds their joint table, which does not fit in memory);
* Pyro: ``TraceEnum_ELBO(max_plate_nesting=0).compute_marginals(model, guide)``.

pvae's answers are checked against pgmpy's (max absolute difference, must be < 1e-6).
``pvae cold`` clears pvae's cache of contraction paths before every call. Timings are
medians over ``--repeats`` calls with ``torch.set_num_threads(1)``; compare the ratios,
which are measured in the same run.

Usage::

    .venv/bin/python benchmarks/bench_exact.py [--networks asia alarm child insurance]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import networkx as nx
import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro.ops.indexing import Vindex

from pvae import exact
from pvae.exact import enumerate_posterior

EVIDENCE = {
    "asia": {"xray": "yes", "dysp": "yes"},
    "alarm": {"HRBP": "HIGH", "CO": "LOW", "BP": "HIGH"},
    "child": {"LowerBodyO2": "<5", "CO2Report": ">=7.5", "XrayReport": "Asy/Patchy"},
    "insurance": {"PropCost": "Million", "ILiCost": "Thousand", "MedCost": "TenThou"},
}


def load_network(name: str):
    """A bnlearn network from the files pgmpy ships (no download)."""
    from pgmpy.utils import get_example_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return get_example_model(name)


def to_pyro(network, evidence: dict[str, int]):
    """Convert a pgmpy network to a Pyro model; returns (model, nodes in topological order)."""
    order = list(nx.topological_sort(network))
    cpts, parents = {}, {}
    for node in order:
        cpd = network.get_cpds(node)
        values = torch.tensor(np.asarray(cpd.get_values()), dtype=torch.float64)
        table = values.reshape(tuple(cpd.cardinality))  # [node, *parents]
        cpts[node] = table.movedim(0, -1).contiguous()  # [*parents, node]
        parents[node] = list(cpd.variables[1:])
    obs = {k: torch.tensor(v) for k, v in evidence.items()}

    def model():
        values = {}
        for node in order:
            ps = parents[node]
            probs = Vindex(cpts[node])[tuple(values[p] for p in ps)] if ps else cpts[node]
            values[node] = pyro.sample(node, dist.Categorical(probs), obs=obs.get(node))

    return model, order


def median_time(fn, repeats: int, before=None) -> float:
    times = []
    for _ in range(repeats):
        if before is not None:
            before()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run(name: str, repeats: int) -> dict:
    from pgmpy.inference import VariableElimination

    network = load_network(name)
    ev_names = EVIDENCE[name]
    ev_idx = {k: network.get_cpds(k).state_names[k].index(v) for k, v in ev_names.items()}
    model, order = to_pyro(network, ev_idx)
    latents = [n for n in order if n not in ev_names]
    ve = VariableElimination(network)

    def pgmpy_all():
        return {n: ve.query([n], evidence=ev_names, show_progress=False) for n in latents}

    def pvae_all():
        return enumerate_posterior(model, method="parallel")

    def pyro_all():
        elbo = pyro.infer.TraceEnum_ELBO(max_plate_nesting=0)
        return elbo.compute_marginals(pyro.infer.config_enumerate(model), lambda: None)

    ref, post, pyro_marginals = pgmpy_all(), pvae_all(), pyro_all()
    err_pvae = err_pyro = 0.0
    for n in latents:
        factor = ref[n]
        states = network.get_cpds(n).state_names[n]
        p = torch.tensor(
            [factor.values[factor.state_names[n].index(s)] for s in states], dtype=torch.float64
        )
        err_pvae = max(err_pvae, float((post.marginal(n) - p).abs().max()))
        err_pyro = max(err_pyro, float((pyro_marginals[n].probs.double() - p).abs().max()))
    assert err_pvae < 1e-6, f"{name}: pvae differs from pgmpy by {err_pvae:.3g}"
    return {
        "network": name,
        "nodes": len(order),
        "observed": len(ev_names),
        "err_pvae": err_pvae,
        "err_pyro": err_pyro,
        "pvae": median_time(pvae_all, repeats),
        "pvae_cold": median_time(pvae_all, repeats, before=exact._PATHS.clear),
        "pgmpy": median_time(pgmpy_all, repeats),
        "pyro": median_time(pyro_all, repeats),
    }


def main(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    pyro.enable_validation(True)
    warnings.simplefilter("ignore", FutureWarning)  # pgmpy's deprecation notices
    rows = [run(name, args.repeats) for name in args.networks]
    print(
        f"{'network':<10} {'nodes':>5} {'obs':>3} {'|pvae-pgmpy|':>12} {'|pyro-pgmpy|':>12} "
        f"{'pvae s':>8} {'cold s':>8} {'pgmpy s':>8} {'pyro s':>8} {'pvae/pgmpy':>10} "
        f"{'pvae/pyro':>9}"
    )
    for r in rows:
        print(
            f"{r['network']:<10} {r['nodes']:>5} {r['observed']:>3} {r['err_pvae']:>12.1e} "
            f"{r['err_pyro']:>12.1e} {r['pvae']:>8.4f} {r['pvae_cold']:>8.4f} "
            f"{r['pgmpy']:>8.4f} {r['pyro']:>8.4f} {r['pvae'] / r['pgmpy']:>10.2f} "
            f"{r['pvae'] / r['pyro']:>9.2f}"
        )
    print(f"medians of {args.repeats} calls, torch.set_num_threads(1), float64")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", nargs="+", default=list(EVIDENCE), choices=list(EVIDENCE))
    parser.add_argument("--repeats", type=int, default=11)
    main(parser.parse_args())
