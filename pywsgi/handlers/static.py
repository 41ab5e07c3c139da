"""Static files: a document root (``--document-root DIR``) or an alias (``--url-alias URL PATH``).

A ``StaticFiles`` object is mounted like an application.  Inside a pywsgi server process its mount
is of the kind STATIC (pywsgi/site/mounts.py) and the core serves it from C without the GIL
(csrc/static.c, through pywsgi/_static.pxi): path resolution under the root, conditional and range
requests, precompressed siblings and sendfile.  ``__call__`` is a plain-WSGI fallback with the
same rules, for use under another WSGI server or behind a wrapping application (no
open-file cache, no sendfile of its own).

See docs/static-files.md.
"""
from __future__ import annotations

import os
import stat
from typing import Iterable, Optional, Tuple

__all__ = ["StaticFiles", "content_types"]

DEFAULT_TYPE = "application/octet-stream"

# Files that are already compressed are sent as what they are, never as Content-Encoding, so a
# browser does not silently unpack a downloaded archive (Apache's old `AddEncoding` trap).
_ARCHIVE_TYPES = {
    "gz": "application/gzip",
    "tgz": "application/gzip",
    "br": "application/x-brotli",
    "bz2": "application/x-bzip2",
    "xz": "application/x-xz",
    "zst": "application/zstd",
    "z": "application/x-compress",
}

_TYPES_CACHE: Optional[dict] = None


def _with_charset(ctype: str) -> str:
    if ctype.startswith("text/") or ctype in ("application/javascript", "application/ecmascript"):
        return ctype + "; charset=utf-8"
    return ctype


def content_types() -> dict:
    """{'html': 'text/html; charset=utf-8', ...}: lower-case extension (no dot) -> Content-Type,
    from Python's mimetypes table (which reads the system's mime.types)."""
    global _TYPES_CACHE
    if _TYPES_CACHE is None:
        import mimetypes  # here: a server with no static files need not hold its tables

        mimetypes.init()
        table = {}
        for ext, ctype in mimetypes.types_map.items():
            key = ext.lstrip(".").lower()
            if key and key not in table:
                table[key] = _with_charset(ctype)
        table.update(_ARCHIVE_TYPES)
        _TYPES_CACHE = table
    return _TYPES_CACHE


