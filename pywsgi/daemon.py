"""Daemon process groups: mod_wsgi's WSGIDaemonProcess / WSGIProcessGroup.

    master ── binds each group's UNIX socket (kept across daemon restarts) and forks
      ├─ server children: the core relays requests for a group's mounts over its socket
      │  (csrc/relay.c), without the GIL and without running Python for them
      └─ daemon children (processes=N per group): load the app(s), then run the same core in
         daemon role on the group socket: one relayed request per UNIX connection, preceded
         by a preamble carrying the client's address; the response goes back byte for byte.

Because the master holds the listening UNIX socket, a daemon that dies or restarts only
means requests wait in the socket's backlog (up to the group's queue-timeout) - none is
refused for it.
"""
from __future__ import annotations

import ctypes
import math
import os
import socket
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

__all__ = ["DaemonGroup", "parse_group", "bind_group_socket", "enter_group",
           "set_process_title"]

# option name (as in WSGIDaemonProcess) -> (attribute, converter)
_OPTIONS = {
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
    "memory-limit": ("memory_limit", lambda v: _byte_size(v)),
    "graceful-timeout": ("graceful_timeout", float),
    "shutdown-timeout": ("shutdown_timeout", float),
    "script-reloading": ("script_reloading", lambda v: _on_off(v)),
}

# options holding seconds or counts: checked to be finite and 0 or more
_NON_NEGATIVE = ("queue-timeout", "request-timeout", "interrupt-timeout", "maximum-requests",
                 "restart-interval", "inactivity-timeout", "memory-limit", "graceful-timeout",
                 "shutdown-timeout")


def _byte_size(value: str) -> int:
    from pywsgi.config import as_byte_size
    return as_byte_size(value)


def _on_off(value: str) -> bool:
    text = value.strip().lower()
    if text in ("on", "true", "yes", "1"):
        return True
    if text in ("off", "false", "no", "0"):
        return False
    raise ValueError(value)


@dataclass
class DaemonGroup:
    """One daemon process group.  The core relays a mount whose app is one of these."""
    name: str
    processes: int = 1
    threads: int = 15
    display_name: Optional[str] = None
    queue_timeout: float = 45.0
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
    graceful_timeout: float = 15.0        # a recycled process's in-flight requests may run this long
    shutdown_timeout: float = 5.0         # ... and this long after request-timeout recycled it
    script_reloading: bool = True         # recycle when a script it serves changes (mod_wsgi's default)
    socket_path: str = ""

    @property
    def pywsgi_daemon_socket(self) -> str:
        return self.socket_path

    @property
    def response_timeout(self) -> float:
        """How long the server process waits for the next byte of a daemon's response: with
        request-timeout, the client gets 504 at request-timeout when no byte came yet."""
        return self.request_timeout if self.request_timeout else 300.0

    def __call__(self, environ, start_response):
        """Only reached outside pywsgi's core (which relays in C): say so rather than fail."""
        body = b"This URL is served by a pywsgi daemon process group.\n"
        start_response("502 Bad Gateway", [("Content-Type", "text/plain"),
                                           ("Content-Length", str(len(body)))])
        return [body]

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
        if key not in _OPTIONS:
            raise ValueError("daemon group %s: unknown option %r (known: %s)"
                             % (name, key, ", ".join(sorted(_OPTIONS))))
        attr, convert = _OPTIONS[key]
        try:
            setattr(group, attr, convert(value))
        except ValueError:
            raise ValueError("daemon group %s: bad value for %s: %r" % (name, key, value)) from None
    if group.processes < 1 or group.threads < 1:
        raise ValueError("daemon group %s: processes and threads must be at least 1" % name)
    for key in _NON_NEGATIVE:
        value = getattr(group, _OPTIONS[key][0])
        if not math.isfinite(value) or value < 0:
            raise ValueError("daemon group %s: %s must be a number, 0 or more" % (name, key))
    # Paths made absolute now, as every path setting is (so a configuration file's relative paths
    # resolve against its directory: pywsgi/sources.py); python-path entries stay relative to
    # home=, the directory the daemon works in.
    for attribute in ("working_directory", "python_home"):
        if getattr(group, attribute):
            setattr(group, attribute, os.path.abspath(getattr(group, attribute)))
    base = group.working_directory or os.getcwd()
    group.python_path = [os.path.join(base, entry) for entry in group.python_path]
    return group


def bind_group_socket(group: DaemonGroup, directory: Optional[str] = None,
                      backlog: int = 1024) -> socket.socket:
    """Bind and listen on the group's UNIX socket, in a private directory (mode 0700)."""
    if directory is None:
        directory = tempfile.mkdtemp(prefix="pywsgi-")
    path = os.path.join(directory, "%s.sock" % group.name)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(backlog)
    sock.setblocking(False)
    group.socket_path = path
    return sock


