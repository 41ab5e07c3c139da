"""The error log: Apache-style lines on stderr or in a file.

    [Fri Nov 27 21:04:24.123456 2026] [pywsgi:error] [pid 123] message

Each line (or each multi-line message, every line prefixed) goes out in one ``os.write`` on a
file descriptor opened in append mode, so lines from several processes and threads never
interleave mid-line. Nothing is buffered in Python: a crash loses no log line.
"""
from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from typing import Iterable, Optional

__all__ = [
    "configure", "reopen", "log", "debug", "info", "warning", "warn", "error", "critical",
    "exception", "is_enabled", "ErrorStream", "LEVELS", "fileno",
]

# Apache's level names, lowest first; Python-style names are accepted as aliases.
LEVELS = {"debug": 10, "info": 20, "warn": 30, "error": 40, "crit": 50}
_ALIASES = {"warning": "warn", "critical": "crit", "err": "error", "fatal": "crit"}

_lock = threading.Lock()
_threshold = LEVELS["info"]
_path: Optional[str] = None
_fd = 2
_owns_fd = False


def _level_name(level: str) -> str:
    name = str(level).lower()
    name = _ALIASES.get(name, name)
    if name not in LEVELS:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(LEVELS)}")
    return name


def configure(level: str = "info", path: Optional[str] = None) -> None:
    """Set the lowest level written and the destination (None: stderr; else a file, appended)."""
    global _threshold, _path
    threshold = LEVELS[_level_name(level)]
    with _lock:
        _threshold = threshold
        _path = path
        _open_locked()


def reopen() -> None:
    """Reopen the log file (after logrotate moved it); a no-op when logging to stderr."""
    with _lock:
        _open_locked()


def _open_locked() -> None:
    global _fd, _owns_fd
    if _path is None:
        old_fd, old_owned = _fd, _owns_fd
        _fd, _owns_fd = 2, False
        if old_owned:
            os.close(old_fd)
        return
    new_fd = os.open(_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    if _owns_fd:
        # Keep the descriptor's number: the C core (pw_log) writes to it without this lock,
        # so it must never be closed under it - dup2 swaps the file behind it atomically.
        try:
            os.dup2(new_fd, _fd, inheritable=False)
        finally:
            os.close(new_fd)
    else:
        _fd, _owns_fd = new_fd, True


def fileno() -> int:
    """The error log's file descriptor (2 for stderr); stable across reopen()."""
    return _fd


def is_enabled(level: str) -> bool:
    return LEVELS[_level_name(level)] >= _threshold


def _timestamp(now: float) -> str:
    # Apache's format: [Fri Nov 27 21:04:24.123456 2026]
    local = time.localtime(now)
    micros = int((now % 1) * 1_000_000)
    return (time.strftime("%a %b %d %H:%M:%S", local) + f".{micros:06d}"
            + time.strftime(" %Y", local))


def _format(level_name: str, message: str) -> bytes:
    prefix = f"[{_timestamp(time.time())}] [pywsgi:{level_name}] [pid {os.getpid()}] "
    lines = str(message).rstrip("\n").split("\n") or [""]
    text = "".join(prefix + line.rstrip("\r") + "\n" for line in lines)
    return text.encode("utf-8", "backslashreplace")


def _write(data: bytes) -> None:
    with _lock:
        fd = _fd
        view = memoryview(data)
        while view:
            try:
                written = os.write(fd, view)
            except InterruptedError:
                continue
            except OSError:
                return  # the log must never take the server down
            view = view[written:]


def log(level: str, msg: str) -> None:
    name = _level_name(level)
    if LEVELS[name] < _threshold:
        return
    _write(_format(name, msg))


def debug(msg: str) -> None:
    log("debug", msg)


def info(msg: str) -> None:
    log("info", msg)


def warning(msg: str) -> None:
    log("warn", msg)


warn = warning


def error(msg: str) -> None:
    log("error", msg)


def critical(msg: str) -> None:
    log("crit", msg)


def exception(msg: str) -> None:
    """Log msg at error level followed by the traceback of the exception being handled."""
    exc_type, exc, tb = sys.exc_info()
    if exc is None:
        log("error", msg)
        return
    formatted = "".join(traceback.format_exception(exc_type, exc, tb))
    log("error", f"{msg}\n{formatted}")


class ErrorStream:
    """File-like ``wsgi.errors``: each complete line written becomes one error-level log line.

    Partial lines are buffered per thread (worker threads share one stream) until a newline or
    ``flush()``.
    """

    def __init__(self, level: str = "error") -> None:
        self._level = _level_name(level)
        self._local = threading.local()

    def _buffer(self) -> list:
        buf = getattr(self._local, "parts", None)
        if buf is None:
            buf = self._local.parts = []
        return buf

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"wsgi.errors.write() argument must be str, not {type(s).__name__}")
        buf = self._buffer()
        if "\n" not in s:
            buf.append(s)
            return len(s)
        text = "".join(buf) + s
        complete, _, rest = text.rpartition("\n")
        buf.clear()
        if rest:
            buf.append(rest)
        log(self._level, complete)
        return len(s)

    def writelines(self, seq: Iterable[str]) -> None:
        for line in seq:
            self.write(line)

    def flush(self) -> None:
        buf = self._buffer()
        if buf:
            text = "".join(buf)
            buf.clear()
            log(self._level, text)

    def close(self) -> None:
        self.flush()

    @property
    def closed(self) -> bool:
        return False

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False


def _after_fork_in_child() -> None:
    # A lock held by another thread at fork time would never be released in the child.
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
