r"""Data-parallel training on ``torch.distributed``, launched with ``torchrun``.

Every process (a *rank*) holds a full copy of the model and guide, trains on its own
shard of the data, and averages gradients with the other ranks before each optimizer
step, so all replicas take the same step and stay identical. With :math:`R` ranks each
drawing a batch of :math:`B` examples, one step estimates the ELBO gradient from
:math:`R B` examples:

.. math::
    g = \frac{1}{R} \sum_{r=1}^{R} \nabla_\phi \widehat{\mathcal{L}}_r(\phi),

where :math:`\widehat{\mathcal{L}}_r` is rank :math:`r`'s minibatch loss (Pyro's negative
ELBO estimate).

Pyro needs two things done differently from a plain PyTorch
``DistributedDataParallel`` (DDP) model:

1. ``SVI.step`` calls the model and guide directly, so a DDP wrapper's ``forward`` (where
   DDP hooks its gradient synchronisation) never runs and gradients are never averaged.
2. ``SVI.step`` collects parameters in a ``set``, whose iteration order depends on memory
   addresses and differs between processes; all-reducing gradients in that order adds
   different parameters into each other.

:func:`average_gradients` therefore sorts parameters by *name* (Pyro param-store names,
which every rank shares), flattens their gradients into one buffer, all-reduces it once
per step and divides by the world size. It works for any parameter in Pyro's param store
(``pyro.param``, ``PyroModule``, ``pyro.module``), needs no wrapper ``forward``, and costs
one collective per step.

Launch with ``torchrun --nproc_per_node=N ...``; without it every function here is a
no-op and training is plain single-process training.
"""

from pvae.training.distributed.collectives import (
    all_reduce_mean,
    all_reduce_sum,
    average_gradients,
    broadcast_parameters,
)
from pvae.training.distributed.context import (
    DEFAULT_TIMEOUT,
    DistributedContext,
    DistributedError,
    current_context,
    init_distributed,
)
from pvae.training.distributed.sharding import DistributedBatches, shard_batches, shard_indices

__all__ = [
    "DEFAULT_TIMEOUT",
    "DistributedBatches",
    "DistributedContext",
    "DistributedError",
    "all_reduce_mean",
    "all_reduce_sum",
    "average_gradients",
    "broadcast_parameters",
    "current_context",
    "init_distributed",
    "shard_batches",
    "shard_indices",
]
