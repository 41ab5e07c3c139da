"""CGI: programs run once per request (the ScriptAlias / mod_cgi row), as WSGI applications.

    CGIDirectory(path, ...)   --cgi-alias URL PATH: every executable under the directory PATH
                              (or the single program PATH) is a CGI script.
    CGIScript(path, ...)      --cgi-script URL=APP.wsgi: a WSGI script run as CGI per request,
                              through ``python -m pywsgi.cgi APP.wsgi`` — the mod_cgi row of the
                              seed's table, replayed with the very same application.

A request runs the program in a fresh process group (no shell), in the program's directory, with
the CGI/1.1 meta-variables of RFC 3875 section 4.1 as its environment, the request body on its
stdin (streamed from wsgi.input) and its response read from its stdout (RFC 3875 section 6):
``Status``, ``Location`` (a local ``Location: /path`` without Status is an internal redirect, an
absolute URL a 302) and any other header field, then the body, streamed to the client. Each
stderr line goes to the error log.

Limits: the program must make progress (write output or take input) at least every ``timeout``
seconds (like Apache's CGIScriptTimeout) or its process group is killed — 504 when that happens
before the response head. At most ``max_processes`` programs run at once per server process;
a request waits for a slot up to ``timeout`` seconds, then gets 503.
"""
from __future__ import annotations

import errno
import io
import os
import selectors
import signal
import stat as stat_module
import subprocess
import sys
import threading
import time
from http import HTTPStatus
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from pywsgi.observe import errorlog
from pywsgi.site.routing import internal_router, normalize_path, request_host

__all__ = ["CGIDirectory", "CGIScript", "CGILimits", "shared_limits", "cgi_environment",
           "parse_response_head"]

READ_SIZE = 64 * 1024
MAX_HEAD_SIZE = 64 * 1024        # a response head larger than this is a broken script
EXIT_GRACE = 3.0                 # after stdout closes: how long the program may take to exit
MAX_INTERNAL_REDIRECTS = 10      # Apache's LimitInternalRecursion

# Environment passed through from the server to every CGI program (Apache passes PATH and a few
# more; nothing else of the server's environment leaks into scripts).
_PASS_ENV = ("PATH", "LD_LIBRARY_PATH", "TZ", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR")
# ... and to `python -m pywsgi.cgi`, what the interpreter needs to find the same packages.
_PASS_ENV_PYTHON = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONIOENCODING",
                    "PYTHONDONTWRITEBYTECODE")
# Hop-by-hop fields (RFC 9110 7.6.1) a CGI program may print but a WSGI app must not pass on.
_HOP_BY_HOP = frozenset(("connection", "keep-alive", "proxy-connection", "transfer-encoding",
                         "te", "trailer", "upgrade"))


class CGILimits:
    """Per server process: the timeout and the bound on programs running at once."""

    def __init__(self, timeout: float = 60.0, max_processes: int = 16) -> None:
        self.timeout = float(timeout)
        self.max_processes = int(max_processes)
        self.slots = threading.BoundedSemaphore(self.max_processes)


_shared_limits: Dict[Tuple[float, int], CGILimits] = {}


def shared_limits(timeout: float, max_processes: int) -> CGILimits:
    """The one CGILimits of this process for these values: every CGI mount shares the bound."""
    key = (float(timeout), int(max_processes))
    if key not in _shared_limits:
        _shared_limits[key] = CGILimits(timeout, max_processes)
    return _shared_limits[key]


# ----------------------------------------------------------------- internal redirects

def _simple(start_response, status: int, extra_headers: Sequence[Tuple[str, str]] = ()):
    phrase = HTTPStatus(status).phrase
    body = f"{status} {phrase}\n".encode("ascii")
    start_response(f"{status} {phrase}", [("Content-Type", "text/plain; charset=utf-8"),
                                          ("Content-Length", str(len(body))),
                                          *extra_headers])
    return [body]


