"""Operations: the pid file, dropping privileges, UNIX-socket listening, systemd socket
activation and --reload-on-changes (docs/operations.md).

The master calls these at a few points of master.run() / Master / _child_main:

    check_pid_file()            before binding: refuse if the pid file names a live process
    listening_sockets()         systemd's LISTEN_FDS, else --unix-socket, else TCP (bind_sockets)
    Privileges.resolve()        --user/--group to ids, checked before anything is bound
    prepare_for_children()      chown what the children must reach (UNIX sockets, report dir)
    write_pid_file()            once listening; remove_pid_file() on the way out
    drop_privileges()           in each child, before the application is loaded
    report_modules()            in each child (--reload-on-changes), once the app is loaded
    ChangeWatcher.poll()        in the master loop, about once a second

Nothing here runs in the request path.
"""
from __future__ import annotations

import os
import socket
import stat
import sys
import tempfile
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from pywsgi.observe import errorlog
from pywsgi.errors import StartupError

__all__ = ["OperationsError", "check_pid_file", "write_pid_file", "remove_pid_file",
           "Privileges", "drop_privileges", "bind_unix_socket", "remove_unix_socket",
           "systemd_sockets", "listening_sockets", "describe_address", "report_modules",
           "ChangeWatcher"]

# sd_listen_fds(3): "the first passed file descriptor is 3 (SD_LISTEN_FDS_START)"
SD_LISTEN_FDS_START = 3


class OperationsError(Exception):
    """A startup problem; the master turns it into StartupError (exit 2, one line)."""


# ------------------------------------------------------------------ the pid file

def _read_pid(path: str) -> Optional[int]:
    try:
        with open(path, "r", encoding="ascii", errors="replace") as f:
            text = f.read(64).strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise OperationsError(f"--pid-file {path}: cannot read it: {exc.strerror or exc}") from None
    return int(text) if text.isdigit() and int(text) > 0 else -1


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True      # it exists, it is just not ours to signal
    return True


def check_pid_file(path: Optional[str]) -> None:
    """Refuse to start when the pid file names a live process (another server is running);
    a stale file (dead pid, or not a pid at all) is left to write_pid_file to replace."""
    if not path:
        return
    pid = _read_pid(path)
    if pid is None:
        return
    if pid > 0 and pid != os.getpid() and _process_exists(pid):
        raise OperationsError(f"--pid-file {path}: process {pid} named there is running (is "
                              f"another pywsgi running? stop it, or remove the file if that "
                              f"process is not pywsgi)")
    errorlog.info(f"--pid-file {path}: replacing a stale pid file "
                  f"({'process ' + str(pid) + ' is gone' if pid > 0 else 'no pid in it'})")


def write_pid_file(path: Optional[str]) -> None:
    """Write our pid atomically: a temporary file in the same directory, then rename(2), so a
    reader never sees an empty or half-written file."""
    if not path:
        return
    directory = os.path.dirname(path) or "."
    try:
        fd, temporary = tempfile.mkstemp(prefix=".pywsgi-pid-", dir=directory)
    except OSError as exc:
        raise OperationsError(f"--pid-file {path}: cannot write it: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()}\n")
        os.chmod(temporary, 0o644)
        os.rename(temporary, path)
    except OSError as exc:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise OperationsError(f"--pid-file {path}: cannot write it: {exc.strerror or exc}") from None


def remove_pid_file(path: Optional[str]) -> None:
    """Remove the pid file, only if it still holds our pid (a successor may have replaced it)."""
    if not path:
        return
    try:
        if _read_pid(path) == os.getpid():
            os.unlink(path)
    except (OSError, OperationsError):
        pass


# ------------------------------------------------------------------ --user / --group

