r"""The rows of a :func:`pvae.fit` history: one dict per epoch, with symmetric key names.

Keys come in pairs, ``train_*`` and ``val_*``, for the same quantity on the training and
the validation data:

=========================================  ===============================================
key                                        meaning (nats per example, positive sense)
=========================================  ===============================================
``train_elbo``, ``val_elbo``               the model's ELBO (:math:`\beta = 1`)
``train_reconstruction``,                  :math:`\mathbb{E}_q \log p(x \mid z)`
``val_reconstruction``
``train_kl_prior``, ``val_kl_prior``       :math:`\mathrm{KL}(q(z \mid x) \,\|\, p(z))`
``train_objective``                        the trained objective, where it differs from
                                           the ELBO (a :math:`\beta`-VAE, KL annealing,
                                           ``poutine.scale``)
``train_loss``, ``val_loss``               squared error, for models trained on it
=========================================  ===============================================

plus ``epoch``, ``lr`` and ``beta`` (when scheduled or not 1) and ``seconds``.

plus, from :func:`pvae.evaluation.collapse_callback`, ``val_num_active``,
``val_mutual_information``, ``val_marginal_kl`` and ``val_kl_prior_dim_0``, ... (measured on
its ``x_val``). The key names of pvae 0.1 (:data:`DEPRECATED_KEYS`: ``reconstruction``,
``kl``, ``val_kl``, ``active_units``, ``mutual_information``, ``marginal_kl``, ``kl_dim_*``)
still read, with a :class:`DeprecationWarning`, until pvae 0.3.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pvae._compat import RenamedKeys

__all__ = ["DEPRECATED_KEYS", "HistoryRow"]

#: History keys of pvae 0.1 -> their names since 0.2 (the old ones read until 0.3).
DEPRECATED_KEYS = {
    "reconstruction": "train_reconstruction",
    "kl": "train_kl_prior",
    "val_kl": "val_kl_prior",
    # what pvae.evaluation.collapse_callback wrote, measured on its x_val
    "active_units": "val_num_active",
    "mutual_information": "val_mutual_information",
    "marginal_kl": "val_marginal_kl",
}


def _new_name(key: Any) -> str | None:
    if not isinstance(key, str):
        return None
    if key.startswith("kl_dim_"):  # collapse_callback's per-dimension KL
        return "val_kl_prior_dim_" + key[len("kl_dim_") :]
    return DEPRECATED_KEYS.get(key)


class HistoryRow(RenamedKeys):
    """One epoch of a fit history: a plain ``dict`` that also answers the 0.1 key names.

    Iteration, ``keys()``, JSON and equality see only the current names; reading an old
    name (``row["kl"]``, ``row.get("kl")``, ``"kl" in row``) returns the current value
    with a :class:`DeprecationWarning`.

    Examples
    --------
    >>> row = HistoryRow(epoch=1, train_elbo=-3.5, train_kl_prior=1.25)
    >>> sorted(row)
    ['epoch', 'train_elbo', 'train_kl_prior']
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     old = row["kl"]
    >>> old, caught[0].category.__name__
    (1.25, 'DeprecationWarning')
    """

    what = "the history key"
    new_name = staticmethod(_new_name)

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or self._alias(key) is not None

    def copy(self) -> HistoryRow:
        return HistoryRow(self)

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> HistoryRow:
        """A row with old key names renamed (a checkpoint written by pvae 0.1).

        Examples
        --------
        >>> HistoryRow.from_dict({"epoch": 1, "kl": 2.0, "val_kl": 3.0})
        {'epoch': 1, 'train_kl_prior': 2.0, 'val_kl_prior': 3.0}
        """
        return cls({_new_name(k) or k: v for k, v in row.items()})

    def __reduce__(self) -> tuple:
        return (HistoryRow, (dict(self),))
