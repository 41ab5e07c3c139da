"""When a process recycles itself (docs/daemon-mode.md, "Recycling"): the policy, and the
watch on its memory and script files.

The core's main loop (serve() in pywsgi/_core.pyx, ``_RecycleLimits``) wakes every 0.1 s, reads
when each worker's request started, and asks a RecyclePolicy what to do: interrupt a request
that has run past request-timeout, recycle the process (why, and how long its other requests
get), or nothing. The policy decides from numbers alone - the time now comes in as an
argument - so it is tested without processes or clocks (tests/unit/test_recycle_policy.py);
the core does what it says (RequestTimeout raised in the thread, the stack logged, the stop).
One policy serves embedded --request-timeout and a daemon group's limits; a daemon's also asks
a RecycleWatch about once a second about its memory and its script files.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, Iterable, List, Optional

from pywsgi.config.daemon_groups import DaemonGroup
from pywsgi.handlers.scripts import DocumentRootFirst, HandlerScripts

__all__ = ["RecyclePolicy", "RecycleWatch", "INTERRUPT", "WAIT", "RECYCLE"]

# What to do about a request that has run past request-timeout (RecyclePolicy.on_overrun; the
# core compares with the policy's attributes of these names).
INTERRUPT = "interrupt"   # raise RequestTimeout in its thread (once per request)
WAIT = "wait"             # interrupted: it still has interrupt-timeout to unwind
RECYCLE = "recycle"       # recycle the process (RecyclePolicy.overrun_reason says why)

CHECKS_PER_SECOND = 10    # the core's main loop calls tick() every 0.1 s


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


@dataclass
class RecyclePolicy:
    """A process's recycling limits, in seconds (0: none), and the decisions made from them.

    Made once per process by the core config (pywsgi/process/core_config.py); the core calls
    start() when it begins serving, then, every 0.1 s, overran()/on_overrun() for each busy
    worker and tick() once per turn."""

    INTERRUPT: ClassVar[str] = INTERRUPT
    WAIT: ClassVar[str] = WAIT
    RECYCLE: ClassVar[str] = RECYCLE

    request_timeout: float       # a request running longer is interrupted or recycles the process
    interrupt_timeout: float     # how long an interrupted request may unwind; 0: no interrupt
    restart_interval: float      # recycle after running this long (a daemon group's)
    inactivity_timeout: float    # recycle after this long without a request (a daemon group's)
    graceful_timeout: float      # what a recycled process's requests get
    shutdown_timeout: float      # ... when a request past request-timeout recycled it at once
    timeout_setting: str         # how the error log names request-timeout
    watch: Optional[RecycleWatch]    # a daemon process: memory-limit=, script reloading
    started: float = field(default=0.0, init=False)
    grace: float = field(default=0.0, init=False)     # for the recycle just decided
    ticks: int = field(default=0, init=False)
    files_due: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.grace = self.graceful_timeout

    @property
    def active(self) -> bool:
        """Whether anything is to be checked at all (else the core keeps no worker records)."""
        return (self.request_timeout > 0 or self.restart_interval > 0
                or self.inactivity_timeout > 0 or self.watch is not None)

    def start(self, now: float, apps: Iterable[Any]) -> None:
        self.started = now
        if self.watch is not None:
            self.watch.start(apps)

    def overran(self, now: float, since: float) -> bool:
        """Whether a request that started at `since` has run past request-timeout."""
        return self.request_timeout > 0 and now - since > self.request_timeout

    def on_overrun(self, now: float, since: float, interrupted: float) -> str:
        """INTERRUPT, WAIT or RECYCLE, for a request that overran(); `interrupted` is the start
        time of the request RequestTimeout was last raised into in that thread (0: none)."""
        if self.interrupt_timeout <= 0:
            return RECYCLE   # interrupting is off (a daemon group's default)
        if interrupted != since:
            return INTERRUPT
        if now - since <= self.request_timeout + self.interrupt_timeout:
            return WAIT      # interrupted: it still has time to unwind
        return RECYCLE

    def overrun_reason(self, now: float, since: float) -> str:
        """What the request did, for the log and the recycle's reason ("a request " + it); sets
        grace: an interrupted request that did not unwind leaves the others graceful-timeout,
        a request recycled without interrupting (interrupt-timeout 0) shutdown-timeout."""
        if self.interrupt_timeout > 0:
            self.grace = self.graceful_timeout
            return ("did not stop within %gs of RequestTimeout (interrupt-timeout)"
                    % self.interrupt_timeout)
        self.grace = self.shutdown_timeout
        return "has run %.2fs, longer than %s (%gs)" % (now - since, self.timeout_setting,
                                                        self.request_timeout)

    def tick(self, now: float, busy: bool, last_request: float) -> Optional[str]:
        """Called every 0.1 s after the workers were looked at: once a second, why the process
        should be recycled now (restart-interval, inactivity-timeout, memory-limit), or None.
        `busy`: a request is running; `last_request`: when one last started or ended (0:
        none yet)."""
        self.ticks += 1
        if self.ticks % CHECKS_PER_SECOND:
            return None
        self.files_due = True
        self.grace = self.graceful_timeout
        if self.restart_interval > 0 and now - self.started >= self.restart_interval:
            return "restart-interval (%gs) reached" % self.restart_interval
        if (self.inactivity_timeout > 0 and not busy and last_request > 0
                and now - last_request >= self.inactivity_timeout):
            return "no request for inactivity-timeout (%gs)" % self.inactivity_timeout
        if self.watch is not None:
            return self.watch.check_memory()
        return None

    def is_stuck(self, now: float, since: float) -> bool:
        """Whether a request has run past request-timeout + interrupt-timeout: a stopping
        process waits for its other requests only (as mod_wsgi 6 drains)."""
        return (self.request_timeout > 0
                and now - since > self.request_timeout + self.interrupt_timeout)

    def files_check_due(self) -> bool:
        """True about once a second: time for the watch to look at the script files."""
        due = self.files_due
        self.files_due = False
        return due
