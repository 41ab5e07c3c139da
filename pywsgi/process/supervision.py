"""The supervisor's decisions, without processes: which process serves each slot, when a dead
one is started again (backoff), what a child's message or death changes, a graceful restart.

    Supervisor (this module)          decides: slots, children, backoff, deadlines
      └─ Master (arbiter.py)          does: fork, kill, signals, the ready pipe, waitpid

The Master subclasses it and gives it the three things that touch processes - fork_child(slot)
(a pid, or OSError), kill(pid, sig) and the clock - and calls the decisions as events come:
child_ready / child_recycling / child_asks_replacement (the ready pipe), child_exited
(waitpid), graceful_restart (SIGHUP, --reload-on-changes), run_due (each turn of its loop).
tests/unit/test_supervision.py drives it with a fake fork, kill and clock.

Backoff: a child that dies is started again after 0.1 s, doubling up to 10 s, reset once a
child of that slot has run 30 s; one that exits cleanly (status 0) at once. A graceful restart
starts the new process first and retires the old one (SIGTERM) once the new one is ready; the
old one keeps serving if the new one fails to start.
"""
from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

from pywsgi.errors import EXIT_LOAD_FAILED, EXIT_OK
from pywsgi.observe import errorlog

__all__ = ["Supervisor", "Slot", "Child", "status_text", "BACKOFF_FIRST", "BACKOFF_MAX",
           "BACKOFF_RESET_AFTER", "RECYCLE_KILL_MARGIN", "RETIRE_KILL_MARGIN"]

BACKOFF_FIRST = 0.1
BACKOFF_MAX = 10.0
BACKOFF_RESET_AFTER = 30.0
RECYCLE_KILL_MARGIN = 5.0   # a recycling child exits by itself; SIGKILL only this long late
RETIRE_KILL_MARGIN = 1.0    # a retired (SIGTERM'd) child: graceful timeout + this, then SIGKILL


def status_text(status: int) -> str:
    """How the log says a child ended: 'exited with status 1', 'was killed by SIGKILL'."""
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


@dataclass
class Child:
    pid: int
    slot: int
    started: float
    ready: bool = False
    retiring: bool = False
    kill_at: Optional[float] = None
    live: bool = False          # a daemon process that accepts requests (ready, not stopping)


@dataclass
class Slot:
    index: int                           # position in Supervisor.slots
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


