"""pvae: variational inference on Pyro and PyTorch, checked against exact answers."""

__version__ = "0.1.0"

__all__ = ["__version__"]
