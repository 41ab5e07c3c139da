"""mod_python handlers on top of the WSGI layer (``PythonHandler module::handler``).

    pywsgi --python-path /srv/handlers --python-handler /app=myhandlers::handler --mod-python-shim

A handler written for mod_python runs unchanged::

    from mod_python import apache

    def handler(req):
        req.content_type = 'text/plain'
        req.write('Hello World!')
        return apache.OK

Each --python-handler becomes a mount whose target is the spec ``module::handler``; the loader
turns that into a ``HandlerApplication`` (a WSGI callable) in the process that serves it — a
server process in embedded mode, a daemon process in daemon mode — so nothing here is
mode-specific. This module is also ``mod_python.apache`` once the shim is installed
(``--mod-python-shim`` or ``install_shim()``): it holds the constants (``OK``, ``DECLINED``,
``DONE``, ``HTTP_*``, ``APLOG_*``), ``SERVER_RETURN``, ``log_error``, ``table`` and
``import_module``. Form parsing (``mod_python.util``) lives in ``pywsgi.modpython_util``.

What is and is not supported, and why: docs/mod_python.md.
"""
from __future__ import annotations

import base64
import binascii
import importlib
import os
import sys
import time
from collections.abc import MutableMapping
from email.utils import formatdate, parsedate_to_datetime
from functools import cached_property, lru_cache
from http import HTTPStatus
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple
from urllib.parse import parse_qs as _parse_qs, parse_qsl as _parse_qsl

from pywsgi.observe import errorlog
from pywsgi.errors import LoadError, StartupError
from pywsgi.targets import is_handler_spec

version = "3.5.0 (pywsgi)"        # what mod_python.version reports under the shim
mpm_query_threaded = True

# ---------------------------------------------------------------- return codes and constants

OK = 0
DECLINED = -1
DONE = -2
PROG_TRACEBACK = "PROG_TRACEBACK"

HTTP_CONTINUE = 100
HTTP_SWITCHING_PROTOCOLS = 101
HTTP_PROCESSING = 102
HTTP_OK = 200
HTTP_CREATED = 201
HTTP_ACCEPTED = 202
HTTP_NON_AUTHORITATIVE = 203
HTTP_NO_CONTENT = 204
HTTP_RESET_CONTENT = 205
HTTP_PARTIAL_CONTENT = 206
HTTP_MULTI_STATUS = 207
HTTP_MULTIPLE_CHOICES = 300
HTTP_MOVED_PERMANENTLY = 301
HTTP_MOVED_TEMPORARILY = 302
HTTP_SEE_OTHER = 303
HTTP_NOT_MODIFIED = 304
HTTP_USE_PROXY = 305
HTTP_TEMPORARY_REDIRECT = 307
HTTP_BAD_REQUEST = 400
HTTP_UNAUTHORIZED = 401
HTTP_PAYMENT_REQUIRED = 402
HTTP_FORBIDDEN = 403
HTTP_NOT_FOUND = 404
HTTP_METHOD_NOT_ALLOWED = 405
HTTP_NOT_ACCEPTABLE = 406
HTTP_PROXY_AUTHENTICATION_REQUIRED = 407
HTTP_REQUEST_TIME_OUT = 408
HTTP_CONFLICT = 409
HTTP_GONE = 410
HTTP_LENGTH_REQUIRED = 411
HTTP_PRECONDITION_FAILED = 412
HTTP_REQUEST_ENTITY_TOO_LARGE = 413
HTTP_REQUEST_URI_TOO_LARGE = 414
HTTP_UNSUPPORTED_MEDIA_TYPE = 415
HTTP_RANGE_NOT_SATISFIABLE = 416
HTTP_EXPECTATION_FAILED = 417
HTTP_UNPROCESSABLE_ENTITY = 422
HTTP_LOCKED = 423
HTTP_FAILED_DEPENDENCY = 424
HTTP_UPGRADE_REQUIRED = 426
HTTP_INTERNAL_SERVER_ERROR = 500
HTTP_NOT_IMPLEMENTED = 501
HTTP_BAD_GATEWAY = 502
HTTP_SERVICE_UNAVAILABLE = 503
HTTP_GATEWAY_TIME_OUT = 504
HTTP_VERSION_NOT_SUPPORTED = 505
HTTP_VARIANT_ALSO_VARIES = 506
HTTP_INSUFFICIENT_STORAGE = 507
HTTP_NOT_EXTENDED = 510

