"""The factor engine against pgmpy's VariableElimination on bnlearn networks (slow)."""

import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("pgmpy")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from bench_exact import evidence_of, load_network, to_pyro  # noqa: E402

from pvae.exact import enumerate_posterior  # noqa: E402


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::FutureWarning")  # pgmpy's deprecation notices
@pytest.mark.parametrize("name", ["asia", "hepar2", "andes"])  # andes: shared dimensions
def test_all_marginals_and_a_conditional_query_match_pgmpy(name):
    from pgmpy.inference import VariableElimination

    network = load_network(name)
    evidence = evidence_of(name, network)
    index = {k: network.get_cpds(k).state_names[k].index(v) for k, v in evidence.items()}
    model, order = to_pyro(network, index)
    post = enumerate_posterior(model, method="factor")
    ve = VariableElimination(network)
    latents = [n for n in order if n not in evidence]
    for n in latents[:: max(1, len(latents) // 10)]:
        f = ve.query([n], evidence=evidence, show_progress=False)
        states = network.get_cpds(n).state_names[n]
        ref = torch.tensor([f.values[f.state_names[n].index(s)] for s in states])
        torch.testing.assert_close(post.marginal(n), ref.double(), rtol=0, atol=1e-9)
    # p(target | evidence, cond = its first state), by pgmpy with the evidence extended
    cond, target = latents[0], latents[-1]
    state = network.get_cpds(cond).state_names[cond][0]
    f = ve.query([target], evidence={**evidence, cond: state}, show_progress=False)
    states = network.get_cpds(target).state_names[target]
    ref = torch.tensor([f.values[f.state_names[target].index(s)] for s in states]).double()
    got = post.marginal(target, given={cond: 0})
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-9)
