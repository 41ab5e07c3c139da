"""A package for the `pywsgi pkg.module:app` form of the CLI."""
