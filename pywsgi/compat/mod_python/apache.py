"""mod_python.apache: the very objects of pywsgi.modpython (one SERVER_RETURN class, one table
class), so handlers and the server agree on them."""
from pywsgi.modpython import *  # noqa: F401,F403
from pywsgi.modpython import __all__  # noqa: F401
