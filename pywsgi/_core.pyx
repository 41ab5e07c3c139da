# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The WSGI side of a server process.

The reactor (csrc/reactor.c) accepts and parses without the GIL and queues connections whose
request head is complete.  Worker threads (Python threads, running `_worker_main`) take them
from the queue with the GIL released, take the GIL to build the environ and call the
application, and release it again for every socket read and write.
"""
import os
import stat
import sys
import threading
import time

from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeLatin1
from cpython.exc cimport PyErr_CheckSignals
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE
from cpython.ref cimport PyObject
from libc.string cimport memchr, memcmp, memcpy, memset, strcmp, strlen
from libc.stdio cimport snprintf
from libc.stdint cimport uint64_t
from libc.stdlib cimport calloc, free
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC

from pywsgi._core cimport *
cimport cython

cdef pw_server *_srv = NULL
cdef bint _stop_requested = False
cdef bint _stop_graceful = True
cdef list _mounts = []          # [_Mount], longest prefix first
# Name-based virtual hosts (docs/migrating-from-mod_wsgi.md): each host's mounts, longest prefix
# first, by host index; lower-case host name -> index. Empty: no virtual hosts, _mounts only.
cdef list _vhost_mounts = []
cdef dict _vhost_names = {}
# --allow-encoded-slashes: the server's mode, and each virtual host's (AllowEncodedSlashes in a
# <VirtualHost>; by host index, as _vhost_mounts).
cdef int _slashes = 0
cdef list _vhost_slashes = []
cdef dict _base_environ = {}
cdef object _errorlog = None
cdef str _server_software = 'pywsgi'
cdef bytes _server_line = b'Server: pywsgi\r\n'
cdef bytes _server_header = b'pywsgi'
cdef object _default_port = '8000'
cdef object _default_server_name = 'localhost'

# RFC 9110 5.6.2: token = 1*tchar
cdef bytes _TCHAR = (b"!#$%&'*+-.^_`|~0123456789"
                     b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
cdef unsigned char _name_ok[256]    # token characters
cdef unsigned char _value_ok[256]   # field-vchar / obs-text / SP / HTAB (RFC 9110 5.5)
for _c in range(256):
    _name_ok[_c] = 0
    _value_ok[_c] = 1 if (_c >= 32 and _c != 127) or _c == 9 else 0
for _c in _TCHAR:
    _name_ok[_c] = 1

cdef extern from "<string.h>" nogil:
    void *memmem(const void *haystack, size_t haystacklen, const void *needle, size_t needlelen)

cdef extern from "Python.h":
    int PyUnicode_KIND(object)
    void *PyUnicode_DATA(object)
    Py_ssize_t PyUnicode_GET_LENGTH(object)
    int PyUnicode_1BYTE_KIND
    Py_ssize_t PyUnicode_Tailmatch(object, object, Py_ssize_t, Py_ssize_t, int) except -1
    Py_UCS4 PyUnicode_READ_CHAR(object, Py_ssize_t)


cdef bint _chars_ok(str text, const unsigned char *table):
    """Every character of text is latin-1 and allowed by table (a C loop, no iteration)."""
    cdef const unsigned char *p
    cdef Py_ssize_t i, n
    if PyUnicode_KIND(text) != PyUnicode_1BYTE_KIND:
        return False
    p = <const unsigned char *>PyUnicode_DATA(text)
    n = PyUnicode_GET_LENGTH(text)
    for i in range(n):
        if not table[p[i]]:
            return False
    return True

# Response headers a WSGI application must not set (PEP 3333: hop-by-hop); the server owns
# the framing and the connection, so these are dropped (Connection: close is honoured).
cdef frozenset _HOP_BY_HOP = frozenset([
    'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te',
    'trailer', 'trailers', 'transfer-encoding', 'upgrade'])


class ClientDisconnected(OSError):
    """The client went away (or stopped reading) while the response was being sent."""


class RequestTimeout(BaseException):
    """Raised inside the thread of a request that has run longer than --request-timeout (or a
    daemon group's request-timeout= with interrupt-timeout=), so it unwinds and the client gets
    504.  A BaseException, as mod_wsgi 6's mod_wsgi.RequestTimeout: the `except Exception:` of
    an application or framework does not swallow it.  Catch it only to clean up, and re-raise.
    It reaches the thread the next time the thread runs Python code: not while it waits in C
    (time.sleep, a lock, a socket read without timeout) - then the process is recycled."""


class RequestBodyError(OSError):
    """wsgi.input could not deliver the request body.  `status` (also `code`, as web
    frameworks name it) is the HTTP status the server answers with if the application lets
    the exception through: 400 malformed or cut short, 408 too slow, 413 over
    --limit-request-body."""
    status = code = 400

    def __init__(self, status, message):
        super().__init__(message)
        self.status = self.code = status


class RequestBodyTooLarge(RequestBodyError):
    """The request body is over --limit-request-body (413)."""


cdef object _too_large_with_werkzeug = None


cdef object _body_error(int status, str message):
    """The exception for a body that could not be read.  Over the limit, in an application
    that uses Werkzeug (Flask...), it is also a werkzeug RequestEntityTooLarge, so the framework
    answers 413 itself instead of turning an unknown exception into a 500."""
    global _too_large_with_werkzeug
    if status != 413:
        return RequestBodyError(status, message)
    cls = RequestBodyTooLarge
    werkzeug = sys.modules.get('werkzeug.exceptions')
    if werkzeug is not None and hasattr(werkzeug, 'RequestEntityTooLarge'):
        if _too_large_with_werkzeug is None:
            try:
                _too_large_with_werkzeug = type(
                    'RequestBodyTooLarge', (RequestBodyTooLarge, werkzeug.RequestEntityTooLarge),
                    {'response': None, '__module__': __name__})
            except TypeError:  # a Werkzeug whose class cannot be combined: ours alone
                _too_large_with_werkzeug = RequestBodyTooLarge
        cls = _too_large_with_werkzeug
    return cls(status, message)


cdef const char *CRLF = b"\r\n"


cdef inline str _peer(pw_conn *c):
    return (<char *>c.peer_host).decode('latin-1')


cdef inline str _latin1(const char *p, Py_ssize_t n):
    return PyUnicode_DecodeLatin1(p, n, NULL)


cdef object _log():
    global _errorlog
    if _errorlog is None:
        from pywsgi.observe import errorlog
        _errorlog = errorlog
    return _errorlog


# ------------------------------------------------------------------------ paths

cdef int _hexval(int ch):
    if 48 <= ch <= 57:
        return ch - 48
    if 65 <= ch <= 70:
        return ch - 55
    if 97 <= ch <= 102:
        return ch - 87
    return -1


# --allow-encoded-slashes (Apache's AllowEncodedSlashes), as the core numbers the modes
cdef enum:
    SLASHES_OFF = 0        # %2F: 404, the application never sees it (Apache's default)
    SLASHES_ON = 1         # %2F: decoded like any other escape, a path separator
    SLASHES_NODECODE = 2   # %2F: accepted, left as it was written; the other escapes decoded

cdef dict _SLASH_MODES = {'off': SLASHES_OFF, 'on': SLASHES_ON, 'nodecode': SLASHES_NODECODE}


cdef int _slash_mode(object name) except -1:
    mode = _SLASH_MODES.get(str(name or 'off').lower())
    if mode is None:
        raise ValueError("allow_encoded_slashes must be off, on or nodecode, got %r" % (name,))
    return mode


cdef object _decode_path(const char *p, Py_ssize_t n, int slashes):
    """Percent-decode and normalise a request path, as Apache does before mapping it.

    Returns the latin-1 str, or an int status: 400 for a NUL or an escape above the root,
    404 for an encoded slash when `slashes` is SLASHES_OFF (Apache's AllowEncodedSlashes Off).
    With SLASHES_NODECODE an encoded slash stays the three characters it was ('%2F' or '%2f',
    as Apache's NoDecode keeps it), so it is never a segment boundary: not for routing, not for
    dot segments, not for static files. Dot segments are removed after decoding, so with
    SLASHES_ON '..%2F' is a real '..' segment and climbing above the root is still 400.
    """
    cdef Py_ssize_t i = 0, j = 0
    cdef int hi, lo, ch
    if memchr(p, b'%', n) != NULL:
        out = bytearray(n)
        while i < n:
            ch = <unsigned char>p[i]
            if ch == 37 and i + 2 < n:  # '%'
                hi = _hexval(<unsigned char>p[i + 1])
                lo = _hexval(<unsigned char>p[i + 2])
                if hi >= 0 and lo >= 0:
                    ch = hi * 16 + lo
                    if ch == 0:
                        return 400
                    if ch == 47:  # '/'
                        if slashes == SLASHES_OFF:
                            return 404
                        if slashes == SLASHES_NODECODE:
                            out[j] = 37
                            out[j + 1] = <unsigned char>p[i + 1]
                            out[j + 2] = <unsigned char>p[i + 2]
                            i += 3
                            j += 3
                            continue
                    i += 3
                    out[j] = ch
                    j += 1
                    continue
            out[j] = ch
            j += 1
            i += 1
        path = out[:j].decode('latin-1')
    elif memmem(p, n, b"/.", 2) == NULL:
        return _latin1(p, n)  # nothing to decode or normalise (most requests)
    else:
        path = _latin1(p, n)
    if '/.' in path:
        # RFC 3986 5.2.4 remove_dot_segments; going above the root is an error.
        segs = []
        parts = path.split('/')
        for k, seg in enumerate(parts):
            if seg == '.':
                if k == len(parts) - 1:
                    segs.append('')
                continue
            if seg == '..':
                if len(segs) <= 1:
                    return 400
                segs.pop()
                if k == len(parts) - 1:
                    segs.append('')
                continue
            segs.append(seg)
        path = '/'.join(segs)
    return path


# ------------------------------------------------------------------------ mounts

cdef class _Mount:
    cdef str prefix
    cdef Py_ssize_t plen
    cdef _Template template   # its requests' environ before the request's values
    cdef object app
    cdef dict environ     # base environ merged with the mount's extras
    cdef object access    # None, or an object whose allows(remote_addr) says yes or no
    cdef object static    # a pywsgi.static.StaticFiles served by the C core, or None
    cdef object daemon    # a daemon process group (pywsgi.config.daemon_groups.DaemonGroup) to relay to, or None
    cdef bytes daemon_socket
    cdef double relay_queue_timeout     # the group's waits (config/daemon_groups.py)
    cdef double relay_response_timeout
    cdef int relay_processes
    cdef int pool_slot    # the relay's per-thread connection pool slot for the group; -1: none
    cdef int vhost         # index of its name-based virtual host, or -1
    cdef tuple vhost_names
    cdef int slashes       # its --allow-encoded-slashes mode (its virtual host's), or -1: the server's

    def __init__(self, mount):
        # mount: a pywsgi.site.mounts.LoadedMount. Its kind is what serves it, as the planner
        # decided (MountKind, a str enum): 'static' is served from C, 'daemon' relayed; any
        # other kind is called.
        app = mount.app
        kind = mount.kind
        vhost = mount.virtual_host    # (index, host names), or None
        self.vhost = vhost[0] if vhost is not None else -1
        self.vhost_names = tuple(vhost[1]) if vhost is not None else ()
        # kept in the environ: the application can tell whether PATH_INFO may hold '%2F'
        slashes = mount.extras.get('pywsgi.allow_encoded_slashes')
        self.slashes = -1 if slashes is None else _slash_mode(slashes)
        self.prefix = mount.prefix.rstrip('/')
        self.plen = len(self.prefix)
        self.app = app
        self.access = mount.access
        self.static = app if kind == 'static' else None
        self.daemon = app if kind == 'daemon' else None
        self.pool_slot = -1
        if self.daemon is not None:   # a pywsgi.config.daemon_groups.DaemonGroup
            self.daemon_socket = os.fsencode(app.socket_path)
            self.relay_queue_timeout = app.relay_queue_timeout
            self.relay_response_timeout = app.response_timeout
            self.relay_processes = app.processes
            slot = _pool_slots.setdefault(self.daemon_socket, len(_pool_slots))
            self.pool_slot = slot if slot < PW_RELAY_POOL_SLOTS else -1
        self.environ = dict(_base_environ)
        self.environ.update(mount.extras)


cdef dict _pool_slots = {}   # daemon group socket -> pool slot of the relay


cdef _Mount _route(str path):
    return _route_in(path, _mounts)


cdef str _request_host(pw_conn *c):
    """The request's host name, lower case, without port or trailing dot ('' if none): the
    absolute-form target's authority, else the Host header. RFC 9112 3.2.2: "When an origin
    server receives a request with an absolute-form of request-target, the origin server MUST
    ignore the received Host header field (if any) and instead use the host information of the
    request-target." """
    cdef pw_request *r = &c.req
    cdef pw_header *h
    cdef uint32_t i
    cdef const char *buf = c.buf
    host = None
    if r.authority.len:
        host = _latin1(buf + r.authority.off, r.authority.len)
    else:
        for i in range(r.num_headers):
            h = &r.headers[i]
            if h.name.len == 4 and (buf + h.name.off)[:4].lower() == b'host':
                host = _latin1(buf + h.value.off, h.value.len)
                break
    if not host:
        return ''
    host = host.strip().lower()
    if host.startswith('['):
        return host[:host.find(']') + 1]
    return host.partition(':')[0].rstrip('.')


cdef _Mount _route_in(str path, list mounts):
    cdef _Mount m
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(path)
    for m in mounts:
        if m.plen == 0:
            return m
        # path.startswith(m.prefix), in C (str.startswith parses its arguments per call)
        if (n >= m.plen and PyUnicode_Tailmatch(path, m.prefix, 0, m.plen, -1) == 1
                and (n == m.plen or PyUnicode_READ_CHAR(path, m.plen) == 47)):  # '/'
            return m
    return None


# ------------------------------------------------------------------------ wsgi.input

@cython.freelist(32)
cdef class InputStream:
    """wsgi.input: the request body, read from the socket as the application asks for it."""
    cdef pw_conn *conn

    def _fail(self):
        status = self.conn.body_error if self.conn != NULL else 400
        reason = pw_status_reason(status).decode()
        if status == 413:
            reason += ': over --limit-request-body'
        elif status == 400 and self.conn != NULL and self.conn.broken:
            reason = 'the client closed the connection before the end of its body'
        raise _body_error(status, "request body could not be read (%d %s)" % (status, reason))

    cdef Py_ssize_t _peek(self, const char **ptr) except -2:
        cdef ssize_t n
        if self.conn == NULL:
            return 0
        with nogil:
            n = pw_body_peek(_srv, self.conn, ptr)
        if n < 0:
            self._fail()
        return n

    cdef bytes _read(self, Py_ssize_t want, bint to_newline):
        """Up to `want` bytes of the body (all of it when negative); to_newline: up to and
        including the first newline."""
        cdef const char *ptr
        cdef const char *nl = NULL
        cdef Py_ssize_t n, take
        parts = []
        while want != 0:
            n = self._peek(&ptr)
            if n == 0:
                break
            take = n if (want < 0 or n < want) else want
            if to_newline:
                nl = <const char *>memchr(ptr, b'\n', take)
                if nl != NULL:
                    take = nl - ptr + 1
            parts.append(PyBytes_FromStringAndSize(ptr, take))
            pw_body_consume(self.conn, take)
            if want > 0:
                want -= take
            if nl != NULL:
                break
        if len(parts) == 1:
            return parts[0]
        return b''.join(parts)

    def read(self, size=-1):
        return self._read(-1 if size is None else size, False)

    def readline(self, size=-1):
        return self._read(-1 if size is None else size, True)

    def readlines(self, hint=-1):
        lines = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                break
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                break
        return lines

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line


# ------------------------------------------------------------------------ file wrapper

cdef class FileWrapper:
    """wsgi.file_wrapper: sent with sendfile() when the object is a regular file."""
    cdef readonly object filelike
    cdef readonly int blksize

    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike
        self.blksize = blksize

    def __iter__(self):
        return self

    def __next__(self):
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration

    def close(self):
        close = getattr(self.filelike, 'close', None)
        if close is not None:
            close()


# ------------------------------------------------------------------------ response

# Response bytes held per connection for a client that reads slowly (--send-buffer-size): a
# response is pulled from the application only while less is pending, and a suspended one
# resumes when less than a quarter is left (the reactor sends it meanwhile).
cdef size_t _out_high = 262144
cdef size_t _out_low = 65536


cdef tuple _check_head(status, headers):
    """Validate start_response's status and headers (PEP 3333 / RFC 9110); return
    (code, head prefix bytes, content length or -1, has Date, has Server, Connection: close)."""
    if type(status) is not str:
        raise TypeError("status must be a str, not %s" % type(status).__name__)
    if (len(status) < 4 or status[3] != ' ' or not status[:3].isdigit()
            or not status[:3].isascii()):
        raise ValueError("status must look like '200 OK', got %r" % (status,))
    code = int(status[:3])
    if code < 100 or code > 599:
        raise ValueError("status code out of range: %r" % (status,))
    if not _chars_ok(status, _value_ok) or '\t' in status:
        raise ValueError("status holds a control or non-latin-1 character: %r" % (status,))
    if type(headers) is not list:
        raise TypeError("response headers must be a list, not %s" % type(headers).__name__)
    cdef list parts = ['HTTP/1.1 ', status, '\r\n']
    cdef long long clen = -1
    cdef bint has_date = False, has_server = False, close = False
    for item in headers:
        if type(item) is not tuple or len(item) != 2:
            raise TypeError("each response header must be a (name, value) tuple: %r" % (item,))
        name, value = item
        if type(name) is not str or type(value) is not str:
            raise TypeError("response header name and value must be str: %r" % (item,))
        if not name or not _chars_ok(name, _name_ok):
            raise ValueError("invalid response header name %r" % (name,))
        if not _chars_ok(value, _value_ok):
            raise ValueError("invalid character in response header %s: %r" % (name, value))
        lname = name.lower()
        if lname in _HOP_BY_HOP:
            if lname == 'connection' and 'close' in value.lower():
                close = True
            elif lname != 'connection':
                _log().warning("dropped hop-by-hop response header %s from the application"
                               % name)
            continue
        if lname == 'content-length':
            v = value.strip()
            if not v.isdigit() or not v.isascii() or (clen >= 0 and int(v) != clen):
                raise ValueError("invalid Content-Length response header: %r" % (value,))
            clen = int(v)
            continue
        if lname == 'date':
            has_date = True
        elif lname == 'server':
            has_server = True
        parts.append(name)
        parts.append(': ')
        parts.append(value)
        parts.append('\r\n')
    return (code, ''.join(parts).encode('latin-1'), clen, has_date, has_server, close)


cdef inline bint _same_str(str a, str b) except -1:
    return a is b or (PyUnicode_GET_LENGTH(a) == PyUnicode_GET_LENGTH(b) and a == b)


cdef class _Head:
    """A validated start_response: the status and headers as given (to compare the next call's
    with) and what they make, but for the Content-Length value, which may differ per call."""
    cdef str status
    cdef tuple items            # the (name, value) tuples
    cdef uint64_t length_at     # bit i: items[i] is a Content-Length (its value not compared)
    cdef int code
    cdef bytes prefix           # status line and headers, serialised (no Content-Length)
    cdef bint has_date, has_server, close

    cdef bint _matches(self, str status, list headers, long long *content_length):
        """Whether start_response got the same arguments, but for Content-Length's value
        (set in *content_length, -1 when none)."""
        cdef Py_ssize_t n = PyTuple_GET_SIZE(self.items), i, k, digits
        cdef long long length = -1, v
        cdef const unsigned char *p
        cdef object item, mine
        if PyList_GET_SIZE(headers) != n or not _same_str(status, self.status):
            return False
        for i in range(n):
            item = <object>PyList_GET_ITEM(headers, i)
            if type(item) is not tuple or PyTuple_GET_SIZE(item) != 2:
                return False
            mine = <object>PyTuple_GET_ITEM(self.items, i)
            name = <object>PyTuple_GET_ITEM(item, 0)
            value = <object>PyTuple_GET_ITEM(item, 1)
            if type(name) is not str or type(value) is not str:
                return False
            if not _same_str(<str>name, <str>PyTuple_GET_ITEM(mine, 0)):
                return False
            if self.length_at >> i & 1:
                # Content-Length: plain digits (anything else: _check_head says what is wrong)
                digits = PyUnicode_GET_LENGTH(value)
                if digits == 0 or digits > 18 or PyUnicode_KIND(value) != PyUnicode_1BYTE_KIND:
                    return False
                p = <const unsigned char *>PyUnicode_DATA(value)
                v = 0
                for k in range(digits):
                    if not 48 <= p[k] <= 57:
                        return False
                    v = v * 10 + (p[k] - 48)
                if length >= 0 and v != length:
                    return False
                length = v
            elif not _same_str(<str>value, <str>PyTuple_GET_ITEM(mine, 1)):
                return False
        content_length[0] = length
        return True


cdef enum:
    _HEAD_SETS = 16              # a power of two
    _HEAD_WAYS = 4


cdef class _HeadCache:
    """The heads of recent responses (16 sets of 4; a new one replaces the set's oldest), so
    the same status and headers - most responses of an application - are validated and
    serialised once.  Looking one up compares strings (by identity first): no tuple is built
    or hashed."""
    cdef list entries
    cdef unsigned char turn[16]  # _HEAD_SETS: the way a new entry of the set takes

    def __cinit__(self):
        self.clear()

    def clear(self):
        self.entries = [None] * (_HEAD_SETS * _HEAD_WAYS)
        memset(self.turn, 0, sizeof(self.turn))

    cdef inline Py_ssize_t _set(self, str status, list headers) except -1:
        cdef Py_hash_t h = hash(status) + PyList_GET_SIZE(headers)
        cdef object first
        if PyList_GET_SIZE(headers):
            first = <object>PyList_GET_ITEM(headers, 0)
            if type(first) is tuple and PyTuple_GET_SIZE(first) == 2:
                name = <object>PyTuple_GET_ITEM(first, 0)
                if type(name) is str:
                    h = h * 31 + hash(name)
        return (h & (_HEAD_SETS - 1)) * _HEAD_WAYS

    cdef _Head find(self, str status, list headers, long long *content_length):
        """The entry for these arguments, or None; sets *content_length (-1: none given)."""
        cdef Py_ssize_t base = self._set(status, headers), way
        cdef object entry
        for way in range(_HEAD_WAYS):
            entry = <object>PyList_GET_ITEM(self.entries, base + way)
            if entry is not None and (<_Head>entry)._matches(status, headers, content_length):
                return <_Head>entry
        return None

    cdef _Head add(self, str status, list headers, tuple checked):
        """Keep the arguments that _check_head found valid (with its result)."""
        cdef _Head entry = _Head()
        cdef Py_ssize_t base = self._set(status, headers), i
        cdef unsigned char way
        entry.status = status
        entry.items = tuple(headers)
        entry.length_at = 0
        if PyTuple_GET_SIZE(entry.items) > 64:
            return entry  # not kept: a bit per header
        for i, (name, value) in enumerate(entry.items):
            if name.lower() == 'content-length':
                entry.length_at |= (<uint64_t>1) << i
        (entry.code, entry.prefix, _, entry.has_date, entry.has_server, entry.close) = checked
        way = self.turn[base // _HEAD_WAYS]
        self.turn[base // _HEAD_WAYS] = (way + 1) % _HEAD_WAYS
        self.entries[base + way] = entry
        return entry


cdef _HeadCache _head_cache = _HeadCache()


# start_response without a bound method: the Request object is called by vectorcall (CPython
# reads the function from the object, at tp_vectorcall_offset; _enable_vectorcall sets the type
# up once), so the application's call reaches Request._start with no argument tuple either.
cdef extern from "Python.h":
    ctypedef PyObject *(*vectorcallfunc)(PyObject *, PyObject **, size_t, PyObject *)
    Py_ssize_t PyVectorcall_NARGS(size_t)
    unsigned long Py_TPFLAGS_HAVE_VECTORCALL
    object PyMethod_New(object function, object self)
    ctypedef struct _TypeSlots "PyTypeObject":
        Py_ssize_t tp_vectorcall_offset
        unsigned long tp_flags

cdef object _write_function = None   # Request.write, bound per request by PyMethod_New


@cython.freelist(32)
cdef class Request:
    """One request/response exchange: start_response, write and the framing decisions."""
    cdef vectorcallfunc vectorcall  # _start_response_call: the object is start_response
    cdef pw_conn *conn
    cdef object status             # str from start_response
    cdef int status_code
    cdef bytes head_prefix         # status line and the application's headers, serialised
    cdef bint headers_sent
    cdef bint is_head
    cdef bint no_body              # HEAD, 1xx, 204, 304
    cdef bint http10
    cdef bint keep_alive           # the connection stays usable after this response
    cdef bint client_close         # daemon role, pooled connection: the client's own wish
    cdef bint chunked
    cdef long long content_length  # -1: not given
    cdef long long body_sent
    cdef bint has_date
    cdef bint has_server
    cdef _Mount mount
    # The application's side, kept while a slow client holds the response back (_pump).
    cdef dict env
    cdef InputStream input         # the environ's wsgi.input (which the application may replace)
    cdef object result
    cdef object it                 # iterator over result; None until the app has answered
    cdef bytes cur                 # the block being sent, from cur_off on
    cdef Py_ssize_t cur_off

    def start_response(self, status, headers, exc_info=None):
        """PEP 3333's start_response.  The application is given the request itself as its
        start_response (a vectorcall object: no bound method per request, see
        _start_response_call); calls with keywords or an unusual argument count come here."""
        return self._start(status, headers, exc_info)

    def __call__(self, *args, **kwargs):
        return self.start_response(*args, **kwargs)

    cdef object _start(self, status, headers, exc_info):
        if exc_info is not None:
            try:
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response() called a second time without exc_info")
        self._check(status, headers)
        return PyMethod_New(_write_function, self)  # self.write, without the attribute lookup

    cdef _check(self, status, headers):
        # The same status and headers (most responses of an application) are validated and
        # serialised once (_HeadCache): up to the server's lines, Content-Length aside.
        cdef _Head head = None
        cdef long long length = -1
        cdef tuple checked
        if type(status) is str and type(headers) is list:
            head = _head_cache.find(<str>status, <list>headers, &length)
        if head is None:
            checked = _check_head(status, headers)
            length = checked[2]
            head = _head_cache.add(<str>status, <list>headers, checked)
        self.status = status
        self.status_code = head.code
        self.head_prefix = head.prefix
        self.content_length = length
        self.has_date = head.has_date
        self.has_server = head.has_server
        if head.close:
            self.keep_alive = False
        self.no_body = self.is_head or self.status_code < 200 or self.status_code in (204, 304)

    def write(self, data):
        """The write() callable returned by start_response (PEP 3333, for legacy apps).  It
        cannot hand its data over and return later, so it waits while more than the
        connection's output buffer is pending (a slow client holds this thread)."""
        cdef Py_ssize_t off = 0, size
        cdef int rc
        if self.status is None:
            raise AssertionError("write() called before start_response()")
        if type(data) is not bytes:
            raise TypeError("response body must be bytes, not %s" % type(data).__name__)
        size = PyBytes_GET_SIZE(data)
        while off < size:
            off = self._put(data, off)
            if off < size:
                with nogil:
                    rc = pw_conn_out_wait(_srv, self.conn, _out_low)
                if rc != 0:
                    raise ClientDisconnected("client went away while the response was being sent")

    cdef Py_ssize_t _put(self, bytes data, Py_ssize_t off) except -1:
        """Hand data[off:] to the connection as far as its output buffer has room (all of it
        when the client keeps up); return the offset reached.  The head goes with the first
        non-empty block (PEP 3333: headers wait for the first body bytes)."""
        cdef Py_ssize_t n = PyBytes_GET_SIZE(data) - off
        cdef size_t pending = pw_conn_out_pending(self.conn)
        if self.conn.broken:  # e.g. dropped by the reactor as too slow while suspended
            raise ClientDisconnected("client went away while the response was being sent")
        if pending >= _out_high:
            return off
        if <size_t>n > _out_high - pending:
            n = _out_high - pending
        if not self.headers_sent:
            self._send_head(data, off, n)
        else:
            self._writev(None, NULL, 0, data, off, n)
        return off + n

    cdef bint _send_cur(self) except -1:
        """Send the current block; False when the output buffer filled up first."""
        cdef bytes cur = self.cur
        cdef Py_ssize_t off = self.cur_off, size = PyBytes_GET_SIZE(cur), reached
        while off < size:
            reached = self._put(cur, off)
            if reached == off:
                self.cur_off = off
                return False
            off = reached
        self.cur = None
        return True

    cdef bint _pump(self) except -1:
        """Send the application's blocks.  True when the iterable is exhausted; False when
        the client is not keeping up (more than out_high pending): the caller suspends the
        response and a worker resumes it here once the reactor has sent it down."""
        if self.cur is not None and not self._send_cur():
            return False
        for data in self.it:
            if self.status is None:
                raise AssertionError("application returned without calling start_response()")
            if type(data) is not bytes:
                raise TypeError("response body must be bytes, not %s" % type(data).__name__)
            if PyBytes_GET_SIZE(data) == 0:
                continue  # PEP 3333: an empty block sends nothing (and the headers wait)
            self.cur = data
            self.cur_off = 0
            if not self._send_cur():
                return False
        return True

    cdef int _head_tail(self, char *out, int room):
        """The server's part of the head (framing, Date, Server, Connection, the empty line),
        formatted into out as every response of the server frames it (pw_head_finish);
        decides the framing.  Returns its length."""
        cdef pw_head h
        cdef int n
        if pw_server_stopping(_srv) and not _daemon_role:
            # (a daemon's connection is the relay's; the client's stays the client's choice)
            self.keep_alive = False
        h.status = self.status_code
        h.http10 = self.http10
        h.no_body = self.no_body
        h.content_length = self.content_length
        h.keep_alive = self.keep_alive
        h.announce_close = self.client_close
        h.has_date = self.has_date
        h.server_line = NULL if self.has_server else <const char *>_server_line
        h.extra_lines = pw_conn_hsts(_srv, self.conn)
        n = pw_head_finish(&h, out, room)
        self.chunked = h.chunked
        self.keep_alive = h.keep_alive
        self.headers_sent = True
        return n

    cdef _send_head(self, bytes body, Py_ssize_t off=0, Py_ssize_t n=-1):
        cdef char tail[512]
        cdef int tail_len = self._head_tail(tail, sizeof(tail))
        if body is None:
            body = b''
        if n < 0:
            n = PyBytes_GET_SIZE(body) - off
        self._writev(self.head_prefix, tail, tail_len, body, off, n)

    cdef _writev(self, bytes head, const char *tail, int tail_len, bytes data, Py_ssize_t off,
                 Py_ssize_t n, bint last=False):
        """Hand the head (if any: prefix + tail) and data[off:off+n], framed, to the
        connection in one call; what the client does not take at once stays pending there."""
        cdef iovec iov[6]
        cdef int cnt = 0, rc
        cdef char size_line[24]
        if head is not None:
            iov[cnt].iov_base = <void *>PyBytes_AS_STRING(head)
            iov[cnt].iov_len = PyBytes_GET_SIZE(head)
            cnt += 1
        if tail_len > 0:
            iov[cnt].iov_base = <void *>tail
            iov[cnt].iov_len = tail_len
            cnt += 1
        if self.no_body:
            n = 0
        elif self.content_length >= 0 and self.body_sent + n > self.content_length:
            _log().error("application sent more than its Content-Length (%d): the excess "
                         "is dropped and the connection closed" % self.content_length)
            n = self.content_length - self.body_sent
            self.keep_alive = False
        if n > 0:
            if self.chunked:
                iov[cnt].iov_base = <void *>size_line
                iov[cnt].iov_len = snprintf(size_line, sizeof(size_line), "%zx\r\n", <size_t>n)
                cnt += 1
            iov[cnt].iov_base = <void *>(PyBytes_AS_STRING(data) + off)
            iov[cnt].iov_len = n
            cnt += 1
            if self.chunked:
                iov[cnt].iov_base = <void *>CRLF
                iov[cnt].iov_len = 2
                cnt += 1
            self.body_sent += n
        if cnt == 0:
            return
        if pw_conn_out_pending(self.conn) == 0:
            # Nothing pending: one non-blocking sendmsg, what it does not take is copied.  A
            # GIL hand-over around it would cost more than the call.  The write that
            # completes the response may wait for the end of the reactor's turn (inline
            # mode, output.c out_hold).
            if last or self.no_body or (not self.chunked and 0 <= self.content_length
                                         <= self.body_sent):
                rc = pw_conn_send_last(_srv, self.conn, iov, cnt)
            else:
                rc = pw_conn_send(_srv, self.conn, iov, cnt)
        else:
            with nogil:  # a pending file may have to go first, waiting for the client
                rc = pw_conn_send(_srv, self.conn, iov, cnt)
        if rc != 0:
            raise ClientDisconnected("client went away while the response was being sent")

    cdef _send_file(self, int fd, long long offset, long long count):
        cdef int rc
        if _daemon_role and not self.headers_sent and not self.no_body and count > 0:
            # Pass the descriptor to the server process, which sendfile()s it to the client:
            # the file's bytes never cross the UNIX socket (relay.h, file record).
            with nogil:
                rc = pw_daemon_send_file(_srv, self.conn, fd, offset, count)
            if rc != 0:
                raise ClientDisconnected("the server process went away before a file was sent")
            self._send_head(None)
            self.body_sent += count
            return
        if not self.headers_sent:
            self._send_head(None)
        if self.no_body or count <= 0:
            return
        with nogil:
            rc = pw_conn_sendfile(_srv, self.conn, fd, offset, count)
        if rc != 0:
            raise ClientDisconnected("client went away while a file was being sent")
        self.body_sent += count

    cdef finish(self):
        """The application's result is exhausted: complete the response."""
        if not self.headers_sent:
            if self.content_length < 0 and not self.no_body:
                self.content_length = 0
            self._send_head(b'')
        elif self.chunked:
            self._writev(None, "0\r\n\r\n", 5, b'', 0, 0, True)
        if self.content_length >= 0 and not self.no_body and self.body_sent < self.content_length:
            _log().error("application sent %d bytes, less than its Content-Length of %d: "
                         "connection closed" % (self.body_sent, self.content_length))
            self.keep_alive = False


_write_function = Request.write


cdef object _start_response_call(PyObject *callable, PyObject **args, size_t nargsf,
                                 PyObject *kwnames):
    """start_response(status, headers[, exc_info]) by vectorcall."""
    cdef Py_ssize_t nargs = PyVectorcall_NARGS(nargsf), i
    if kwnames == NULL and 2 <= nargs <= 3:
        return (<Request><object>callable)._start(<object>args[0], <object>args[1],
                                                   <object>args[2] if nargs == 3 else None)
    # keywords, or a wrong count: the method's own argument handling (and messages)
    positional = [<object>args[i] for i in range(nargs)]
    keywords = {}
    if kwnames != NULL:
        for i in range(PyTuple_GET_SIZE(<object>kwnames)):
            keywords[<object>PyTuple_GET_ITEM(<object>kwnames, i)] = <object>args[nargs + i]
    return (<object>callable).start_response(*positional, **keywords)


cdef int _enable_vectorcall() except -1:
    cdef Request probe = Request.__new__(Request)
    (<_TypeSlots *><PyObject *>Request).tp_vectorcall_offset = (
        <char *>&probe.vectorcall - <char *><PyObject *>probe)
    (<_TypeSlots *><PyObject *>Request).tp_flags |= Py_TPFLAGS_HAVE_VECTORCALL
    return 0


_enable_vectorcall()


# ------------------------------------------------------------------------ one request

cdef _simple_response(pw_conn *c, Request req, int status, str message=None):
    """A complete small HTML response from the server itself (404, 500, 413, ...)."""
    cdef bytes text = message.encode('latin-1', 'replace') if message else None
    cdef bytes page = PyBytes_FromStringAndSize(NULL, 512 + (len(text) if text else 0))
    cdef int n = pw_error_page(status, <const char *>text if text else NULL,
                               PyBytes_AS_STRING(page), PyBytes_GET_SIZE(page))
    body = page[:n]
    reason = pw_status_reason(status).decode('latin-1')
    req.status = None
    req._check('%d %s' % (status, reason),
               [('Content-Type', 'text/html; charset=utf-8')])
    req.content_length = len(body)
    req._send_head(body)


cdef object _request_path(pw_conn *c, int slashes):
    """The decoded, normalised request path (str), or an int status when it is unusable."""
    cdef pw_request *r = &c.req
    if r.path.len == 0:
        return '/'  # absolute-form target without a path
    return _decode_path(c.buf + r.path.off, r.path.len, slashes)


# Trusted proxies (docs/proxies.md): with --trust-proxy, the forwarding headers reach the
# application only from a trusted proxy, so it can never be fooled by a client sending them.
cdef bint _proxy_on = False
cdef frozenset _PROXY_KEYS = frozenset([
    'HTTP_X_FORWARDED_FOR', 'HTTP_X_FORWARDED_PROTO', 'HTTP_X_FORWARDED_HOST',
    'HTTP_X_FORWARDED_PORT', 'HTTP_FORWARDED'])


# The environ is a copy of its mount's template (_Template): the base environ, the
# mount's extras and a placeholder for every key a request always sets, so filling it in
# replaces values in a dict that is already big enough (no rehash), by keys that are the
# module's interned constants (pointer compares). Request headers find their environ key in a
# table keyed by the name's bytes in any case (_HName, C only, no bytes object per header), and
# a header value that repeats from one request to the next (Host, User-Agent, Accept...) is
# the same str object again instead of a new one.

cdef enum:
    _HN_SLOTS = 512        # open addressing, a power of two
    _HN_MAX_NAMES = 256    # names kept (the table at most half full); others: _hn_scratch
    _HN_MAX_LEN = 64       # longer names take the slow path
    _HV_MAX_LEN = 256      # values up to this length are kept for reuse

    HN_PROXY = 1           # a forwarding header: from a trusted proxy only, with --trust-proxy
    HN_SINGLE = 2          # CONTENT_TYPE / CONTENT_LENGTH: a repeat replaces, never joins
    HN_COOKIE = 4          # repeats joined with '; ' (RFC 6265 5.4), others with ', '
    HN_HOST = 8            # HTTP_HOST

cdef struct _HName:
    uint32_t hash
    uint32_t len           # 0: a free slot
    char lower[64]         # the name in lower case (_HN_MAX_LEN)
    PyObject *key          # its environ key (an interned str, referenced); NULL: dropped
    PyObject *value        # the last value seen (referenced), or NULL
    int flags

cdef _HName _hnames[512]   # _HN_SLOTS
cdef int _hnames_count = 0
cdef _HName _hn_scratch    # a name not kept in the table, filled at each use

cdef extern from "Python.h":
    void Py_INCREF(object)
    void Py_XDECREF(PyObject *)
    PyObject *PyDict_SetDefault(object, object, object) except NULL   # borrowed
    Py_ssize_t PyDict_GET_SIZE(object)
    dict PyDict_Copy(object)


cdef int _hn_fill(_HName *e, const char *name, uint32_t n) except -1:
    """Fill e with the environ key and flags of a request header name.  Names with '_' are
    dropped, as Apache 2.4 does, so that `X_Forwarded_For` cannot pose as `X-Forwarded-For`
    in the environ."""
    raw = PyBytes_FromStringAndSize(name, n)
    key = None
    if b'_' not in raw:
        up = raw.decode('latin-1').upper().replace('-', '_')
        key = sys.intern(up if up in ('CONTENT_TYPE', 'CONTENT_LENGTH') else 'HTTP_' + up)
    e.flags = ((HN_PROXY if key in _PROXY_KEYS else 0)
               | (HN_SINGLE if key in ('CONTENT_TYPE', 'CONTENT_LENGTH') else 0)
               | (HN_COOKIE if key == 'HTTP_COOKIE' else 0)
               | (HN_HOST if key == 'HTTP_HOST' else 0))
    Py_XDECREF(e.key)
    Py_XDECREF(e.value)
    e.key = e.value = NULL
    if key is not None:
        Py_INCREF(key)
        e.key = <PyObject *>key
    return 0


cdef _HName *_header_name(const char *name, uint32_t n) except NULL:
    """The table entry of a request header name (ASCII, as the parser admits only tokens)."""
    global _hnames_count
    cdef uint32_t h = 2166136261u, i, slot
    cdef unsigned char ch
    cdef char low[64]
    cdef _HName *e
    if 0 < n <= _HN_MAX_LEN:
        for i in range(n):  # FNV-1a over the lower-cased name
            ch = <unsigned char>name[i]
            if 65 <= ch <= 90:
                ch += 32
            low[i] = <char>ch
            h = (h ^ ch) * 16777619u
        slot = h & (_HN_SLOTS - 1)
        while True:
            e = &_hnames[slot]
            if e.len == 0:
                break
            if e.hash == h and e.len == n and memcmp(e.lower, low, n) == 0:
                return e
            slot = (slot + 1) & (_HN_SLOTS - 1)
        if _hnames_count < _HN_MAX_NAMES:
            _hn_fill(e, low, n)
            memcpy(e.lower, low, n)
            e.hash = h
            e.len = n
            _hnames_count += 1
            return e
    _hn_fill(&_hn_scratch, name, n)
    return &_hn_scratch


cdef inline object _header_value(_HName *e, const char *p, Py_ssize_t n):
    """The value as latin-1 str: the entry's last one when the bytes are the same."""
    cdef PyObject *last = e.value
    if (last != NULL and PyUnicode_GET_LENGTH(<object>last) == n
            and memcmp(PyUnicode_DATA(<object>last), p, n) == 0):
        return <object>last
    value = _latin1(p, n)
    if n <= _HV_MAX_LEN and e != &_hn_scratch:
        Py_INCREF(value)
        Py_XDECREF(last)
        e.value = <PyObject *>value
    return value


# REMOTE_ADDR and REMOTE_PORT: the str of the last client address, and of recent ports.
cdef char _last_peer[64]
cdef str _last_peer_str = None
cdef PyObject *_port_strs[256]
cdef int _port_nums[256]


cdef str _remote_addr(pw_conn *c):
    global _last_peer_str
    if _last_peer_str is not None and strcmp(c.peer_host, _last_peer) == 0:
        return _last_peer_str
    text = _peer(c)
    memcpy(_last_peer, c.peer_host, sizeof(_last_peer))
    _last_peer_str = text
    return text


cdef str _port_str(int port):
    """str(port), without formatting a Python int (ports repeat: a cache by the low bits)."""
    cdef int slot = port & 255, n = 0
    cdef char digits[16]
    cdef unsigned int v = <unsigned int>port if port >= 0 else 0
    if port < 0:
        return str(port)
    if _port_strs[slot] != NULL and _port_nums[slot] == port:
        return <str>_port_strs[slot]
    while True:
        digits[15 - n] = <char>(48 + v % 10)
        n += 1
        v //= 10
        if v == 0:
            break
    text = _latin1(digits + 16 - n, n)
    Py_INCREF(text)
    Py_XDECREF(_port_strs[slot])
    _port_strs[slot] = <PyObject *>text
    _port_nums[slot] = port
    return text


cdef inline bint _latin1_digit(Py_UCS4 ch) noexcept:
    # str.isdigit() over latin-1: the ASCII digits and the superscripts two, three and one
    return 48 <= ch <= 57 or ch == 0xB2 or ch == 0xB3 or ch == 0xB9


cdef str _last_server_name = None   # the last SERVER_NAME / SERVER_PORT cut out of a host
cdef str _last_server_port = None


cdef inline str _reuse(str last, str text, Py_ssize_t start, Py_ssize_t end):
    """text[start:end], or last when that is the same characters (no new object)."""
    cdef Py_ssize_t n = end - start
    if (last is not None and PyUnicode_GET_LENGTH(last) == n
            and PyUnicode_KIND(last) == PyUnicode_1BYTE_KIND
            and memcmp(PyUnicode_DATA(last), <char *>PyUnicode_DATA(text) + start, n) == 0):
        return last
    return text[start:end]


cdef inline Py_ssize_t _host_name_end(const unsigned char *p, Py_ssize_t n) noexcept:
    """Where the name of a host[:port] ends: after the ']' of a bracketed IPv6 literal (0 when
    it is not closed), else at the first ':' or the end."""
    cdef Py_ssize_t i
    if p[0] == 91:  # '['
        for i in range(n):
            if p[i] == 93:  # ']'
                return i + 1
        return 0
    for i in range(n):
        if p[i] == 58:  # ':'
            return i
    return n


cdef str _server_name_of(str host):
    """SERVER_NAME for a (non-empty) host[:port]."""
    global _last_server_name
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(host), end
    if PyUnicode_KIND(host) != PyUnicode_1BYTE_KIND:  # not from a request: a mount's extras
        return host[:host.find(']') + 1] if host.startswith('[') else host.partition(':')[0]
    end = _host_name_end(<const unsigned char *>PyUnicode_DATA(host), n)
    if end == n:
        return host
    _last_server_name = _reuse(_last_server_name, host, 0, end)
    return _last_server_name


cdef object _server_port_of(str host):
    """SERVER_PORT for a (non-empty) host[:port]: the port when it is all digits, else None."""
    global _last_server_port
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(host), end, i
    cdef const unsigned char *p
    if PyUnicode_KIND(host) != PyUnicode_1BYTE_KIND:
        if host.startswith('['):
            rest = host[host.find(']') + 1:]
        else:
            _, sep, rest = host.partition(':')
            rest = sep + rest
        return rest[1:] if rest.startswith(':') and rest[1:].isdigit() else None
    p = <const unsigned char *>PyUnicode_DATA(host)
    end = _host_name_end(p, n)
    if not (end + 1 < n and p[end] == 58):
        return None
    for i in range(end + 1, n):
        if not _latin1_digit(p[i]):
            return None
    _last_server_port = _reuse(_last_server_port, host, end + 1, n)
    return _last_server_port


cdef bint _host_has_port(host):
    # RFC 3986 3.2.3: an empty port ("example.org:") is the scheme's default port
    if not host:
        return False
    after_ip6 = host.rpartition(']')[2]
    return ':' in after_ip6 and not after_ip6.endswith(':')


# The keys every request sets, in the order the environ lists them (after the mount's).
cdef tuple _REQUEST_KEYS = ('REQUEST_METHOD', 'SCRIPT_NAME', 'PATH_INFO', 'QUERY_STRING',
                            'REQUEST_URI', 'SERVER_PROTOCOL', 'REMOTE_ADDR', 'REMOTE_PORT',
                            'wsgi.input', 'wsgi.errors')


cdef object _errors = None   # wsgi.errors (pywsgi.errorlog.ErrorStream), made by _apply_mode


cdef class _Template:
    """A mount's environ before a request's values: the base environ, the mount's extras and a
    placeholder for every key a request sets, holding what most requests give it (SCRIPT_NAME
    is the mount's, GET, HTTP/1.1, no query, the process's wsgi.errors).  SERVER_NAME,
    SERVER_PORT and REMOTE_ADDR hold the last request's values (the same str objects as long
    as they repeat: _header_value, _remote_addr): a request whose value is that one sets
    nothing, one with another value sets it here too."""
    cdef dict environ
    cdef object server_name, server_port, remote_addr   # what environ holds for them now
    cdef object default_name, default_port   # the mount's own: a request without a host
    cdef object remote_port                  # the mount's REMOTE_PORT, if any (None: none)
    cdef bint has_host                       # the mount's extras have an HTTP_HOST

    def __init__(self, _Mount mount):
        cdef dict environ = {}
        for key, value in mount.environ.items():
            environ[key] = value
        for key in _REQUEST_KEYS:
            environ[key] = None
        environ['REQUEST_METHOD'] = 'GET'
        environ['SCRIPT_NAME'] = mount.prefix
        environ['QUERY_STRING'] = ''
        environ['SERVER_PROTOCOL'] = 'HTTP/1.1'
        environ['wsgi.errors'] = _errors
        self.environ = environ
        self.server_name = self.default_name = environ['SERVER_NAME']
        self.server_port = self.default_port = environ['SERVER_PORT']
        self.remote_addr = None
        self.remote_port = mount.environ.get('REMOTE_PORT')
        self.has_host = 'HTTP_HOST' in mount.environ


cdef dict _environ(pw_conn *c, Request req, _Mount mount, str path):
    cdef pw_request *r = &c.req
    cdef const char *buf = c.buf
    cdef const char *method = buf + r.method.off
    cdef pw_header *h
    cdef uint32_t i
    cdef _HName *e
    cdef Py_ssize_t size
    cdef PyObject *existing
    cdef _Template template = mount.template
    if template is None:
        template = mount.template = _Template(mount)
    # The sticky values as this copy has them (another thread may change the template's while
    # this one runs Python code: a finalizer run by the garbage collector can switch threads).
    cdef object copied_name = template.server_name, copied_port = template.server_port
    cdef object copied_addr = template.remote_addr
    cdef dict env = PyDict_Copy(template.environ)
    if not (r.method.len == 3 and method[0] == b'G' and method[1] == b'E' and method[2] == b'T'):
        env['REQUEST_METHOD'] = _method_str(method, r.method.len)
    env['PATH_INFO'] = path if mount.plen == 0 else path[mount.plen:]
    if r.has_query:
        env['QUERY_STRING'] = _latin1(buf + r.query.off, r.query.len)
    if (r.target.off == r.path.off and r.target.len == r.path.len
            and PyUnicode_GET_LENGTH(path) == r.path.len):
        # the target is the path, and decoding it changed nothing (each escape decoded and
        # each dot segment removed would have made it shorter): the same text
        env['REQUEST_URI'] = path
    else:
        env['REQUEST_URI'] = _latin1(buf + r.target.off, r.target.len)
    if r.version_minor < 1:
        env['SERVER_PROTOCOL'] = 'HTTP/1.0'
    addr = _remote_addr(c)   # '' for a UNIX-socket client, as gunicorn gives it
    if addr is not copied_addr:
        env['REMOTE_ADDR'] = template.environ['REMOTE_ADDR'] = template.remote_addr = addr
    # none for a UNIX-socket client, nor when a trusted proxy named the client without a port
    if c.peer_host[0] and (c.peer_port or not c.proxy_trusted):
        env['REMOTE_PORT'] = _port_str(c.peer_port)
    elif template.remote_port is not None:
        env['REMOTE_PORT'] = template.remote_port
    else:
        del env['REMOTE_PORT']
    stream = InputStream()
    stream.conn = c
    req.input = stream
    env['wsgi.input'] = stream
    host = None
    for i in range(r.num_headers):
        h = &r.headers[i]
        e = _header_name(buf + h.name.off, h.name.len)
        if e.key == NULL:
            continue
        if _proxy_on and not c.proxy_trusted and (e.flags & HN_PROXY):
            continue
        value = _header_value(e, buf + h.value.off, h.value.len)
        size = PyDict_GET_SIZE(env)
        existing = PyDict_SetDefault(env, <object>e.key, value)
        if PyDict_GET_SIZE(env) == size:  # a repeated header (or a key of the mount's)
            if not e.flags & HN_SINGLE:
                value = <object>existing + ('; ' if e.flags & HN_COOKIE else ', ') + value
            env[<object>e.key] = value
        if e.flags & HN_HOST:
            host = value
    if r.authority.len:
        # RFC 9112 3.2.2: with an absolute-form target the host comes from the target.
        host = env['HTTP_HOST'] = _latin1(buf + r.authority.off, r.authority.len)
    if c.fwd_host_len:  # X-Forwarded-Host / Forwarded host= from a trusted proxy
        host = env['HTTP_HOST'] = _latin1(buf + c.fwd_host_off, c.fwd_host_len)
    if host is None and template.has_host:
        host = env['HTTP_HOST']
    name = template.default_name
    port = template.default_port
    if host:
        name = _server_name_of(host)
        port = _server_port_of(host) or port
    if c.fwd_https >= 0:  # X-Forwarded-Proto / Forwarded proto= / PROXY v2 SSL, trusted
        env['wsgi.url_scheme'] = 'https' if c.fwd_https else 'http'
        if c.fwd_https:
            env['HTTPS'] = 'on'
        else:
            env.pop('HTTPS', None)
        if not _host_has_port(host):
            port = '443' if c.fwd_https else '80'
    if c.fwd_server_port:
        port = _port_str(c.fwd_server_port)
    if name is not copied_name:
        env['SERVER_NAME'] = template.environ['SERVER_NAME'] = template.server_name = name
    if port is not copied_port:
        env['SERVER_PORT'] = template.environ['SERVER_PORT'] = template.server_port = port
    if _ssl_environ:
        _add_ssl_environ(c, env)
    return env


cdef str _method_str(const char *p, uint32_t n):
    """REQUEST_METHOD: the usual methods as constants, others decoded."""
    if n == 4 and memcmp(p, b"POST", 4) == 0:
        return 'POST'
    if n == 4 and memcmp(p, b"HEAD", 4) == 0:
        return 'HEAD'
    if n == 3 and memcmp(p, b"PUT", 3) == 0:
        return 'PUT'
    if n == 6 and memcmp(p, b"DELETE", 6) == 0:
        return 'DELETE'
    if n == 7 and memcmp(p, b"OPTIONS", 7) == 0:
        return 'OPTIONS'
    if n == 5 and memcmp(p, b"PATCH", 5) == 0:
        return 'PATCH'
    return _latin1(p, n)


# What _serve_one did with the connection's request.
cdef enum:
    _CLOSE = 0
    _KEEP = 1
    _SUSPENDED = 2   # the client is slow: the response waits, the connection is the reactor's
    _HANDED = 3      # daemon mode: the reactor relays the rest of the response (a slow client)

# Responses held back by a slow client (pw_conn_suspend), by connection address: the reactor
# sends their pending output and queues the connection again (c.resuming) to continue here.
cdef dict _suspended = {}


cdef int _serve_one(pw_conn *c, int worker):
    """Serve the request whose head is in c, or continue its suspended response; return
    _KEEP, _CLOSE or _SUSPENDED.  worker: the caller's slot in _workers (>= _worker_slots:
    none)."""
    cdef Request req
    cdef pw_request *r = &c.req
    cdef _Mount mount = None
    cdef bint suspended = False
    cdef int vhost = 0
    cdef int slashes = _slashes
    if c.resuming:
        c.resuming = 0
        req = <Request>_suspended.pop(<Py_ssize_t>c)
    else:
        req = Request()
        req.vectorcall = <vectorcallfunc>_start_response_call
        req.conn = c
        req.is_head = (r.method.len == 4 and (c.buf + r.method.off)[0] == b'H'
                       and (c.buf + r.method.off)[1:4] == b'EAD')
        req.http10 = r.version_minor == 0
        req.keep_alive = r.keep_alive
        if _daemon_role and not c.one_shot:
            # A pooled relay connection outlives the client's: it is kept whenever the
            # response is self-delimited, whatever the client asked for its own connection.
            req.client_close = not r.keep_alive
            req.keep_alive = True
        req.content_length = -1
    try:
        if req.it is None:
            if _vhost_mounts:  # Apache: no matching name -> the first virtual host
                vhost = _vhost_names.get(_request_host(c), 0)
                slashes = <int>_vhost_slashes[vhost]
            path = _request_path(c, slashes)
            # The status URL as written (as the direct relay tests it, in C) and as decoded:
            # so the same requests reach it whether or not this process relays without the
            # GIL ('/server-status%2Fx' with --allow-encoded-slashes on is the application's).
            if _status_url is not None and type(path) is str and _is_status_target(c) and (
                    path == _status_url or (<str>path).startswith(_status_url + '/')):
                return _serve_status(c, req, <str>path)
            if type(path) is not str:
                mount = None
            elif _vhost_mounts:
                mount = _route_in(path, _vhost_mounts[vhost])
            else:
                mount = _route(path)
            if mount is None:
                status = path if type(path) is int else 404
                _log().info("%s:%d: %d for %s%s" % (
                    _peer(c), c.peer_port, status,
                    (c.buf + r.target.off)[:r.target.len].decode('latin-1'),
                    # _decode_path's only 404: Apache logs "found %2f (encoded '/') in URI path"
                    ": an encoded slash (%2F) in the path (see --allow-encoded-slashes)"
                    if type(path) is int and path == 404 else ''))
                _simple_response(c, req, status)
                return req.keep_alive
            req.mount = mount
            if mount.access is not None and not mount.access.allows(_peer(c)):
                _log().info("%s:%d: client denied by the access rules of %s: 403" % (
                    _peer(c), c.peer_port, mount.prefix or '/'))
                _simple_response(c, req, 403)
                return req.keep_alive
            if mount.static is not None:
                return _serve_static(c, req, mount.static,
                                     (<str>path)[mount.plen:].encode('latin-1'))
            if mount.daemon is not None:
                return _serve_daemon(c, mount)
            if _queue_timeout > 0 and c.enqueued_at > 0 and \
                    time.monotonic() - c.enqueued_at > _queue_timeout:
                _log().error("%s:%d: request waited longer than the queue timeout (%ss) for a "
                             "free daemon thread: 503" % (_peer(c), c.peer_port, _queue_timeout))
                req.keep_alive = False
                _simple_response(c, req, 503)
                return False
            req.env = _environ(c, req, mount, <str>path)
            if worker < _worker_slots:
                # until the finally below, --request-timeout may interrupt this request
                _workers[worker].environ = <PyObject *>req.env
            result = req.result = req.mount.app(req.env, req)
            if type(result) is FileWrapper and _try_sendfile(req, <FileWrapper>result):
                req.it = ()
            elif ((type(result) is list or type(result) is tuple) and len(result) == 1
                    and req.status is not None and not req.headers_sent
                    and type(result[0]) is bytes):
                # A one-element list or tuple is the whole body - unless write() already
                # sent part of it (PEP 3333: write() data, then every byte of the iterable).
                # Its block goes out as _pump's current one, with the head: no iteration.
                req.cur = result[0]
                req.cur_off = 0
                if req.content_length < 0:
                    req.content_length = PyBytes_GET_SIZE(req.cur)
                req.it = ()
            else:
                req.it = iter(result)
        elif req.env is not None and worker < _worker_slots:
            _workers[worker].environ = <PyObject *>req.env  # resumed: the iterable runs again
        if not req._pump():
            _suspended[<Py_ssize_t>c] = req
            suspended = True
            return _SUSPENDED
        if req.status is None:
            raise AssertionError("application returned without calling start_response()")
        req.finish()
    except ClientDisconnected as exc:
        _log().info("%s:%d: %s" % (_peer(c), c.peer_port, exc))
        req.keep_alive = False
    except RequestTimeout:
        # raised into this thread by serve()'s main loop, which logged the stack already
        req.keep_alive = False
        env = req.env
        what = "%s:%d: %s %s" % (_peer(c), c.peer_port,
                                 env.get('REQUEST_METHOD') if env else '?',
                                 env.get('REQUEST_URI') if env else '?')
        if not req.headers_sent:
            _log().error("%s: 504, interrupted after running longer than %s"
                         % (what, _timeout_setting))
            try:
                _simple_response(c, req, 504)
            except ClientDisconnected:
                pass
        else:
            _log().error("%s: interrupted after running longer than %s, after the response "
                         "started: connection closed" % (what, _timeout_setting))
    except BaseException as exc:
        env = req.env
        if c.body_error and not req.headers_sent and c.body_error != 499 and c.body_error != 500:
            req.keep_alive = False
            try:
                _simple_response(c, req, c.body_error)
            except ClientDisconnected:
                pass
        elif not req.headers_sent:
            _log().exception("exception in WSGI application %s (%s %s)" % (
                _app_name(req.mount), env.get('REQUEST_METHOD') if env else '?',
                env.get('REQUEST_URI') if env else '?'))
            req.keep_alive = False
            try:
                _simple_response(c, req, 500)
            except ClientDisconnected:
                pass
        else:
            _log().exception("exception in WSGI application %s (%s %s) after the response "
                             "started: connection closed" % (
                                 _app_name(req.mount), env.get('REQUEST_METHOD') if env else '?',
                                 env.get('REQUEST_URI') if env else '?'))
            req.keep_alive = False
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            _log().error("application raised %s; ignored" % type(exc).__name__)
    finally:
        if not suspended:
            result = req.result
            if result is not None and type(result) is not list and type(result) is not tuple:
                close = getattr(result, 'close', None)
                if close is not None:
                    try:
                        close()
                    except BaseException:
                        _log().exception("exception in close() of the application's result")
                        req.keep_alive = False
            if req.input is not None:
                req.input.conn = NULL
            if req.status_code:  # static files and relays record their own
                c.resp_status = req.status_code
                c.resp_bytes = req.body_sent
        if worker < _worker_slots and _workers[worker].environ != NULL:
            _workers[worker].environ = NULL
            if _workers[worker].interrupted:
                # RequestTimeout came too late to be raised (the thread ran no Python code
                # since): drop it, or it would go off in whatever Python code runs next.
                _workers[worker].interrupted = 0
                PyThreadState_SetAsyncExc(_workers[worker].thread, NULL)
        if not suspended:
            # The application's objects may refer back to req (a generator's frame holding
            # start_response): let go of them, so no reference cycle is left for the GC.
            req.env = req.result = req.it = req.cur = req.input = None
    return _KEEP if req.keep_alive else _CLOSE


cdef double _queue_timeout = 0    # daemon role: longest wait between relay and dispatch
cdef bint _daemon_role = False


cdef int _serve_daemon(pw_conn *c, _Mount mount) except -1:
    """Daemon mode, server side: relay the request to the mount's process group in C."""
    cdef pw_relay_target t
    cdef int status = 0
    cdef int keep
    cdef pw_sb_group *counters = _sb_group_of(mount.daemon)   # NULL without --server-status
    t.socket_path = mount.daemon_socket
    t.queue_timeout = mount.relay_queue_timeout
    t.response_timeout = mount.relay_response_timeout
    t.pool_slot = mount.pool_slot
    t.processes = mount.relay_processes
    with nogil:
        if counters != NULL:
            pw_sb_relay_start(counters)
        keep = pw_relay(_srv, c, &t, &status)
        if counters != NULL:
            pw_sb_relay_done(counters, status)
    return _HANDED if keep == PW_RELAY_HANDED else keep


cdef str _app_name(_Mount mount):
    if mount is None:
        return '?'
    return getattr(mount.app, '__qualname__', repr(mount.app))


cdef bint _try_sendfile(Request req, FileWrapper wrapper) except -1:
    """Send a regular file with sendfile(); False when it must be iterated instead."""
    if req.status is None or (req.headers_sent and req.chunked):
        return False  # after write() in a chunked body the file goes out in framed blocks
    try:
        fd = wrapper.filelike.fileno()
        st = os.fstat(fd)
    except (AttributeError, OSError, ValueError):
        return False
    if not stat.S_ISREG(st.st_mode):
        return False
    try:
        offset = wrapper.filelike.tell()
    except (AttributeError, OSError, ValueError):
        offset = 0
    count = max(st.st_size - offset, 0)
    if req.content_length >= 0:
        count = min(count, max(req.content_length - req.body_sent, 0))
    elif not req.headers_sent:
        req.content_length = count
    req._send_file(fd, offset, count)
    return True


include "_static.pxi"
include "_status.pxi"
include "_tls.pxi"
include "_probes.pxi"


# ------------------------------------------------------------------------ threads

cdef long long _served = 0          # requests served by this process (the GIL guards it)
cdef long long _recycle_after = 0   # --maximum-requests with jitter; 0 = never

# Recycling and request-timeout bookkeeping (--request-timeout; daemon groups: request-timeout,
# inactivity-timeout; docs/daemon-mode.md).  The per-request cost is a timestamp store per
# worker (and the environ's address while an application runs); serve()'s main loop, in the
# main thread, reads them every 0.1 s (_RecycleLimits.check).  Every field is written and read
# with the GIL held.
cdef struct _Worker:
    double since            # when its current request started; 0: idle
    double interrupted      # the `since` of the request RequestTimeout was raised into; 0: none
    unsigned long thread    # its thread's ident: for its stack and PyThreadState_SetAsyncExc
    PyObject *environ       # while it runs an application: that request's environ (borrowed)

cdef _Worker *_workers = NULL       # one per worker thread (inline mode: the reactor thread)
cdef int _worker_slots = 0
cdef double _last_request = 0       # when a request last started or ended; 0: none yet
cdef str _timeout_setting = '--request-timeout'   # as the 504's log line names it
cdef bint _recycling = False        # the stop under way is a recycle (config.on_recycle)

cdef extern from "Python.h":
    int PyThreadState_SetAsyncExc(unsigned long thread, PyObject *exc)
    unsigned long PyThread_get_thread_ident() nogil


cdef inline double _now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + ts.tv_nsec * 1e-9


cdef void _serve_conn(pw_conn *c, int worker):
    """Serve the connection's request(s) - more than one when they were pipelined - and hand
    it back (pw_conn_release), after which c belongs to the reactor again."""
    global _served, _last_request, _recycling
    cdef int again = 1
    cdef int keep
    while again:
        if worker < _worker_slots:
            _last_request = _workers[worker].since = _now()
        try:
            keep = _serve_one(c, worker)
        except BaseException:
            _log().exception("internal error while serving a request")
            keep = _CLOSE
        if worker < _worker_slots:
            _workers[worker].since = 0
            _last_request = _now()
        if keep == _SUSPENDED:
            # The client is not keeping up: the reactor sends what is pending and gives the
            # connection back (to any worker) to continue; this thread is free meanwhile.
            with nogil:
                pw_conn_suspend(_srv, c)
            return
        if keep == _HANDED:
            return  # the reactor relays the rest and ends the request
        _served += 1
        if _recycle_after and _served == _recycle_after:
            # Like mod_wsgi's maximum-requests: stop accepting, finish, exit; the master
            # starts a fresh process.
            _log().info("served %d requests (--maximum-requests): recycling this process"
                        % _served)
            keep = False
            _recycling = True
            stop(True)
        if pw_conn_release_may_wait(c):
            with nogil:
                again = pw_conn_release(_srv, c, keep)
        else:
            again = pw_conn_release(_srv, c, keep)  # no blocking call: the GIL stays


# How long queued requests wait for a serving worker to come back before sleeping workers are
# woken for them (when every worker is busy in the app for that long: a slow request, I/O).
cdef double LAZY_WAKE = 0.001


# ------------------------------------------------------------------------ modes
# How a server (or daemon) process runs its requests: one mode, chosen once from --threads and
# what the mounts are (_choose_mode), and set up in one place (_apply_mode).  The table in
# docs/ARCHITECTURE.md ("Modes") is this one:
#
#   mode      when                              threads                     the reactor
#   INLINE    --threads 1                       none: the reactor thread    its own thread, which
#                                               runs each request itself     also runs the app
#                                               (cfg.dispatch)
#   LEADER    --threads > 1, no daemon mount    Python workers, woken       no thread: the idle
#             (every daemon process too)        lazily (cfg.lazy_wake)      workers take turns
#                                                                           polling (leader_pop)
#   RELAY     every mount is one daemon group   relay threads (no GIL) for  its own thread; relays
#             (the server process of --daemon)  requests with a body        body-less requests
#                                                                           itself (relay_async.c)
#   WORKERS   daemon groups beside other        workers woken at once (one  its own thread
#             mounts                            may wait on a daemon)
cdef enum:
    MODE_INLINE = 0
    MODE_LEADER = 1
    MODE_RELAY = 2
    MODE_WORKERS = 3


cdef int _choose_mode(int threads, list mounts):
    if threads == 1:
        return MODE_INLINE
    if all((<_Mount>m).daemon is None for m in mounts):
        return MODE_LEADER
    if _direct_relay:
        return MODE_RELAY
    return MODE_WORKERS


cdef _apply_mode(pw_config *cfg, int mode, list mounts):
    global _errors
    cfg.dispatch = NULL
    cfg.thread_start = NULL
    cfg.thread_stop = NULL
    cfg.turn_done = NULL
    cfg.relay_async = NULL
    cfg.relay_counters = NULL
    cfg.lazy_wake = 0.0
    cfg.leader_follower = 0
    # wsgi.errors: one stream for every thread (it keeps a partial line per thread), so the
    # environ template holds it
    _errors = _log().ErrorStream()
    if mode == MODE_INLINE:
        cfg.dispatch = _inline_dispatch
        cfg.thread_start = _reactor_thread_start
        cfg.thread_stop = _reactor_thread_stop
        cfg.turn_done = _inline_turn_done
    elif mode == MODE_LEADER:
        # One GIL runs one request at a time anyway: a worker is woken for a queued request
        # only when none is serving or the queue stalls (reactor.h, lazy_wake); and with no
        # reactor thread a request reaching an idle process wakes one thread, not two.
        cfg.lazy_wake = LAZY_WAKE
        cfg.leader_follower = 1
    elif mode == MODE_RELAY:
        # The reactor relays body-less requests itself, without a relay thread (the status URL
        # is left to a worker: it is answered here, with the GIL); at most two per daemon
        # thread in flight, the rest wait in the reactor.
        group = (<_Mount>mounts[0]).daemon
        cfg.relay_async = &_direct_target
        cfg.relay_counters = _direct_group
        cfg.relay_async_limit = max(1, 2 * int(getattr(group, 'processes', 1) or 1)
                                    * int(getattr(group, 'threads', 1) or 1))


# Daemon mode with nothing but one group's mounts (the usual shape): a server process relays
# every request without taking the GIL at all - the daemons route, check and answer.
cdef bint _direct_relay = False
cdef pw_relay_target _direct_target
cdef bytes _direct_socket = None


cdef pw_conn *_relay_conn(pw_conn *c) noexcept nogil:
    """Relay c's request(s); returns NULL when done, or c when its next request is for the
    status URL (answered by this process, with the GIL, in _serve_conn)."""
    cdef int again = 1, keep, status
    while again:
        if _status_url_n and _is_status_target(c):
            return c
        if _direct_group != NULL:
            pw_sb_relay_start(_direct_group)
        keep = pw_relay(_srv, c, &_direct_target, &status)
        if _direct_group != NULL:
            pw_sb_relay_done(_direct_group, status)
        if keep == PW_RELAY_HANDED:
            return NULL  # the reactor relays the rest (a slow client) and ends the request
        again = pw_conn_release(_srv, c, keep)
    return NULL


def _worker_main(int index):
    cdef pw_conn *c
    if index < _worker_slots:
        _workers[index].thread = PyThread_get_thread_ident()
    while True:
        # a request the last reactor turn queued beside the one just served: taken with the
        # GIL held (relay threads never hold it)
        c = NULL if _direct_relay else pw_queue_try_pop(_srv)  # (its time starts there)
        if c == NULL:
            with nogil:
                c = pw_queue_pop(_srv)
                while c != NULL and _direct_relay:
                    if _relay_conn(c) != NULL:
                        break  # the status URL: served below, with the GIL
                    c = pw_queue_pop(_srv)
            if c == NULL:
                return
            pw_queue_serving(c)  # the request's time starts now, any wait for the GIL done
        _serve_conn(c, index)


# Inline mode (--threads 1): the reactor thread itself runs each request, so no thread
# hand-off per request.  The reactor thread gets one Python thread state for its lifetime
# (made in _reactor_thread_start), so taking the GIL per request is cheap.
cdef extern from "Python.h":
    ctypedef int PyGILState_STATE
    ctypedef struct PyThreadState
    PyGILState_STATE PyGILState_Ensure() nogil
    void PyGILState_Release(PyGILState_STATE) nogil
    PyThreadState *PyEval_SaveThread() nogil
    void PyEval_RestoreThread(PyThreadState *) nogil

cdef PyGILState_STATE _reactor_gil_state
cdef PyThreadState *_reactor_tstate = NULL


cdef void _reactor_thread_start() noexcept nogil:
    global _reactor_gil_state, _reactor_tstate
    _reactor_gil_state = PyGILState_Ensure()
    if _worker_slots > 0:
        _workers[0].thread = PyThread_get_thread_ident()  # it runs the requests (worker 0)
    _reactor_tstate = PyEval_SaveThread()


cdef void _reactor_thread_stop() noexcept nogil:
    PyEval_RestoreThread(_reactor_tstate)
    PyGILState_Release(_reactor_gil_state)


# The reactor thread takes the GIL at the first request of a reactor turn and lets it go when
# the turn is done (_inline_turn_done), not per request: a turn that read several requests
# serves them with one hand-over.
cdef bint _inline_has_gil = False


cdef void _inline_dispatch(pw_server *s, pw_conn *c) noexcept nogil:
    global _inline_has_gil
    if not _inline_has_gil:
        PyEval_RestoreThread(_reactor_tstate)
        _inline_has_gil = True
    with gil:  # held already: PyGILState_Ensure only counts
        _serve_conn(c, 0)


cdef void _inline_turn_done() noexcept nogil:
    global _reactor_tstate, _inline_has_gil
    if _inline_has_gil:
        _inline_has_gil = False
        _reactor_tstate = PyEval_SaveThread()


cdef int _level(str name):
    return {'error': PW_LOG_ERROR, 'critical': PW_LOG_ERROR, 'crit': PW_LOG_ERROR, 'warning': PW_LOG_WARNING,
            'warn': PW_LOG_WARNING, 'info': PW_LOG_INFO, 'debug': PW_LOG_DEBUG}.get(
                (name or 'info').lower(), PW_LOG_INFO)


cdef pw_access_log *_access_log = NULL
cdef object _access_log_path = None


cdef int _access_log_fd(path) except -1:
    if path == '-':
        return os.dup(1)
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)


cdef pw_access_log *_open_access_log(config) except NULL:
    global _access_log, _access_log_path
    cdef char err[256]
    path = config.access_log
    fmt = (config.access_log_format or PW_LOG_COMBINED.decode()).encode('latin-1')
    fd = config.access_log_fd   # opened as root before --user took effect
    fd = _access_log_fd(path) if fd is None else fd
    log = pw_access_log_new(fd, fmt, err, sizeof(err))
    if log == NULL:
        os.close(fd)
        raise ValueError(err.decode('utf-8', 'replace'))
    _access_log = log
    _access_log_path = path
    return log


def reopen_logs():
    """Reopen the access log file (SIGUSR1, for logrotate)."""
    if _access_log != NULL and _access_log_path not in (None, '-'):
        pw_access_log_set_fd(_access_log, _access_log_fd(_access_log_path))


def set_parent_death_signal(int sig):
    """prctl(PR_SET_PDEATHSIG) (csrc/process.h): True when the kernel took it."""
    return pw_set_parent_death_signal(sig) == 0


def set_process_title(title):
    """What ps and top show for this process (csrc/process.h); best effort."""
    pw_set_process_title(title.encode('utf-8', 'replace'))


def check_access_log_format(fmt):
    """Raise ValueError naming the problem when fmt is not a supported LogFormat."""
    cdef char err[256]
    cdef pw_access_log *log = pw_access_log_new(-1, fmt.encode('latin-1'), err, sizeof(err))
    if log == NULL:
        raise ValueError(err.decode('utf-8', 'replace'))
    pw_access_log_free(log)


def stop(graceful=True):
    """Ask serve() to return: gracefully (finish in-flight requests) or at once."""
    global _stop_requested, _stop_graceful
    _stop_graceful = bool(graceful) and _stop_graceful
    _stop_requested = True
    _scoreboard_stopping()
    if _srv != NULL:
        pw_server_stop_accepting(_srv)


cdef _configure_proxies(pw_config *cfg, config):
    """--trust-proxy, --trust-proxy-header, --proxy-protocol into the reactor's config."""
    global _proxy_on
    cfg.trust.count = 0
    cfg.trust.unix_peers = 0
    cfg.trust.headers = 0
    cfg.proxy_protocol = 0
    for item in config.trust_proxy:
        rc = pw_trust_add(&cfg.trust, str(item).encode('latin-1'))
        if rc == -2:
            raise ValueError("--trust-proxy: at most 64 networks")
        if rc != 0:
            raise ValueError("--trust-proxy: not an address or CIDR network: %r" % (item,))
    _proxy_on = cfg.trust.count > 0 or cfg.trust.unix_peers != 0
    if not _proxy_on:
        return
    bits = {'x-forwarded-for': PW_FWD_XFF, 'x-forwarded-proto': PW_FWD_PROTO,
            'x-forwarded-host': PW_FWD_HOST, 'x-forwarded-port': PW_FWD_PORT,
            'forwarded': PW_FWD_FORWARDED}
    for name in config.trust_proxy_header:
        if name.lower() != 'none':
            cfg.trust.headers |= bits[name.lower()]
    cfg.proxy_protocol = 1 if config.proxy_protocol else 0


def serve(listen_fds, mounts, config):
    """Serve on the listening sockets `listen_fds` until stop(); see docs/ARCHITECTURE.md.
    mounts: pywsgi.site.mounts.LoadedMount; config: a pywsgi.process.core_config.CoreConfig,
    every value read here (no defaults here)."""
    global _srv, _mounts, _base_environ, _server_software, _stop_requested, _stop_graceful
    global _recycling
    cdef pw_config cfg
    cdef char err[256]
    cdef pw_server *srv
    if _srv != NULL:
        raise RuntimeError("serve() is already running in this process")
    if not listen_fds or len(listen_fds) > PW_MAX_LISTEN:
        raise ValueError("serve() needs 1 to %d listening sockets" % PW_MAX_LISTEN)
    threads = config.threads
    if threads < 1:
        raise ValueError("threads must be at least 1")
    memset(&cfg, 0, sizeof(cfg))
    pw_log_set_fd(_log().fileno())   # the core's own lines go to the error log too
    cfg.num_listen = len(listen_fds)
    for i, fd in enumerate(listen_fds):
        cfg.listen_fds[i] = fd
    cfg.keep_alive_timeout = config.keep_alive_timeout
    cfg.header_timeout = config.header_timeout
    cfg.header_max_timeout = config.header_max_timeout
    cfg.header_min_rate = config.header_min_rate
    if cfg.header_max_timeout < cfg.header_timeout:
        cfg.header_max_timeout = cfg.header_timeout
    cfg.body_timeout = config.body_timeout
    cfg.body_buffer_size = config.body_buffer_size
    cfg.socket_timeout = config.socket_timeout
    cfg.send_min_rate = config.send_min_rate
    global _out_high, _out_low
    _out_high = max(4096, config.send_buffer_size)
    _out_low = _out_high // 4
    cfg.out_high = _out_high
    cfg.out_low = _out_low
    cfg.limit_request_body = config.limit_request_body
    cfg.max_clients = config.max_clients
    global _queue_timeout
    cfg.daemon_role = 1 if config.daemon_role else 0
    _queue_timeout = config.queue_timeout if cfg.daemon_role else 0
    global _daemon_role
    _daemon_role = cfg.daemon_role
    if _daemon_role:
        # Idle connections here are the relay's pool, not clients: no reason to drop them soon.
        cfg.keep_alive_timeout = max(cfg.keep_alive_timeout, 300.0)
    # With sibling processes, a child whose workers are all busy leaves new connections to them.
    cfg.accept_busy_limit = threads if config.processes > 1 else 0
    cfg.log_level = _level(config.log_level)
    _configure_proxies(&cfg, config)
    _configure_tls(&cfg, listen_fds, config)
    pw_limits_default(&cfg.limits)
    cfg.limits.max_request_line = config.limit_request_line
    cfg.limits.max_fields = config.limit_request_fields
    cfg.limits.max_field_size = config.limit_request_field_size
    cfg.limits.max_head_size = config.limit_request_head

    _server_software = config.server_software
    global _recycle_after, _served
    _served = 0
    _recycle_after = config.maximum_requests
    if _recycle_after:
        import random
        _recycle_after += random.randint(0, _recycle_after // 10)
    global _server_line
    _server_line = ('Server: %s\r\n' % ''.join(
        ch for ch in _server_software[:200] if 32 <= ord(ch) < 127)).encode('ascii')
    _head_cache.clear()
    processes = config.processes
    _base_environ = {
        'SERVER_NAME': config.server_name,
        'SERVER_PORT': str(config.port),
        'SERVER_SOFTWARE': _server_software,
        'GATEWAY_INTERFACE': 'CGI/1.1',
        'wsgi.version': (1, 0),
        'wsgi.url_scheme': config.url_scheme,
        'wsgi.multithread': threads > 1,
        'wsgi.multiprocess': processes > 1,
        'wsgi.run_once': False,
        'wsgi.input_terminated': True,
        'wsgi.file_wrapper': FileWrapper,
        'pywsgi.process_index': config.process_index,
    }
    ms = [_Mount(mount) for mount in mounts]
    ms.sort(key=lambda m: -(<_Mount>m).plen)
    _mounts = ms
    global _vhost_mounts, _vhost_names, _slashes, _vhost_slashes
    _slashes = _slash_mode(config.allow_encoded_slashes)
    _vhost_mounts = []
    _vhost_names = {}
    _vhost_slashes = []
    for m in ms:
        if (<_Mount>m).vhost < 0:
            continue
        while len(_vhost_mounts) <= (<_Mount>m).vhost:
            _vhost_mounts.append([])
            _vhost_slashes.append(_slashes)
        _vhost_mounts[(<_Mount>m).vhost].append(m)
        if (<_Mount>m).slashes >= 0:
            _vhost_slashes[(<_Mount>m).vhost] = (<_Mount>m).slashes
        for name in (<_Mount>m).vhost_names:
            _vhost_names.setdefault(name, (<_Mount>m).vhost)
    global _direct_relay, _direct_socket
    groups = {id((<_Mount>m).daemon) for m in ms}
    _direct_relay = (not config.daemon_role and len(groups) == 1
                     and all((<_Mount>m).daemon is not None and (<_Mount>m).access is None
                             for m in ms))
    if _direct_relay:
        _direct_socket = (<_Mount>ms[0]).daemon_socket
        _direct_target.socket_path = _direct_socket
        _direct_target.queue_timeout = (<_Mount>ms[0]).relay_queue_timeout
        _direct_target.response_timeout = (<_Mount>ms[0]).relay_response_timeout
        _direct_target.pool_slot = (<_Mount>ms[0]).pool_slot
        _direct_target.processes = (<_Mount>ms[0]).relay_processes

    global _direct_group
    cfg.scoreboard = _scoreboard_enter(config, threads)
    _direct_group = _sb_group_of((<_Mount>ms[0]).daemon) if _direct_relay else NULL
    cfg.status_url = _status_url_c if _status_url_n else NULL
    cfg.status_url_len = _status_url_n
    _configure_probes(&cfg, config, ms)
    mode = _choose_mode(threads, ms)
    inline = mode == MODE_INLINE
    _apply_mode(&cfg, mode, ms)
    # before the first request can arrive: the workers record into its slots
    recycling = _RecycleLimits(config.recycle, threads)
    cfg.access_log = NULL
    if config.access_log:   # never in daemon role: the server process logs relayed requests
        cfg.access_log = _open_access_log(config)
    srv = pw_server_new(&cfg, err, sizeof(err))
    if srv == NULL:
        raise OSError(err.decode('utf-8', 'replace'))
    _srv = srv
    if pw_server_start(srv) != 0:
        _srv = NULL
        pw_server_free(srv)
        raise OSError("could not start the reactor thread")
    workers = []
    for i in range(0 if inline else threads):
        t = threading.Thread(target=_worker_main, args=(i,), name='pywsgi-worker-%d' % i,
                             daemon=True)
        t.start()
        workers.append(t)
    graceful_timeout = config.graceful_timeout
    try:
        while not _stop_requested:
            time.sleep(0.1)
            # A signal the kernel delivered to the reactor or a worker thread only marks
            # Python's handler as due; it runs in this (main) thread at the next check, and
            # compiled code never checks by itself: without this a SIGTERM could go unheeded
            # until the master SIGKILLs the process (graceful restart under load).
            PyErr_CheckSignals()
            if recycling.active:
                reason = recycling.check()
                if reason is not None:
                    # the maximum-requests path: stop accepting, finish, exit; the master
                    # starts a fresh process (docs/daemon-mode.md, "Recycling")
                    graceful_timeout = recycling.policy.grace
                    _log().info("recycling this process: %s (in-flight requests get %gs)"
                                % (reason, graceful_timeout))
                    _recycling = True
                    stop(True)
                elif (recycling.policy.watch is not None
                      and recycling.policy.files_check_due()):
                    reason = recycling.policy.watch.check_files()
                    if reason is not None:
                        if config.on_reload is not None:
                            # replaced like a SIGHUP does, new process first; this one keeps
                            # serving until the master retires it
                            _log().info("%s: asking for a new process" % reason)
                            config.on_reload()
                        else:
                            _log().info("recycling this process: %s" % reason)
                            _recycling = True
                            stop(True)
        if _recycling and config.on_recycle is not None:
            config.on_recycle()  # the master starts the replacement now
        if not _stop_graceful:
            return
        pw_server_stop_accepting(srv)
        deadline = time.monotonic() + graceful_timeout
        # (requests stuck past --request-timeout and their interrupt are not waited for; the
        # connections queued in the listen backlog are, once the reactor has accepted them)
        while ((pw_server_open_conns(srv) > recycling.stuck() or pw_server_accepting(srv))
               and time.monotonic() < deadline):
            if not _stop_graceful:
                return
            time.sleep(0.02)
            PyErr_CheckSignals()  # e.g. SIGINT: stop at once (see above)
        if pw_server_open_conns(srv) > 0:
            stuck = recycling.stuck()
            if 0 < pw_server_open_conns(srv) <= stuck:
                _log().warning("leaving %d request(s) stuck past %s behind"
                               % (stuck, _timeout_setting))
            else:
                _log().warning("graceful timeout (%ss) passed with %d connection(s) still open"
                               % (graceful_timeout, pw_server_open_conns(srv)))
            if inline:
                return  # the reactor thread is inside an application: leave it to exit
        with nogil:
            pw_server_shutdown(srv)
        for t in workers:
            t.join(max(0.0, deadline - time.monotonic()))
        if not any(t.is_alive() for t in workers):
            _srv = NULL
            pw_server_free(srv)
    finally:
        _stop_requested = False
        _stop_graceful = True
        _recycling = False
        recycling.close()


cdef class _RecycleLimits:
    """What serve()'s main loop checks every 0.1 s: --request-timeout (any process), and a
    daemon process's recycling limits. The decisions are the policy's (a
    pywsgi.daemon.recycle.RecyclePolicy, given the time); this class reads the workers' records
    and does what it says."""
    cdef readonly bint active
    cdef readonly object policy

    def __init__(self, policy, int threads):
        global _workers, _worker_slots, _last_request, _timeout_setting
        self.policy = policy
        self.active = policy.active
        _timeout_setting = policy.timeout_setting
        _last_request = 0
        if self.active:
            policy.start(_now(), [(<_Mount>m).app for m in _mounts])
            slots = max(1, threads)
            _workers = <_Worker *>calloc(slots, sizeof(_Worker))
            if _workers == NULL:
                raise MemoryError()
            _worker_slots = slots

    def close(self):
        global _workers, _worker_slots
        if self.active and _srv == NULL:  # the workers are gone: nobody writes the slots
            _worker_slots = 0
            free(_workers)
            _workers = NULL

    def check(self):
        """Why this process should be recycled now, or None; sets the policy's grace for that
        reason."""
        cdef double now = _now(), since
        cdef int i
        cdef bint busy = False
        for i in range(_worker_slots):
            since = _workers[i].since
            if since > 0:
                busy = True
                if _workers[i].environ != NULL and self.policy.overran(now, since):
                    reason = self._overran(i, now)
                    if reason is not None:
                        return reason
        return self.policy.tick(now, busy, _last_request)

    cdef object _overran(self, int i, double now):
        """Worker i's request has run longer than request-timeout: raise RequestTimeout in its
        thread (once); or, when that did not end it within interrupt-timeout (or interrupting
        is off), say why the process must be recycled.  Logs the request and its stack."""
        cdef _Worker *w = &_workers[i]
        cdef double since = w.since
        cdef PyObject *environ = w.environ
        cdef int found
        action = self.policy.on_overrun(now, since, w.interrupted)
        if action == self.policy.INTERRUPT:
            where = _request_line(<dict><object>environ)
            stack = _thread_stack(w.thread)  # Python code: the thread may go on meanwhile
            if w.since != since or w.environ != environ:
                return None  # it finished (or moved to another request) meanwhile
            exc_type = RequestTimeout
            found = PyThreadState_SetAsyncExc(w.thread, <PyObject *>exc_type)
            w.interrupted = since
            _log().error("%s has run %.2fs, longer than %s (%gs): raising RequestTimeout in "
                         "its thread%s; it is at:\n%s" % (
                             where, now - since, _timeout_setting, self.policy.request_timeout,
                             '' if found else ' (no such thread: it cannot be interrupted)', stack))
            return None
        if action == self.policy.WAIT:
            return None  # interrupted: it still has time to unwind
        where = _request_line(<dict><object>environ)
        stack = _thread_stack(w.thread)
        what = self.policy.overrun_reason(now, since)
        _log().error("%s %s; it is at:\n%s" % (where, what, stack))
        return "a request %s" % what

    def stuck(self):
        """How many requests have run past request-timeout + interrupt-timeout: a stopping
        process waits for its other requests only (as mod_wsgi 6 drains)."""
        cdef double now = _now(), since
        cdef int i, count = 0
        for i in range(_worker_slots):
            since = _workers[i].since
            if since > 0 and _workers[i].environ != NULL and self.policy.is_stuck(now, since):
                count += 1
        return count


cdef str _request_line(dict environ):
    """The client and request line of a request, for the error log."""
    return '%s:%s "%s %s %s"' % (
        environ.get('REMOTE_ADDR'), environ.get('REMOTE_PORT', '-'),
        environ.get('REQUEST_METHOD'), environ.get('REQUEST_URI'),
        environ.get('SERVER_PROTOCOL'))


cdef str _thread_stack(unsigned long thread):
    """The Python stack of a thread, most recent call last, as a traceback shows it."""
    import traceback
    frame = sys._current_frames().get(thread)
    if frame is None:
        return '  (no Python frame: it runs C code)'
    entries = traceback.extract_stack(frame)
    while len(entries) > 1 and entries[0].filename == threading.__file__:
        del entries[0]  # the worker thread's own start-up, the same for every request
    return ''.join(traceback.format_list(entries)).rstrip('\n')