@dataclass
class Privileges:
    """The user and group the children run as; uid/gid None: keep the current one."""
    uid: Optional[int] = None
    gid: Optional[int] = None
    user_name: Optional[str] = None     # for initgroups(3)

    @property
    def active(self) -> bool:
        return self.uid is not None or self.gid is not None

    @classmethod
    def resolve(cls, user: Optional[str], group: Optional[str]) -> "Privileges":
        """NAME or numeric id -> ids. Not root: only our own user and group are accepted
        (nothing to switch to), anything else is an error now rather than in every child."""
        import grp
        import pwd
        result = cls()
        if user:
            try:
                entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
                result.uid, result.user_name = entry.pw_uid, entry.pw_name
                result.gid = entry.pw_gid
            except KeyError:
                if not user.isdigit():
                    raise OperationsError(f"--user {user}: no such user") from None
                if not group:
                    raise OperationsError(f"--user {user}: no passwd entry for this uid, so no "
                                          f"group to run as: give --group too") from None
                result.uid = int(user)      # a bare uid without a passwd entry (containers)
        if group:
            try:
                result.gid = (grp.getgrgid(int(group)) if group.isdigit()
                              else grp.getgrnam(group)).gr_gid
            except KeyError:
                if not group.isdigit():
                    raise OperationsError(f"--group {group}: no such group") from None
                result.gid = int(group)
        if os.geteuid() != 0:
            if result.uid is not None and result.uid != os.geteuid():
                raise OperationsError(f"--user {user}: only root can run as another user "
                                      f"(pywsgi runs as uid {os.geteuid()})")
            if result.gid is not None and result.gid != os.getegid() and \
                    (group or result.uid is None):
                raise OperationsError(f"--group {group}: only root can run as another group "
                                      f"(pywsgi runs as gid {os.getegid()})")
            return cls()                    # already who we should be: nothing to do
        return result

    def chown(self, path: str) -> None:
        """Give `path` (made by the root master) to the children's user and group."""
        if self.active:
            os.chown(path, -1 if self.uid is None else self.uid,
                     -1 if self.gid is None else self.gid)


