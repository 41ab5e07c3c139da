"""The supervisor (gunicorn's arbiter): forks the server and daemon processes and keeps them
running. Its decisions (backoff, what a child's message or death changes, graceful restarts)
are supervision.py's, tested without processes; this module makes the system calls. What a
child does is worker.py; the sockets, the pid file and --user/--group are sockets.py,
pidfile.py, privileges.py, driven by startup.py.

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
from typing import Callable, List, Optional, Sequence

from pywsgi.config.typed import Settings
from pywsgi.daemon.plan import DaemonPlan, plan_daemon_mode
from pywsgi.errors import EXIT_OK, EXIT_USAGE, StartupError
from pywsgi.observe import errorlog
from pywsgi.process.open_files import settle_max_clients
from pywsgi.process.reloader import ChangeWatcher
from pywsgi.process.sockets import describe_address
from pywsgi.process.startup import Startup
from pywsgi.process.supervision import Slot, Supervisor
from pywsgi.process.tls import TLSMaterial, reload_tls_material, tls_material
from pywsgi.process.worker import PID_RECORD, RECYCLING, REPLACE_ME, child_main
from pywsgi.site.mounts import Mount
from pywsgi.site.plan import serves_only_the_welcome_page
from pywsgi.version import __version__

__all__ = ["Master", "run"]

QUICK_STOP_WAIT = 1.0     # SIGINT: how long children get before SIGKILL

_MASTER_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD, signal.SIGUSR1)


class Master(Supervisor):
    """The supervisor's decisions (supervision.py) with the system calls: fork, kill, signals,
    the ready pipe, waitpid."""

    def __init__(self, settings: Settings, sockets: List[socket.socket],
                 mounts: List[Mount], plan: Optional[DaemonPlan] = None, *,
                 tls: Optional[TLSMaterial] = None, https_fds: Sequence[int] = ()) -> None:
        slots = [Slot(i, i) for i in range(settings.processes)]
        for group in (plan.groups if plan else ()):
            for i in range(group.processes):
                slots.append(Slot(len(slots), i, group))
        super().__init__(slots, settings.graceful_timeout)
        self.settings = settings
        self.sockets = sockets
        self.mounts = mounts
        self.plan = plan
        # HTTPS (docs/tls.md): the certificates as read (again on SIGHUP) and the sockets that
        # speak TLS, handed to each new server process; never to a daemon process
        self.tls = tls
        self.https_fds = tuple(https_fds)
        self.pid = os.getpid()
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

    # -- the supervisor's hooks (supervision.py)
    def fork_child(self, slot: Slot) -> int:
        tls, https_fds = self.tls, self.https_fds
        if slot.group is None:
            sockets, mounts = self.sockets, self.mounts
            script_paths: List[str] = []
        else:
            sockets = [self.plan.sockets[slot.group.name]]
            mounts = self.plan.mounts_for(slot.group)
            script_paths = self.plan.script_paths(slot.group)
            tls, https_fds = None, ()   # TLS ends in the server processes
        self._scoreboard_spawning(slot)
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _MASTER_SIGNALS)
        try:
            pid = os.fork()
        except OSError:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            raise
        if pid == 0:  # the child
            try:
                for sig in _MASTER_SIGNALS:
                    signal.signal(sig, signal.SIG_DFL)
                signal.set_wakeup_fd(-1)
                for fd in (self.wake_r, self.wake_w, self.ready_r):
                    os.close(fd)
                if slot.group is not None:
                    self.tls = None   # a daemon process keeps no reference to the keys
                self._close_others_sockets(sockets)
            finally:
                child_main(self.settings, sockets, mounts, ready_fd=self.ready_w,
                           master_pid=self.pid, blocked_mask=mask,
                           process_index=slot.process_index, scoreboard_slot=slot.index,
                           group=slot.group, script_paths=script_paths,
                           tls=tls, https_listen_fds=https_fds,
                           reload_report_dir=self.watcher.directory if self.watcher else None)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        if self.scoreboard is not None:
            self.scoreboard.scoreboard_forked(slot.index, pid)
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

    def kill(self, pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def first_ready(self) -> None:
        # Logged once every first process can serve, so it means "ready", and a script that
        # fails to load leaves only its one error line on stderr.
        groups = "".join(f"; daemon process group {g.name} (processes={g.processes} "
                         f"threads={g.threads})"
                         for g in (self.plan.groups if self.plan else ()))
        errorlog.info(f"pywsgi {__version__} listening on "
                      f"{_listen_urls(self.sockets, self.https_fds)} "
                      f"(processes={self.settings.processes} "
                      f"threads={self.settings.threads}{groups})")
        if serves_only_the_welcome_page(self.mounts):
            # `pywsgi` alone: say what it serves and how to serve something
            errorlog.info("no application given: only the welcome page is served; mount a "
                          "script with 'pywsgi myapp.wsgi', a module with 'pywsgi "
                          "pkg.module:application', several with --script-alias /URL=PATH, "
                          "files with --document-root DIR (pywsgi --help)")

    def restarting(self) -> None:
        # SIGHUP, --reload-on-changes: renewed certificate files go to the new processes
        # (docs/tls.md, rotation); bad ones now leave the previous material in use
        self.tls = reload_tls_material(self.settings, self.tls)

    def slot_exited(self, slot: Slot, pid: int, keeps: int) -> None:
        if self.scoreboard is not None:
            self.scoreboard.scoreboard_exited(slot.index, pid, keeps)

    def group_live(self, group, count: int) -> None:
        if self.scoreboard is not None:   # what --ready-url reads (csrc/probes.h)
            self.scoreboard.scoreboard_group_live(self.plan.groups.index(group), count)

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
                self.child_recycling(pid)
            elif what == REPLACE_ME:
                self.child_asks_replacement(pid)
            else:
                self.child_ready(pid)

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
            if stopping:
                self.children.pop(pid, None)
            else:
                self.child_exited(pid, status)

    # -- the --server-status scoreboard (pywsgi/status.py, csrc/scoreboard.c)
    scoreboard = None

    def _open_scoreboard(self) -> None:
        # also the channel of the readiness probe: the daemon groups' live counts and the
        # "graceful stop under way" flag (csrc/probes.h)
        if not (self.settings.server_status or self.settings.ready_url
                or self.settings.shutdown_delay):
            return
        import pywsgi._core as _core  # the compiled core, imported by run() first (see there)
        groups = self.plan.groups if self.plan else ()
        _core.scoreboard_create(len(self.slots), [group.name for group in groups])
        self.scoreboard = _core

    def _scoreboard_spawning(self, slot: Slot) -> None:
        if self.scoreboard is None:
            return
        group = self.plan.groups.index(slot.group) if slot.group is not None else -1
        self.scoreboard.scoreboard_spawning(slot.index, slot.group is not None, group,
                                            slot.process_index, slot.current is not None)

    # -- the graceful stop (docs/deploying.md, "The stop sequence")
    def _begin_stop(self) -> None:
        """SIGTERM: from this instant --ready-url answers 503 and every response closes its
        connection, while the server processes keep accepting for --shutdown-delay."""
        delay = self.settings.shutdown_delay
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
        servers = [pid for pid, child in self.children.items()
                   if self.slots[child.slot].group is None]
        sig = self._stop(signal.SIGTERM, self.settings.graceful_timeout + 1.0, servers)
        groups = self.plan.groups if self.plan else ()
        daemon_grace = max([self.settings.graceful_timeout]
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
            self.start_all()
            while True:
                timeout = self.next_timeout()
                if self.stop_at is not None:
                    timeout = min(timeout, self.stop_at - time.monotonic())
                self._wait(timeout)
                self._read_ready()      # ready messages before exits: see child_exited
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
                        self.graceful_restart()
                    elif sig == signal.SIGUSR1:
                        errorlog.reopen()
                        for pid in list(self.children):
                            self.kill(pid, signal.SIGUSR1)

                if self.stop_at is not None and time.monotonic() >= self.stop_at:
                    self._stop_gracefully()
                    return EXIT_OK

                changed = (self.watcher.poll(time.monotonic())
                           if self.watcher and self.stop_at is None else None)
                if changed:
                    errorlog.info(f"--reload-on-changes: {changed} changed")
                    self.graceful_restart()

                if self.load_failed:
                    # the child printed why; a respawn loop would only print it again
                    self._stop(signal.SIGTERM, QUICK_STOP_WAIT)
                    return EXIT_USAGE

                self.run_due()
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
            self.kill(pid, sig)
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
                    self.kill(pid, signal.SIGINT)
                deadline = min(deadline, time.monotonic() + QUICK_STOP_WAIT)
        for pid in left():
            errorlog.warning(f"{self.slots[self.children[pid].slot].name()} (pid {pid}) did "
                             f"not stop in time; killing it")
            self.kill(pid, signal.SIGKILL)
        for pid in left():
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
            self.children.pop(pid, None)
        return sig


def _listen_urls(sockets: List[socket.socket], https_fds: Sequence[int] = ()) -> str:
    return ", ".join(describe_address(sock, "https" if sock.fileno() in https_fds else "http")
                     for sock in sockets)


def run(settings: Settings, mounts: List[Mount]) -> int:
    """Bind, fork and supervise until stopped. Returns the exit code (0, or 2 when the
    application failed to load); raises StartupError for a bad address or port."""
    try:
        errorlog.configure(settings.log_level, settings.error_log)
    except OSError as exc:
        raise StartupError(f"cannot open the error log {settings.error_log}: "
                           f"{exc.strerror or exc}") from None
    try:
        # Imported once here, not in every child: a broken build is one error, not a respawn loop
        # (and at call time: the command line works without a build, for --help).
        import pywsgi._core as _core
    except ImportError as exc:
        raise StartupError(f"cannot import the pywsgi core (pywsgi._core): {exc}") from None
    if settings.access_log_format:
        try:
            _core.check_access_log_format(settings.access_log_format)
        except ValueError as exc:
            raise StartupError(f"--access-log-format: {exc}") from None
    if settings.access_log not in (None, "-"):
        try:
            with open(settings.access_log, "a"):
                pass
        except OSError as exc:
            raise StartupError(f"cannot open the access log {settings.access_log}: "
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
        supervisor = Master(settings, sockets, mounts, plan,
                            # the certificates, read now (as root), and which sockets speak TLS
                            tls=tls_material(settings), https_fds=ops.https_fds)
        supervisor.watcher = ops.watcher
        supervisor.on_started = ops.started  # the pid file, once listening and signals are ours
        return supervisor.run()
    finally:
        for sock in sockets:
            sock.close()
        if plan is not None:
            plan.close()
        ops.cleanup()


