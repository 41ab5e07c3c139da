"""What ``mod_python.apache`` defines besides the request: the return codes and constants (``OK``,
``DECLINED``, ``DONE``, ``HTTP_*``, ``APLOG_*``), ``SERVER_RETURN``, ``log_error``, ``table``,
``parse_qs(l)`` and ``import_module``. pywsgi.modpython re-exports them (it is mod_python.apache
under the shim, pywsgi/compat)."""
from __future__ import annotations

import importlib
import os
import sys
from collections.abc import MutableMapping
from typing import Any, Dict, Iterable, List, Optional, Tuple
from urllib.parse import parse_qs as _parse_qs
from urllib.parse import parse_qsl as _parse_qsl

from pywsgi.observe import errorlog

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


def parse_qsl(qs: str, keep_blank_values: int = 0,
              strict_parsing: int = 0) -> List[Tuple[str, str]]:
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

    def copy(self) -> table:
        return table(self._entries)

    def clear(self) -> None:
        self._entries = []

    def all_items(self) -> List[Tuple[str, str]]:
        """Every (key, value) pair, repeated keys included, in the order added."""
        return list(self._entries)

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k!r}: {v!r}" for k, v in self._entries) + "}"


make_table = table


# mod_python.apache's names: every constant, and the functions and classes above
__all__ = sorted(set(
    [name for name in list(globals()) if name.isupper() and not name.startswith("_")]
    + ["SERVER_RETURN", "log_error", "parse_qs", "parse_qsl", "import_module", "table",
       "make_table", "version", "server_root", "exists_config_define", "mpm_query"]))
