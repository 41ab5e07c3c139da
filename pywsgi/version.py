"""pywsgi's version (pywsgi.__version__), in a leaf module every layer may import: the server
software string, the startup line, the welcome page, the status page."""

__version__ = "0.1.0"   # also in pyproject.toml and meson.build