APLOG_EMERG = 0
APLOG_ALERT = 1
APLOG_CRIT = 2
APLOG_ERR = 3
APLOG_WARNING = 4
APLOG_NOTICE = 5
APLOG_INFO = 6
APLOG_DEBUG = 7
APLOG_NOERRNO = 0  # Apache 2 ignores it; kept so `level=APLOG_NOERRNO|APLOG_ERR` still works

REMOTE_HOST = 0
REMOTE_NAME = 1
REMOTE_NOLOOKUP = 2
REMOTE_DOUBLE_REV = 3

M_GET, M_PUT, M_POST, M_DELETE, M_CONNECT, M_OPTIONS, M_TRACE, M_PATCH = range(8)
_METHOD_NUMBERS = {"GET": M_GET, "HEAD": M_GET, "PUT": M_PUT, "POST": M_POST,
                   "DELETE": M_DELETE, "CONNECT": M_CONNECT, "OPTIONS": M_OPTIONS,
                   "TRACE": M_TRACE, "PATCH": M_PATCH}

_LOG_LEVELS = {APLOG_EMERG: "crit", APLOG_ALERT: "crit", APLOG_CRIT: "crit",
               APLOG_ERR: "error", APLOG_WARNING: "warn", APLOG_NOTICE: "info",
               APLOG_INFO: "info", APLOG_DEBUG: "debug"}

MAX_INTERNAL_REDIRECTS = 10       # Apache's LimitInternalRecursion
_SENDFILE_BLOCK = 64 * 1024


class SERVER_RETURN(Exception):
    """Raised by a handler to end the request with a code: SERVER_RETURN(apache.HTTP_FORBIDDEN),
    or SERVER_RETURN(code, status) which also sets req.status."""


def log_error(message: str, level: int = APLOG_ERR, server: Any = None) -> None:
    """apache.log_error: a line in the server's error log."""
    errorlog.log(_LOG_LEVELS.get(int(level) & 7, "error"), str(message))


def parse_qs(qs: str, keep_blank_values: int = 0, strict_parsing: int = 0) -> Dict[str, List[str]]:
    return _parse_qs(qs, keep_blank_values=bool(keep_blank_values),
                     strict_parsing=bool(strict_parsing))


def parse_qsl(qs: str, keep_blank_values: int = 0, strict_parsing: int = 0) -> List[Tuple[str, str]]:
    return _parse_qsl(qs, keep_blank_values=bool(keep_blank_values),
                      strict_parsing=bool(strict_parsing))


def import_module(module_name: str, autoreload: Any = None, log: Any = None,
                  path: Optional[Iterable[str]] = None):
    """apache.import_module: import by name, looking in `path` first. No autoreload (modules are
    imported once per process; SIGHUP restarts the processes)."""
    if path:
        for directory in reversed(list(path)):
            if directory not in sys.path:
                sys.path.insert(0, directory)
    return importlib.import_module(module_name)


def server_root() -> str:
    return os.getcwd()


def exists_config_define(name: str) -> bool:
    return False


def mpm_query(code: int) -> int:
    return 0


# ---------------------------------------------------------------- table