def _internal_redirect(environ, start_response, location: str):
    depth = environ.get("pywsgi.internal_redirects", 0) + 1
    if depth > MAX_INTERNAL_REDIRECTS:
        errorlog.error(f"more than {MAX_INTERNAL_REDIRECTS} internal redirects (last to "
                       f"{location}); check the CGI scripts' Location headers")
        return _simple(start_response, 500)
    raw_path, _, query = location.partition("?")
    path = normalize_path(raw_path, environ.get("pywsgi.allow_encoded_slashes", "off"))
    if path == 404:
        errorlog.info(f"internal redirect to {location}: an encoded slash (%2F) in the path "
                      f"(see --allow-encoded-slashes): 404")
    if isinstance(path, int):
        return _simple(start_response, path)
    router = internal_router()
    if router is None:  # outside a server (tests of the app alone): let the client follow it
        return _simple(start_response, 302, [("Location", location)])
    found = router.route(path, request_host(environ))
    if found is None:
        return _simple(start_response, 404)
    prefix, app, extras = found.prefix, found.wsgi_app, found.extras
    access = found.access
    if access is not None and not access.allows(environ.get("REMOTE_ADDR", "")):
        errorlog.info(f"{environ.get('REMOTE_ADDR')}: internal redirect to {path} denied by the "
                      f"access rules of {prefix or '/'}: 403")
        return _simple(start_response, 403)
    new = dict(environ)
    for key in ("CONTENT_LENGTH", "CONTENT_TYPE", "HTTP_CONTENT_LENGTH", "HTTP_TRANSFER_ENCODING"):
        new.pop(key, None)
    new.update(extras)
    new.update({
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": prefix,
        "PATH_INFO": path[len(prefix):],
        "QUERY_STRING": query,
        "REQUEST_URI": location,
        "REDIRECT_URL": environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""),
        "REDIRECT_STATUS": "200",
        "REDIRECT_QUERY_STRING": environ.get("QUERY_STRING", ""),
        "wsgi.input": io.BytesIO(b""),
        "pywsgi.internal_redirects": depth,
    })
    return app(new, start_response)


# ----------------------------------------------------------------- the environment

def cgi_environment(environ: Dict[str, Any], script_name: str, path_info: str,
                    script_filename: str, document_root: Optional[str],
                    content_length: Optional[int], pass_env: Iterable[str] = _PASS_ENV
                    ) -> Dict[bytes, bytes]:
    """RFC 3875 section 4.1 meta-variables (plus Apache's usual extras) for one request."""
    env: Dict[str, str] = {}
    for name in pass_env:
        if name in os.environ:
            env[name] = os.environ[name]
    scheme = environ.get("wsgi.url_scheme", "http")
    env.update({
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_SOFTWARE": environ.get("SERVER_SOFTWARE", "pywsgi"),
        "SERVER_NAME": environ.get("SERVER_NAME", ""),
        "SERVER_PORT": str(environ.get("SERVER_PORT", "")),
        "SERVER_PROTOCOL": environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
        "REQUEST_METHOD": environ.get("REQUEST_METHOD", "GET"),
        "SCRIPT_NAME": script_name,
        "QUERY_STRING": environ.get("QUERY_STRING", ""),
        "REMOTE_ADDR": environ.get("REMOTE_ADDR", ""),
        "REMOTE_PORT": str(environ.get("REMOTE_PORT", "")),
        # Apache's additions, which many scripts (php-cgi among them) rely on
        "SCRIPT_FILENAME": script_filename,
        "REQUEST_URI": environ.get("REQUEST_URI", script_name + path_info),
        "REQUEST_SCHEME": scheme,
        "REDIRECT_STATUS": environ.get("REDIRECT_STATUS", "200"),
    })
    if scheme == "https":
        env["HTTPS"] = "on"
    if document_root:
        env["DOCUMENT_ROOT"] = document_root
    # PATH_INFO, and PATH_TRANSLATED (PATH_INFO mapped through the document root) only with it.
    if path_info:
        env["PATH_INFO"] = path_info
        if document_root:
            env["PATH_TRANSLATED"] = document_root.rstrip("/") + path_info
    if content_length is not None:
        env["CONTENT_LENGTH"] = str(content_length)
    if environ.get("CONTENT_TYPE"):
        env["CONTENT_TYPE"] = environ["CONTENT_TYPE"]
    for key in ("AUTH_TYPE", "REMOTE_USER", "REMOTE_IDENT", "REDIRECT_URL",
                "REDIRECT_QUERY_STRING"):
        if environ.get(key):
            env[key] = str(environ[key])
    for key, value in environ.items():
        # HTTP_PROXY: "httpoxy" — a client's Proxy header must not become the script's proxy.
        if (key.startswith("HTTP_") and key != "HTTP_PROXY" and isinstance(value, str)
                and key not in ("HTTP_CONTENT_LENGTH", "HTTP_CONTENT_TYPE",
                                "HTTP_TRANSFER_ENCODING")):
            env[key] = value
    # WSGI strings are bytes decoded as latin-1: give the program those very bytes.
    return {key.encode("latin-1"): value.encode("latin-1", "surrogateescape")
            if _is_latin1(value) else value.encode("utf-8", "surrogateescape")
            for key, value in env.items()}