class Supervisor:
    """The slots (server processes, then each daemon group's) and their children; every
    decision of the master, none of its system calls."""

    def __init__(self, slots: List[Slot], graceful_timeout: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.slots = slots
        self.graceful_timeout = graceful_timeout
        self.clock = clock
        self.children: Dict[int, Child] = {}
        self.ever_ready = False     # every first process became ready once
        self.load_failed = False    # a child could not load the application before that

    # -- what touches processes: the Master's (arbiter.py), a fake's in the unit tests
    def fork_child(self, slot: Slot) -> int:
        """Start a process for `slot`; its pid, or OSError."""
        raise NotImplementedError

    def kill(self, pid: int, sig: int) -> None:
        raise NotImplementedError

    def first_ready(self) -> None:
        """Every first process is ready (once): the master says it listens."""

    def slot_exited(self, slot: Slot, pid: int, keeps: int) -> None:
        """A child of `slot` is gone; `keeps`: the old process that still serves it, or 0."""

    def restarting(self) -> None:
        """A graceful restart begins, before its new processes start: the master reads again
        what they are given (the certificates, docs/tls.md)."""

    def group_live(self, group: Any, count: int) -> None:
        """`count` processes of daemon group `group` accept requests now (--ready-url answers
        503 while it is 0)."""

    def _set_live(self, child: Child, live: bool) -> None:
        """A daemon process starts (ready) or stops (retired, recycling, gone) accepting
        requests: its group's live count follows."""
        group = self.slots[child.slot].group
        if group is None or child.live == live:
            return
        child.live = live
        self.group_live(group, sum(1 for c in self.children.values()
                                   if c.live and self.slots[c.slot].group is group))

    # -- starting
    def start_all(self) -> None:
        for slot in self.slots:
            slot.current = self.spawn(slot)

    def spawn(self, slot: Slot) -> Optional[int]:
        slot.respawn_at = None
        try:
            pid = self.fork_child(slot)
        except OSError as exc:
            errorlog.error(f"cannot start {slot.name()}: {exc.strerror}")
            self._schedule_respawn(slot, ran_for=0.0)
            return None
        self.children[pid] = Child(pid, slot.index, self.clock())
        errorlog.debug(f"started {slot.name()} (pid {pid})")
        return pid

    def _schedule_respawn(self, slot: Slot, ran_for: float) -> float:
        if ran_for >= BACKOFF_RESET_AFTER:
            slot.backoff = BACKOFF_FIRST
        delay = slot.backoff
        slot.backoff = min(slot.backoff * 2, BACKOFF_MAX)
        slot.respawn_at = self.clock() + delay
        return delay

    # -- a child's messages (the ready pipe)
    def _serving(self, pid: int) -> Optional[Child]:
        """The child `pid` if it serves its slot and nothing replaces it yet (no graceful
        restart under way, not retiring), else None."""
        child = self.children.get(pid)
        if child is None or child.retiring:
            return None
        slot = self.slots[child.slot]
        if slot.current != pid or slot.previous is not None:
            return None  # a graceful restart already replaces it
        return child

    def child_asks_replacement(self, pid: int) -> None:
        """A graceful restart of one child's slot: a new process starts, and the old one is
        retired once the new one is ready (it keeps serving if the new one fails to start)."""
        child = self._serving(pid)
        if child is None:
            return
        slot = self.slots[child.slot]
        errorlog.info(f"replacing {slot.name()} (pid {pid}) at its request")
        slot.previous = pid
        slot.current = self.spawn(slot)
        if slot.current is None:
            slot.current, slot.previous = slot.previous, None

    def child_recycling(self, pid: int) -> None:
        """A child is being recycled (it stopped accepting and finishes its requests): start
        its replacement at once. The old one exits by itself; kill_at is only a safety net."""
        child = self._serving(pid)
        if child is None:
            return
        slot = self.slots[child.slot]
        child.retiring = True
        self._set_live(child, False)   # it stopped accepting
        grace = max(self.graceful_timeout, getattr(slot.group, "graceful_timeout", 0.0))
        child.kill_at = self.clock() + grace + RECYCLE_KILL_MARGIN
        errorlog.debug(f"{slot.name()} (pid {pid}) is being recycled; "
                       f"starting its replacement")
        slot.current = self.spawn(slot)

    def child_ready(self, pid: int) -> None:
        child = self.children.get(pid)
        if child is None:
            return
        child.ready = True
        if not self.ever_ready and all(c.ready for c in self.children.values()):
            self.ever_ready = True
            self.first_ready()
        slot = self.slots[child.slot]
        errorlog.debug(f"{slot.name()} (pid {pid}) is ready")
        if not child.retiring:
            self._set_live(child, True)
        if slot.current == pid and slot.previous is not None:
            self.retire(slot.previous)
            slot.previous = None

    def retire(self, pid: int) -> None:
        child = self.children.get(pid)
        if child is None:
            return
        child.retiring = True
        child.kill_at = self.clock() + self.graceful_timeout + RETIRE_KILL_MARGIN
        self._set_live(child, False)
        self.kill(pid, signal.SIGTERM)

    # -- a child's death (waitpid)
    def child_exited(self, pid: int, status: int) -> None:
        child = self.children.pop(pid, None)
        if child is None:
            return  # not ours (the Python API may run inside a program with children)
        slot = self.slots[child.slot]
        self._set_live(child, False)
        keeps = slot.previous if child.pid == slot.current and slot.previous else 0
        self.slot_exited(slot, child.pid, keeps)
        ran_for = self.clock() - child.started
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
            slot.respawn_at = self.clock()
            return
        delay = self._schedule_respawn(slot, ran_for)
        errorlog.error(f"{slot.name()} (pid {child.pid}) {status_text(status)}; "
                       f"restarting it in {delay:g} s")

    # -- SIGHUP, --reload-on-changes
    def graceful_restart(self) -> None:
        errorlog.info("graceful restart requested (SIGHUP): starting new processes")
        self.restarting()
        for slot in self.slots:
            if slot.current is None:
                slot.backoff = BACKOFF_FIRST
                slot.current = self.spawn(slot)
                continue
            if slot.previous is not None:
                # a restart is already under way: replace its not-yet-ready new process
                self.retire(slot.current)
            else:
                slot.previous = slot.current
            slot.current = self.spawn(slot)
            if slot.current is None:
                slot.current, slot.previous = slot.previous, None

    # -- time
    def next_timeout(self, longest: float = 1.0) -> float:
        """How long the master may sleep before run_due has something to do (at most
        `longest`)."""
        now = self.clock()
        deadlines = [s.respawn_at for s in self.slots if s.respawn_at is not None]
        deadlines += [c.kill_at for c in self.children.values() if c.kill_at is not None]
        return min([longest] + [deadline - now for deadline in deadlines])

    def run_due(self) -> None:
        """Start the processes whose respawn time came; SIGKILL old ones past their time."""
        now = self.clock()
        for slot in self.slots:
            if slot.respawn_at is not None and slot.respawn_at <= now:
                slot.current = self.spawn(slot)
        for child in list(self.children.values()):
            if child.kill_at is not None and child.kill_at <= now:
                errorlog.warning(f"old {self.slots[child.slot].name()} (pid "
                                 f"{child.pid}) did not stop within the graceful "
                                 f"timeout; killing it")
                self.kill(child.pid, signal.SIGKILL)
                child.kill_at = None