class table(MutableMapping):
    """apache.table: a case-insensitive mapping of str to str that may hold a key several times
    (``add``). ``t[key]`` gives the value, or a list when the key was added several times, as
    mod_python's table does."""

    def __init__(self, items: Any = None) -> None:
        self._entries: List[Tuple[str, str]] = []
        if items is not None:
            pairs = items.items() if hasattr(items, "items") else items
            for key, value in pairs:
                self.add(key, value)

    @staticmethod
    def _check(key: Any, value: Any) -> Tuple[str, str]:
        if not isinstance(key, str):
            raise TypeError(f"table keys must be str, not {type(key).__name__}")
        return key, value if isinstance(value, str) else str(value)

    def __getitem__(self, key: str):
        lower = key.lower()
        values = [v for k, v in self._entries if k.lower() == lower]
        if not values:
            raise KeyError(key)
        return values[0] if len(values) == 1 else values

    def __setitem__(self, key: str, value: Any) -> None:
        key, value = self._check(key, value)
        lower = key.lower()
        self._entries = [(k, v) for k, v in self._entries if k.lower() != lower]
        self._entries.append((key, value))

    def __delitem__(self, key: str) -> None:
        lower = key.lower()
        kept = [(k, v) for k, v in self._entries if k.lower() != lower]
        if len(kept) == len(self._entries):
            raise KeyError(key)
        self._entries = kept

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        lower = key.lower()
        return any(k.lower() == lower for k, _ in self._entries)

    def __iter__(self):
        seen = set()
        for key, _ in list(self._entries):
            if key.lower() not in seen:
                seen.add(key.lower())
                yield key

    def __len__(self) -> int:
        return len({k.lower() for k, _ in self._entries})

    def add(self, key: str, value: Any) -> None:
        self._entries.append(self._check(key, value))

    def has_key(self, key: str) -> bool:
        return key in self

    def copy(self) -> "table":
        return table(self._entries)

    def clear(self) -> None:
        self._entries = []

    def all_items(self) -> List[Tuple[str, str]]:
        """Every (key, value) pair, repeated keys included, in the order added."""
        return list(self._entries)

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k!r}: {v!r}" for k, v in self._entries) + "}"


make_table = table


# ---------------------------------------------------------------- configuration

# Set by plan_mounts() in the master before it forks, so every process that loads a handler
# (a server process, or a daemon process) sees the same values.
_config: Dict[str, Any] = {"python_path": [], "python_option": [], "shim": False,
                           "limit_request_body": 0, "handlers": []}


def install_shim() -> None:
    """Make ``import mod_python.apache`` / ``mod_python.util`` resolve to pywsgi's modules (the
    directory pywsgi/compat goes first on sys.path). Opt-in: a real mod_python must not be
    shadowed unless asked for."""
    compat = os.path.join(os.path.dirname(os.path.abspath(__file__)), "compat")
    if compat not in sys.path:
        sys.path.insert(0, compat)


def plan_mounts(settings: Dict[str, Any]) -> List[Any]:
    """The master's hook: remember the mod_python settings and give one mount per
    --python-handler (target 'module::handler', loaded in the serving process)."""
    from pywsgi.site.mounts import Mount
    _config["python_path"] = list(settings.get("python_path") or ())
    _config["python_option"] = list(settings.get("python_option") or ())
    _config["shim"] = bool(settings.get("mod_python_shim"))
    _config["limit_request_body"] = settings.get("limit_request_body") or 0
    if _config["shim"]:
        install_shim()  # now, so every process (forked later) has it: WSGI scripts use it too
    for directory in _config["python_path"]:
        if not os.path.isdir(directory):
            raise StartupError(f"--python-path {directory}: no such directory")
    mounts = []
    for url, module, handler in settings.get("python_handler") or ():
        url = settings.get("mount_point", "") if url is None else url
        spec = f"{module}::{handler}"
        mounts.append(Mount(url, spec, f"mod_python handler {spec}"))
    _config["handlers"] = [(mount.prefix, mount.target) for mount in mounts]
    return mounts


_handler_apps: Dict[str, "HandlerApplication"] = {}


