"""The supervisor (gunicorn's arbiter): forks the server and daemon processes and keeps them
running. What a child does is worker.py; the sockets, the pid file and --user/--group are
sockets.py, pidfile.py, privileges.py, driven by startup.py.

    master (Master in this module, Python, no threads)
      ├─ binds the listening socket(s) once; children inherit them across fork()
      ├─ forks --processes children; each loads the application(s) and runs pywsgi._core.serve()
      ├─ respawns a child that dies, with exponential backoff (0.1 s doubling to 10 s; reset once a
      │  child has run 30 s) and an error-log line naming the pid and the exit status or signal
      ├─ SIGTERM: the graceful stop (docs/deploying.md): --ready-url answers 503 at once; after
      │  --shutdown-delay the master lets go of the listening sockets and forwards SIGTERM to the
      │  server processes (each serves its listen backlog and in-flight requests), waits up to
      │  graceful_timeout + 1 s, then the same for the daemon processes; SIGKILL leftovers
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

import os
import select
import signal
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

from pywsgi.daemon.group import group_settings
from pywsgi.daemon.plan import DaemonPlan, plan_daemon_mode
from pywsgi.errors import EXIT_LOAD_FAILED, EXIT_OK, EXIT_USAGE, StartupError
from pywsgi.observe import errorlog
from pywsgi.process.open_files import settle_max_clients
from pywsgi.process.reloader import ChangeWatcher
from pywsgi.process.sockets import describe_address
from pywsgi.process.startup import Startup
from pywsgi.process.worker import (
    PID_RECORD,
    RECYCLING,
    REPLACE_ME,
    child_main,
    status_text,
)
from pywsgi.site.mounts import Mount
from pywsgi.site.plan import serves_only_the_welcome_page
from pywsgi.version import __version__

__all__ = ["Master", "run"]

BACKOFF_FIRST = 0.1
BACKOFF_MAX = 10.0
BACKOFF_RESET_AFTER = 30.0
QUICK_STOP_WAIT = 1.0     # SIGINT: how long children get before SIGKILL

_MASTER_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD, signal.SIGUSR1)


@dataclass
class _Child:
    pid: int
    slot: int
    started: float
    ready: bool = False
    retiring: bool = False
    kill_at: Optional[float] = None
    live: bool = False          # a daemon process that accepts requests (ready, not stopping)


@dataclass
class _Slot:
    index: int                           # position in Master.slots
    process_index: int = 0               # 0..N-1 within its kind (server, or one daemon group)
    group: Any = None                    # a DaemonGroup, for a daemon process slot
    current: Optional[int] = None        # pid serving (or starting) in this slot
    previous: Optional[int] = None       # graceful restart: the old pid, until the new is ready
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
                 mounts: List[Mount], plan: Optional[DaemonPlan] = None) -> None:
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
        self.watcher: Optional[ChangeWatcher] = None   # --reload-on-changes
        self.on_started: Optional[Callable[[], None]] = None      # the pid file
        self.stop_at: Optional[float] = None   # SIGTERM: when --shutdown-delay is over

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
                self._close_others_sockets(sockets)
            finally:
                child_main(child_settings, sockets, mounts, self.ready_w,
                            self.pid, mask, slot.group)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        if self.scoreboard is not None:
            self.scoreboard.scoreboard_forked(slot.index, pid)
        self.children[pid] = _Child(pid, slot.index, time.monotonic())
        errorlog.debug(f"started {slot.name()} (pid {pid})")
        return pid

    def _close_others_sockets(self, keep: List[socket.socket]) -> None:
        """In a new child: close the listening sockets it does not serve (a daemon process
        has the server's from the fork). A listening socket closes, resetting what is queued in
        it, when its last holder lets go: that must be a process that has just drained it
        (docs/deploying.md, "The stop sequence"), not a daemon process exiting later."""
        others = list(self.sockets) + (list(self.plan.sockets.values()) if self.plan else [])
        for sock in others:
            if all(sock is not mine for mine in keep):
                sock.close()

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
        size = PID_RECORD.size
        while len(self._ready_buffer) >= size:
            pid, what = PID_RECORD.unpack(self._ready_buffer[:size])
            self._ready_buffer = self._ready_buffer[size:]
            if what == RECYCLING:
                self._on_recycling(pid)
            elif what == REPLACE_ME:
                self._replace(pid)
            else:
                self._on_ready(pid)

    def _serving(self, pid: int) -> Optional[_Child]:
        """The child `pid` if it serves its slot and nothing replaces it yet (no graceful
        restart under way, not retiring), else None."""
        child = self.children.get(pid)
        if child is None or child.retiring:
            return None
        slot = self.slots[child.slot]
        if slot.current != pid or slot.previous is not None:
            return None  # a graceful restart already replaces it
        return child

    def _replace(self, pid: int) -> None:
        """A graceful restart of one child's slot: a new process starts, and the old one is
        retired once the new one is ready (it keeps serving if the new one fails to start)."""
        child = self._serving(pid)
        if child is None:
            return
        slot = self.slots[child.slot]
        errorlog.info(f"replacing {slot.name()} (pid {pid}) at its request")
        slot.previous = pid
        slot.current = self._spawn(slot)
        if slot.current is None:
            slot.current, slot.previous = slot.previous, None

    def _on_recycling(self, pid: int) -> None:
        """A child is being recycled (it stopped accepting and finishes its requests): start
        its replacement at once. The old one exits by itself; kill_at is only a safety net."""
        child = self._serving(pid)
        if child is None:
            return
        slot = self.slots[child.slot]
        child.retiring = True
        self._set_live(child, False)   # it stopped accepting
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
                             f"threads={g.threads})"
                             for g in (self.plan.groups if self.plan else ()))
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
        if slot.group is not None and not child.retiring:
            self._set_live(child, True)
        if slot.current == pid and slot.previous is not None:
            self._retire(slot.previous)
            slot.previous = None

    def _retire(self, pid: int) -> None:
        child = self.children.get(pid)
        if child is None:
            return
        child.retiring = True
        child.kill_at = time.monotonic() + self.settings["graceful_timeout"] + 1.0
        self._set_live(child, False)
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
        self._set_live(child, False)
        if self.scoreboard is not None:
            keeps = slot.previous if child.pid == slot.current and slot.previous else 0
            self.scoreboard.scoreboard_exited(child.slot, child.pid, keeps)
        ran_for = time.monotonic() - child.started
        if child.retiring:
            errorlog.debug(f"old {slot.name()} (pid {child.pid}) {status_text(status)}")
            return
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == EXIT_LOAD_FAILED \
                and not self.ever_ready:
            self.load_failed = True
            return
        if child.pid == slot.previous:
            slot.previous = None
            errorlog.error(f"{slot.name()} (pid {child.pid}) "
                           f"{status_text(status)} during a graceful restart")
            return
        if child.pid != slot.current:
            return
        if slot.previous is not None:
            # the replacement failed to start: keep the old process serving
            errorlog.error(f"graceful restart of {slot.name()} failed: new process "
                           f"(pid {child.pid}) {status_text(status)}; the old process "
                           f"(pid {slot.previous}) keeps serving")
            slot.current, slot.previous = slot.previous, None
            return
        slot.current = None
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == EXIT_OK:
            errorlog.info(f"{slot.name()} (pid {child.pid}) exited; starting a new one")
            slot.respawn_at = time.monotonic()
            return
        delay = self._schedule_respawn(slot, ran_for)
        errorlog.error(f"{slot.name()} (pid {child.pid}) {status_text(status)}; "
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
        # also the channel of the readiness probe: the daemon groups' live counts and the
        # "graceful stop under way" flag (csrc/probes.h)
        if not (self.settings.get("server_status") or self.settings.get("ready_url")
                or self.settings.get("shutdown_delay")):
            return
        import pywsgi._core as _core  # the compiled core, imported by run() first (see there)
        groups = self.plan.groups if self.plan else ()
        _core.scoreboard_create(len(self.slots), [group.name for group in groups])
        self.scoreboard = _core

    def _scoreboard_spawning(self, slot: _Slot) -> None:
        if self.scoreboard is None:
            return
        group = self.plan.groups.index(slot.group) if slot.group is not None else -1
        self.scoreboard.scoreboard_spawning(slot.index, slot.group is not None, group,
                                            slot.process_index, slot.current is not None)

    def _set_live(self, child: _Child, live: bool) -> None:
        """A daemon process starts or stops accepting requests: its group's live count, which
        --ready-url reads in the scoreboard, follows."""
        slot = self.slots[child.slot]
        if slot.group is None or child.live == live:
            return
        child.live = live
        if self.scoreboard is None:
            return
        count = sum(1 for c in self.children.values()
                    if c.live and self.slots[c.slot].group is slot.group)
        self.scoreboard.scoreboard_group_live(self.plan.groups.index(slot.group), count)

    # -- the graceful stop (docs/deploying.md, "The stop sequence")
    def _begin_stop(self) -> None:
        """SIGTERM: from this instant --ready-url answers 503 and every response closes its
        connection, while the server processes keep accepting for --shutdown-delay."""
        delay = float(self.settings.get("shutdown_delay") or 0.0)
        if self.scoreboard is not None:
            self.scoreboard.scoreboard_announce_stop()
        self.stop_at = time.monotonic() + delay
        if delay > 0:
            errorlog.info(f"SIGTERM received: stopping gracefully; still accepting for "
                          f"{delay:g} s (--shutdown-delay) while load balancers stop sending")
        else:
            errorlog.info("SIGTERM received: stopping gracefully")

    def _stop_gracefully(self) -> None:
        """After --shutdown-delay: the server processes first - each stops accepting, serves
        what waits in the listen backlog and finishes its requests - then, with nobody left to
        relay to them, the daemon processes."""
        # Let go of the listening sockets first: the last process holding one is then a server
        # process that has just drained its backlog (csrc/reactor.c, listen_let_go), so nothing
        # queued in it is reset; a connection that comes later is refused.
        for sock in self.sockets:
            sock.close()
        grace = self.settings["graceful_timeout"] + 1.0
        servers = [pid for pid, child in self.children.items()
                   if self.slots[child.slot].group is None]
        sig = self._stop(signal.SIGTERM, grace, servers)
        groups = self.plan.groups if self.plan else ()
        daemon_grace = max([self.settings["graceful_timeout"]]
                           + [getattr(group, "graceful_timeout", 0.0) or 0.0
                              for group in groups]) + 1.0
        self._stop(sig, daemon_grace if sig == signal.SIGTERM else QUICK_STOP_WAIT)

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
                deadlines += [self.stop_at] if self.stop_at is not None else []
                timeout = min([1.0] + [d - now for d in deadlines])
                self._wait(timeout)
                self._read_ready()      # ready messages before exits: see _on_exit
                self._reap(stopping=False)

                while self.pending_signals:
                    sig = self.pending_signals.pop(0)
                    if sig == signal.SIGTERM:
                        if self.stop_at is None:
                            self._begin_stop()
                        continue
                    if sig == signal.SIGINT:
                        errorlog.info("SIGINT received: stopping")
                        self._stop(signal.SIGINT, QUICK_STOP_WAIT)
                        return EXIT_OK
                    if sig == signal.SIGHUP:
                        if self.stop_at is not None:
                            errorlog.info("SIGHUP ignored: the server is stopping")
                            continue
                        self._graceful_restart()
                    elif sig == signal.SIGUSR1:
                        errorlog.reopen()
                        for pid in list(self.children):
                            self._kill(pid, signal.SIGUSR1)

                if self.stop_at is not None and time.monotonic() >= self.stop_at:
                    self._stop_gracefully()
                    return EXIT_OK

                changed = (self.watcher.poll(time.monotonic())
                           if self.watcher and self.stop_at is None else None)
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

    def _stop(self, sig: int, wait: float, pids: Optional[List[int]] = None) -> int:
        """Send sig to the children `pids` (default: all), wait up to `wait` seconds, SIGKILL
        the rest of them, reap them. Returns the signal they ended with: SIGINT when a second
        Ctrl-C hurried a graceful stop."""
        stopping = list(self.children) if pids is None else list(pids)

        def left() -> List[int]:
            return [pid for pid in stopping if pid in self.children]

        for pid in left():
            self._kill(pid, sig)
        deadline = time.monotonic() + wait
        while left():
            self._reap(stopping=True)
            remaining = deadline - time.monotonic()
            if not left() or remaining <= 0:
                break
            self._wait(min(remaining, 0.2))
            if signal.SIGINT in self.pending_signals and sig == signal.SIGTERM:
                # a second Ctrl-C during a graceful stop: hurry up
                self.pending_signals.clear()
                sig = signal.SIGINT
                for pid in left():
                    self._kill(pid, signal.SIGINT)
                deadline = min(deadline, time.monotonic() + QUICK_STOP_WAIT)
        for pid in left():
            errorlog.warning(f"{self.slots[self.children[pid].slot].name()} (pid {pid}) did "
                             f"not stop in time; killing it")
            self._kill(pid, signal.SIGKILL)
        for pid in left():
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
            self.children.pop(pid, None)
        return sig


def _listen_urls(sockets: List[socket.socket]) -> str:
    return ", ".join(describe_address(sock) for sock in sockets)


def run(settings: Dict[str, Any], mounts: List[Mount]) -> int:
    """Bind, fork and supervise until stopped. Returns the exit code (0, or 2 when the
    application failed to load); raises StartupError for a bad address or port."""
    try:
        errorlog.configure(settings["log_level"], settings["error_log"])
    except OSError as exc:
        raise StartupError(f"cannot open the error log {settings['error_log']}: "
                           f"{exc.strerror or exc}") from None
    try:
        # Imported once here, not in every child: a broken build is one error, not a respawn loop
        # (and at call time: the command line works without a build, for --help).
        import pywsgi._core as _core
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
    settings, mounts, plan = plan_daemon_mode(settings, mounts)
    settings = settle_max_clients(settings, plan)
    ops = Startup(settings)   # --user/--group resolved, --pid-file checked
    sockets = ops.listen()    # systemd's sockets, --unix-socket, or TCP
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


