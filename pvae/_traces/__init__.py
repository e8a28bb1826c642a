r"""The one importance-weight core: run the guide, replay the model, sum log-densities.

Every number pvae computes from a model/guide pair -- the ELBO, the importance-weighted
:math:`\log p(x)`, PSIS :math:`\hat k`, the ArviZ export, the ELBO decomposition -- goes
through this module, so one convention holds everywhere:

.. math::

    \log w = \log p(x, z) - \log q(z), \qquad z \sim q(z \mid x).

**Densities are the model's.** A site's term is its ``log_prob`` *masked* (``poutine.mask``,
``obs_mask``: a masked element contributes 0) and *unscaled*: ``poutine.scale`` -- a
:math:`\beta`-VAE's KL weight, a subsample's :math:`N/B` -- weights a training objective,
not the density, so it never enters a reported ELBO, KL or :math:`\log p(x)`.

**Latents the guide leaves to the model** (discrete sites, enumerated in the model as in
:class:`~pyro.infer.TraceEnum_ELBO`) are summed out exactly, with Pyro's convention: the
enumerated site's own factor is unmasked (it sums to one) and masks apply inside the sum.
A continuous latent the guide does not sample is refused.

**Per example or joint.** When every latent and observed site of the model, and every
site of the guide, lies in the plate over the examples (``"data"``), the weights factor
over that plate and are returned per example (``[K, N]``); otherwise (a global latent, a
guide that couples examples such as ``AutoMultivariateNormal``) they are the joint weights
of the whole data set (``[K]``), and :attr:`Structure.joint_reason` says why.

**Particles** run in a ``pyro.plate`` left of every plate of the model (Pyro's
``vectorize_particles``). The vectorized result is checked against unvectorized runs of its
first and last particle; a model that does not broadcast over that dimension (it fails, or
it sums over it with ``z.sum()``) is detected that way and run one particle at a time, and
:attr:`Weights.vectorized` and :attr:`Weights.reason` record it.

A randomly subsampled plate (``subsample_size`` smaller than the plate) is refused: each
call would score different data.
"""

from pvae._traces.densities import (
    contract_model,
    enumerate_model_sites,
    log_density,
    reduce_dims,
    site_terms,
    tensor_values,
    unscaled,
    vectorized,
)
from pvae._traces.structure import (
    PARTICLES,
    SHAPE_ERRORS,
    Structure,
    inspect,
    max_plate_nesting,
    plates_of,
    sample_sites,
)
from pvae._traces.weights import (
    MAX_ELEMENTS,
    Weights,
    log_mean_exp,
    log_weights,
    particle_traces,
)
from pvae._traces.zeros import exact_log_probs

__all__ = [
    "MAX_ELEMENTS",
    "PARTICLES",
    "SHAPE_ERRORS",
    "exact_log_probs",
    "Structure",
    "Weights",
    "contract_model",
    "enumerate_model_sites",
    "inspect",
    "log_density",
    "log_mean_exp",
    "log_weights",
    "max_plate_nesting",
    "particle_traces",
    "plates_of",
    "reduce_dims",
    "sample_sites",
    "site_terms",
    "tensor_values",
    "unscaled",
    "vectorized",
]
