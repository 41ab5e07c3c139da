"""A daemon process group's options: mod_wsgi's WSGIDaemonProcess, as ``--daemon-process
NAME:processes=2,threads=15,...`` and the Apache import give them.

``DaemonGroup`` holds them, ``parse_group`` reads them (both spellings), ``group_spec`` writes
them back (--print-config). The settings table converts --daemon-process with these and the
daemon package (pywsgi/daemon/) runs the groups, so this module sits below both: it imports
only the converters.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from pywsgi.config.convert import as_byte_size

__all__ = ["DaemonGroup", "OPTIONS", "parse_group", "group_spec", "QUEUE_TIMEOUT",
           "RESPONSE_TIMEOUT", "SHUTDOWN_TIMEOUT"]

# option name (as in WSGIDaemonProcess) -> (attribute, converter)
OPTIONS: Dict[str, Tuple[str, Callable[[str], Any]]] = {
    "processes": ("processes", int),
    "threads": ("threads", int),
    "display-name": ("display_name", str),
    "queue-timeout": ("queue_timeout", float),
    "request-timeout": ("request_timeout", float),
    "interrupt-timeout": ("interrupt_timeout", float),
    "maximum-requests": ("maximum_requests", int),
    "python-path": ("python_path", lambda v: [p for p in v.split(":") if p]),
    "python-home": ("python_home", str),
    "home": ("working_directory", str),
    "working-directory": ("working_directory", str),
    "user": ("user", str),
    "group": ("group", str),
    # recycling (docs/daemon-mode.md, "Recycling"): the same graceful path as maximum-requests
    "restart-interval": ("restart_interval", float),
    "inactivity-timeout": ("inactivity_timeout", float),
    "memory-limit": ("memory_limit", as_byte_size),
    "graceful-timeout": ("graceful_timeout", float),
    "shutdown-timeout": ("shutdown_timeout", float),
    "script-reloading": ("script_reloading", lambda v: _on_off(v)),
}

# The relay's waits, in seconds (mod_wsgi's defaults), defined here once: how long a request
# may wait for a daemon to accept it (queue-timeout=; 0 also means this), and for the next byte
# of a daemon's response when the group sets no request-timeout=.
QUEUE_TIMEOUT = 45.0
RESPONSE_TIMEOUT = 300.0
# How long a process recycled by request-timeout= (interrupt-timeout 0) gives its other
# requests: a group's shutdown-timeout=, and embedded --request-timeout's.
SHUTDOWN_TIMEOUT = 5.0

# options holding seconds or counts: checked to be finite and 0 or more
_NON_NEGATIVE = ("queue-timeout", "request-timeout", "interrupt-timeout", "maximum-requests",
                 "restart-interval", "inactivity-timeout", "memory-limit", "graceful-timeout",
                 "shutdown-timeout")


def _on_off(value: str) -> bool:
    text = value.strip().lower()
    if text in ("on", "true", "yes", "1"):
        return True
    if text in ("off", "false", "no", "0"):
        return False
    raise ValueError(value)


@dataclass
class DaemonGroup:
    """One daemon process group's options; socket_path is set when the master binds it. A
    mount of the kind DAEMON (pywsgi/site/mounts.py) is relayed to it by the core."""
    name: str
    processes: int = 1
    threads: int = 15
    display_name: Optional[str] = None
    queue_timeout: float = QUEUE_TIMEOUT
    request_timeout: float = 0.0          # 0: no limit beyond response_timeout
    interrupt_timeout: float = 0.0        # >0: RequestTimeout first, recycle if not unwound by then
    maximum_requests: int = 0
    python_path: List[str] = field(default_factory=list)
    python_home: Optional[str] = None
    working_directory: Optional[str] = None
    user: Optional[str] = None
    group: Optional[str] = None
    restart_interval: float = 0.0         # recycle after this long; 0: never
    inactivity_timeout: float = 0.0       # recycle after this long without a request; 0: never
    memory_limit: int = 0                 # recycle above this RSS in bytes; 0: no limit
    graceful_timeout: float = 15.0        # a recycled process's requests may run this long
    shutdown_timeout: float = SHUTDOWN_TIMEOUT  # ... after request-timeout recycled it
    script_reloading: bool = True         # recycle when a script it serves changes (mod_wsgi)
    socket_path: str = ""

    @property
    def relay_queue_timeout(self) -> float:
        """How long the server process waits for a daemon to take a request (then 503)."""
        return self.queue_timeout or QUEUE_TIMEOUT

    @property
    def response_timeout(self) -> float:
        """How long the server process waits for the next byte of a daemon's response: with
        request-timeout, the client gets 504 at request-timeout when no byte came yet."""
        return self.request_timeout if self.request_timeout else RESPONSE_TIMEOUT

    def title(self) -> str:
        """The process title, as display-name=%{GROUP} gives it under mod_wsgi."""
        name = self.display_name
        if not name:
            return "(wsgi:%s)" % self.name
        return name.replace("%{GROUP}", "(wsgi:%s)" % self.name)


def parse_group(spec: str, default_threads: int = 15) -> DaemonGroup:
    """`NAME:processes=2,threads=15,display-name=%{GROUP}` (CLI form) or
    `NAME processes=2 threads=15 display-name=%{GROUP}` (WSGIDaemonProcess form)."""
    spec = spec.strip()
    words = spec.split()
    if words and ":" in words[0]:
        name, _, rest = spec.partition(":")
        items = [item for item in rest.split(",") if item.strip()]
    else:
        parts = spec.split()
        if not parts:
            raise ValueError("a daemon process group needs a name")
        name, items = parts[0], parts[1:]
    name = name.strip()
    if not name or "/" in name:
        raise ValueError("bad daemon process group name %r" % name)
    group = DaemonGroup(name=name, threads=default_threads)
    for item in items:
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise ValueError("daemon group %s: option %r needs a value (name=value)" % (name, key))
        if key not in OPTIONS:
            raise ValueError("daemon group %s: unknown option %r (known: %s)"
                             % (name, key, ", ".join(sorted(OPTIONS))))
        attr, convert = OPTIONS[key]
        try:
            setattr(group, attr, convert(value))
        except ValueError:
            raise ValueError("daemon group %s: bad value for %s: %r" % (name, key, value)) from None
    if group.processes < 1 or group.threads < 1:
        raise ValueError("daemon group %s: processes and threads must be at least 1" % name)
    for key in _NON_NEGATIVE:
        value = getattr(group, OPTIONS[key][0])
        if not math.isfinite(value) or value < 0:
            raise ValueError("daemon group %s: %s must be a number, 0 or more" % (name, key))
    # Paths made absolute now, as every path setting is (so a configuration file's relative paths
    # resolve against its directory: pywsgi/config/sources.py); python-path entries stay relative to
    # home=, the directory the daemon works in.
    for attribute in ("working_directory", "python_home"):
        if getattr(group, attribute):
            setattr(group, attribute, os.path.abspath(getattr(group, attribute)))
    base = group.working_directory or os.getcwd()
    group.python_path = [os.path.join(base, entry) for entry in group.python_path]
    return group


def group_spec(group: DaemonGroup) -> str:
    """A DaemonGroup as the NAME:option=value,... text parse_group reads back."""
    plain = DaemonGroup(name=group.name)
    options = []
    done = set()
    for option, (attribute, _) in OPTIONS.items():
        if attribute in done:
            continue
        done.add(attribute)
        value = getattr(group, attribute)
        if value == getattr(plain, attribute) and option not in ("processes", "threads"):
            continue
        if isinstance(value, list):
            value = ":".join(value)
        options.append(f"{option}={value}")
    return f"{group.name}:" + ",".join(options)
