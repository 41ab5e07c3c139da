"""``pywsgi.sources``, as docs/configuration.md names it (FileSource, collect, read_toml); the
code is pywsgi/config/sources.py."""
from pywsgi.config.sources import *  # noqa: F401,F403
from pywsgi.config.sources import __all__  # noqa: F401
