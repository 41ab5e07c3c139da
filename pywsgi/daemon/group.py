"""A daemon process group at run time (mod_wsgi's WSGIDaemonProcess / WSGIProcessGroup).

    master ── binds each group's UNIX socket (kept across daemon restarts) and forks
      ├─ server children: the core relays requests for a group's mounts over its socket
      │  (csrc/relay.c), without the GIL and without running Python for them
      └─ daemon children (processes=N per group): load the app(s), then run the same core in
         daemon role on the group socket: one relayed request per UNIX connection, preceded
         by a preamble carrying the client's address; the response goes back byte for byte.

Because the master holds the listening UNIX socket, a daemon that dies or restarts only
means requests wait in the socket's backlog (up to the group's queue-timeout) - none is
refused for it. This module: the group socket (master side), entering the group in a forked
daemon child, and the settings its processes serve with (the rest of what a daemon's core reads
is its core config: pywsgi/process/core_config.py).
"""
from __future__ import annotations

import os
import socket
import sys
from typing import Optional

from pywsgi.config.daemon_groups import DaemonGroup
from pywsgi.config.typed import Settings

__all__ = ["bind_group_socket", "enter_group", "set_process_title", "group_settings"]


def bind_group_socket(group: DaemonGroup, directory: Optional[str] = None,
                      backlog: int = 1024) -> socket.socket:
    """Bind and listen on the group's UNIX socket, in a private directory (mode 0700)."""
    if directory is None:
        import tempfile

        directory = tempfile.mkdtemp(prefix="pywsgi-")
    path = os.path.join(directory, "%s.sock" % group.name)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(backlog)
    sock.setblocking(False)
    group.socket_path = path
    return sock


def enter_group(group: DaemonGroup) -> None:
    """In a daemon child: title, working directory, python path. The group's user=/group= are
    taken next, with --user/--group, by the child (enter_child)."""
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


def set_process_title(title: str) -> None:
    """Best effort: what `ps` shows (argv, as mod_wsgi's display-name) and the thread name
    (csrc/process.h)."""
    import pywsgi._core as _core  # (the compiled core: imported by the master already)

    _core.set_process_title(title)


def group_settings(settings: Settings, group: DaemonGroup) -> Settings:
    """A daemon process's settings: the server's, with the group's processes, threads, name
    (mod_wsgi.process_group) and request limits."""
    return settings.replace(threads=group.threads, processes=group.processes,
                            process_group=group.name, maximum_requests=group.maximum_requests,
                            request_timeout=group.request_timeout,
                            interrupt_timeout=group.interrupt_timeout)