def _is_latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
        return True
    except UnicodeEncodeError:
        return False


# ----------------------------------------------------------------- the response head

class MalformedHead(Exception):
    pass


def parse_response_head(block: bytes) -> Tuple[List[Tuple[str, str]], Optional[str],
                                                Optional[str]]:
    """A CGI response head (lines ending LF or CRLF, without the blank line) →
    (headers, status, location). RFC 3875 6.3: header-field = field-name ":" [ field-value ]."""
    headers: List[Tuple[str, str]] = []
    status = location = None
    for raw in block.split(b"\n"):
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if line[:1] in (b" ", b"\t"):
            raise MalformedHead(f"continuation line not supported: {line[:80]!r}")
        name, colon, value = line.partition(b":")
        name_text = name.decode("latin-1")
        if not colon or not name or not _is_token(name_text):
            raise MalformedHead(f"bad header line {line[:80]!r}")
        value_text = value.strip(b" \t").decode("latin-1")
        if any(ord(ch) < 32 and ch != "\t" or ord(ch) == 127 for ch in value_text):
            raise MalformedHead(f"control character in header {name_text}")
        lower = name_text.lower()
        if lower == "status":
            code = value_text.split(" ", 1)[0]
            if len(code) != 3 or not code.isdigit() or not 100 <= int(code) <= 999:
                raise MalformedHead(f"bad Status {value_text!r}")
            reason = value_text[3:].strip()
            if not reason:
                try:
                    reason = HTTPStatus(int(code)).phrase
                except ValueError:
                    reason = "Unknown"
            status = f"{code} {reason}"
        elif lower == "location":
            location = value_text
            headers.append(("Location", value_text))
        elif lower not in _HOP_BY_HOP:
            headers.append((name_text, value_text))
    return headers, status, location


_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _is_token(text: str) -> bool:
    return bool(text) and all(ch in _TOKEN_CHARS for ch in text)


def _split_head(buffer: bytearray) -> Optional[int]:
    """Index just past the blank line ending the head (LF LF or CRLF CRLF, mixed too)."""
    start = 0
    while True:
        newline = buffer.find(b"\n", start)
        if newline < 0:
            return None
        line = buffer[start:newline]
        if line in (b"", b"\r"):
            return newline + 1
        start = newline + 1


# ----------------------------------------------------------------- one program run

class _Timeout(Exception):
    pass


