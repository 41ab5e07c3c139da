"""daemon/recycle.py RecyclePolicy: when a process is recycled and what happens to a request past
request-timeout, decided from times alone (the core calls it every 0.1 s with the time now)."""
import pytest

from pywsgi.daemon.recycle import INTERRUPT, RECYCLE, WAIT, RecyclePolicy


def policy(request_timeout=0.0, interrupt_timeout=0.0, restart_interval=0.0,
           inactivity_timeout=0.0, graceful_timeout=15.0, shutdown_timeout=5.0,
           timeout_setting='--request-timeout', watch=None, started=1000.0):
    made = RecyclePolicy(request_timeout, interrupt_timeout, restart_interval,
                         inactivity_timeout, graceful_timeout, shutdown_timeout,
                         timeout_setting, watch)
    made.start(started, [])
    return made


def second(made, now, busy=False, last_request=0.0):
    """The once-a-second turn: nine ticks that decide nothing, then the tenth."""
    for _ in range(9):
        assert made.tick(now, busy, last_request) is None
    return made.tick(now, busy, last_request)


class Memory:
    """A RecycleWatch stand-in: what memory-limit says."""

    def __init__(self, reason=None):
        self.reason = reason
        self.started_with = None

    def start(self, apps):
        self.started_with = list(apps)

    def check_memory(self):
        return self.reason


def test_nothing_to_watch_keeps_no_records():
    assert not policy().active
    assert policy(request_timeout=5).active
    assert policy(restart_interval=60).active and policy(inactivity_timeout=60).active
    assert policy(watch=Memory()).active


def test_a_request_is_overrunning_only_past_request_timeout():
    made = policy(request_timeout=10)
    assert not made.overran(now=1010.0, since=1000.0)
    assert made.overran(now=1010.1, since=1000.0)
    assert not policy().overran(now=5000.0, since=1000.0)   # 0: no limit


def test_an_overrunning_request_is_interrupted_once_then_given_interrupt_timeout():
    made = policy(request_timeout=10, interrupt_timeout=5)
    since = 1000.0
    assert made.on_overrun(now=1011.0, since=since, interrupted=0.0) == INTERRUPT
    # RequestTimeout was raised into it (the core records `since`): it may unwind
    assert made.on_overrun(now=1014.0, since=since, interrupted=since) == WAIT
    assert made.on_overrun(now=1015.0, since=since, interrupted=since) == WAIT
    assert made.on_overrun(now=1015.1, since=since, interrupted=since) == RECYCLE
    assert made.overrun_reason(1015.1, since) == \
        'did not stop within 5s of RequestTimeout (interrupt-timeout)'
    assert made.grace == 15.0   # the other requests get the graceful timeout


def test_the_next_request_of_the_same_thread_is_interrupted_too():
    made = policy(request_timeout=10, interrupt_timeout=5)
    assert made.on_overrun(now=1031.0, since=1020.0, interrupted=1000.0) == INTERRUPT


def test_without_interrupt_timeout_an_overrun_recycles_at_once():
    made = policy(request_timeout=10, interrupt_timeout=0, shutdown_timeout=5,
                  timeout_setting='request-timeout= of daemon process group g')
    assert made.on_overrun(now=1012.0, since=1000.0, interrupted=0.0) == RECYCLE
    assert made.overrun_reason(1012.0, 1000.0) == \
        'has run 12.00s, longer than request-timeout= of daemon process group g (10s)'
    assert made.grace == 5.0    # shutdown-timeout: the process goes down soon
    second(made, 1012.5)
    assert made.grace == 15.0   # the next decision starts from the graceful timeout again


def test_restart_interval_is_checked_once_a_second():
    made = policy(restart_interval=60)
    assert second(made, now=1059.0) is None
    for _ in range(9):
        assert made.tick(1060.0, False, 0.0) is None   # not its turn yet
    assert made.tick(1060.0, False, 0.0) == 'restart-interval (60s) reached'


def test_inactivity_timeout_counts_from_the_last_request_while_idle():
    made = policy(inactivity_timeout=30)
    assert second(made, now=5000.0, last_request=0.0) is None      # none yet: never idle
    assert second(made, now=1029.0, last_request=1000.0) is None
    assert second(made, now=1030.0, busy=True, last_request=1000.0) is None
    assert second(made, now=1030.0, last_request=1000.0) == \
        'no request for inactivity-timeout (30s)'


def test_the_watch_is_started_and_asked_about_memory_last():
    watch = Memory()
    made = policy(watch=watch)
    made.start(1000.0, ['app'])
    assert watch.started_with == ['app']
    assert second(made, now=1001.0) is None
    watch.reason = 'its memory (RSS 2 bytes) is above memory-limit (1 bytes)'
    assert second(made, now=1002.0) == watch.reason
    limits_first = policy(restart_interval=1, watch=watch)
    assert second(limits_first, now=1002.0) == 'restart-interval (1s) reached'


def test_the_files_are_due_once_a_second():
    made = policy(watch=Memory())
    assert not made.files_check_due()
    second(made, now=1001.0)
    assert made.files_check_due()
    assert not made.files_check_due()   # told once


@pytest.mark.parametrize('request_timeout, interrupt_timeout, ran, stuck', [
    (10, 5, 15.0, False), (10, 5, 15.1, True), (10, 0, 10.1, True), (0, 5, 1e6, False)])
def test_a_stopping_process_leaves_stuck_requests_behind(request_timeout, interrupt_timeout,
                                                          ran, stuck):
    made = policy(request_timeout=request_timeout, interrupt_timeout=interrupt_timeout)
    assert made.is_stuck(now=1000.0 + ran, since=1000.0) is stuck
