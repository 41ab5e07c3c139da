"""The master process: binds, forks the server children and supervises them.

    master (this module, Python, no threads)
      ├─ binds the listening socket(s) once; children inherit them across fork()
      ├─ forks --processes children; each loads the application(s) and runs pywsgi._core.serve()
      ├─ respawns a child that dies, with exponential backoff (0.1 s doubling to 10 s; reset once a
      │  child has run 30 s) and an error-log line naming the pid and the exit status or signal
      ├─ SIGTERM: forward SIGTERM (graceful), wait up to graceful_timeout + 1 s, SIGKILL leftovers
      ├─ SIGINT: forward SIGINT (quick), wait briefly, SIGKILL leftovers
      ├─ SIGHUP: graceful restart — start a new child per slot; when it is ready, SIGTERM the old
      │  one. A new child that fails to start leaves the old one serving.
      └─ SIGUSR1: reopen the error log (logrotate); forwarded to the children.

Children die with the master: PR_SET_PDEATHSIG on Linux, a getppid() poll elsewhere. The master
sleeps in select() on a signal wakeup fd and the children's ready pipe, so signals are handled at
once and nothing blocks while holding the GIL.

Exit codes of a child: 0 clean stop, 3 the application failed to load (its one-line message is
already on stderr). If a child exits with 3 before any child ever became ready, the master stops
the others and returns 2: a bad script never turns into a respawn loop at startup.
"""
from __future__ import annotations

import errno
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Union

from pywsgi import __version__, loader, operations
from pywsgi.config.settings import application_group_for
from pywsgi.observe import errorlog
from pywsgi.errors import EXIT_LOAD_FAILED, EXIT_OK, EXIT_USAGE, LoadError, StartupError
from pywsgi.site.load import load_mounts
from pywsgi.site.mounts import Mount, MountKind
from pywsgi.site.plan import serves_only_the_welcome_page

__all__ = ["StartupError", "bind_sockets", "run",
           "EXIT_OK", "EXIT_USAGE", "EXIT_LOAD_FAILED"]

BACKOFF_FIRST = 0.1
BACKOFF_MAX = 10.0
BACKOFF_RESET_AFTER = 30.0
QUICK_STOP_WAIT = 1.0     # SIGINT: how long children get before SIGKILL

_MASTER_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD, signal.SIGUSR1)
_PID_RECORD = struct.Struct("=ii")   # (pid, what): a child's message on the ready pipe
_READY, _RECYCLING, _REPLACE_ME = 0, 1, 2   # what: ready / stopped accepting / replace me first


# ------------------------------------------------------------------ sockets

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
    try:
        infos = socket.getaddrinfo(lookup_host, port, socket.AF_UNSPEC, socket.SOCK_STREAM,
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
                                       f"(another server is running there; choose --port)") from None
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


# ------------------------------------------------------------------ children

def _status_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        return f"was killed by {name}"
    if os.WIFEXITED(status):
        return f"exited with status {os.WEXITSTATUS(status)}"
    return f"ended with wait status {status}"


