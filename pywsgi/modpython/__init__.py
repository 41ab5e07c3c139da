"""mod_python handlers on top of the WSGI layer (``PythonHandler module::handler``).

    pywsgi --python-path /srv/handlers --python-handler /app=myhandlers::handler --mod-python-shim

A handler written for mod_python runs unchanged::

    from mod_python import apache

    def handler(req):
        req.content_type = 'text/plain'
        req.write('Hello World!')
        return apache.OK

Each --python-handler becomes a mount (of the kind MOD_PYTHON) whose target is the spec
``module::handler``; load_handler (handler.py) turns that into a ``HandlerApplication`` (a WSGI
callable) in the process that serves it — a server process in embedded mode, a daemon process in
daemon mode — so nothing here is mode-specific. This package is also ``mod_python.apache`` once
the shim is installed (``--mod-python-shim`` or ``install_shim()``): it re-exports the constants
(``OK``, ``DECLINED``, ``DONE``, ``HTTP_*``, ``APLOG_*``), ``SERVER_RETURN``, ``log_error``,
``table`` and ``import_module`` (apache.py), the request (request.py) and the handler adapter
(handler.py).
Form parsing (``mod_python.util``) lives in util.py, also importable as ``pywsgi.modpython_util``.

What is and is not supported, and why: docs/mod_python.md.
"""
# re-exported: the names of mod_python.apache (__all__ below)
import pywsgi.modpython.apache as _apache
from pywsgi.modpython.apache import *  # noqa: F403
from pywsgi.modpython.apache import mpm_query_threaded  # noqa: F401
from pywsgi.modpython.handler import HandlerApplication, load_handler  # noqa: F401
from pywsgi.modpython.options import install_shim, plan_mounts  # noqa: F401
from pywsgi.modpython.request import Request  # noqa: F401
from pywsgi.targets import is_handler_spec  # noqa: F401

__all__ = sorted(_apache.__all__ + ["install_shim", "plan_mounts", "load_handler",
                                    "is_handler_spec", "HandlerApplication", "Request"])
