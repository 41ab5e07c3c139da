"""``pywsgi.modpython_util``, as docs/mod_python.md names it (mod_python.util under the shim); the
code is pywsgi/modpython/util.py."""
from pywsgi.modpython.util import *  # noqa: F401,F403
from pywsgi.modpython.util import __all__  # noqa: F401
