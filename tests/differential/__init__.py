"""The differential suite: pvae's numbers against independent implementations.

Every public number of pvae is computed a second time, without pvae, on a corpus of models
written the way Pyro's tutorials, examples and tests write them, and the two must agree:
exactly (1e-9 in float64) where the answer is exact, within 4 standard deviations of the
estimator where it is Monte Carlo (fixed seeds). The conventions checked are those of
issue 13: nats; the model's own density (masked, unscaled: beta = 1, no N/B); per example
where the examples are independent given the guide, else the joint total, as the record's
``per_example`` says; sites a guide leaves to the model summed out exactly.

Corpus
------
``corpus_discrete.py``, ``corpus_markov.py`` (listed in ``exact_cases.py``): 36 models whose
latents are all finite -- single Bernoulli (medical test), Python control flow on a sampled
value, a Bayes net with Vindex CPTs, a Categorical grid prior (closed form), a Python list of
0-d tensors in a sequential plate (SVI Part I data), ``pyro.deterministic``, Binomial and
OneHotCategorical latents, sites that exist on one branch only, ``z.sum()`` over a plate,
site-level ``infer={"enumerate": "parallel"}``, global + local discrete latents, a mixture
with a continuous likelihood, ``poutine.mask`` on a latent / on latent and observation / on an
observation, ``obs_mask`` with Bernoulli and Categorical likelihoods, Python-bool masks
(``mask=True`` / ``mask=False``), a common ``poutine.scale``, a scale on observations only, a
beta-VAE-style scale on a discrete code in model and guide, explicit ``subsample=`` plates
(with a global outside: mixed scales, refused as TraceEnum_ELBO refuses; all inside),
nested plates, nested plates with a broadcast mask and a scale, sibling plates at dim -1 with
different sizes (the GMM tutorial's layout), two observed sites per example, ``pyro.param``
CPTs, ``@config_enumerate`` with Vindex, a 10-point mixture (TraceEnum only), and HMMs with
``pyro.markov``: a tones plate, vectorized sequences masked by ``t < lengths``, a global
regime, and ``poutine.mask(mask=include_prior)`` true and false. Guides: hand-written
mean-field guides (masked like the model where it masks) and AutoDiscreteParallel with fixed
random probabilities; some leave latents to the model (TraceEnum_ELBO style).

``corpus_gaussian.py`` and ``corpus_continuous.py`` (listed in ``mc_cases.py``): 19 cases with
continuous latents --
conjugate Normal-Normal with local latents (an exact amortized guide, AutoNormal, masked
observations, a data plate not named "data" whose size is ``num_particles``,
AutoMultivariateNormal packing every example), a continuous global (and its
``poutine.mask(mask=True)`` variant), a model that uses ``z.sum()`` (unsafe to vectorize
over particles), PPCA (exact MultivariateNormal guide, AutoNormal, AutoLowRankMultivariate-
Normal), a beta-VAE (``poutine.scale(beta)`` on z in model and guide), two dependent scalar
latents, Beta-Bernoulli (exact Beta guide, AutoNormal), a Poisson latent, Python control flow
on a continuous latent, and the GMM tutorial (continuous locs, the assignment enumerated in
the model; as written there with ``locs[assignment]``, and with Vindex). Refusals
(``test_refusals.py``): a continuous latent the guide leaves out, a guide site the model
lacks, a randomly subsampled plate, AutoDelta on a continuous latent, an unguided Poisson.

References (``references.py``, ``gaussian.py``, ``montecarlo.py``)
--------------------------------------------------------------------
- ``enumerate_posterior``: ``-TraceEnum_ELBO(max_plate_nesting).loss`` with an empty guide
  for ``log_evidence`` (s log p(x) under a common scale s, which Pyro puts outside the
  log-sum-exp) and that divided by s for ``unscaled_log_evidence``; refusals where
  TraceEnum_ELBO refuses (one sum, different scales);
  ``TraceEnum_ELBO.compute_marginals``, ``infer_discrete`` (MAP), a brute-force sum over every
  joint assignment (control flow included), closed forms (medical test, grid coin).
- ``elbo_decomposition`` and ``compare`` (discrete guides): the brute-force table scored
  under the guide, and TraceEnum_ELBO with the guide enumerated in parallel.
- ``evaluate`` and Monte Carlo ``elbo_decomposition``: closed forms (linear-Gaussian blocks,
  Beta-Bernoulli, truncated Poisson sums) and the estimator's own distribution replicated
  from hand-written log weights; ``test_references.py`` checks those formulas against Pyro's
  ``Trace_ELBO`` / ``TraceEnum_ELBO`` with 20000 vectorized particles.
- ``psis_khat``: exact guides must read "exact" (or k-hat <= 0.5), never nan/+inf; a bad
  guide against ``pyro.infer.importance.psis_diagnostic``.
- ``to_inference_data``: the guide's moments, the exact marginals, the exact conditional of
  model-enumerated sites given the guide's draw, log p(x | z) recomputed from the draws.
- ``test_property.py``: hypothesis-generated plated discrete models with random masks and
  scales against TraceEnum_ELBO and compute_marginals.

Tiers
-----
``make test`` runs the fast subset (cases with ``fast=True``; about 200 tests, ~20 s on one
core). The whole corpus (~550 tests, a few minutes) is the slow tier::

    .venv/bin/python -m pytest -q tests/differential -p no:cacheprovider -m "slow or not slow"

and ``make test-slow`` runs its slow part with the rest of the second tier.
"""