def _route_handler(path: str) -> Optional[Tuple[str, Callable, Dict[str, Any]]]:
    """(prefix, app, {}) of the --python-handler mount serving `path` (longest prefix), its
    handler loaded in this process on first use; None when no handler mount serves it."""
    best = None
    for prefix, spec in _config["handlers"]:
        if not prefix or path == prefix or path.startswith(prefix + "/"):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, spec)
    if best is None:
        return None
    app = _handler_apps.get(best[1]) or load_handler(best[1])
    return best[0], app, {}


def _apply_python_path() -> None:
    for directory in reversed(_config["python_path"]):
        if directory not in sys.path:
            sys.path.insert(0, directory)
    if _config["shim"]:
        install_shim()


def load_handler(spec: str) -> "HandlerApplication":
    """'module::handler' -> its WSGI adapter, importing the module now (raises
    loader.LoadError with a one-line message)."""
    from pywsgi import loader
    module, _, handler = spec.partition("::")
    handler = handler or "handler"
    _apply_python_path()
    spec = f"{module}::{handler}"
    try:
        function = loader.load_module_spec(f"{module}:{handler}")
    except LoadError as exc:
        message = str(exc).replace(f"{module}:{handler}", spec, 1)  # the loader names the shim
        raise LoadError(message) from exc.__cause__
    app = _handler_apps.get(spec)
    if app is None or app.handler is not function:
        app = _handler_apps[spec] = HandlerApplication(function, spec)
    return app


# ---------------------------------------------------------------- the request object

class _Connection:
    """req.connection: the client connection."""

    def __init__(self, environ: Dict[str, Any]) -> None:
        self.remote_ip = environ.get("REMOTE_ADDR", "")
        port = environ.get("REMOTE_PORT", "0")
        self.remote_addr = (self.remote_ip, int(port) if str(port).isdigit() else 0)
        self.remote_host = None
        self.remote_logname = None
        server_port = environ.get("SERVER_PORT", "0")
        self.local_ip = environ.get("SERVER_ADDR", "")
        self.local_addr = (self.local_ip, int(server_port) if str(server_port).isdigit() else 0)
        self.local_host = environ.get("SERVER_NAME")
        self.keepalive = None
        self.id = id(self)
        self.notes = table()


class _Server:
    """req.server: the (virtual) server."""

    def __init__(self, environ: Dict[str, Any]) -> None:
        self.server_hostname = environ.get("SERVER_NAME", "")
        port = environ.get("SERVER_PORT", "0")
        self.port = int(port) if str(port).isdigit() else 0
        self.server_admin = ""
        self.is_virtual = 0
        self.names = ()
        self.wild_names = ()
        self.defn_name = ""
        self.error_fname = None
        self.loglevel = APLOG_WARNING

    def log_error(self, message: str, level: int = APLOG_ERR) -> None:
        log_error(message, level)

    def get_options(self) -> table:
        return table(_config["python_option"])

    def get_config(self) -> table:
        return table()

    def register_cleanup(self, req: Any, callable_: Callable, data: Any = None) -> None:
        """Run at process exit (the server's child exits as Apache's child does)."""
        import atexit
        if data is not None:
            atexit.register(callable_, data)
        else:
            atexit.register(callable_)


class _BodyError(Exception):
    """The request body could not be read (the core knows the status: 400, 408, 413)."""


@lru_cache(maxsize=256)
def _status_line(code: int) -> str:
    try:
        reason = HTTPStatus(code).phrase
    except ValueError:
        reason = "Unknown"
    return f"{code} {reason}"


_ERROR_TEXT = {
    400: "Your browser sent a request that this server could not understand.",
    401: "This server could not verify that you are authorized to access the document "
         "requested.",
    403: "You don't have permission to access this resource.",
    404: "The requested URL was not found on this server.",
    405: "The requested method is not allowed for this URL.",
    411: "A request of the requested method requires a valid Content-length.",
    413: "The requested resource does not allow request data with this method, or the amount "
         "of data provided in the request exceeds the capacity limit.",
    500: "The server encountered an internal error or misconfiguration and was unable to "
         "complete your request.",
    501: "The requested method is not supported for this URL.",
    503: "The server is temporarily unable to service your request.",
}


