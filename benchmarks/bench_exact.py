"""Exact marginals of every latent on bnlearn networks: pvae vs pgmpy (vs Pyro).

Each network ships inside pgmpy (``pgmpy.utils.get_example_model`` reads the .bif files in
the package; nothing is downloaded). It is converted to a Pyro model with float64 CPTs, a
few nodes are observed, and the posterior marginal of every other node is computed by

* pvae: ``enumerate_posterior(model)`` (``method="auto"``: the factor engine, as these
  models have no plates; all marginals in one call; the column says which arithmetic ran);
* pgmpy: ``VariableElimination.query([node], evidence)`` once per latent node (a query of
  several variables at once builds their joint table, which does not fit in memory);
* Pyro (``--pyro``, small networks only): ``TraceEnum_ELBO.compute_marginals``.

Every CPT row is renormalized in float64 before both tools see it (a few .bif rows sum to
1 +- 1e-7, which Pyro's Categorical would renormalize and pgmpy would not), so the two
answer the same question; pvae's marginals must agree with pgmpy's to 1e-9.

Each (network, tool) runs in a fresh child process, which reports its times of
``--repeats`` calls after one warm-up call (one cold call on andes and larger;
``torch.set_num_threads(1)``) and its peak memory: the peak resident
set size, and the growth of the peak over the resident size just before the first call.
With ``--rounds R`` the two tools' children alternate R times per network (below andes)
and each tool's time is the median over all its calls, so that their ratio comes from the
same stretches of machine load. pgmpy gets ``--timeout`` seconds per network and round
(default 600).

Usage::

    .venv/bin/python benchmarks/bench_exact.py [--networks asia alarm ...] [--repeats 5]
    .venv/bin/python benchmarks/bench_exact.py --all --repeats 5 --rounds 3  # all 20
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

EVIDENCE = {
    "asia": {"xray": "yes", "dysp": "yes"},
    "alarm": {"HRBP": "HIGH", "CO": "LOW", "BP": "HIGH"},
    "child": {"LowerBodyO2": "<5", "CO2Report": ">=7.5", "XrayReport": "Asy/Patchy"},
    "insurance": {"PropCost": "Million", "ILiCost": "Thousand", "MedCost": "TenThou"},
}
#: Every .bif network pgmpy ships, small to large; those without an entry in EVIDENCE
#: observe three leaves (evenly spaced in sorted order) at their first state.
NETWORKS = [
    "asia", "cancer", "earthquake", "sachs", "survey", "alarm", "barley", "child",
    "insurance", "mildew", "water", "hailfinder", "hepar2", "win95pts", "pathfinder",
    "andes", "diabetes", "pigs", "link", "munin",
]  # fmt: skip


def load_network(name: str):
    """A bnlearn network from the files pgmpy ships (no download), CPT rows renormalized."""
    from pgmpy.utils import get_example_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        network = get_example_model(name)
    for cpd in network.get_cpds():
        values = np.asarray(cpd.values, dtype=np.float64)
        cpd.values = values / values.sum(axis=0, keepdims=True)
    return network


def evidence_of(name: str, network) -> dict[str, str]:
    if name in EVIDENCE:
        return EVIDENCE[name]
    leaves = sorted(n for n in network.nodes if not list(network.successors(n)))
    picks = [leaves[round(i * (len(leaves) - 1) / 2)] for i in range(3)]
    return {n: network.get_cpds(n).state_names[n][0] for n in dict.fromkeys(picks)}


def to_pyro(network, evidence: dict[str, int]):
    """Convert a pgmpy network to a Pyro model; returns (model, nodes in topological order)."""
    import networkx as nx
    import pyro
    import pyro.distributions as dist
    import torch
    from pyro.ops.indexing import Vindex

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


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(name: str, tool: str, repeats: int, out: str) -> None:
    """Run one tool on one network; write times, memory and marginals to ``out`` (JSON)."""
    import pyro
    import torch

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    network = load_network(name)
    ev_names = evidence_of(name, network)
    ev_idx = {k: network.get_cpds(k).state_names[k].index(v) for k, v in ev_names.items()}
    model, order = to_pyro(network, ev_idx)
    latents = [n for n in order if n not in ev_names]
    extra = {}
    if tool == "pgmpy":
        from pgmpy.inference import VariableElimination

        ve = VariableElimination(network)

        def call():
            marg = {}
            for n in latents:
                f = ve.query([n], evidence=ev_names, show_progress=False)
                states = network.get_cpds(n).state_names[n]
                marg[n] = [float(f.values[f.state_names[n].index(s)]) for s in states]
            return marg
    elif tool == "pvae":
        from pvae.exact import enumerate_posterior

        def call():
            post = enumerate_posterior(model)
            extra["method"] = post.method
            if post._factored is not None:
                extra["largest_table"] = post._factored.plan.largest
                extra["runs"] = post._factored.factors.runs
                extra["arithmetic"] = post._factored.arithmetic
            return {n: post.marginal(n).tolist() for n in latents}
    else:  # pyro

        def call():
            elbo = pyro.infer.TraceEnum_ELBO(max_plate_nesting=0)
            m = elbo.compute_marginals(pyro.infer.config_enumerate(model), lambda: None)
            return {n: m[n].probs.double().tolist() for n in latents}

    pyro.enable_validation(True)
    base = _rss_mib()
    times, marg = [], None
    try:
        if repeats > 1:
            call()  # warm-up: lazy imports, caches
        for _ in range(repeats):
            t = time.perf_counter()
            marg = call()
            times.append(time.perf_counter() - t)
    except ValueError as err:  # a refusal (e.g. a table above max_table), reported as such
        with open(out, "w") as f:
            json.dump({"error": str(err), "nodes": len(order), "observed": len(ev_names)}, f)
        return
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {"time": statistics.median(times), "times": times, "peak_mib": peak}
    result.update(base_mib=base, growth_mib=max(0.0, peak - base), nodes=len(order))
    result.update(observed=len(ev_names), marginals=marg, **extra)
    with open(out, "w") as f:
        json.dump(result, f)


def spawn(name: str, tool: str, repeats: int, timeout: float) -> dict | None:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    cmd = [sys.executable, __file__, "--child", name, tool, str(repeats), out]
    try:
        subprocess.run(cmd, check=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    with open(out) as f:
        result = json.load(f)
    os.unlink(out)
    return result


def rounds(name: str, reps: int, count: int, timeout: float) -> tuple:
    """(pvae, pgmpy) results of ``count`` rounds of one child each, alternating, pooled:
    the median over every call of every round, the largest peak memory."""
    runs: dict[str, list | None] = {"pvae": [], "pgmpy": []}
    for _ in range(count):
        for tool in runs:
            if runs[tool] is None:  # pgmpy timed out in an earlier round
                continue
            result = spawn(name, tool, reps, timeout)
            runs[tool] = None if result is None else runs[tool] + [result]
            if result is not None and "error" in result:
                return result, None
    pooled = []
    for tool in ("pvae", "pgmpy"):
        results = runs[tool]
        if not results:
            pooled.append(None)
            continue
        out = dict(results[-1])
        out["times"] = [t for r in results for t in r["times"]]
        out["time"] = statistics.median(out["times"])
        for key in ("peak_mib", "growth_mib"):
            out[key] = max(r[key] for r in results)
        pooled.append(out)
    return tuple(pooled)


def main(args: argparse.Namespace) -> None:
    rows = []
    for name in args.networks:
        big = name in ("andes", "diabetes", "pigs", "link", "munin")
        reps = 1 if big else args.repeats
        ours, ref = rounds(name, reps, 1 if big else args.rounds, args.timeout)
        err = None
        if "error" in ours:
            print(f"| {name} | pvae refused: {ours['error']}", flush=True)
            ours = None
        if ref is not None and ours is not None:
            err = max(
                float(np.max(np.abs(np.array(ours["marginals"][n]) - np.array(p))))
                for n, p in ref["marginals"].items()
            )
            assert err < 1e-9, f"{name}: pvae differs from pgmpy by {err:.3g}"
        pyro_row = spawn(name, "pyro", reps, args.timeout) if args.pyro and not big else None
        rows.append((name, ours, ref, err, pyro_row))
        print_row(rows[-1])
    print(
        f"medians of {args.rounds} rounds of {args.repeats} calls (1 call on andes and larger),"
        " one torch thread, float64"
    )


def print_row(row) -> None:
    name, ours, ref, err, pyro_row = row
    if ours is None:
        print(f"| {name} | pgmpy {ref['time'] if ref else 'timeout'} s", flush=True)
        return
    pg = (
        f"{ref['time']:.4f} | {ref['peak_mib']:.0f} (+{ref['growth_mib']:.0f})"
        if ref
        else ("> timeout")
    )
    ratio = f"{ours['time'] / ref['time']:.2f}" if ref else "-"
    method = ours["method"] + (f" ({ours['arithmetic']})" if "arithmetic" in ours else "")
    err_s = f"{err:.1e}" if err is not None else "-"
    extra = f" | {pyro_row['time']:.4f}" if pyro_row else ""
    print(
        f"| {name} | {ours['nodes']} | {ours['observed']} | {method} | "
        f"{ours.get('largest_table', '-')} | {err_s} | {ours['time']:.4f} | "
        f"{ours['peak_mib']:.0f} (+{ours['growth_mib']:.0f}) | {pg} | {ratio} |{extra}",
        flush=True,
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", nargs="+", default=list(EVIDENCE), choices=NETWORKS)
    parser.add_argument("--all", action="store_true", help="every network pgmpy ships")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--rounds", type=int, default=1, help="alternating child runs per tool (below andes)"
    )
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--pyro", action="store_true", help="also time Pyro (small networks)")
    parsed = parser.parse_args()
    if parsed.all:
        parsed.networks = NETWORKS
    main(parsed)