def _set_parent_death_signal(master_pid: int) -> None:
    """Make this child die with the master, however the master ends."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            PR_SET_PDEATHSIG = 1
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        except (OSError, AttributeError):
            _start_parent_watch(master_pid)
    else:
        _start_parent_watch(master_pid)
    if os.getppid() != master_pid:  # the master died before prctl took effect
        os._exit(EXIT_OK)


def _start_parent_watch(master_pid: int) -> None:
    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != master_pid:
                os.kill(os.getpid(), signal.SIGTERM)
                return
    threading.Thread(target=watch, name="pywsgi-parent-watch", daemon=True).start()


def _child_main(settings: Dict[str, Any], sockets: List[socket.socket], mounts: List[Mount],
                ready_fd: int, master_pid: int, blocked_mask, group=None) -> None:
    """Runs in the forked child (a server process, or a daemon process of `group`); never
    returns (os._exit)."""
    exit_code = 1
    try:
        _set_parent_death_signal(master_pid)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked_mask)
        import atexit
        atexit._clear()  # the master's (or the embedding program's) hooks are not ours to run
        # SIGTERM/SIGINT keep their default action (die) while the application loads.
        if group is not None:
            from pywsgi.daemon.group import enter_group
            enter_group(group)
        operations.enter_child(settings, group)   # --user/--group (docs/operations.md)
        if settings["error_log"] is not None:
            # As mod_wsgi does: what the application prints (sys.stderr, sys.stdout, a logging
            # handler on the console) is logged, so a service whose output is discarded loses
            # nothing.  (The access log's "-" is the C core's own descriptor, not sys.stdout.)
            sys.stderr = errorlog.ErrorStream()
            sys.stdout = errorlog.ErrorStream()

        try:
            core_mounts = load_mounts(settings, mounts)
        except LoadError as exc:
            # an exception raised by the application's code has a traceback worth seeing
            more = ("" if exc.__cause__ is None or errorlog.is_enabled("debug")
                    else " (--log-level debug prints the traceback)")
            sys.__stderr__.write(f"pywsgi: error: cannot load application: {exc}{more}\n")
            sys.__stderr__.flush()
            if settings["error_log"] is not None:
                errorlog.error(f"cannot load application: {exc}{more}")
            if exc.__cause__ is not None and errorlog.is_enabled("debug"):
                import traceback
                errorlog.debug("".join(traceback.format_exception(
                    type(exc.__cause__), exc.__cause__, exc.__cause__.__traceback__)))
            os._exit(EXIT_LOAD_FAILED)
        operations.report_modules(settings.get("reload_report_dir"),   # --reload-on-changes
                                  [m.target for m in mounts if isinstance(m.target, str)])

        from pywsgi import _core
        stop_state = {"requested": False}

        def on_sigterm(signum, frame):
            stop_state["requested"] = True
            # Safety net: the master SIGKILLs after graceful_timeout + 1 s anyway, but an
            # orphaned child (master killed) has nobody else to enforce the limit.
            pending = signal.alarm(0)  # a repeated SIGTERM must not push the limit back
            signal.alarm(pending or int(settings["graceful_timeout"]) + 2)
            _core.stop(graceful=True)

        def on_sigint(signum, frame):
            stop_state["requested"] = True
            signal.alarm(2)
            _core.stop(graceful=False)

        signal.signal(signal.SIGTERM, on_sigterm)
        signal.signal(signal.SIGINT, on_sigint)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)   # restarts are the master's business
        def on_sigusr1(signum, frame):
            try:
                errorlog.reopen()
                _core.reopen_logs()
            except OSError as exc:  # e.g. --user cannot open root's new file: keep the old one
                errorlog.warning(f"cannot reopen the logs: {exc}; still writing to the old file")

        signal.signal(signal.SIGUSR1, on_sigusr1)

        os.write(ready_fd, _PID_RECORD.pack(os.getpid(), _READY))

        def tell_master(what: int) -> None:
            try:
                os.write(ready_fd, _PID_RECORD.pack(os.getpid(), what))
            except OSError:
                pass
        # Recycling (maximum-requests, a daemon group's limits): this process has stopped
        # accepting; the master starts its replacement now, not when it exits. A changed script
        # (a daemon group): the master replaces this process as SIGHUP does, new one first.
        settings = dict(settings, on_recycle=lambda: tell_master(_RECYCLING),
                        on_reload=lambda: tell_master(_REPLACE_ME))
        if stop_state["requested"]:
            os._exit(EXIT_OK)
        _core.serve([sock.fileno() for sock in sockets], core_mounts, settings)
        exit_code = EXIT_OK
    except SystemExit as exc:
        exit_code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        try:
            errorlog.exception("daemon process failed" if group is not None
                               else "server process failed")
        except BaseException:
            pass
    finally:
        try:
            if exit_code == EXIT_OK:
                import atexit
                atexit._run_exitfuncs()  # applications' atexit hooks, as mod_wsgi runs them
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:
            pass
        os._exit(exit_code)


# ------------------------------------------------------------------ the master

@dataclass
class _Child:
    pid: int
    slot: int
    started: float
    ready: bool = False
    retiring: bool = False
    kill_at: Optional[float] = None


@dataclass
class _Slot:
    index: int                           # position in Master.slots
    process_index: int = 0               # 0..N-1 within its kind (server, or one daemon group)
    group: Any = None                    # a daemon.DaemonGroup for a daemon process slot
    current: Optional[int] = None        # pid serving (or starting) in this slot
    previous: Optional[int] = None       # during a graceful restart: the old pid, until the new is ready
    backoff: float = BACKOFF_FIRST
    respawn_at: Optional[float] = None

    def name(self) -> str:
        """How the log names the slot's process: "server process 0", "daemon process 1 of
        group NAME"."""
        if self.group is None:
            return f"server process {self.index}"
        return f"daemon process {self.process_index} of group {self.group.name}"