def enter_group(group: DaemonGroup) -> None:
    """In a daemon child: title, working directory, python path, then the user/group."""
    set_process_title(group.title())
    if group.working_directory:
        os.chdir(group.working_directory)
    for entry in reversed(group.python_path):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    if group.python_home:
        import site
        version = "python%d.%d" % sys.version_info[:2]
        site.addsitedir(os.path.join(group.python_home, "lib", version, "site-packages"))
    if os.getuid() == 0 and (group.user or group.group):
        from pywsgi.operations import drop_privileges
        drop_privileges(group.user, group.group)   # the same code as --user/--group


def set_process_title(title: str) -> None:
    """Best effort: what `ps` shows (argv, as mod_wsgi's display-name) and the thread name."""
    encoded = title.encode("utf-8", "replace")
    try:
        libc = ctypes.CDLL(None)
        PR_SET_NAME = 15
        libc.prctl(PR_SET_NAME, ctypes.c_char_p(encoded[:15]), 0, 0, 0)
    except (OSError, AttributeError):
        pass
    try:
        # The argv area, as the kernel knows it (/proc/self/stat fields 48-49, arg_start and
        # arg_end): overwriting it in place is what changes /proc/PID/cmdline, as setproctitle
        # does.  The area cannot grow; a longer title is cut.
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        arg_start, arg_end = int(fields[45]), int(fields[46])
        room = arg_end - arg_start - 1
        if room <= 0:
            return
        data = encoded[:room]
        ctypes.memmove(arg_start, data + b"\0" * (room + 1 - len(data)), room + 1)
    except (OSError, ValueError, IndexError):
        pass


def group_settings(settings: Dict, group: DaemonGroup, index: int,
                   script_paths: List[str] = ()) -> Dict:
    """The settings a daemon child passes to the core; script_paths: the script files of the
    group's mounts (a change recycles the process, as touching a script does under mod_wsgi)."""
    child = dict(settings)
    child.update(threads=group.threads, processes=group.processes, daemon_role=True,
                 queue_timeout=group.queue_timeout, process_index=index,
                 process_group=group.name, maximum_requests=group.maximum_requests)
    # Read by the core's main loop (pywsgi/_core.pyx serve): the recycling limits, and the
    # once-a-second check of memory and script files.
    child.update(request_timeout=group.request_timeout, interrupt_timeout=group.interrupt_timeout,
                 restart_interval=group.restart_interval,
                 inactivity_timeout=group.inactivity_timeout,
                 recycle_graceful_timeout=group.graceful_timeout,
                 recycle_shutdown_timeout=group.shutdown_timeout,
                 recycle_watch=RecycleWatch(group, script_paths))
    return child


class RecycleWatch:
    """In a daemon process, asked about once a second: is the RSS above memory-limit (the
    process is recycled), has a script it serves changed on disk (the process is replaced)?"""

    def __init__(self, group: DaemonGroup, script_paths: List[str]) -> None:
        self.group = group
        self.script_paths = list(script_paths) if group.script_reloading else []
        self.seen: Dict[str, tuple] = {}
        self.caches: List[Any] = []
        self.told: Dict[str, tuple] = {}
        self.page_size = os.sysconf("SC_PAGE_SIZE") if group.memory_limit else 0

    @staticmethod
    def _signature(path: str):
        try:
            st = os.stat(path)
        except OSError:
            return None  # being replaced (an editor's rename): look again next time
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def start(self, apps) -> None:
        """Called by the core once the application(s) are loaded: the files as they are now."""
        for path in self.script_paths:
            self.seen[path] = self._signature(path)
        if self.group.script_reloading:
            from pywsgi.handlers.scripts import DocumentRootFirst, HandlerScripts
            for app in apps:
                if isinstance(app, DocumentRootFirst):
                    app = app.files
                if isinstance(app, HandlerScripts):
                    self.caches.append(app.scripts)

    def rss(self) -> int:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * self.page_size

    def check_memory(self) -> Optional[str]:
        limit = self.group.memory_limit
        if limit:
            try:
                rss = self.rss()
            except (OSError, ValueError, IndexError):
                rss = 0
            if rss > limit:
                return ("its memory (RSS %d bytes) is above memory-limit (%d bytes)"
                        % (rss, limit))
        return None

    def check_files(self) -> Optional[str]:
        """Which script file changed since it was loaded (each change is told once), or None."""
        for path, before in self.seen.items():
            now = self._signature(path)
            if now is not None and now != before:
                self.seen[path] = now
                return "the script %s changed" % path
        for cache in self.caches:
            # handler scripts this process has loaded (and would otherwise reload one by one)
            for path, entry in list(cache._entries.items()):
                now = self._signature(path)
                if now is not None and now[:2] != tuple(entry[:2]) \
                        and self.told.get(path) != now:
                    self.told[path] = now
                    return "the handler script %s changed" % path
        return None
