"""The mod_python package as pywsgi provides it (an opt-in shim: --mod-python-shim or
pywsgi.modpython.install_shim() puts its parent directory on sys.path).

Only ``mod_python.apache`` and ``mod_python.util`` exist; see docs/mod_python.md for what else
mod_python had and why it is not here.
"""
from pywsgi.modpython import version  # noqa: F401

__all__ = ["apache", "util", "version"]
