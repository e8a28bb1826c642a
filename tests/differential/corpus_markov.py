"""Hidden Markov models of the discrete corpus, in the style of Pyro's ``examples/hmm.py``.

``pyro.markov`` lets enumeration reuse dims along the chain; the vectorized model masks the
steps past each sequence's length, and a Python-bool mask switches the prior off as
``include_prior`` does there.
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.ops.indexing import Vindex

from .cases import random_probs, t

plate, sample = pyro.plate, pyro.sample

TRANS = t([[0.8, 0.2], [0.3, 0.7]])
EMIT = t([[0.1, 0.3], [0.8, 0.6]])  # [state, tone]
SEQ = t([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [0.0, 1.0]])  # [time, tone]


def hmm(sequence):
    tones = plate("tones", sequence.shape[-1], dim=-1)
    x = 0
    for time in pyro.markov(range(len(sequence))):
        x = sample(f"x_{time}", dist.Categorical(TRANS[x]))
        with tones:
            sample(f"y_{time}", dist.Bernoulli(EMIT[x.squeeze(-1)]), obs=sequence[time])


Q_HMM = random_probs((4,), 2, 31)


def hmm_guide(sequence):
    for time in range(len(sequence)):
        sample(f"x_{time}", dist.Categorical(Q_HMM[time]))


SEQS = t(
    [
        [[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]],
        [[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]],  # the last step is padding
    ]
)
LENGTHS = torch.tensor([3, 2])


def hmm_lengths(sequences, lengths):
    tones = plate("tones", sequences.shape[-1], dim=-1)
    with plate("sequences", len(sequences), dim=-2):
        x = 0
        for time in pyro.markov(range(sequences.shape[1])):
            with poutine.mask(mask=(time < lengths).unsqueeze(-1)):
                x = sample(
                    f"x_{time}", dist.Categorical(TRANS[x]), infer={"enumerate": "parallel"}
                )
                with tones:
                    sample(
                        f"y_{time}", dist.Bernoulli(EMIT[x.squeeze(-1)]), obs=sequences[:, time]
                    )


Q_LEN = random_probs((3, 2, 1), 2, 32)


def hmm_lengths_guide(sequences, lengths):
    with plate("sequences", len(sequences), dim=-2):
        for time in range(sequences.shape[1]):
            with poutine.mask(mask=(time < lengths).unsqueeze(-1)):
                sample(f"x_{time}", dist.Categorical(Q_LEN[time]))


REGIME_TRANS = t([[[0.9, 0.1], [0.2, 0.8]], [[0.5, 0.5], [0.6, 0.4]]])  # [regime, from, to]
REGIME_LOCS = t([-1.0, 1.5])
YS = t([-0.7, 1.2, 1.9, -0.1])


def hmm_regime(ys):
    r = sample("regime", dist.Bernoulli(t(0.5)))
    x = 0
    for time in pyro.markov(range(len(ys))):
        x = sample(f"x_{time}", dist.Categorical(Vindex(REGIME_TRANS)[r.long(), x]))
        sample(f"y_{time}", dist.Normal(REGIME_LOCS[x], 1.0), obs=ys[time])


def hmm_regime_guide(ys):
    sample("regime", dist.Bernoulli(t(0.35)))


def hmm_include_prior(ys, include_prior=True):
    with poutine.mask(mask=include_prior):
        c = sample("c", dist.Categorical(t([0.3, 0.7])))
    x = 0
    for time in pyro.markov(range(len(ys))):
        x = sample(f"x_{time}", dist.Categorical(Vindex(REGIME_TRANS)[c, x]))
        sample(f"y_{time}", dist.Normal(REGIME_LOCS[x], 1.0), obs=ys[time])


def hmm_include_prior_guide(ys, include_prior=True):
    sample("c", dist.Categorical(t([0.6, 0.4])))