class _Run:
    """One running CGI program: feeds its stdin, reads stdout and stderr, enforces the timeout.

    Everything happens in the calling worker thread: selectors wait with the GIL released, and
    the body is pulled from wsgi.input only when the program's stdin can take it.
    """

    def __init__(self, argv: List[str], env: Dict[bytes, bytes], cwd: str, label: str,
                 body: Any, body_length: int, timeout: float, client: str) -> None:
        self.label = label
        self.client = client
        self.timeout = timeout
        self.body = body
        self.body_left = body_length
        self.pending = b""
        self.stdout_buffer = bytearray()
        self.stderr_partial = b""
        self.stdout_open = self.stderr_open = True
        self.finished = False
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, cwd=cwd, close_fds=True, start_new_session=True, bufsize=0)
        self.deadline = time.monotonic() + timeout
        self.selector = selectors.DefaultSelector()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            os.set_blocking(stream.fileno(), False)
        self.selector.register(self.proc.stdout, selectors.EVENT_READ, "stdout")
        self.selector.register(self.proc.stderr, selectors.EVENT_READ, "stderr")
        if self.body_left > 0:
            self.selector.register(self.proc.stdin, selectors.EVENT_WRITE, "stdin")
        else:
            self._close_stdin()

    # -- the loop
    def pump(self) -> None:
        """Wait for one round of I/O (up to the deadline); raises _Timeout past it."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise _Timeout()
        events = self.selector.select(min(remaining, 1.0))
        progressed = False
        for key, _ in events:
            if key.data == "stdin":
                progressed |= self._feed_stdin()
            elif key.data == "stdout":
                progressed |= self._read_stdout()
            else:
                self._read_stderr()
        if progressed:
            self.deadline = time.monotonic() + self.timeout

    def _feed_stdin(self) -> bool:
        if not self.pending:
            if self.body_left <= 0:
                self._close_stdin()
                return False
            chunk = self.body.read(min(READ_SIZE, self.body_left))
            if not chunk:  # the client sent less than it announced
                self.body_left = 0
                self._close_stdin()
                return False
            self.body_left -= len(chunk)
            self.pending = chunk
        try:
            written = os.write(self.proc.stdin.fileno(), self.pending)
        except BlockingIOError:
            return False
        except (BrokenPipeError, ConnectionResetError):
            # The program does not read its input; the core discards the rest of the body.
            self.pending = b""
            self.body_left = 0
            self._close_stdin()
            return False
        self.pending = self.pending[written:]
        if not self.pending and self.body_left <= 0:
            self._close_stdin()
        return True

    def _close_stdin(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.selector.unregister(self.proc.stdin)
            except (KeyError, ValueError):
                pass
            try:
                self.proc.stdin.close()
            except OSError:
                pass

    def _read_stdout(self) -> bool:
        try:
            data = os.read(self.proc.stdout.fileno(), READ_SIZE)
        except BlockingIOError:
            return False
        if not data:
            self.stdout_open = False
            self.selector.unregister(self.proc.stdout)
            return False
        self.stdout_buffer += data
        return True

    def _read_stderr(self) -> None:
        try:
            data = os.read(self.proc.stderr.fileno(), READ_SIZE)
        except BlockingIOError:
            return
        if not data:
            self.stderr_open = False
            self.selector.unregister(self.proc.stderr)
            if self.stderr_partial:
                self._log_stderr(self.stderr_partial)
                self.stderr_partial = b""
            return
        lines = (self.stderr_partial + data).split(b"\n")
        self.stderr_partial = lines.pop()
        if len(self.stderr_partial) > 8192:  # a huge line without newline: log it in pieces
            lines.append(self.stderr_partial)
            self.stderr_partial = b""
        for line in lines:
            self._log_stderr(line)

    def _log_stderr(self, line: bytes) -> None:
        text = line.rstrip(b"\r").decode("utf-8", "backslashreplace")
        errorlog.error(f"[client {self.client}] {self.label}: {text}")

    # -- reading the response
    def read_head(self) -> Tuple[bytes, bytes]:
        """(head block, body bytes already read) once stdout has the blank line."""
        while True:
            end = _split_head(self.stdout_buffer)
            if end is not None:
                head = bytes(self.stdout_buffer[:end]).rstrip(b"\r\n")
                rest = bytes(self.stdout_buffer[end:])
                self.stdout_buffer.clear()
                return head, rest
            if len(self.stdout_buffer) > MAX_HEAD_SIZE:
                raise MalformedHead(f"response head longer than {MAX_HEAD_SIZE} bytes")
            if not self.stdout_open:
                raise MalformedHead("end of script output before headers"
                                    if not self.stdout_buffer else
                                    "script output ended inside the headers")
            self.pump()

    def body_chunks(self):
        while self.stdout_open or self.stdout_buffer:
            if self.stdout_buffer:
                data = bytes(self.stdout_buffer)
                self.stdout_buffer.clear()
                yield data
                continue
            self.pump()

    # -- ending
    def finish(self, kill: bool = False) -> Optional[int]:
        """Wait briefly for the program to exit (killing its group if it will not), log the rest
        of its stderr, reap it. Idempotent."""
        if self.finished:
            return self.proc.returncode
        self.finished = True
        try:
            if not kill:
                grace_end = time.monotonic() + min(EXIT_GRACE, self.timeout)
                try:
                    while self.stdout_open or self.stderr_open:
                        if len(self.stdout_buffer) > READ_SIZE:
                            self.stdout_buffer.clear()  # output nobody will read (a redirect)
                        self.deadline = grace_end
                        self.pump()
                    self.proc.wait(timeout=max(0.0, grace_end - time.monotonic()))
                except (_Timeout, subprocess.TimeoutExpired):
                    kill = True
            if kill:
                self._kill_group()
        finally:
            self.selector.close()
            for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                try:
                    if stream is not None:
                        stream.close()
                except OSError:
                    pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                errorlog.error(f"{self.label}: process {self.proc.pid} did not die after SIGKILL")
        if self.stderr_partial:
            self._log_stderr(self.stderr_partial)
            self.stderr_partial = b""
        return self.proc.returncode

    def _kill_group(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.kill()
        except OSError:
            pass


class _Body:
    """The response body: the program's stdout, streamed; close() ends the program and frees
    its slot whatever happened."""

    def __init__(self, run: _Run, first: bytes, release: Callable[[], None]) -> None:
        self.run = run
        self.first = first
        self.release = release
        self.closed = False

    def __iter__(self):
        if self.first:
            first, self.first = self.first, b""
            yield first
        try:
            yield from self.run.body_chunks()
        except _Timeout:
            errorlog.error(f"[client {self.run.client}] {self.run.label}: timed out after "
                           f"{self.run.timeout:g} s without output; killed")
            self.run.finish(kill=True)
            # raised in the timeout's place, which stays in the log as its context
            raise RuntimeError(  # noqa: B904
                f"CGI script {self.run.label} timed out while sending its body")

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            # Still producing when the client went away: end it now, not EXIT_GRACE later.
            self.run.finish(kill=self.run.stdout_open)
        finally:
            self.release()


# ----------------------------------------------------------------- running one request

def _run_cgi(environ, start_response, *, argv: List[str], cwd: str, label: str,
             script_name: str, path_info: str, script_filename: str,
             document_root: Optional[str], limits: CGILimits,
             pass_env: Iterable[str] = _PASS_ENV, extra_env: Optional[Dict[str, str]] = None):
    client = environ.get("REMOTE_ADDR", "-")
    body = environ["wsgi.input"]
    content_length: Optional[int] = None
    length_text = environ.get("CONTENT_LENGTH", "")
    if length_text:
        try:
            content_length = int(length_text)
        except ValueError:
            return _simple(start_response, 400)
    elif environ.get("HTTP_TRANSFER_ENCODING"):
        # RFC 3875 needs CONTENT_LENGTH for a body: read a chunked body whole (the core has
        # already bounded it by --limit-request-body).
        data = body.read()
        body, content_length = io.BytesIO(data), len(data)
    env = cgi_environment(environ, script_name, path_info, script_filename, document_root,
                          content_length, pass_env)
    for key, value in (extra_env or {}).items():
        env[key.encode("latin-1")] = os.fsencode(value)

    if not limits.slots.acquire(timeout=limits.timeout):
        errorlog.error(f"[client {client}] {label}: {limits.max_processes} CGI programs already "
                       f"running for {limits.timeout:g} s (--cgi-max-processes): 503")
        return _simple(start_response, 503)
    released = []

    def release() -> None:
        if not released:
            released.append(True)
            limits.slots.release()

    try:
        run = _Run(argv, env, cwd, label, body, content_length or 0, limits.timeout, client)
    except OSError as exc:
        release()
        status = 403 if exc.errno in (errno.EACCES, errno.EPERM) else 500
        errorlog.error(f"[client {client}] {label}: cannot run the script: "
                       f"{exc.strerror or exc} "
                       f"({'not executable' if status == 403 else 'exec failed'})")
        return _simple(start_response, status)

    try:
        head, first = run.read_head()
        headers, status, location = parse_response_head(head)
    except _Timeout:
        errorlog.error(f"[client {client}] {label}: timed out after {limits.timeout:g} s "
                       f"before sending its headers; killed (--cgi-timeout)")
        run.finish(kill=True)
        release()
        return _simple(start_response, 504)
    except MalformedHead as exc:
        errorlog.error(f"[client {client}] {label}: malformed header from script: {exc}")
        run.finish(kill=run.stdout_open)
        release()
        return _simple(start_response, 500)
    except BaseException:
        run.finish(kill=True)
        release()
        raise

    if location is not None and status is None:
        if location.startswith("/"):
            # RFC 3875 6.2.2 local redirect: the server answers as if the client asked for it.
            run.finish(kill=run.stdout_open)
            release()
            return _internal_redirect(environ, start_response, location)
        status = "302 Found"  # 6.2.3 client redirect
    if status is None:
        status = "200 OK"
    try:
        start_response(status, headers)
    except BaseException:
        run.finish(kill=True)
        release()
        raise
    return _Body(run, first, release)


def _walk_to_file(root: str, path_info: str, follow_symlinks: bool):
    """Map PATH_INFO under the directory `root` to (file, script_part, rest) — the first segment
    that names a regular file ends the script's path, the rest is its PATH_INFO — or to an int
    status: 404 (nothing there, or outside the root) or 403 (a directory)."""
    real_root = os.path.realpath(root)
    segments = path_info.split("/")[1:] if path_info.startswith("/") else []
    current = root
    for index, segment in enumerate(segments):
        if segment in ("", ".", "..") or "\x00" in segment:
            if segment == "" and index == len(segments) - 1:
                break  # a trailing slash after a directory: a directory request
            return 404
        current = os.path.join(current, segment)
        if not follow_symlinks:
            real = os.path.realpath(current)
            if real != real_root and not real.startswith(real_root.rstrip("/") + "/"):
                return 404
        try:
            st = os.stat(current)
        except OSError:
            return 404
        if stat_module.S_ISREG(st.st_mode):
            script_part = "/" + "/".join(segments[:index + 1])
            rest = "/" + "/".join(segments[index + 1:]) if index + 1 < len(segments) else ""
            return current, script_part, rest
        if not stat_module.S_ISDIR(st.st_mode):
            return 404
    return 403  # Apache: "attempt to invoke directory as script"


class CGIDirectory:
    """--cgi-alias: executables under a directory (or one program) run as CGI scripts."""

    def __init__(self, path: str, limits: CGILimits, *, document_root: Optional[str] = None,
                 follow_symlinks: bool = False) -> None:
        self.path = os.path.abspath(path)
        self.is_file = os.path.isfile(self.path)
        self.limits = limits
        self.document_root = document_root
        self.follow_symlinks = follow_symlinks

    def __call__(self, environ, start_response):
        path_info = environ.get("PATH_INFO", "")
        if self.is_file:  # ScriptAlias /url /path/program: the whole rest is PATH_INFO
            found: Any = (self.path, "", path_info)
        else:
            found = _walk_to_file(self.path, path_info, self.follow_symlinks)
        if isinstance(found, int):
            if found == 403:
                errorlog.info(f"[client {environ.get('REMOTE_ADDR')}] "
                              f"{environ.get('SCRIPT_NAME', '')}{path_info}: "
                              f"attempt to invoke a directory as a CGI script: 403")
            return _simple(start_response, found)
        filename, script_part, rest = found
        if not os.access(filename, os.X_OK):
            errorlog.error(f"[client {environ.get('REMOTE_ADDR')}] {filename}: not executable "
                           f"(chmod +x to run it as a CGI script): 403")
            return _simple(start_response, 403)
        return _run_cgi(environ, start_response, argv=[filename],
                        cwd=os.path.dirname(filename), label=filename,
                        script_name=environ.get("SCRIPT_NAME", "") + script_part,
                        path_info=rest, script_filename=filename,
                        document_root=self.document_root, limits=self.limits)


class CGIScript:
    """--cgi-script: a WSGI script run per request as CGI (``python -m pywsgi.cgi SCRIPT``)."""

    def __init__(self, path: str, limits: CGILimits, *, callable_name: str = "application",
                 document_root: Optional[str] = None) -> None:
        self.path = os.path.abspath(path)
        self.limits = limits
        self.callable_name = callable_name
        self.document_root = document_root

    def __call__(self, environ, start_response):
        if not os.path.isfile(self.path):
            errorlog.error(f"{self.path}: CGI script is gone: 404")
            return _simple(start_response, 404)
        argv = [sys.executable, _CHILD, "--callable-object", self.callable_name, self.path]
        return _run_cgi(environ, start_response, argv=argv, cwd=os.path.dirname(self.path),
                        label=self.path, script_name=environ.get("SCRIPT_NAME", ""),
                        path_info=environ.get("PATH_INFO", ""), script_filename=self.path,
                        document_root=self.document_root, limits=self.limits,
                        pass_env=_PASS_ENV + _PASS_ENV_PYTHON, extra_env=_runner_env())


def _runner_env() -> Dict[str, str]:
    """Environment for ``python -m pywsgi.cgi``. Under a meson-python editable install (a
    development checkout), importing pywsgi would first rebuild the C core, per request; the
    runner needs only pure-Python modules, so it imports them from the source tree instead."""
    for finder in sys.meta_path:
        build_path = getattr(finder, "_build_path", None)
        if build_path and "pywsgi" in getattr(finder, "_top_level_modules", ()):
            source_parent = os.path.dirname(_PACKAGE_DIRECTORY)
            paths = [source_parent] + [p for p in os.environ.get("PYTHONPATH", "").split(
                os.pathsep) if p]
            return {"MESONPY_EDITABLE_SKIP": build_path, "PYTHONPATH": os.pathsep.join(paths)}
    return {}


# The pywsgi package's directory (this file is pywsgi/handlers/cgi.py).
_PACKAGE_DIRECTORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The per-request runner (python -m pywsgi.cgi runs the same code), run by path, not with -m:
# no runpy, and none of this module's imports, for every request.
_CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_cgi_child.py")