def drop_privileges(user: Optional[str], group: Optional[str]) -> None:
    """In a child, before the application is loaded: setgroups/initgroups, then setgid, then
    setuid (the other order would leave no right to change the group). A no-op unless root.
    Shared with daemon process groups (user=/group= in --daemon-process)."""
    if os.geteuid() != 0 or not (user or group):
        return
    target = Privileges.resolve(user, group)
    if target.gid is not None:
        if target.user_name is not None:
            os.initgroups(target.user_name, target.gid)   # the user's supplementary groups
        else:
            os.setgroups([target.gid])                    # none of root's
        os.setgid(target.gid)
    if target.uid is not None:
        if target.gid is None:
            os.setgroups([])
        os.setuid(target.uid)
        if target.uid != 0:
            try:
                os.setuid(0)
            except PermissionError:
                pass
            else:  # never serve requests with a way back to root
                raise OSError("could not give up root: setuid(0) succeeded after dropping")


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
            raise OperationsError(f"--unix-socket {path}: exists and is not a socket")
        if _socket_is_live(path):
            raise OperationsError(f"--unix-socket {path}: another server is listening there")
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
        raise OperationsError(f"--unix-socket {path}: cannot listen there: "
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


def describe_address(sock: socket.socket) -> str:
    """'http://127.0.0.1:8000', 'http://[::1]:8000' or 'unix:/run/app.sock' for log lines."""
    name = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        return "unix:" + (name or "(unnamed)")
    host, port = name[0], name[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


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
        raise OperationsError(f"LISTEN_FDS={listen_fds!r}: expected the number of sockets "
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
                raise OperationsError(f"LISTEN_FDS={count}: fd {fd} ({name}) is not an open "
                                      f"socket") from None
            sockets.append(sock)
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) != socket.SOCK_STREAM or \
                    not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) or \
                    sock.family not in (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX):
                raise OperationsError(f"LISTEN_FDS={count}: fd {fd} ({name}) is not a "
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


def listening_sockets(settings: Dict[str, Any], bind_tcp) -> Tuple[List[socket.socket], str]:
    """The server's listening sockets and what made them ('systemd', 'unix' or 'tcp').

    systemd's sockets win over everything (--host/--port/--unix-socket are then ignored, with
    a log line); --unix-socket replaces TCP, as gunicorn's --bind unix:PATH does."""
    passed = systemd_sockets()
    if passed is not None:
        sockets, names = passed
        ignored = "--unix-socket, --host and --port are" if settings.get("unix_socket") \
            else "--host and --port are"
        errorlog.info(f"socket activation: listening on {len(sockets)} socket(s) passed by "
                      f"systemd (LISTEN_FDS): " + ", ".join(
                          f"{name}={describe_address(sock)}" for name, sock in zip(names, sockets))
                      + f"; {ignored} ignored")
        return sockets, "systemd"
    if settings.get("unix_socket"):
        return [bind_unix_socket(settings["unix_socket"], settings["unix_socket_mode"],
                                 settings["listen_backlog"])], "unix"
    return bind_tcp(settings["host"], settings["port"], settings["listen_backlog"]), "tcp"


def server_address(settings: Dict[str, Any], sockets: List[socket.socket]) -> Dict[str, Any]:
    """SERVER_NAME / SERVER_PORT defaults (used when a request has no Host header) for the
    sockets actually listened on: the first TCP socket's port; with UNIX sockets only, port
    80 (443 for https) and, unless --server-name was given, 'localhost', like gunicorn."""
    for sock in sockets:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            return {"port": sock.getsockname()[1]}
    updates: Dict[str, Any] = {"port": 443 if settings.get("url_scheme") == "https" else 80}
    if settings.get("server_name") == settings.get("host"):   # derived from --host, not given
        updates["server_name"] = "localhost"
    return updates


# ------------------------------------------------------------------ --reload-on-changes

def report_modules(report_dir: Optional[str], extra_files=()) -> None:
    """In a child once its application is loaded: write the source files of every imported
    module (and the script files) with their mtimes to REPORT_DIR/PID.modules, atomically,
    for the master's ChangeWatcher.  Best effort: reloading is a development aid."""
    if not report_dir:
        return
    files: Dict[str, int] = {}
    candidates = list(extra_files)
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str):
            candidates.append(path)
    for path in candidates:
        if path.endswith((".pyc", ".pyo")):
            source = getattr(sys.modules.get("importlib.util"), "source_from_cache", None)
            try:
                path = source(path) if source else path[:-1]
            except ValueError:
                path = path[:-1]
        try:
            files[os.path.abspath(path)] = os.stat(path).st_mtime_ns
        except OSError:
            continue          # built-in, zipped or vanished: nothing to watch
    final = os.path.join(report_dir, f"{os.getpid()}.modules")
    temporary = final + ".tmp"
    try:
        with open(temporary, "w", encoding="utf-8", errors="surrogateescape") as f:
            for path, mtime in files.items():
                if "\n" not in path:
                    f.write(f"{mtime} {path}\n")
        os.rename(temporary, final)
    except OSError as exc:
        errorlog.warning(f"--reload-on-changes: cannot report the loaded modules: {exc}")


class ChangeWatcher:
    """In the master (no thread, no import of the application): the files the children
    reported, polled by mtime about once a second; a change asks for a graceful restart."""

    INTERVAL = 1.0

    def __init__(self, privileges: Optional[Privileges] = None) -> None:
        self.directory = tempfile.mkdtemp(prefix="pywsgi-reload-")
        if privileges is not None and privileges.active:
            privileges.chown(self.directory)   # the children write their reports here
        self.files: Dict[str, int] = {}
        self.next_poll = 0.0

    def poll(self, now: float) -> Optional[str]:
        """The first changed file since the last poll (or None); at most once per INTERVAL."""
        if now < self.next_poll:
            return None
        self.next_poll = now + self.INTERVAL
        self._collect_reports()
        changed = None
        for path, seen in self.files.items():
            try:
                mtime = os.stat(path).st_mtime_ns
            except OSError:
                mtime = -1                   # deleted (or being replaced): a change too
            if mtime != seen:
                self.files[path] = mtime     # the new children will report it again anyway
                changed = changed or path
        return changed

    def _collect_reports(self) -> None:
        try:
            names = os.listdir(self.directory)
        except OSError:
            return
        for name in names:
            if not name.endswith(".modules"):
                continue
            path = os.path.join(self.directory, name)
            try:
                with open(path, encoding="utf-8", errors="surrogateescape") as f:
                    for line in f:
                        mtime, _, file_path = line.rstrip("\n").partition(" ")
                        if file_path and mtime.lstrip("-").isdigit():
                            # keep an mtime already known: a change seen between the child's
                            # report and now must still count
                            self.files.setdefault(file_path, int(mtime))
                os.unlink(path)
            except OSError:
                continue

    def close(self) -> None:
        try:
            for name in os.listdir(self.directory):
                os.unlink(os.path.join(self.directory, name))
            os.rmdir(self.directory)
        except OSError:
            pass


# ------------------------------------------------------------------ the master's side, in order

class Startup:
    """What master.run() does for operations, in order: construct (resolve --user/--group,
    check the pid file), listen(), give_to_children(), started(); cleanup() in `finally`."""

    def __init__(self, settings: Dict[str, Any]) -> None:
        self.settings = settings
        self.pid_file = settings.get("pid_file")
        self.unix_path: Optional[str] = None
        self.unix_inode: Optional[int] = None
        self.wrote_pid_file = False
        self.watcher: Optional[ChangeWatcher] = None
        with _as_startup_error():
            self.privileges = Privileges.resolve(settings.get("user"), settings.get("group"))
            check_pid_file(self.pid_file)

    def listen(self, bind_tcp) -> List[socket.socket]:
        with _as_startup_error():
            sockets, kind = listening_sockets(self.settings, bind_tcp)
        if kind == "unix":
            self.unix_path = self.settings["unix_socket"]
            self.unix_inode = os.lstat(self.unix_path).st_ino
            self.give_to_children(self.unix_path)
        return sockets

    def child_settings(self, settings: Dict[str, Any], sockets: List[socket.socket]) -> Dict[str, Any]:
        """The settings the children get: SERVER_NAME/PORT for what is listened on, and the
        report directory of --reload-on-changes."""
        settings = dict(settings, **server_address(settings, sockets))
        if settings.get("reload_on_changes"):
            self.watcher = ChangeWatcher(self.privileges)
            settings["reload_report_dir"] = self.watcher.directory
        return settings

    def give_to_children(self, *paths: Optional[str]) -> None:
        """chown what the root master made and the children must reach after dropping
        privileges (the UNIX socket, the daemon groups' socket directory and sockets)."""
        for path in paths:
            if path:
                try:
                    self.privileges.chown(path)
                except OSError as exc:
                    _raise_startup(f"cannot give {path} to --user/--group: {exc.strerror or exc}")

    def started(self) -> None:
        with _as_startup_error():
            write_pid_file(self.pid_file)
        self.wrote_pid_file = bool(self.pid_file)

    def cleanup(self) -> None:
        if self.wrote_pid_file:
            remove_pid_file(self.pid_file)
        remove_unix_socket(self.unix_path, self.unix_inode)
        if self.watcher is not None:
            self.watcher.close()


def _raise_startup(message: str):
    raise StartupError(message)


class _as_startup_error:
    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if kind is not None and issubclass(kind, OperationsError):
            _raise_startup(str(exc))
        return False


# ------------------------------------------------------------------ the child's side

def enter_child(settings: Dict[str, Any], group=None) -> None:
    """In a forked child, before the application is loaded: open what needs root (the access
    log), then become --user/--group (a daemon group's own user=/group= win)."""
    user, group_name = settings.get("user"), settings.get("group")
    if group is not None and getattr(group, "user", None):
        user, group_name = group.user, group.group
    elif group is not None and getattr(group, "group", None):
        group_name = group.group
    if os.geteuid() != 0 or not (user or group_name):
        return
    access_log = settings.get("access_log")
    if access_log not in (None, "-") and not settings.get("daemon_role"):
        # opened as root, like Apache's logs; the core takes the fd instead of the path
        settings["access_log_fd"] = os.open(
            access_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    drop_privileges(user, group_name)
