"""A child's life (a server process, or a daemon process of a group), from the fork to
os._exit: die with the master, take the group and --user/--group, load the mounts, tell the
master it is ready, install the stop signals, build the core's config (core_config.py) and run
the core until stopped.

Exit codes: 0 clean stop, 3 the application failed to load (its one-line message is already on
stderr). The child tells the master on the ready pipe: ready, recycling (it stopped accepting:
start the replacement now), or replace me (a changed script: a new process first).
"""
from __future__ import annotations

import os
import signal
import socket
import struct
import sys
import threading
import time
from typing import List, Optional, Sequence

from pywsgi.config.daemon_groups import DaemonGroup
from pywsgi.config.typed import Settings
from pywsgi.daemon.group import enter_group, group_settings
from pywsgi.errors import EXIT_LOAD_FAILED, EXIT_OK, LoadError
from pywsgi.observe import errorlog
from pywsgi.process.core_config import core_config
from pywsgi.process.privileges import enter_child
from pywsgi.process.reloader import report_modules
from pywsgi.process.tls import TLSMaterial
from pywsgi.site.load import load_mounts
from pywsgi.site.mounts import Mount

__all__ = ["child_main", "PID_RECORD", "READY", "RECYCLING", "REPLACE_ME"]

PID_RECORD = struct.Struct("=ii")   # (pid, what): a child's message on the ready pipe
READY, RECYCLING, REPLACE_ME = 0, 1, 2   # what: ready / stopped accepting / replace me first


def _set_parent_death_signal(master_pid: int) -> None:
    """Make this child die with the master, however the master ends."""
    import pywsgi._core as _core  # (the compiled core: imported by the master already)

    if not _core.set_parent_death_signal(int(signal.SIGTERM)):  # (Linux only)
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


def child_main(settings: Settings, sockets: List[socket.socket], mounts: List[Mount], *,
               ready_fd: int, master_pid: int, blocked_mask, process_index: int,
               scoreboard_slot: int, group: Optional[DaemonGroup] = None,
               script_paths: Sequence[str] = (), reload_report_dir: Optional[str] = None,
               tls: Optional[TLSMaterial] = None, https_listen_fds: Sequence[int] = ()
               ) -> None:
    """Runs in the forked child (a server process, or a daemon process of `group`); never
    returns (os._exit). process_index: 0..N-1 among the server processes or the group's;
    scoreboard_slot: its slot in the master (--server-status); script_paths: the group's
    script files (a change replaces a daemon process); reload_report_dir: where
    --reload-on-changes wants the loaded modules reported; tls, https_listen_fds: a server
    process's certificates as the master read them and which of `sockets` speak TLS."""
    exit_code = 1
    try:
        _set_parent_death_signal(master_pid)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked_mask)
        import atexit
        atexit._clear()  # the master's (or the embedding program's) hooks are not ours to run
        # SIGTERM/SIGINT keep their default action (die) while the application loads.
        if group is not None:
            enter_group(group)
            settings = group_settings(settings, group)
        # --user/--group, a group's user=/group= (docs/operations.md)
        access_log_fd = enter_child(settings, group)
        if settings.error_log is not None:
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
            if settings.error_log is not None:
                errorlog.error(f"cannot load application: {exc}{more}")
            if exc.__cause__ is not None and errorlog.is_enabled("debug"):
                import traceback
                errorlog.debug("".join(traceback.format_exception(
                    type(exc.__cause__), exc.__cause__, exc.__cause__.__traceback__)))
            os._exit(EXIT_LOAD_FAILED)
        report_modules(reload_report_dir,   # --reload-on-changes
                       [m.target for m in mounts if isinstance(m.target, str)])

        # The compiled core: imported at call time, so that the command line works without a
        # build (--help, --print-config) and arbiter.run() reports a broken one as one error.
        import pywsgi._core as _core
        stop_state = {"requested": False}

        def on_sigterm(signum, frame):
            stop_state["requested"] = True
            # Safety net: the master SIGKILLs after graceful_timeout + 1 s anyway, but an
            # orphaned child (master killed) has nobody else to enforce the limit.
            pending = signal.alarm(0)  # a repeated SIGTERM must not push the limit back
            signal.alarm(pending or int(settings.graceful_timeout) + 2)
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

        os.write(ready_fd, PID_RECORD.pack(os.getpid(), READY))

        def tell_master(what: int) -> None:
            try:
                os.write(ready_fd, PID_RECORD.pack(os.getpid(), what))
            except OSError:
                pass
        # Recycling (maximum-requests, a daemon group's limits): this process has stopped
        # accepting; the master starts its replacement now, not when it exits. A changed script
        # (a daemon group): the master replaces this process as SIGHUP does, new one first.
        config = core_config(settings, process_index=process_index,
                             scoreboard_slot=scoreboard_slot, access_log_fd=access_log_fd,
                             group=group, script_paths=script_paths,
                             tls=tls, https_listen_fds=https_listen_fds,
                             on_recycle=lambda: tell_master(RECYCLING),
                             on_reload=lambda: tell_master(REPLACE_ME))
        if stop_state["requested"]:
            os._exit(EXIT_OK)
        _core.serve([sock.fileno() for sock in sockets], core_mounts, config)
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
