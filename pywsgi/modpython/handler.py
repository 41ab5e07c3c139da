"""A mod_python handler as a WSGI application: ``HandlerApplication`` calls the handler with a
``Request`` (request.py) and turns its return code into the response; ``load_handler`` imports
'module::handler' in the serving process."""
from __future__ import annotations

import sys
from typing import Any, Callable, Dict, List, Optional, Tuple

from pywsgi.errors import LoadError
from pywsgi.loader import import_hint, load_module_spec
from pywsgi.modpython.apache import HTTP_INTERNAL_SERVER_ERROR, OK, SERVER_RETURN
from pywsgi.modpython.options import apply_python_path, mod_python_settings
from pywsgi.modpython.request import Request, _BodyError
from pywsgi.observe import errorlog
from pywsgi.site.routing import internal_router, request_host

__all__ = ["HandlerApplication", "load_handler"]


class HandlerApplication:
    """The WSGI application that runs one mod_python handler."""

    def __init__(self, handler: Callable, spec: str) -> None:
        self.handler = handler
        self.spec = spec
        module = sys.modules.get(getattr(handler, "__module__", "") or "")
        self.filename = getattr(module, "__file__", None) or spec
        self.__name__ = spec  # how the server names the application in log lines

    def __repr__(self) -> str:
        return f"<mod_python handler {self.spec}>"

    def route(self, path: str, environ: Dict[str, Any]
              ) -> Optional[Tuple[str, Callable, Dict[str, Any]]]:
        """(prefix, app, extras) that serves `path` for req.internal_redirect from the request
        `environ` (its virtual host): the server's mounts when it routes internal redirects (it
        does when it has CGI mounts), else the handler mounts; None when nothing does."""
        host = request_host(environ)
        router = internal_router()
        if router is None:
            return _route_handler(path, host)
        mount = router.route(path, host)
        return None if mount is None else (mount.prefix, mount.wsgi_app, mount.extras)

    def __call__(self, environ: Dict[str, Any], start_response: Callable) -> List[bytes]:
        req = Request(self, environ, start_response, environ.get("pywsgi.modpython.prev"))
        try:
            try:
                code = self.handler(req)
            except SERVER_RETURN as exc:
                code = _server_return_code(req, exc)
            return req._finish(code)
        except _BodyError as exc:
            if req._write is not None:
                raise
            # the core answers with the status the body read failed with (400, 408, 413): the
            # read's own exception, as it was
            raise exc.__cause__ or exc  # noqa: B904
        except Exception as exc:
            if req._write is not None or req._redirected:
                raise  # the response started: the core logs it and closes the connection
            errorlog.exception(f"mod_python handler {self.spec} failed "
                               f"({req.method} {req.unparsed_uri}){import_hint(exc)}")
            return req._error_response(HTTP_INTERNAL_SERVER_ERROR, sys.exc_info())
        finally:
            if req._cleanups:
                req._run_cleanups()


def _server_return_code(req: Request, exc: SERVER_RETURN) -> Any:
    """SERVER_RETURN(code) or SERVER_RETURN(code, status) -> code (status set on req)."""
    args = exc.args
    if len(args) == 2:
        code, status = args
        if status:
            req.status = status
        return code
    if len(args) == 1:
        return args[0]
    return OK


_handler_apps: Dict[str, HandlerApplication] = {}


def _route_handler(path: str, host: str) -> Optional[Tuple[str, Callable, Dict[str, Any]]]:
    """(prefix, app, {}) of the handler mount serving `path` (longest prefix), its handler
    loaded in this process on first use; None when no handler mount serves it."""
    mount = mod_python_settings["handler_routes"].route(path, host)
    if mount is None:
        return None
    app = _handler_apps.get(mount.target) or load_handler(mount.target)
    return mount.prefix, app, {}


def load_handler(spec: str) -> HandlerApplication:
    """'module::handler' -> its WSGI adapter, importing the module now (raises
    loader.LoadError with a one-line message)."""
    import email.utils  # noqa: F401  (req's HTTP dates: imported now, not by a request)

    module, _, handler = spec.partition("::")
    handler = handler or "handler"
    apply_python_path()
    spec = f"{module}::{handler}"
    try:
        function = load_module_spec(f"{module}:{handler}")
    except LoadError as exc:
        message = str(exc).replace(f"{module}:{handler}", spec, 1)  # the loader names the shim
        raise LoadError(message) from exc.__cause__
    app = _handler_apps.get(spec)
    if app is None or app.handler is not function:
        app = _handler_apps[spec] = HandlerApplication(function, spec)
    return app