def _error_page(code: int, location: Optional[str]) -> bytes:
    """Apache's default error document for `code`."""
    title = _status_line(code)
    reason = title.split(" ", 1)[1]
    if location is not None and 300 <= code < 400:
        from html import escape
        text = f'The document has moved <a href="{escape(location)}">here</a>.'
    else:
        text = _ERROR_TEXT.get(code, "The server could not complete your request.")
    return (f'<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n'
            f"<title>{title}</title>\n</head><body>\n<h1>{reason}</h1>\n<p>{text}</p>\n"
            f"</body></html>\n").encode("latin-1", "replace")


class Request:
    """What a mod_python handler receives as `req`, built from one WSGI environ.

    The response goes out through the WSGI write() callable: the first write() sends the
    status line and headers (req.status, req.content_type, headers_out and err_headers_out),
    each write() sends its bytes at once.
    """

    def __init__(self, app: "HandlerApplication", environ: Dict[str, Any],
                 start_response: Callable, prev: Optional["Request"] = None) -> None:
        self._app = app
        self._environ = environ
        self._start_response = start_response
        self._write: Optional[Callable[[bytes], None]] = None   # set once headers are sent
        self._content_type: Optional[str] = None
        self._cleanups: List[Tuple[Callable, Any]] = []
        self._body_failed = False
        self._redirected = False
        self._mtime = 0.0
        script_name = environ.get("SCRIPT_NAME", "")
        path_info = environ.get("PATH_INFO", "")
        query = environ.get("QUERY_STRING", "")
        self.method = environ.get("REQUEST_METHOD", "GET")
        self.method_number = _METHOD_NUMBERS.get(self.method, -1)
        self.uri = script_name + path_info or "/"
        self.args = query or None
        self.unparsed_uri = environ.get("REQUEST_URI") or (self.uri + ("?" + query if query else ""))
        self.parsed_uri = (environ.get("wsgi.url_scheme", "http"), None, None, None,
                           self.hostname_from(environ), None, self.uri, self.args, None)
        self.protocol = environ.get("SERVER_PROTOCOL", "HTTP/1.0")
        self.proto_num = 1001 if self.protocol == "HTTP/1.1" else 1000
        self.the_request = f"{self.method} {self.unparsed_uri} {self.protocol}"
        self.assbackwards = False
        self.proxyreq = 0
        self.header_only = self.method == "HEAD"
        self.hostname = self.hostname_from(environ)
        self.path_info = path_info
        self.script_name = script_name
        self.filename = app.filename
        self.canonical_filename = app.filename
        self.finfo = None
        self.request_time = time.time()
        self.status = HTTP_OK
        self.status_line = None
        self.headers_out = table()
        self.err_headers_out = table()
        self.notes = table()
        self.phase = "PythonHandler"
        self.handler = "mod_python"
        self.interpreter = environ.get("mod_wsgi.application_group", "")
        self.user = environ.get("REMOTE_USER") or None
        self.ap_auth_type = environ.get("AUTH_TYPE") or None
        self.main = None
        self.prev = prev
        self.next = None
        self.content_encoding = None
        self.content_languages = ()
        self.allowed = 0
        self.allowed_methods: List[str] = []
        self.sent_bodyct = 0
        self.bytes_sent = 0
        self.chunked = 0
        try:
            self.clength = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            self.clength = 0
        self.remaining = self.clength
        self.read_length = 0
        self.used_path_info = 0
        self.no_cache = 0
        self.no_local_copy = 0
        self.hlist = None
        self.form = None       # set by mod_python.publisher in mod_python; kept for code that checks

    # Made when first used: most handlers never look at most of them.
    @cached_property
    def headers_in(self) -> table:
        headers = table()
        for key, value in self._environ.items():
            if key.startswith("HTTP_"):
                headers.add(key[5:].replace("_", "-").title(), value)
            elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
                headers.add(key.replace("_", "-").title(), value)
        return headers

    @cached_property
    def subprocess_env(self) -> table:
        return table((k, v) for k, v in self._environ.items()
                     if isinstance(v, str) and "." not in k)

    @cached_property
    def connection(self) -> _Connection:
        return _Connection(self._environ)

    @cached_property
    def server(self) -> _Server:
        return _Server(self._environ)

    @staticmethod
    def hostname_from(environ: Dict[str, Any]) -> str:
        host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
        if host.startswith("["):
            return host[:host.find("]") + 1]
        return host.partition(":")[0].lower()

    # -- the response head
    @property
    def content_type(self) -> Optional[str]:
        return self._content_type

    @content_type.setter
    def content_type(self, value: Optional[str]) -> None:
        self._content_type = None if value is None else str(value)

    @property
    def _content_type_set(self) -> bool:
        return self._content_type is not None

    def _head(self) -> List[Tuple[str, str]]:
        headers: List[Tuple[str, str]] = []
        if self._content_type is not None:
            headers.append(("Content-Type", self._content_type))
        for key, value in self.headers_out.all_items() + self.err_headers_out.all_items():
            if self._content_type is not None and key.lower() == "content-type":
                continue  # req.content_type wins, as in Apache
            headers.append((key, value))
        return headers

    def _send_headers(self) -> None:
        if self._write is None:
            status = self.status if isinstance(self.status, int) else int(self.status)
            self._write = self._start_response(self.status_line or _status_line(status),
                                               self._head())
            self.sent_bodyct = 1

    def send_http_header(self) -> None:
        """mod_python 2 API; headers now go out with the first write()."""

    def set_content_length(self, length: int) -> None:
        self.headers_out["Content-Length"] = str(int(length))

    def update_mtime(self, dependency_mtime: float) -> None:
        self._mtime = max(self._mtime, float(dependency_mtime))

    def set_last_modified(self) -> None:
        if self._mtime:
            self.headers_out["Last-Modified"] = formatdate(self._mtime, usegmt=True)

    def set_etag(self) -> None:
        if self._mtime:
            self.headers_out["ETag"] = '"%x-%x"' % (int(self._mtime), self.clength)

    def meets_conditions(self) -> int:
        """OK, or HTTP_NOT_MODIFIED when If-Modified-Since covers the mtime set so far."""
        since = self.headers_in.get("If-Modified-Since")
        if since and self._mtime and self.method in ("GET", "HEAD"):
            try:
                if int(self._mtime) <= parsedate_to_datetime(since).timestamp():
                    return HTTP_NOT_MODIFIED
            except (TypeError, ValueError, IndexError, OverflowError):
                pass
        return OK

    # -- the response body
    def write(self, data: Any, flush: int = 1) -> None:
        """Send `data` (bytes, or str encoded as UTF-8); the first call sends the headers."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        elif not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"req.write() takes str or bytes, not {type(data).__name__}")
        if self._redirected:
            return
        self._send_headers()
        if data:
            self._write(bytes(data))
            self.bytes_sent += len(data)

    def flush(self) -> None:
        """Every write() is already on its way to the client."""

    def sendfile(self, path: str, offset: int = 0, length: int = -1) -> int:
        """Send (part of) a file; returns the bytes sent."""
        sent = 0
        with open(path, "rb") as f:
            if offset:
                f.seek(offset)
            self._send_headers()
            while length < 0 or sent < length:
                want = _SENDFILE_BLOCK if length < 0 else min(_SENDFILE_BLOCK, length - sent)
                block = f.read(want)
                if not block:
                    break
                self.write(block)
                sent += len(block)
        return sent

    # -- the request body
    def _input(self):
        return self._environ["wsgi.input"]

    def _read_body(self, method: str, size: int) -> bytes:
        try:
            data = getattr(self._input(), method)(size)
        except OSError as exc:
            self._body_failed = True
            raise _BodyError(str(exc)) from exc
        self.read_length += len(data)
        self.remaining = max(0, self.remaining - len(data))
        return data

    def read(self, len: int = -1) -> bytes:  # noqa: A002 - mod_python's parameter name
        return self._read_body("read", -1 if len is None else len)

    def readline(self, len: int = -1) -> bytes:  # noqa: A002
        return self._read_body("readline", -1 if len is None else len)

    def readlines(self, sizehint: int = -1) -> List[bytes]:
        lines, total = [], 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if 0 < sizehint <= total:
                return lines

    # -- information
    def get_remote_host(self, type: int = REMOTE_NAME, str_is_ip: Any = None):  # noqa: A002
        """The client's address; no DNS lookups are made (Apache's HostnameLookups Off), so the
        name is the IP address, and REMOTE_DOUBLE_REV gives None."""
        ip = self.connection.remote_ip
        if type == REMOTE_DOUBLE_REV:
            return (None, False) if str_is_ip is not None else None
        if type == REMOTE_HOST:
            return (None, False) if str_is_ip is not None else None
        return (ip, True) if str_is_ip is not None else ip

    def get_options(self) -> table:
        """The PythonOption values (--python-option KEY=VALUE)."""
        return table(_config["python_option"])

    def get_config(self) -> table:
        return table([("PythonHandler", self._app.spec)])

    def get_addhandler_exts(self) -> str:
        return ""

    def get_basic_auth_pw(self) -> Optional[str]:
        """The password of a Basic Authorization header (and req.user from it), or None."""
        scheme, _, credentials = (self.headers_in.get("Authorization") or "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("latin-1")
        except (binascii.Error, ValueError):
            return None
        user, sep, password = decoded.partition(":")
        if not sep:
            return None
        self.user = user
        self.ap_auth_type = "Basic"
        return password

    def is_https(self) -> int:
        return int(self._environ.get("wsgi.url_scheme") == "https")

    def construct_url(self, uri: str) -> str:
        scheme = self._environ.get("wsgi.url_scheme", "http")
        host = self._environ.get("HTTP_HOST") or self._environ.get("SERVER_NAME", "localhost")
        return f"{scheme}://{host}{uri}"

    def add_common_vars(self) -> None:
        """subprocess_env already holds the CGI variables."""

    def build_wsgi_env(self) -> Dict[str, Any]:
        return dict(self._environ)

    def allow_methods(self, methods: Iterable[str], reset: int = 0) -> None:
        if reset:
            self.allowed_methods = []
        self.allowed_methods.extend(methods)

    def log_error(self, message: str, level: int = APLOG_ERR) -> None:
        ip, port = self.connection.remote_addr
        log_error(f"[client {ip}:{port}] {message}", level)

    def register_cleanup(self, callable_: Callable, data: Any = None) -> None:
        self._cleanups.append((callable_, data))

    def ssl_var_lookup(self, name: str) -> None:
        return None

    # -- internal redirect
    def internal_redirect(self, new_uri: str) -> None:
        """Serve `new_uri` (a local path, optionally with a query) instead, as Apache restarts
        request processing; the handler should return apache.OK afterwards. A path under this
        handler's URL runs the handler again; another mount is reached when the server routes
        internal redirects (it does when CGI mounts exist); otherwise 404."""
        if self._write is not None:
            raise IOError("cannot redirect internally after the response started")
        depth = self._environ.get("pywsgi.modpython.redirects", 0) + 1
        path, _, query = new_uri.partition("?")
        environ = dict(self._environ)
        environ.update({"pywsgi.modpython.redirects": depth, "REDIRECT_URL": self.uri,
                        "REDIRECT_STATUS": str(self.status), "QUERY_STRING": query,
                        "REQUEST_URI": new_uri})
        if self.args:
            environ["REDIRECT_QUERY_STRING"] = self.args
        prefix = self.script_name
        app: Optional[Callable] = None
        if depth > MAX_INTERNAL_REDIRECTS:
            self.log_error(f"request exceeded the limit of {MAX_INTERNAL_REDIRECTS} internal "
                           f"redirects")
        elif path.startswith("/"):
            from pywsgi.handlers import cgi
            router = getattr(cgi, "_router", None)  # the server's mounts, when it has CGI ones
            route = router.route(path) if router is not None else _route_handler(path)
            if route is not None:
                prefix, app, extras = route
                environ.update(extras)
            elif not prefix or path == prefix or path.startswith(prefix + "/"):
                app = self._app
        self._redirected = True
        if app is None:
            code = HTTP_INTERNAL_SERVER_ERROR if depth > MAX_INTERNAL_REDIRECTS else HTTP_NOT_FOUND
            write = self._start_response(_status_line(code),
                                         [("Content-Type", "text/html; charset=iso-8859-1")])
            write(_error_page(code, None))
            return
        environ["SCRIPT_NAME"] = prefix
        environ["PATH_INFO"] = path[len(prefix):]
        environ["pywsgi.modpython.prev"] = self
        writer: Dict[str, Callable] = {}

        def start_response(status, headers, exc_info=None):
            writer["write"] = self._start_response(status, headers, exc_info)
            return writer["write"]

        result = app(environ, start_response)
        try:
            for block in result:
                if block:
                    writer["write"](block)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        self.sent_bodyct = 1

    # -- after the handler
    def _finish(self, code: Any) -> List[bytes]:
        """The WSGI result for the handler's return code."""
        if self._redirected:
            return []
        if not isinstance(code, int) or isinstance(code, bool):
            message = (f"handler {self._app.spec} returned {code!r}, not an int "
                       f"(apache.OK, apache.DECLINED, apache.DONE or an HTTP status)")
            if self._write is None:
                raise TypeError(message)
            errorlog.error(message)  # the response it wrote stands
            return []
        if self._write is not None:
            return []  # the handler wrote its response; whatever it returns now is too late
        if code in (OK, DONE, HTTP_OK):
            self._send_headers()
            return [b""]
        if code == DECLINED:
            code = HTTP_NOT_FOUND  # no other handler (or file) here to take the request
        elif code < 100 or code > 999:
            raise ValueError(f"handler {self._app.spec} returned {code}, which is neither a "
                             f"mod_python return code nor an HTTP status")
        return self._error_response(code)

    def _error_response(self, code: int, exc_info: Any = None) -> List[bytes]:
        """Apache's error response: err_headers_out kept, headers_out dropped (but for a
        Location on a redirect or 201), the default error document as the body."""
        location = None
        if 300 <= code < 400 or code == HTTP_CREATED:
            location = self.headers_out.get("Location")
            if isinstance(location, list):
                location = location[0]
        headers = list(self.err_headers_out.all_items())
        if location is not None and "location" not in self.err_headers_out:
            headers.append(("Location", location))
        if location is None:
            location = self.err_headers_out.get("Location")
        body = b"" if code < 200 or code in (204, 304) else _error_page(code, location)
        headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
        if body:
            headers.append(("Content-Type", "text/html; charset=iso-8859-1"))
        self.status = code
        self._start_response(_status_line(code), headers, exc_info)
        self.sent_bodyct = 1
        return [body]

    def _run_cleanups(self) -> None:
        for callable_, data in self._cleanups:
            try:
                callable_(data) if data is not None else callable_()
            except Exception:
                errorlog.exception(f"mod_python cleanup {callable_!r} of {self._app.spec} failed")


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
            # the core answers with the status the body read failed with (400, 408, 413)
            raise exc.__cause__ or exc
        except Exception as exc:
            if req._write is not None or req._redirected:
                raise  # the response started: the core logs it and closes the connection
            from pywsgi.loader import import_hint  # an import inside the handler: the shim?
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


__all__ = sorted(set(
    [name for name in list(globals()) if name.isupper() and not name.startswith("_")]
    + ["SERVER_RETURN", "log_error", "parse_qs", "parse_qsl", "import_module", "table",
       "make_table", "install_shim", "plan_mounts", "load_handler", "is_handler_spec",
       "HandlerApplication", "Request", "version", "server_root", "exists_config_define",
       "mpm_query"]))
