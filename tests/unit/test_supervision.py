"""process/supervision.py: the master's decisions with a fake fork, kill and clock - which
process serves each slot, the respawn backoff, what a child's messages and death change,
graceful restarts."""
import errno
import signal

import pytest

from pywsgi.config.daemon_groups import DaemonGroup
from pywsgi.errors import EXIT_LOAD_FAILED
from pywsgi.process.supervision import (
    BACKOFF_FIRST,
    BACKOFF_MAX,
    BACKOFF_RESET_AFTER,
    Slot,
    Supervisor,
)


def exited(code):
    return code << 8        # a wait status: exit(code)


def killed(signum):
    return signum           # a wait status: killed by signum


class Fake(Supervisor):
    """A supervisor whose processes are pids in a list: fork_child hands out the next pid (or
    fails while `fork_fails`), kill records the signal, the clock is `now`."""

    def __init__(self, servers=2, groups=(), graceful_timeout=15.0):
        slots = [Slot(i, i) for i in range(servers)]
        for group in groups:
            slots += [Slot(len(slots), i, group) for i in range(group.processes)]
        self.now = 1000.0
        super().__init__(slots, graceful_timeout, clock=lambda: self.now)
        self.next_pid = 100
        self.fork_fails = False
        self.forked, self.killed, self.exits = [], [], []
        self.first_ready_calls = 0

    def fork_child(self, slot):
        if self.fork_fails:
            raise OSError(errno.EAGAIN, 'Resource temporarily unavailable')
        self.next_pid += 1
        self.forked.append((slot.index, self.next_pid))
        return self.next_pid

    def kill(self, pid, sig):
        self.killed.append((pid, sig))

    def first_ready(self):
        self.first_ready_calls += 1

    def slot_exited(self, slot, pid, keeps):
        self.exits.append((slot.index, pid, keeps))

    def current(self):
        return [slot.current for slot in self.slots]

    def all_ready(self):
        for pid in list(self.children):
            self.child_ready(pid)


@pytest.fixture
def master():
    made = Fake()
    made.start_all()
    made.all_ready()
    return made


def test_every_slot_gets_a_process_and_the_master_says_ready_once():
    made = Fake(servers=2, groups=[DaemonGroup('g', processes=2)])
    made.start_all()
    assert made.current() == [101, 102, 103, 104]
    assert [slot.name() for slot in made.slots] == [
        'server process 0', 'server process 1', 'daemon process 0 of group g',
        'daemon process 1 of group g']
    made.child_ready(101)
    made.child_ready(102)
    made.child_ready(103)
    assert made.first_ready_calls == 0      # not every first process is ready yet
    made.child_ready(104)
    assert made.first_ready_calls == 1 and made.ever_ready
    made.child_exited(101, killed(signal.SIGKILL))
    made.now += BACKOFF_FIRST
    made.run_due()
    made.all_ready()
    assert made.first_ready_calls == 1      # a respawned process is no news


def test_a_dead_child_is_respawned_with_a_doubling_backoff(master, capfd):
    delays = []
    for _ in range(9):
        pid = master.slots[0].current
        master.now += 1.0                    # ran for a second
        master.child_exited(pid, exited(1))
        assert master.slots[0].current is None
        delay = master.slots[0].respawn_at - master.now
        delays.append(round(delay, 3))
        assert master.next_timeout() == pytest.approx(min(delay, 1.0))   # wakes at least 1/s
        master.now += delay - 0.01
        master.run_due()
        assert master.slots[0].current is None   # not before its time
        master.now += 0.01
        master.run_due()
        assert master.slots[0].current == master.next_pid
    assert delays == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, BACKOFF_MAX, BACKOFF_MAX]
    assert 'server process 0 (pid 101) exited with status 1; restarting it in 0.1 s' \
        in capfd.readouterr().err


def test_the_backoff_starts_over_once_a_child_ran_long_enough(master):
    for _ in range(4):
        master.child_exited(master.slots[0].current, killed(signal.SIGSEGV))
        master.now += master.slots[0].respawn_at - master.now
        master.run_due()
    assert master.slots[0].backoff == pytest.approx(1.6)
    master.now += BACKOFF_RESET_AFTER
    master.child_exited(master.slots[0].current, killed(signal.SIGSEGV))
    assert master.slots[0].respawn_at - master.now == pytest.approx(BACKOFF_FIRST)


def test_a_clean_exit_is_replaced_at_once(master, capfd):
    master.child_exited(101, exited(0))
    assert master.slots[0].respawn_at == master.now and master.next_timeout() == 0
    master.run_due()
    assert master.current() == [103, 102] and master.slots[0].backoff == BACKOFF_FIRST
    assert 'server process 0 (pid 101) exited; starting a new one' in capfd.readouterr().err


def test_an_application_that_cannot_load_stops_the_start():
    made = Fake()
    made.start_all()
    made.child_exited(101, exited(EXIT_LOAD_FAILED))
    assert made.load_failed and made.slots[0].respawn_at is None
    # once serving, the same exit is a crash like any other: respawned
    again = Fake()
    again.start_all()
    again.all_ready()
    again.child_exited(101, exited(EXIT_LOAD_FAILED))
    assert not again.load_failed and again.slots[0].respawn_at == again.now + BACKOFF_FIRST


def test_a_recycling_child_is_replaced_at_once_and_left_to_finish(master):
    master.child_recycling(101)
    assert master.current() == [103, 102]
    old = master.children[101]
    assert old.retiring and old.kill_at == master.now + 15.0 + 5.0
    assert master.killed == []                  # it exits by itself
    master.child_recycling(101)                 # told twice: nothing more
    assert master.current() == [103, 102]
    master.child_exited(101, exited(0))
    assert master.current() == [103, 102] and master.slots[0].respawn_at is None


