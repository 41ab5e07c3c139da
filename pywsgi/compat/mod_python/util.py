"""mod_python.util: FieldStorage, redirect, parse_header, parse_qs(l) from pywsgi.modpython.util."""
from pywsgi.modpython.util import *  # noqa: F401,F403
from pywsgi.modpython.util import __all__  # noqa: F401
