r"""The application layer: figures, the demo and its HTML report, the ``pvae`` command.

Nothing in pvae imports this package; it imports everything below it. Its modules import
matplotlib only when a figure is drawn, and torch only when a command runs.

- :mod:`pvae.app.plot` -- figures (a package: images, latents, curves, tables);
- :mod:`pvae.app.metrics` -- the test metrics of a trained model;
- :mod:`pvae.app.demo` -- the demo pipeline (:func:`~pvae.app.demo.run_demo`);
- :mod:`pvae.app.report` -- its self-contained HTML report;
- :mod:`pvae.app.cli` -- the ``pvae`` command's parser and entry point;
- :mod:`pvae.app.commands` -- its subcommands.
"""
