"""What the master does for operations before it supervises, in order (docs/operations.md):
construct Startup (resolve --user/--group, check the pid file), listen(), give_to_children(),
started() once the signals are the master's; cleanup() on the way out."""
from __future__ import annotations

import os
import socket
from typing import List, Optional, Tuple

from pywsgi.config.typed import Settings
from pywsgi.errors import StartupError
from pywsgi.process.pidfile import check_pid_file, remove_pid_file, write_pid_file
from pywsgi.process.privileges import Privileges
from pywsgi.process.reloader import ChangeWatcher
from pywsgi.process.sockets import (
    bind_sockets,
    listening_sockets,
    remove_unix_socket,
    server_address,
)

__all__ = ["Startup"]


class Startup:
    """The operations side of arbiter.run(), in order: construct (resolve --user/--group,
    check the pid file), listen(), give_to_children(), started(); cleanup() in `finally`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pid_file = settings.pid_file
        self.unix_path: Optional[str] = None
        self.unix_inode: Optional[int] = None
        self.wrote_pid_file = False
        self.watcher: Optional[ChangeWatcher] = None
        self.https_fds: Tuple[int, ...] = ()     # the HTTPS listening sockets (--https-port)
        self.privileges = Privileges.resolve(settings.user, settings.group)
        check_pid_file(self.pid_file)

    def listen(self) -> List[socket.socket]:
        sockets, kind = listening_sockets(self.settings)
        if kind == "unix":
            self.unix_path = self.settings.unix_socket
            self.unix_inode = os.lstat(self.unix_path).st_ino
            self.give_to_children(self.unix_path)
        if self.settings.https_port is not None:
            # HTTPS: a TCP socket of its own on --host (docs/tls.md), after the plain ones
            https = bind_sockets(self.settings.host, self.settings.https_port,
                                 self.settings.listen_backlog)
            self.https_fds = tuple(sock.fileno() for sock in https)
            sockets = sockets + https
        return sockets

    def child_settings(self, settings: Settings, sockets: List[socket.socket]) -> Settings:
        """The settings the children get: SERVER_NAME/PORT for what is listened on. With
        --reload-on-changes, the watcher (whose report directory the children write to)."""
        if settings.reload_on_changes:
            self.watcher = ChangeWatcher(self.privileges)
        return settings.replace(**server_address(settings, sockets))

    def give_to_children(self, *paths: Optional[str]) -> None:
        """chown what the root master made and the children must reach after dropping
        privileges (the UNIX socket, the daemon groups' socket directory and sockets)."""
        for path in paths:
            if path:
                try:
                    self.privileges.chown(path)
                except OSError as exc:
                    raise StartupError(f"cannot give {path} to --user/--group: "
                                       f"{exc.strerror or exc}") from None

    def started(self) -> None:
        write_pid_file(self.pid_file)
        self.wrote_pid_file = bool(self.pid_file)

    def cleanup(self) -> None:
        if self.wrote_pid_file:
            remove_pid_file(self.pid_file)
        remove_unix_socket(self.unix_path, self.unix_inode)
        if self.watcher is not None:
            self.watcher.close()
