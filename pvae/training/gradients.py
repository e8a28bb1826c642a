r"""Gradient norms and clipping, on any torch version pvae supports.

The global gradient norm :math:`\lVert g \rVert_2` over all parameters is what
``clip_norm`` bounds (Pascanu et al., 2013) and what :class:`~pvae.training.step.SVIStep`
checks for finiteness before an update.
"""

from __future__ import annotations

import torch

__all__ = ["clip_to", "total_norm"]


def total_norm(grads: list[torch.Tensor]) -> torch.Tensor:
    """The 2-norm of all ``grads`` together.

    Examples
    --------
    >>> total_norm([torch.tensor([3.0]), torch.tensor([4.0])])
    tensor(5.)
    """
    get_total_norm = getattr(torch.nn.utils, "get_total_norm", None)  # torch >= 2.6
    if get_total_norm is not None:
        return get_total_norm(grads)
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


def clip_to(params: list[torch.Tensor], max_norm: float, total: torch.Tensor) -> None:
    """Scale the gradients of ``params`` so that their global norm ``total`` is at most
    ``max_norm``.

    Examples
    --------
    >>> w = torch.zeros(2, requires_grad=True)
    >>> w.grad = torch.tensor([3.0, 4.0])
    >>> clip_to([w], 1.0, total_norm([w.grad]))
    >>> [round(g, 4) for g in w.grad.tolist()]
    [0.6, 0.8]
    """
    clip_with_norm = getattr(torch.nn.utils, "clip_grads_with_norm_", None)  # torch >= 2.6
    if clip_with_norm is not None:
        clip_with_norm(params, max_norm, total)
    else:
        torch.nn.utils.clip_grad_norm_(params, max_norm)