def test_a_recycling_child_that_does_not_exit_is_killed_in_the_end(master, capfd):
    master.child_recycling(101)
    master.now += 19.9
    master.run_due()
    assert master.killed == []
    master.now += 0.1
    master.run_due()
    assert master.killed == [(101, signal.SIGKILL)]
    assert master.children[101].kill_at is None    # once
    assert 'old server process 0 (pid 101) did not stop within the graceful timeout' \
        in capfd.readouterr().err


def test_a_daemon_recycles_with_its_group_graceful_timeout():
    made = Fake(servers=1, groups=[DaemonGroup('g', graceful_timeout=60.0)])
    made.start_all()
    made.all_ready()
    made.child_recycling(102)
    assert made.children[102].kill_at == made.now + 60.0 + 5.0


def test_a_graceful_restart_retires_each_old_process_once_its_new_one_is_ready(master):
    master.graceful_restart()
    assert master.current() == [103, 104]
    assert [slot.previous for slot in master.slots] == [101, 102]
    assert master.killed == []                       # the old ones serve meanwhile
    master.child_ready(103)
    assert master.killed == [(101, signal.SIGTERM)]
    assert master.children[101].kill_at == master.now + 15.0 + 1.0
    assert master.slots[0].previous is None and master.slots[1].previous == 102
    master.child_exited(101, exited(0))
    assert master.slots[0].respawn_at is None        # retired: not replaced again
    assert master.exits == [(0, 101, 0)]


def test_a_new_process_that_fails_leaves_the_old_one_serving(master, capfd):
    master.graceful_restart()
    master.child_exited(103, exited(1))
    assert master.current() == [101, 104] and master.slots[0].previous is None
    assert master.exits == [(0, 103, 101)]           # the scoreboard keeps the old one
    assert master.slots[0].respawn_at is None
    assert ('graceful restart of server process 0 failed: new process (pid 103) exited with '
            'status 1; the old process (pid 101) keeps serving') in capfd.readouterr().err


def test_a_second_restart_replaces_the_new_process_not_yet_ready(master):
    master.graceful_restart()
    master.graceful_restart()
    assert master.killed == [(103, signal.SIGTERM), (104, signal.SIGTERM)]
    assert master.current() == [105, 106]
    assert [slot.previous for slot in master.slots] == [101, 102]
    master.child_ready(105)
    assert (101, signal.SIGTERM) in master.killed


def test_a_child_that_asks_to_be_replaced_gets_its_successor_first(master):
    master.child_asks_replacement(101)
    assert master.current() == [103, 102] and master.slots[0].previous == 101
    master.child_asks_replacement(101)              # already being replaced
    assert master.current() == [103, 102]
    master.child_ready(103)
    assert master.killed == [(101, signal.SIGTERM)]


def test_a_fork_that_fails_is_retried_with_the_backoff(master, capfd):
    master.fork_fails = True
    master.child_exited(101, exited(0))
    master.run_due()
    assert master.slots[0].current is None
    assert master.slots[0].respawn_at == master.now + BACKOFF_FIRST
    assert 'cannot start server process 0: Resource temporarily unavailable' \
        in capfd.readouterr().err
    master.graceful_restart()                       # cannot fork: the old ones stay
    assert master.slots[1].current == 102 and master.slots[1].previous is None
    master.fork_fails = False
    master.now += 1.0
    master.run_due()
    assert master.slots[0].current == 103


def test_exits_and_messages_of_unknown_processes_are_ignored(master):
    master.child_exited(999, exited(1))
    master.child_ready(999)
    master.child_recycling(999)
    master.child_asks_replacement(999)
    assert master.current() == [101, 102] and master.exits == []


def test_the_master_sleeps_until_the_next_deadline():
    made = Fake()
    made.start_all()
    assert made.next_timeout() == 1.0
    made.child_recycling(101)
    assert made.next_timeout() == 1.0
    made.now += 19.5
    assert made.next_timeout() == pytest.approx(0.5)


class LiveCounts(Fake):
    """... that also records each daemon group's live count (what --ready-url reads)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.live = {}

    def group_live(self, group, count):
        self.live[group.name] = count


def test_a_daemon_group_is_live_while_one_of_its_processes_accepts():
    group = DaemonGroup('g', processes=2)
    made = LiveCounts(servers=1, groups=[group])
    made.start_all()
    assert made.live == {}                        # starting: nothing ready yet
    made.child_ready(102)
    assert made.live == {'g': 1}
    made.child_ready(103)
    assert made.live == {'g': 2}
    made.child_ready(101)                         # a server process counts for no group
    assert made.live == {'g': 2}
    made.child_recycling(102)                     # stopped accepting; its replacement starts
    assert made.live == {'g': 1}
    made.child_exited(103, killed(signal.SIGKILL))
    assert made.live == {'g': 0}                  # --ready-url: 503 now
    made.child_ready(104)                         # the recycled one's replacement
    assert made.live == {'g': 1}


def test_a_graceful_restart_keeps_a_daemon_group_live():
    group = DaemonGroup('g', processes=1)
    made = LiveCounts(servers=1, groups=[group])
    made.start_all()
    made.all_ready()
    counts = [made.live['g']]
    made.graceful_restart()                       # new processes 103 (server), 104 (daemon)
    counts.append(made.live['g'])
    made.child_ready(104)                         # the new daemon first, then the old retired
    counts.append(made.live['g'])
    made.child_exited(102, exited(0))
    counts.append(made.live['g'])
    assert counts == [1, 1, 1, 1]
    assert (102, signal.SIGTERM) in made.killed
