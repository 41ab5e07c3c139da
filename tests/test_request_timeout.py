"""--request-timeout (issue 17, item 5): a request that overruns is interrupted with
RequestTimeout and answered 504, its stack and request line logged; one the exception cannot
reach (blocked in C) makes the process recycle, and the master's replacement serves at once.
Daemon mode: --daemon maps both options to its group. Real servers, real sockets; bounded waits.
"""
import http.client
import time

import pytest

from serverproc import APPS_DIR, is_alive, wait_until
from test_daemon import in_thread, wait_for_processes

TIMEOUT_APP = APPS_DIR / 'timeout_app.py'


def served_by(server, path='/hello', timeout=30):
    response, body = server.get(path, timeout=timeout)
    assert response.status == 200, (path, response.status, body[:300])
    return int(response.getheader('X-Pid'))


@pytest.mark.parametrize('threads', ['4', '1'], ids=['threads', 'inline'])
def test_a_request_over_the_timeout_gets_504_and_others_are_served(start_server, threads):
    server = start_server(TIMEOUT_APP, '--request-timeout', '2', '--threads', threads)
    pid = served_by(server)
    mark = server.log_mark()
    # the app never returns, swallowing every Exception; 3 s: the client's bound for the 504
    stuck = in_thread(server.get, '/spin?mark=spin', timeout=3)
    assert int(server.wait_state_file('started-spin', timeout=10)) == pid
    if threads != '1':
        assert served_by(server, timeout=10) == pid  # the other threads serve meanwhile
    stuck[0].join(10)
    assert 'error' not in stuck[1], stuck[1]
    response, body = stuck[1]['result']
    assert response.status == 504, body[:300]
    assert response.getheader('Connection') == 'close'
    line = server.wait_for_log(r'"GET /spin\?mark=spin HTTP/1\.1" has run', since=mark)
    assert 'longer than --request-timeout (2s): raising RequestTimeout' in line
    log = server.stderr_text()[mark:]
    assert 'timeout_app.py", line' in log and 'in spin_forever' in log, log  # the stuck stack
    assert 'GET /spin?mark=spin: 504, interrupted' in log, log
    # the process was not recycled: it serves on
    assert served_by(server) == pid
    assert 'recycling' not in server.stderr_text()


def test_a_response_already_streaming_is_cut_off(start_server):
    server = start_server(TIMEOUT_APP, '--request-timeout', '1')
    pid = served_by(server)
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        connection.request('GET', '/stream')
        response = connection.getresponse()
        assert response.status == 200
        with pytest.raises(http.client.IncompleteRead):  # the chunked body never ends properly
            response.read()
    finally:
        connection.close()
    server.wait_for_log(r'GET /stream: interrupted after running longer than --request-timeout, '
                        r'after the response started: connection closed')
    assert 'in stream_forever' in server.stderr_text()
    assert served_by(server) == pid


def test_a_request_the_exception_cannot_reach_recycles_the_process(start_server):
    """Blocked in a lock acquire, the request ignores RequestTimeout: after interrupt-timeout
    the process stops accepting and the master starts its replacement at once, which serves
    while the old process still finishes its other request (one process: --processes 1)."""
    server = start_server(TIMEOUT_APP, '--request-timeout', '6', '--interrupt-timeout', '1',
                          '--processes', '1', '--threads', '2')
    old = served_by(server)
    mark = server.log_mark()
    stuck = in_thread(server.get, '/block?mark=block', timeout=60)
    assert int(server.wait_state_file('started-block', timeout=10)) == old
    server.wait_for_log(r'"GET /block\?mark=block HTTP/1\.1" has run .* raising RequestTimeout',
                        since=mark, timeout=15)
    # a request that is in flight when the process is recycled: it finishes where it started
    other = in_thread(server.get, '/hold?mark=other', timeout=60)
    assert int(server.wait_state_file('started-other', timeout=10)) == old
    server.wait_for_log(r'recycling this process: a request did not stop within 1s',
                        since=mark, timeout=15)
    new = served_by(server)
    assert new != old
    assert is_alive(old) and other[0].is_alive(), 'the old process should still be draining'
    server.state_file('release-other').write_text('')
    other[0].join(30)
    response, body = other[1]['result']
    assert (response.status, int(response.getheader('X-Pid'))) == (200, old), body[:300]
    # then the old process goes, leaving the stuck request behind (its client sees a close)
    wait_until(lambda: not is_alive(old), 20, message='the old process to exit')
    stuck[0].join(30)
    assert 'error' in stuck[1], stuck[1]
    assert served_by(server) == new
    log = server.stderr_text()[mark:]
    assert log.count('in block_forever') == 2, log  # when interrupted, and when given up
    assert 'leaving 1 request(s) stuck past --request-timeout behind' in log


def test_inline_a_stuck_request_is_replaced_and_waiting_requests_are_served(start_server):
    """--threads 1: the thread that runs requests is the one stuck; a request sent meanwhile
    waits in the listening socket's backlog and is served by the replacement."""
    server = start_server(TIMEOUT_APP, '--request-timeout', '1', '--interrupt-timeout', '1',
                          '--processes', '1', '--threads', '1')
    old = served_by(server)
    stuck = in_thread(server.get, '/block?mark=block', timeout=60)
    assert int(server.wait_state_file('started-block', timeout=10)) == old
    assert served_by(server) != old
    wait_until(lambda: not is_alive(old), 20, message='the old process to exit')
    stuck[0].join(30)
    assert 'error' in stuck[1], stuck[1]
    assert 'did not stop within 1s of RequestTimeout' in server.stderr_text()


def test_daemon_mode_takes_request_timeout_and_interrupts_first(start_server):
    """--daemon: --request-timeout and --interrupt-timeout become the group's options; the
    interrupted request unwinds, so the daemon process is not recycled."""
    server = start_server(TIMEOUT_APP, '--daemon', '--processes', '1', '--threads', '2',
                          '--request-timeout', '2', '--interrupt-timeout', '5')
    (daemon,), _ = wait_for_processes(server, daemons=1)
    mark = server.log_mark()
    started = time.monotonic()
    response, body = server.get('/spin?mark=spin', timeout=30)
    assert response.status == 504, body[:300]
    assert time.monotonic() - started < 20
    line = server.wait_for_log(r'"GET /spin\?mark=spin HTTP/1\.1" has run', since=mark)
    assert 'longer than request-timeout= of daemon process group' in line
    server.wait_for_log(r'GET /spin\?mark=spin: 504, interrupted', since=mark)
    assert 'in spin_forever' in server.stderr_text()[mark:]
    assert served_by(server) == daemon
    assert 'recycling' not in server.stderr_text()
