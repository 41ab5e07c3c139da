"""The listening sockets: systemd's (socket activation), else a UNIX socket (--unix-socket),
else TCP (--host, --port), and what SERVER_NAME/SERVER_PORT default to for them."""
from __future__ import annotations

import errno
import os
import socket
import stat
from typing import Any, Dict, List, Optional, Tuple

from pywsgi.config.typed import Settings
from pywsgi.errors import StartupError
from pywsgi.observe import errorlog

__all__ = ["bind_sockets", "bind_unix_socket", "remove_unix_socket", "describe_address",
           "systemd_sockets", "listening_sockets", "server_address"]

# sd_listen_fds(3): "the first passed file descriptor is 3 (SD_LISTEN_FDS_START)"
SD_LISTEN_FDS_START = 3


# ------------------------------------------------------------------ TCP

def _display_address(sockaddr) -> str:
    host, port = sockaddr[0], sockaddr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bind_sockets(host: str, port: int, backlog: int = 1024) -> List[socket.socket]:
    """Listening, non-blocking sockets for every address `host` resolves to.

    A name resolving to several addresses (localhost → 127.0.0.1 and ::1) gets one socket each;
    addresses this machine cannot use are skipped as long as one binds. Port 0 picks a free port,
    shared by all the sockets.
    """
    lookup_host = None if host in ("", "*") else host
    # an ASCII name as bytes: a str goes through Python's IDNA codec first, whose import (with
    # unicodedata's tables) every server process would then carry for nothing
    lookup = lookup_host.encode("ascii") if lookup_host and lookup_host.isascii() else lookup_host
    try:
        infos = socket.getaddrinfo(lookup, port, socket.AF_UNSPEC, socket.SOCK_STREAM,
                                   0, socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise StartupError(f"cannot listen on host {host!r}: {exc.strerror}") from None
    unique = []
    for family, kind, proto, _, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        if all(sockaddr[:2] != other[4][:2] for other in unique):
            unique.append((family, kind, proto, None, sockaddr))
    if not unique:
        raise StartupError(f"cannot listen on host {host!r}: no IPv4 or IPv6 address")

    sockets: List[socket.socket] = []
    chosen_port = port
    failures: List[str] = []
    try:
        for family, kind, proto, _, sockaddr in unique:
            if chosen_port != sockaddr[1]:
                sockaddr = (sockaddr[0], chosen_port) + tuple(sockaddr[2:])
            sock = socket.socket(family, kind, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6 and len(unique) > 1:
                    # the IPv4 address has its own socket; keep this one IPv6-only
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(sockaddr)
                sock.listen(backlog)
                sock.setblocking(False)
            except OSError as exc:
                sock.close()
                where = _display_address(sockaddr)
                if exc.errno == errno.EADDRINUSE:
                    raise StartupError(f"cannot listen on {where}: address already in use "
                                       f"(another server is running there; choose --port)"
                                       ) from None
                if exc.errno == errno.EACCES:
                    raise StartupError(f"cannot listen on {where}: permission denied (ports "
                                       f"below 1024 need root or CAP_NET_BIND_SERVICE)") from None
                if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT) and len(unique) > 1:
                    failures.append(f"{where}: {exc.strerror}")
                    continue
                raise StartupError(f"cannot listen on {where}: {exc.strerror or exc}") from None
            sockets.append(sock)
            chosen_port = sock.getsockname()[1]
        if not sockets:
            raise StartupError(f"cannot listen on host {host!r}: " + "; ".join(failures))
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    for failure in failures:
        errorlog.warning(f"skipped listening on {failure}")
    return sockets


# ------------------------------------------------------------------ UNIX socket

def _socket_is_live(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        probe.close()


def bind_unix_socket(path: str, mode: int, backlog: int) -> socket.socket:
    """Listen on a UNIX stream socket at `path`: a stale socket file (nobody accepting) is
    replaced; a live one (connect succeeds) or any other kind of file is refused."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None:
        if not stat.S_ISSOCK(st.st_mode):
            raise StartupError(f"--unix-socket {path}: exists and is not a socket")
        if _socket_is_live(path):
            raise StartupError(f"--unix-socket {path}: another server is listening there")
        errorlog.info(f"--unix-socket {path}: replacing a stale socket file")
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        # umask 0o177 while binding: the file exists only with the owner's rights until chmod
        # gives it `mode`, so nobody else can connect in between.
        old_umask = os.umask(0o177)
        try:
            sock.bind(path)
        finally:
            os.umask(old_umask)
        os.chmod(path, mode)
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise StartupError(f"--unix-socket {path}: cannot listen there: "
                              f"{exc.strerror or exc}") from None
    return sock


def remove_unix_socket(path: Optional[str], sock_inode: Optional[int]) -> None:
    """Remove the socket file on exit, unless something else has replaced it since."""
    if not path:
        return
    try:
        if sock_inode is None or os.lstat(path).st_ino == sock_inode:
            os.unlink(path)
    except OSError:
        pass


def describe_address(sock: socket.socket, scheme: str = "http") -> str:
    """'http://127.0.0.1:8000', 'http://[::1]:8000' or 'unix:/run/app.sock' for log lines
    (scheme 'https' for an HTTPS socket)."""
    name = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        return "unix:" + (name or "(unnamed)")
    host, port = name[0], name[1]
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


# ------------------------------------------------------------------ systemd socket activation

def systemd_sockets(environ=None) -> Optional[Tuple[List[socket.socket], List[str]]]:
    """The listening sockets systemd passed (sd_listen_fds(3)), or None when none were passed
    to this process.  LISTEN_* are removed from the environment either way, so the children
    (and CGI programs) never take the fds for theirs."""
    environ = os.environ if environ is None else environ
    listen_pid = environ.pop("LISTEN_PID", None)
    listen_fds = environ.pop("LISTEN_FDS", None)
    listen_names = environ.pop("LISTEN_FDNAMES", None)
    # sd_listen_fds(3): "if LISTEN_PID is not set to the PID of the calling process, the
    # variables are ignored" - they were meant for a process that exec'd us, not for us.
    if listen_pid is None or listen_fds is None or listen_pid.strip() != str(os.getpid()):
        return None
    if not listen_fds.strip().isdigit() or int(listen_fds) < 1:
        raise StartupError(f"LISTEN_FDS={listen_fds!r}: expected the number of sockets "
                              f"passed by systemd")
    count = int(listen_fds)
    names = listen_names.split(":") if listen_names else []
    sockets: List[socket.socket] = []
    try:
        for index in range(count):
            fd = SD_LISTEN_FDS_START + index
            name = names[index] if index < len(names) else f"fd {fd}"
            try:
                os.fstat(fd)
                sock = socket.socket(fileno=fd)
            except OSError:
                raise StartupError(f"LISTEN_FDS={count}: fd {fd} ({name}) is not an open "
                                      f"socket") from None
            sockets.append(sock)
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) != socket.SOCK_STREAM or \
                    not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) or \
                    sock.family not in (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX):
                raise StartupError(f"LISTEN_FDS={count}: fd {fd} ({name}) is not a "
                                      f"listening TCP or UNIX stream socket (use "
                                      f"ListenStream= in the .socket unit, without Accept=yes)")
            sock.set_inheritable(False)   # CGI programs must not inherit the listener
            sock.setblocking(False)
    except BaseException:
        for sock in sockets:
            sock.detach()
        raise
    return sockets, names[:count] + [f"fd {SD_LISTEN_FDS_START + i}"
                                     for i in range(len(names), count)]


def listening_sockets(settings: Settings) -> Tuple[List[socket.socket], str]:
    """The server's listening sockets and what made them ('systemd', 'unix' or 'tcp').

    systemd's sockets win over everything (--host/--port/--unix-socket are then ignored, with
    a log line); --unix-socket replaces TCP, as gunicorn's --bind unix:PATH does."""
    passed = systemd_sockets()
    if passed is not None:
        sockets, names = passed
        ignored = "--unix-socket, --host and --port are" if settings.unix_socket \
            else "--host and --port are"
        errorlog.info(f"socket activation: listening on {len(sockets)} socket(s) passed by "
                      f"systemd (LISTEN_FDS): " + ", ".join(
                          f"{name}={describe_address(sock)}" for name, sock in zip(names, sockets))
                      + f"; {ignored} ignored")
        return sockets, "systemd"
    if settings.unix_socket:
        return [bind_unix_socket(settings.unix_socket, settings.unix_socket_mode,
                                 settings.listen_backlog)], "unix"
    return bind_sockets(settings.host, settings.port, settings.listen_backlog), "tcp"


def server_address(settings: Settings, sockets: List[socket.socket]) -> Dict[str, Any]:
    """SERVER_NAME / SERVER_PORT defaults (used when a request has no Host header) for the
    sockets actually listened on: the first TCP socket's port; with UNIX sockets only, port
    80 (443 for https) and, unless --server-name was given, 'localhost', like gunicorn."""
    for sock in sockets:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            return {"port": sock.getsockname()[1]}
    updates: Dict[str, Any] = {"port": 443 if settings.url_scheme == "https" else 80}
    if settings.server_name == settings.host:   # derived from --host, not given
        updates["server_name"] = "localhost"
    return updates
