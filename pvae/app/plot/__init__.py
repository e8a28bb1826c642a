r"""Figures: what a trained model does, drawn with matplotlib (``pvae.plot`` is this package).

Every function takes plain tensors/arrays (or a small pvae record) and returns a
:class:`matplotlib.figure.Figure`; nothing is shown and no global pyplot state is touched,
so the functions work headless (Agg) and in notebooks alike. The figure is a
:class:`~pvae.app.plot.figure.PvaeFigure`: returned as the last value of a Jupyter cell it is
displayed (no ``%matplotlib inline``, no ``plt.show()``). Save with
``fig.savefig("name.png")``. matplotlib is imported only when a function runs, so
``import pvae`` stays light.

======================== ==============================================================
function                 shows
======================== ==============================================================
:func:`reconstructions`  inputs :math:`x` above reconstructions :math:`\hat x`
:func:`samples`          images decoded from :math:`z \sim p(z)`
:func:`ae_vs_vae`        decoded random codes: autoencoder beside VAE
:func:`latent_scatter`   codes :math:`\mathbb{E}_q[z \mid x]` coloured by label
:func:`traversal`        one latent dimension varied at a time
:func:`interpolation`    decoding a path between two codes
:func:`training_curves`  ELBO, reconstruction and KL per epoch (train and validation)
:func:`bayes_table`      prior against posterior over hypotheses
:func:`posterior_bars`   exact posterior against a variational :math:`q`
======================== ==============================================================

Modules: :mod:`~pvae.app.plot.images` (image grids), :mod:`~pvae.app.plot.latents`
(latent space), :mod:`~pvae.app.plot.curves` (training curves),
:mod:`~pvae.app.plot.tables` (probability bars), :mod:`~pvae.app.plot.canvas` (the shared
drawing pieces), :mod:`~pvae.app.plot.figure` (the figure that displays itself).

Examples
--------
>>> import torch
>>> from pvae import plot
>>> fig = plot.reconstructions(torch.rand(4, 64), torch.rand(4, 64), (8, 8))
>>> [ax.get_title() for ax in fig.axes]
['input x', 'reconstruction']
"""

from pvae.app.plot.curves import training_curves
from pvae.app.plot.images import ae_vs_vae, reconstructions, samples
from pvae.app.plot.latents import interpolation, latent_scatter, traversal
from pvae.app.plot.tables import bayes_table, posterior_bars

__all__ = [
    "ae_vs_vae",
    "bayes_table",
    "interpolation",
    "latent_scatter",
    "posterior_bars",
    "reconstructions",
    "samples",
    "training_curves",
    "traversal",
]
