"""The hostile-input fuzz suite (issue 15): every public entry point, and the CLI."""