def _type_for(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    dot = base.rfind(".")
    if dot <= 0 and not (dot == 0 and len(base) > 1):
        return DEFAULT_TYPE
    return content_types().get(base[dot + 1:].lower(), DEFAULT_TYPE)


class StaticFiles:
    """Serve the files below ``path`` (a directory), or the single file ``path``.

    index            names tried, in order, for a request naming a directory (with its slash);
                     a directory without one of them is 403 (no listings).
    follow_symlinks  False: a symbolic link is followed only while it stays inside the root
                     (one leading out is 403); True: followed anywhere (Apache FollowSymLinks).
    precompressed    serve ``name.br`` / ``name.gz`` beside ``name`` when the client accepts it.
    cache_control    the Cache-Control value sent with files (None: none).
    is_file          force file (True) or directory (False) mode; None: from what path is.
    """

    def __init__(self, path, *, index=("index.html",), follow_symlinks=False, precompressed=True,
                 cache_control=None, is_file=None):
        path = os.fspath(path)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not path or not os.path.exists(path):
            raise ValueError(f"static files: {path!r} does not exist")
        import email.utils  # noqa: F401  (the HTTP dates below: imported now, not by a request)

        real = os.path.realpath(path)
        is_dir = os.path.isdir(real)
        if is_file is None:
            is_file = not is_dir
        if is_file and not os.path.isfile(real):
            raise ValueError(f"static files: {path!r} is not a regular file")
        if not is_file and not is_dir:
            raise ValueError(f"static files: {path!r} is not a directory")
        if not os.access(real, os.R_OK):
            raise ValueError(f"static files: {path!r} is not readable")
        if isinstance(index, str):
            index = (index,)
        index = tuple(index or ())
        for name in index:
            if not isinstance(name, str) or not name or "/" in name or "\0" in name \
                    or name in (".", ".."):
                raise ValueError(f"static files: bad directory index name {name!r}")
        if cache_control is not None:
            cache_control = str(cache_control)
            if any(ord(ch) < 32 or ord(ch) > 126 for ch in cache_control):
                raise ValueError(f"static files: bad Cache-Control value {cache_control!r}")
        self.path = path
        self.root = real
        self.is_file = bool(is_file)
        self.index = index
        self.follow_symlinks = bool(follow_symlinks)
        self.precompressed = bool(precompressed)
        self.cache_control = cache_control or None
        self._pw_core_root = None  # the C-side root, made by the core on first use (per process)

    def __repr__(self):
        return "<StaticFiles %s%s>" % (self.root, " (file)" if self.is_file else "/")

    # ----------------------------------------------------------- handed to the core once

    def _core_options(self) -> Tuple[bytes, bytes, bytes, bytes]:
        """(root, index blob, types blob, cache_control) as bytes for csrc/static.c; the blobs
        are NUL-separated lists ending in an empty entry."""
        root = os.fsencode(self.root)
        index = b"".join(os.fsencode(name) + b"\0" for name in self.index) + b"\0"
        types = b"".join(ext.encode("latin-1", "replace") + b"\0"
                         + ctype.encode("latin-1", "replace") + b"\0"
                         for ext, ctype in sorted(content_types().items())) + b"\0"
        cache = (self.cache_control or "").encode("latin-1")
        return root, index, types, cache

    # ----------------------------------------------------------- plain-WSGI fallback
    # The same rules as csrc/static.c, in Python, for use outside the core's C path (under
    # another WSGI server, or behind an application that picks files or itself per request).

    def __call__(self, environ, start_response):
        method = environ.get("REQUEST_METHOD", "GET")
        rel = environ.get("PATH_INFO", "")
        target = self._resolve(rel)
        if isinstance(target, int):
            return self._error(start_response, target)
        full, st, is_dir = target
        if is_dir:
            if not rel.endswith("/"):
                from urllib.parse import quote
                location = environ.get("SCRIPT_NAME", "") + rel + "/"
                # "//host/dir/" would send the client to another host: one leading slash
                location = quote(("/" + location.lstrip("/")).encode("latin-1"),
                                 safe="/:@!$&'()*+,;=~")
                if environ.get("QUERY_STRING"):
                    location += "?" + environ["QUERY_STRING"]
                return self._error(start_response, 301, [("Location", location)])
            for name in self.index:
                found = self._resolve(rel + name)
                if isinstance(found, tuple) and not found[2]:
                    full, st, is_dir = found
                    break
            else:
                return self._error(start_response, 403)
        if method not in ("GET", "HEAD"):
            return self._error(start_response, 405, [("Allow", "GET, HEAD")])
        ctype = _type_for(full)
        has_range = method == "GET" and "HTTP_RANGE" in environ
        encoding, vary = None, False
        if self.precompressed:
            for coding, suffix in self._codings_by_preference(environ.get("HTTP_ACCEPT_ENCODING")):
                sibling = self._sibling(full, suffix)
                if sibling is None:
                    continue
                vary = True
                if encoding is None and not has_range and coding[1] > 0 \
                        and sibling[1].st_mtime_ns >= st.st_mtime_ns:
                    encoding = coding[0]
                    full, st = sibling
        mtime = int(st.st_mtime)
        etag = '"%x-%x%s"' % (st.st_size, st.st_mtime_ns, "-" + encoding if encoding else "")
        import email.utils  # (already imported by __init__: a dictionary look-up)

        headers = [("Last-Modified", email.utils.formatdate(mtime, usegmt=True)), ("ETag", etag)]
        if vary:
            headers.append(("Vary", "Accept-Encoding"))
        if self.cache_control:
            headers.append(("Cache-Control", self.cache_control))
        status = _preconditions(environ, etag, mtime)
        if status == 412:
            return self._error(start_response, 412)
        if status == 304:
            start_response("304 Not Modified", headers)
            return []
        size = st.st_size
        first, last, status = 0, size - 1, "200 OK"
        if has_range and not encoding and _if_range_holds(environ.get("HTTP_IF_RANGE"), etag,
                                                          mtime):
            found = _parse_range(environ["HTTP_RANGE"], size)
            if found == -1:
                return self._error(start_response, 416, [("Content-Range", "bytes */%d" % size)])
            if found:
                first, last = found
                status = "206 Partial Content"
                headers.append(("Content-Range", "bytes %d-%d/%d" % (first, last, size)))
        headers[:0] = [("Content-Type", ctype), ("Content-Length", str(last - first + 1))]
        if encoding:
            headers.append(("Content-Encoding", encoding))
        else:
            headers.append(("Accept-Ranges", "bytes"))
        start_response(status, headers)
        if method == "HEAD" or last < first:
            return []
        f = open(full, "rb")
        f.seek(first)
        if first == 0 and last == size - 1:
            wrapper = environ.get("wsgi.file_wrapper")
            if wrapper is not None:
                return wrapper(f, 65536)
        return _iter_file(f, last - first + 1)

    @staticmethod
    def _codings_by_preference(accept):
        """[((coding, q), suffix)] for br and gzip, the client's favourite first; q is -1 when
        the client sent no Accept-Encoding."""
        q = {"br": -1, "gzip": -1}
        if accept is not None:
            named, star = {}, None
            for item in accept.split(","):
                token, _, params = item.strip().partition(";")
                token = token.strip().lower()
                value = 1.0
                for param in params.split(";"):
                    key, _, val = param.strip().partition("=")
                    if key.strip().lower() == "q":
                        try:
                            value = float(val)
                        except ValueError:
                            value = 0.0
                if token == "*":
                    star = value
                elif token in ("br", "gzip", "x-gzip"):
                    named.setdefault("gzip" if token == "x-gzip" else token, value)
            for coding in q:
                q[coding] = named.get(coding, star if star is not None else 0.0)
        order = sorted((("br", q["br"]), ("gzip", q["gzip"])), key=lambda item: -item[1])
        return [(item, ".br" if item[0] == "br" else ".gz") for item in order]

    def _sibling(self, full: str, suffix: str):
        path = full + suffix
        try:
            st = os.stat(path)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode) or not self._inside(path):
            return None
        return path, st

    def _inside(self, path: str) -> bool:
        if self.follow_symlinks:
            return True
        real = os.path.realpath(path)
        if self.is_file:
            return real == self.root
        return real == self.root or real.startswith(self.root.rstrip("/") + "/")

    def _resolve(self, rel: str):
        """(full path, stat, is_dir) for a request path below the root, or an HTTP status."""
        if self.is_file:
            if rel:
                return 404
            full = self.root
        else:
            raw = rel.encode("latin-1", "replace")
            segments = raw.split(b"/")
            if b"\0" in raw or b"\\" in raw or b".." in segments:
                return 400 if b"\\" not in raw else 404
            full = os.path.join(os.fsencode(self.root), *[s for s in segments if s and s != b"."])
            full = os.fsdecode(full)
        base = full.rsplit("/", 1)[-1]
        if base.startswith(".ht"):
            return 403
        try:
            st = os.stat(full)
        except FileNotFoundError:
            return 404
        except NotADirectoryError:
            return 404
        except OSError:
            return 403
        if not self._inside(full):
            return 403
        if stat.S_ISDIR(st.st_mode):
            return (full, st, True) if not self.is_file else 404
        if not stat.S_ISREG(st.st_mode) or not os.access(full, os.R_OK):
            return 403
        return full, st, False

    @staticmethod
    def _error(start_response, status: int, extra=()):
        reasons = {301: "Moved Permanently", 400: "Bad Request", 403: "Forbidden",
                   404: "Not Found", 405: "Method Not Allowed", 412: "Precondition Failed",
                   416: "Range Not Satisfiable"}
        reason = reasons.get(status, "Error")
        # (the reasons are the plain words above: nothing in them to escape for HTML)
        body = ("<!DOCTYPE html>\n<html><head><title>%d %s</title></head><body><h1>%s</h1>"
                "</body></html>\n" % (status, reason, reason)).encode("ascii")
        start_response("%d %s" % (status, reason),
                       [("Content-Type", "text/html; charset=utf-8"),
                        ("Content-Length", str(len(body)))] + list(extra))
        return [body]


