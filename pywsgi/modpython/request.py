"""The ``req`` object a mod_python handler receives (``Request``), built from one WSGI environ;
its response goes out through the WSGI write() callable. docs/mod_python.md says what is and is
not supported."""
from __future__ import annotations

import base64
import binascii
import time
from functools import cached_property, lru_cache
from http import HTTPStatus
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from pywsgi.modpython.apache import (
    _METHOD_NUMBERS,
    _SENDFILE_BLOCK,
    APLOG_ERR,
    APLOG_WARNING,
    DECLINED,
    DONE,
    HTTP_CREATED,
    HTTP_INTERNAL_SERVER_ERROR,
    HTTP_NOT_FOUND,
    HTTP_NOT_MODIFIED,
    HTTP_OK,
    MAX_INTERNAL_REDIRECTS,
    OK,
    REMOTE_DOUBLE_REV,
    REMOTE_HOST,
    REMOTE_NAME,
    log_error,
    table,
)
from pywsgi.modpython.options import mod_python_settings
from pywsgi.observe import errorlog

__all__ = ["Request"]


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
        return table(mod_python_settings["python_option"])

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

    # app: the handler.HandlerApplication that made it (not imported: it imports this module)
    def __init__(self, app: Any, environ: Dict[str, Any],
                 start_response: Callable, prev: Optional[Request] = None) -> None:
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
        self.unparsed_uri = (environ.get("REQUEST_URI")
                             or self.uri + ("?" + query if query else ""))
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
        self.form = None       # set by mod_python.publisher; kept for code that checks

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
            from email.utils import formatdate  # (imported when a handler is loaded: handler.py)

            self.headers_out["Last-Modified"] = formatdate(self._mtime, usegmt=True)

    def set_etag(self) -> None:
        if self._mtime:
            self.headers_out["ETag"] = '"%x-%x"' % (int(self._mtime), self.clength)

    def meets_conditions(self) -> int:
        """OK, or HTTP_NOT_MODIFIED when If-Modified-Since covers the mtime set so far."""
        since = self.headers_in.get("If-Modified-Since")
        if since and self._mtime and self.method in ("GET", "HEAD"):
            from email.utils import parsedate_to_datetime  # (imported when a handler is loaded)

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
        return table(mod_python_settings["python_option"])

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

    def ssl_var_lookup(self, name: str) -> Optional[str]:
        """mod_ssl's variable `name` of an HTTPS request: with --ssl-environ (docs/tls.md) the
        core puts them in the environ; None otherwise."""
        value = self._environ.get(name) if name.startswith(("SSL_", "HTTPS")) else None
        return value if isinstance(value, str) else None

    # -- internal redirect
    def internal_redirect(self, new_uri: str) -> None:
        """Serve `new_uri` (a local path, optionally with a query) instead, as Apache restarts
        request processing; the handler should return apache.OK afterwards. A path under this
        handler's URL runs the handler again; another mount is reached when the server routes
        internal redirects (it does when CGI mounts exist); otherwise 404."""
        if self._write is not None:
            raise OSError("cannot redirect internally after the response started")
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
            route = self._app.route(path, self._environ)
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