class Master:
    def __init__(self, settings: Dict[str, Any], sockets: List[socket.socket],
                 mounts: List[Mount], plan: Optional["_DaemonPlan"] = None) -> None:
        self.settings = settings
        self.sockets = sockets
        self.mounts = mounts
        self.plan = plan
        self.pid = os.getpid()
        self.children: Dict[int, _Child] = {}
        self.slots = [_Slot(i, i) for i in range(settings["processes"])]
        for group in (plan.groups if plan else ()):
            for i in range(group.processes):
                self.slots.append(_Slot(len(self.slots), i, group))
        self.ever_ready = False
        self.load_failed = False
        self.pending_signals: List[int] = []
        self._ready_buffer = b""
        self.watcher: Optional[operations.ChangeWatcher] = None   # --reload-on-changes
        self.on_started: Optional[Callable[[], None]] = None      # the pid file

    # -- signals
    def _on_signal(self, signum, frame) -> None:
        self.pending_signals.append(signum)

    def _install_signals(self) -> None:
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.ready_r, self.ready_w = os.pipe()
        os.set_blocking(self.ready_r, False)
        self.saved_handlers = {sig: signal.getsignal(sig) for sig in _MASTER_SIGNALS}
        self.saved_wakeup_fd = signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        for sig in _MASTER_SIGNALS:
            signal.signal(sig, self._on_signal)
        # A write past RLIMIT_FSIZE must fail with EFBIG, which the access log reports, not
        # kill the process: the python command ignores SIGXFSZ, a program embedding Python
        # may not.  The children inherit it.
        if hasattr(signal, "SIGXFSZ"):
            self.saved_handlers[signal.SIGXFSZ] = signal.getsignal(signal.SIGXFSZ)
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    def _restore_signals(self) -> None:
        for sig, handler in self.saved_handlers.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        signal.set_wakeup_fd(self.saved_wakeup_fd)
        for fd in (self.wake_r, self.wake_w, self.ready_r, self.ready_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def _wait(self, timeout: float) -> None:
        """Sleep until a signal, a ready message, or the timeout."""
        try:
            readable, _, _ = select.select([self.wake_r, self.ready_r], [], [], max(0.0, timeout))
        except InterruptedError:
            readable = []
        if self.wake_r in readable:
            try:
                while os.read(self.wake_r, 512):
                    pass
            except (BlockingIOError, InterruptedError):
                pass
        if self.ready_r in readable:
            self._read_ready()

    # -- spawning
    def _spawn(self, slot: _Slot) -> Optional[int]:
        slot.respawn_at = None
        if slot.group is None:
            child_settings = dict(self.settings, process_index=slot.process_index)
            sockets, mounts = self.sockets, self.mounts
        else:
            from pywsgi.daemon.group import group_settings
            child_settings = group_settings(self.settings, slot.group, slot.process_index,
                                                   self.plan.script_paths(slot.group))
            sockets, mounts = [self.plan.sockets[slot.group.name]], self.plan.mounts_for(slot.group)
        child_settings["scoreboard_slot"] = slot.index
        self._scoreboard_spawning(slot)
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _MASTER_SIGNALS)
        try:
            pid = os.fork()
        except OSError as exc:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            errorlog.error(f"cannot start {slot.name()}: {exc.strerror}")
            self._schedule_respawn(slot, ran_for=0.0)
            return None
        if pid == 0:  # the child
            try:
                for sig in _MASTER_SIGNALS:
                    signal.signal(sig, signal.SIG_DFL)
                signal.set_wakeup_fd(-1)
                for fd in (self.wake_r, self.wake_w, self.ready_r):
                    os.close(fd)
            finally:
                _child_main(child_settings, sockets, mounts, self.ready_w,
                            self.pid, mask, slot.group)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        if self.scoreboard is not None:
            self.scoreboard.scoreboard_forked(slot.index, pid)
        self.children[pid] = _Child(pid, slot.index, time.monotonic())
        errorlog.debug(f"started {slot.name()} (pid {pid})")
        return pid

    def _schedule_respawn(self, slot: _Slot, ran_for: float) -> float:
        if ran_for >= BACKOFF_RESET_AFTER:
            slot.backoff = BACKOFF_FIRST
        delay = slot.backoff
        slot.backoff = min(slot.backoff * 2, BACKOFF_MAX)
        slot.respawn_at = time.monotonic() + delay
        return delay

    # -- events
    def _read_ready(self) -> None:
        try:
            while True:
                data = os.read(self.ready_r, 4096)
                if not data:
                    break
                self._ready_buffer += data
        except (BlockingIOError, InterruptedError):
            pass
        size = _PID_RECORD.size
        while len(self._ready_buffer) >= size:
            pid, what = _PID_RECORD.unpack(self._ready_buffer[:size])
            self._ready_buffer = self._ready_buffer[size:]
            if what == _RECYCLING:
                self._on_recycling(pid)
            elif what == _REPLACE_ME:
                self._replace(pid)
            else:
                self._on_ready(pid)

    def _replace(self, pid: int) -> None:
        """A graceful restart of one child's slot: a new process starts, and the old one is
        retired once the new one is ready (it keeps serving if the new one fails to start)."""
        child = self.children.get(pid)
        if child is None or child.retiring:
            return
        slot = self.slots[child.slot]
        if slot.current != pid or slot.previous is not None:
            return  # a graceful restart already replaces it
        errorlog.info(f"replacing {slot.name()} (pid {pid}) at its request")
        slot.previous = pid
        slot.current = self._spawn(slot)
        if slot.current is None:
            slot.current, slot.previous = slot.previous, None

    def _on_recycling(self, pid: int) -> None:
        """A child is being recycled (it stopped accepting and finishes its requests): start
        its replacement at once. The old one exits by itself; kill_at is only a safety net."""
        child = self.children.get(pid)
        if child is None or child.retiring:
            return
        slot = self.slots[child.slot]
        if slot.current != pid or slot.previous is not None:
            return  # a graceful restart already replaces it
        child.retiring = True
        grace = max(self.settings["graceful_timeout"],
                    getattr(slot.group, "graceful_timeout", 0.0))
        child.kill_at = time.monotonic() + grace + 5.0
        errorlog.debug(f"{slot.name()} (pid {pid}) is being recycled; "
                       f"starting its replacement")
        slot.current = self._spawn(slot)

    def _on_ready(self, pid: int) -> None:
        child = self.children.get(pid)
        if child is None:
            return
        child.ready = True
        if not self.ever_ready and all(c.ready for c in self.children.values()):
            self.ever_ready = True
            # Logged once every first process can serve, so it means "ready", and a script
            # that fails to load leaves only its one error line on stderr.
            groups = "".join(f"; daemon process group {g.name} (processes={g.processes} "
                             f"threads={g.threads})" for g in (self.plan.groups if self.plan else ()))
            errorlog.info(f"pywsgi {__version__} listening on {_listen_urls(self.sockets)} "
                          f"(processes={self.settings['processes']} "
                          f"threads={self.settings['threads']}{groups})")
            if serves_only_the_welcome_page(self.mounts):
                # `pywsgi` alone: say what it serves and how to serve something
                errorlog.info("no application given: only the welcome page is served; mount a "
                              "script with 'pywsgi myapp.wsgi', a module with 'pywsgi "
                              "pkg.module:application', several with --script-alias /URL=PATH, "
                              "files with --document-root DIR (pywsgi --help)")
        slot = self.slots[child.slot]
        errorlog.debug(f"{slot.name()} (pid {pid}) is ready")
        if slot.current == pid and slot.previous is not None:
            self._retire(slot.previous)
            slot.previous = None

    def _retire(self, pid: int) -> None:
        child = self.children.get(pid)
        if child is None:
            return
        child.retiring = True
        child.kill_at = time.monotonic() + self.settings["graceful_timeout"] + 1.0
        self._kill(pid, signal.SIGTERM)

    def _kill(self, pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def _reap(self, stopping: bool) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            except InterruptedError:
                continue
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is None:
                continue  # not ours (the Python API may run inside a program with children)
            if not stopping:
                self._on_exit(child, status)

    def _on_exit(self, child: _Child, status: int) -> None:
        slot = self.slots[child.slot]
        if self.scoreboard is not None:
            keeps = slot.previous if child.pid == slot.current and slot.previous else 0
            self.scoreboard.scoreboard_exited(child.slot, child.pid, keeps)
        ran_for = time.monotonic() - child.started
        if child.retiring:
            errorlog.debug(f"old {slot.name()} (pid {child.pid}) {_status_text(status)}")
            return
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == EXIT_LOAD_FAILED \
                and not self.ever_ready:
            self.load_failed = True
            return
        if child.pid == slot.previous:
            slot.previous = None
            errorlog.error(f"{slot.name()} (pid {child.pid}) "
                           f"{_status_text(status)} during a graceful restart")
            return
        if child.pid != slot.current:
            return
        if slot.previous is not None:
            # the replacement failed to start: keep the old process serving
            errorlog.error(f"graceful restart of {slot.name()} failed: new process "
                           f"(pid {child.pid}) {_status_text(status)}; the old process "
                           f"(pid {slot.previous}) keeps serving")
            slot.current, slot.previous = slot.previous, None
            return
        slot.current = None
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == EXIT_OK:
            errorlog.info(f"{slot.name()} (pid {child.pid}) exited; starting a new one")
            slot.respawn_at = time.monotonic()
            return
        delay = self._schedule_respawn(slot, ran_for)
        errorlog.error(f"{slot.name()} (pid {child.pid}) {_status_text(status)}; "
                       f"restarting it in {delay:g} s")

    def _graceful_restart(self) -> None:
        errorlog.info("graceful restart requested (SIGHUP): starting new processes")
        for slot in self.slots:
            if slot.current is None:
                slot.backoff = BACKOFF_FIRST
                slot.current = self._spawn(slot)
                continue
            if slot.previous is not None:
                # a restart is already under way: replace its not-yet-ready new process
                self._retire(slot.current)
            else:
                slot.previous = slot.current
            slot.current = self._spawn(slot)
            if slot.current is None:
                slot.current, slot.previous = slot.previous, None

    # -- the --server-status scoreboard (pywsgi/status.py, csrc/scoreboard.c)
    scoreboard = None

    def _open_scoreboard(self) -> None:
        if not self.settings.get("server_status"):
            return
        from pywsgi import _core
        groups = self.plan.groups if self.plan else ()
        _core.scoreboard_create(len(self.slots), [group.name for group in groups])
        self.scoreboard = _core

    def _scoreboard_spawning(self, slot: _Slot) -> None:
        if self.scoreboard is None:
            return
        group = self.plan.groups.index(slot.group) if slot.group is not None else -1
        self.scoreboard.scoreboard_spawning(slot.index, slot.group is not None, group,
                                            slot.process_index, slot.current is not None)

    # -- the loop
    def run(self) -> int:
        self._install_signals()
        try:
            if self.on_started is not None:
                # only now: a SIGTERM from whoever read the pid file must find the handlers
                self.on_started()
            self._open_scoreboard()
            for slot in self.slots:
                slot.current = self._spawn(slot)
            while True:
                now = time.monotonic()
                deadlines = [s.respawn_at for s in self.slots if s.respawn_at is not None]
                deadlines += [c.kill_at for c in self.children.values() if c.kill_at is not None]
                timeout = min([1.0] + [d - now for d in deadlines])
                self._wait(timeout)
                self._read_ready()      # ready messages before exits: see _on_exit
                self._reap(stopping=False)

                while self.pending_signals:
                    sig = self.pending_signals.pop(0)
                    if sig == signal.SIGTERM:
                        errorlog.info("SIGTERM received: stopping gracefully")
                        self._stop(signal.SIGTERM, self.settings["graceful_timeout"] + 1.0)
                        return EXIT_OK
                    if sig == signal.SIGINT:
                        errorlog.info("SIGINT received: stopping")
                        self._stop(signal.SIGINT, QUICK_STOP_WAIT)
                        return EXIT_OK
                    if sig == signal.SIGHUP:
                        self._graceful_restart()
                    elif sig == signal.SIGUSR1:
                        errorlog.reopen()
                        for pid in list(self.children):
                            self._kill(pid, signal.SIGUSR1)

                changed = self.watcher.poll(time.monotonic()) if self.watcher else None
                if changed:
                    errorlog.info(f"--reload-on-changes: {changed} changed")
                    self._graceful_restart()

                if self.load_failed:
                    # the child printed why; a respawn loop would only print it again
                    self._stop(signal.SIGTERM, QUICK_STOP_WAIT)
                    return EXIT_USAGE

                now = time.monotonic()
                for slot in self.slots:
                    if slot.respawn_at is not None and slot.respawn_at <= now:
                        slot.current = self._spawn(slot)
                for child in list(self.children.values()):
                    if child.kill_at is not None and child.kill_at <= now:
                        errorlog.warning(f"old {self.slots[child.slot].name()} (pid "
                                         f"{child.pid}) did not stop within the graceful "
                                         f"timeout; killing it")
                        self._kill(child.pid, signal.SIGKILL)
                        child.kill_at = None
        except BaseException:
            self._stop(signal.SIGKILL, 0.0)
            raise
        finally:
            self._restore_signals()
            if self.scoreboard is not None:
                self.scoreboard.scoreboard_close()

    def _stop(self, sig: int, wait: float) -> None:
        """Send sig to every child, wait up to `wait` seconds, SIGKILL the rest, reap all."""
        for pid in list(self.children):
            self._kill(pid, sig)
        deadline = time.monotonic() + wait
        while self.children:
            self._reap(stopping=True)
            remaining = deadline - time.monotonic()
            if not self.children or remaining <= 0:
                break
            self._wait(min(remaining, 0.2))
            if signal.SIGINT in self.pending_signals and sig == signal.SIGTERM:
                # a second Ctrl-C during a graceful stop: hurry up
                self.pending_signals.clear()
                sig = signal.SIGINT
                for pid in list(self.children):
                    self._kill(pid, signal.SIGINT)
                deadline = min(deadline, time.monotonic() + QUICK_STOP_WAIT)
        for pid in list(self.children):
            errorlog.warning(f"{self.slots[self.children[pid].slot].name()} (pid {pid}) did "
                             f"not stop in time; killing it")
            self._kill(pid, signal.SIGKILL)
        for pid in list(self.children):
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
            self.children.pop(pid, None)


def _listen_urls(sockets: List[socket.socket]) -> str:
    return ", ".join(operations.describe_address(sock) for sock in sockets)


def run(settings: Dict[str, Any], mounts: List[Mount]) -> int:
    """Bind, fork and supervise until stopped. Returns the exit code (0, or 2 when the
    application failed to load); raises StartupError for a bad address or port."""
    try:
        errorlog.configure(settings["log_level"], settings["error_log"])
    except OSError as exc:
        raise StartupError(f"cannot open the error log {settings['error_log']}: "
                           f"{exc.strerror or exc}") from None
    try:
        # Imported once here, not in every child: a broken build is one error, not a respawn loop.
        from pywsgi import _core  # noqa: F401
    except ImportError as exc:
        raise StartupError(f"cannot import the pywsgi core (pywsgi._core): {exc}") from None
    if settings.get("access_log_format"):
        try:
            _core.check_access_log_format(settings["access_log_format"])
        except ValueError as exc:
            raise StartupError(f"--access-log-format: {exc}") from None
    if settings.get("access_log") not in (None, "-"):
        try:
            with open(settings["access_log"], "a"):
                pass
        except OSError as exc:
            raise StartupError(f"cannot open the access log {settings['access_log']}: "
                               f"{exc.strerror or exc}") from None
    settings, mounts, plan = _plan_daemon_mode(settings, mounts)
    ops = operations.Startup(settings)   # --user/--group resolved, --pid-file checked
    sockets = ops.listen(bind_sockets)   # systemd's sockets, --unix-socket, or TCP
    try:
        settings = ops.child_settings(settings, sockets)
        if plan is not None:
            plan.bind()
            ops.give_to_children(plan.directory, *(g.socket_path for g in plan.groups))
        for mount in mounts:
            errorlog.debug(f"mounted {mount.label} at {mount.prefix or '/'}")
        supervisor = Master(settings, sockets, mounts, plan)
        supervisor.watcher = ops.watcher
        supervisor.on_started = ops.started  # the pid file, once listening and signals are ours
        return supervisor.run()
    finally:
        for sock in sockets:
            sock.close()
        if plan is not None:
            plan.close()
        ops.cleanup()


# ------------------------------------------------------------------ daemon mode

EMBEDDED_GROUP = "%{GLOBAL}"   # --mount-process-group /URL=%{GLOBAL}: that URL stays embedded

@dataclass
class _DaemonPlan:
    groups: List[Any]                    # daemon.DaemonGroup, each with processes slots
    daemon_mounts: List[Mount]           # what the daemon processes load and serve
    sockets: Dict[str, socket.socket] = field(default_factory=dict)
    directory: Optional[str] = None
    group_mounts: Dict[str, List[Mount]] = field(default_factory=dict)  # group name -> its mounts

    def mounts_for(self, group: Any) -> List[Mount]:
        return self.group_mounts.get(group.name, self.daemon_mounts)

    def script_paths(self, group: Any) -> List[str]:
        """The script files a group's processes load: touching one reloads the group."""
        return sorted({m.target for m in self.mounts_for(group)
                       if isinstance(m.target, str) and os.path.isfile(m.target)})

    def bind(self) -> None:
        import tempfile
        from pywsgi.daemon.group import bind_group_socket
        self.directory = tempfile.mkdtemp(prefix="pywsgi-")  # mode 0700: ours alone
        for group in self.groups:
            self.sockets[group.name] = bind_group_socket(group, self.directory)

    def close(self) -> None:
        for sock in self.sockets.values():
            sock.close()
        if self.directory:
            for group in self.groups:
                try:
                    os.unlink(group.socket_path)
                except OSError:
                    pass
            try:
                os.rmdir(self.directory)
            except OSError:
                pass


def _plan_daemon_mode(settings: Dict[str, Any], mounts: List[Mount]):
    """Embedded mode: (settings, mounts, None).  Daemon mode: the server processes' settings,
    their mounts (application mounts relayed to their group) and the plan for the daemons.

    Each application mount (a script, a module, a mod_python handler, a directory of handler
    scripts) runs in the group named for its URL: the longest matching --mount-process-group
    URL, else --process-group, else embedded (in the server processes)."""
    from dataclasses import replace
    from pywsgi.config.daemon_groups import DaemonGroup
    groups: Dict[str, Any] = {}
    for group in settings.get("daemon_process") or ():
        if group.name in groups:
            raise StartupError(f"--daemon-process {group.name}: the group is defined twice")
        groups[group.name] = group
    name = settings.get("process_group") or ""
    if settings.get("daemon") and not name:
        name = "%s:%d" % (settings["host"], settings["port"])  # as mod_wsgi-express names it
    per_url = list(settings.get("mount_process_group") or ())
    if not name and not per_url:
        if groups:
            errorlog.warning("daemon process groups defined but none selected with "
                             "--process-group: the application runs embedded")
        return settings, mounts, None
    if name and name not in groups:
        if not settings.get("daemon"):
            raise StartupError(f"--process-group {name}: no such daemon process group (define it "
                               f"with --daemon-process {name}:processes=N,threads=M)")
        # mod_wsgi-express's group: --request-timeout and --interrupt-timeout are its options
        groups[name] = DaemonGroup(name, processes=settings["processes"],
                                   threads=settings["threads"],
                                   request_timeout=settings.get("request_timeout") or 0.0,
                                   interrupt_timeout=settings.get("interrupt_timeout") or 0.0)
    for url, group_name in per_url:
        if group_name != EMBEDDED_GROUP and group_name not in groups:
            raise StartupError(f"--mount-process-group {url or '/'}={group_name}: no such daemon "
                               f"process group (define it with --daemon-process "
                               f"{group_name}:processes=N,threads=M)")

    def group_for(prefix: str) -> str:
        best = None
        for url, group_name in per_url:
            if url == "" or prefix == url or prefix.startswith(url + "/"):
                if best is None or len(url) > len(best[0]):
                    best = (url, group_name)
        chosen = best[1] if best is not None else name
        return "" if chosen == EMBEDDED_GROUP else chosen

    # mount -> group name ("" embedded); a sub-mount made for access rules follows its parent
    assigned: Dict[int, str] = {}
    for mount in mounts:
        if mount.parent is None and mount.runs_in_daemon:
            assigned[id(mount)] = group_for(mount.prefix)
    for mount in mounts:
        if mount.parent is not None and id(mount.parent) in assigned:
            assigned[id(mount)] = assigned[id(mount.parent)]
    group_mounts: Dict[str, List[Mount]] = {}
    for mount in mounts:
        if assigned.get(id(mount)):
            group_mounts.setdefault(assigned[id(mount)], []).append(mount)
    if not group_mounts:
        if not name:  # every --mount-process-group said %{GLOBAL}: embedded mode after all
            return settings, mounts, None
        raise StartupError("daemon mode needs an application script or module to run in the "
                           "daemon process group")
    for other in groups:
        if other not in group_mounts:
            # an unused group would only load the application in processes nothing sends
            # requests to
            errorlog.warning(f"daemon process group {other} serves no mount (see --process-group "
                             f"and --mount-process-group): not started")
    used = [groups[group_name] for group_name in groups if group_name in group_mounts]
    for group in used:
        if group.python_home:
            errorlog.warning(f"daemon process group {group.name}: python-home only adds the "
                             f"environment's site-packages to sys.path; the daemon runs the "
                             f"server's interpreter")
    server_mounts = []
    for mount in mounts:
        group_name = assigned.get(id(mount))
        if group_name:
            mount = replace(mount, target=groups[group_name], kind=MountKind.DAEMON, wrap=None,
                            parent=None, subdirectory=None)
        elif id(mount) in assigned and (name or per_url):
            # an application left embedded beside relayed ones: it runs in no daemon group
            mount.extras.setdefault("mod_wsgi.process_group", "")
            mount.extras.setdefault("pywsgi.process_group", "")
        server_mounts.append(mount)
    threads = settings.get("server_threads") or max(
        4, sum(group.processes * group.threads for group in used))
    settings = dict(settings, process_group=name, processes=settings["server_processes"],
                    threads=threads)
    return settings, server_mounts, _DaemonPlan(used, [m for ms in group_mounts.values()
                                                       for m in ms], group_mounts=group_mounts)
