r"""The application layer: figures, the demo and its HTML report, the ``pvae`` command.

Nothing in pvae imports this package; it imports everything below it. Its modules import
matplotlib only when a figure is drawn.

- :mod:`pvae.app.plot` -- figures;
- :mod:`pvae.app.report` -- the demo pipeline and its HTML report;
- :mod:`pvae.app.cli` -- the ``pvae`` command.
"""
