r"""Variational inference checked against the truth.

- :mod:`pvae.vi.divergence` -- :func:`kl_divergence`, :func:`total_variation`;
- :mod:`pvae.vi.guide_enumeration` -- exact sums over a discrete guide's support;
- :mod:`pvae.vi.guides` -- :class:`MeanFieldGuide`, :func:`fit_guide`;
- :mod:`pvae.vi.coordinate_ascent` -- :func:`cavi`, the best mean-field answer;
- :mod:`pvae.vi.decomposition` -- :func:`elbo_decomposition` (the ELBO identity);
- :mod:`pvae.vi.quadrature` -- :math:`\log p(x)` by quadrature for one or two dims;
- :mod:`pvae.vi.comparison` -- :func:`compare`, a guide beside the exact posterior;
- :mod:`pvae.vi.amortization` -- the amortization gap;
- :mod:`pvae.vi.discrete_gap` -- the discrete amortization gap, KL(q(y | x) || p(y | x)).
"""

from pvae.vi.amortization import AmortizationGap, amortization_gap, vae_amortization_gap
from pvae.vi.comparison import Comparison, compare
from pvae.vi.coordinate_ascent import CAVIResult, cavi
from pvae.vi.decomposition import ELBODecomposition, elbo_decomposition
from pvae.vi.discrete_gap import DiscreteGap, discrete_amortization_gap
from pvae.vi.divergence import KLEstimate, kl_divergence, total_variation
from pvae.vi.guide_enumeration import DiscreteTable, GuideEnumeration, enumerate_guide
from pvae.vi.guides import GuideFit, MeanFieldGuide, fit_guide

__all__ = [
    "AmortizationGap",
    "CAVIResult",
    "Comparison",
    "DiscreteGap",
    "DiscreteTable",
    "ELBODecomposition",
    "GuideEnumeration",
    "GuideFit",
    "KLEstimate",
    "MeanFieldGuide",
    "amortization_gap",
    "cavi",
    "compare",
    "discrete_amortization_gap",
    "elbo_decomposition",
    "enumerate_guide",
    "fit_guide",
    "kl_divergence",
    "total_variation",
    "vae_amortization_gap",
]