def _iter_file(f, count: int) -> Iterable[bytes]:
    with f:
        while count > 0:
            block = f.read(min(65536, count))
            if not block:
                return
            count -= len(block)
            yield block


def _etags(value: str):
    """The entity tags of an If-Match / If-None-Match value: [(weak, '"tag"')], or None for *."""
    if value.strip() == "*":
        return None
    tags = []
    for item in value.split(","):
        item = item.strip()
        weak = item.startswith("W/")
        if weak:
            item = item[2:]
        if len(item) >= 2 and item[0] == item[-1] == '"':
            tags.append((weak, item))
    return tags


def _http_date(value: Optional[str]) -> Optional[int]:
    if not value:
        return None
    import email.utils  # (already imported by StaticFiles.__init__)

    try:
        return int(email.utils.parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _preconditions(environ, etag: str, mtime: int) -> int:
    """RFC 9110 13.2.2, for GET/HEAD: 412, 304, or 200 to go on."""
    if_match = environ.get("HTTP_IF_MATCH")
    if if_match is not None:
        tags = _etags(if_match)
        if tags is not None and (False, etag) not in tags:
            return 412
    else:
        since = _http_date(environ.get("HTTP_IF_UNMODIFIED_SINCE"))
        if since is not None and mtime > since:
            return 412
    if_none_match = environ.get("HTTP_IF_NONE_MATCH")
    if if_none_match is not None:
        tags = _etags(if_none_match)
        if tags is None or any(tag == etag for _, tag in tags):
            return 304
    else:
        since = _http_date(environ.get("HTTP_IF_MODIFIED_SINCE"))
        if since is not None and mtime <= since:
            return 304
    return 200


def _if_range_holds(value: Optional[str], etag: str, mtime: int) -> bool:
    if value is None:
        return True
    value = value.strip()
    if value.startswith('"'):
        return value == etag
    return _http_date(value) == mtime


def _parse_range(value: str, size: int):
    """(first, last) for one satisfiable byte range, -1 if unsatisfiable, None to send the
    whole file (another unit, bad syntax, several ranges)."""
    unit, eq, spec = value.partition("=")
    if not eq or unit.strip().lower() != "bytes" or size <= 0:
        return None
    spec = spec.strip()
    if "," in spec:
        return None
    first, dash, last = spec.partition("-")
    if not dash or (first and not first.isdigit()) or (last and not last.isdigit()):
        return None
    if not first:
        if not last:
            return None
        n = int(last)
        return -1 if n == 0 else (max(size - n, 0), size - 1)
    a = int(first)
    if last and int(last) < a:
        return None
    if a >= size:
        return -1
    return a, min(int(last), size - 1) if last else size - 1
