"""Daemon mode: the relay's pooled UNIX connections (csrc/relay.c, issue 6 performance).

A relay thread keeps one idle connection per daemon group for requests without a body. What a
user must never notice: a pooled connection that its daemon closed (crash, recycle, restart)
costs no request - the relay retries a request the daemon never read on a fresh connection -
and clients that do not keep their own connection alive (HTTP/1.0, `Connection: close`, like
`ab` without -k) are answered and closed exactly as without pooling. And the pooled connections
spread a light load over the group's daemon processes, also after one restarted.
"""
import os
import signal
import threading
import time

import pytest

from httpraw import RawConnection
from serverproc import APPS_DIR, SUITE_APP, cpu_ticks, in_thread, is_alive, results_of, wait_until
from test_daemon import daemon_pids, server_pids, wait_for_processes, with_its_one_thread_busy

DAEMON_APP = APPS_DIR / 'daemon_app.py'


def warm_pool(server, count=40):
    """Requests on several client connections, so every relay thread holds a pooled connection;
    returns the daemon pids that answered."""
    pids = set()
    for index in range(count):
        with RawConnection(server.port) as conn:
            response = conn.request('GET', '/hello?n=warm%d' % index)
            assert response.status == 200
            pids.add(int(response.header('X-Pid')))
    return pids


def test_killed_daemon_with_idle_pooled_connections_fails_no_later_request(start_server):
    server = start_server(DAEMON_APP, '--daemon', '--processes', '2', '--threads', '4',
                          '--server-threads', '4')
    daemons, _ = wait_for_processes(server, daemons=2)
    answered = warm_pool(server)
    victim = sorted(answered)[0]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: not is_alive(victim), 10, message='the daemon to die')
    # The server's reactor keeps its idle daemon connections in its poller: the dead daemon's
    # now report end-of-file, and the reactor must drop them, not spin on them.
    server_pid, = server_pids(server)
    before = cpu_ticks(server_pid)
    time.sleep(1.0)
    assert cpu_ticks(server_pid) - before < os.sysconf('SC_CLK_TCK') // 2, \
        'the idle server process burns CPU after its daemon died'
    # every relay thread may still hold a connection to the dead daemon: none of that shows
    for index in range(40):
        with RawConnection(server.port) as conn:
            response = conn.request('GET', '/hello?n=%d' % index)
            assert (response.status, response.body) == (200, b'hello %d' % index)
            assert int(response.header('X-Pid')) != victim
    wait_until(lambda: len(daemon_pids(server)) == 2, 20, message='a replacement daemon')


def test_http10_clients_are_answered_and_closed(start_server):
    server = start_server(DAEMON_APP, '--daemon', '--processes', '1', '--threads', '2')
    wait_for_processes(server, daemons=1)
    pids = set()
    for index in range(30):
        with RawConnection(server.port) as conn:
            conn.send(b'GET /hello?n=%d HTTP/1.0\r\nHost: x\r\n\r\n' % index)
            raw = conn.read_until_eof()  # the server closes the client's connection
        head, _, body = raw.partition(b'\r\n\r\n')
        assert head.startswith(b'HTTP/1.1 200 ')
        assert body == b'hello %d' % index
        assert b'Content-Length: %d' % len(body) in head
        pids.add(head.split(b'X-Pid: ')[1].split(b'\r\n')[0])
    assert len(pids) == 1  # one daemon process served them all, none was replaced


def test_connection_close_then_keep_alive_then_post(start_server):
    server = start_server(DAEMON_APP, '--daemon', '--processes', '1', '--threads', '2',
                          '--server-threads', '1')
    wait_for_processes(server, daemons=1)
    # the client's `Connection: close` ends the client's connection, not the relay's
    with RawConnection(server.port) as conn:
        response = conn.request('GET', '/hello?n=a', headers=[('Connection', 'close')])
        assert (response.status, response.body) == (200, b'hello a')
        assert response.has_token('Connection', 'close')
        assert conn.read_until_eof() == b''
    with RawConnection(server.port) as conn:
        for index in range(5):
            response = conn.request('GET', '/hello?n=%d' % index)
            assert (response.status, response.body) == (200, b'hello %d' % index)
            assert not response.has_token('Connection', 'close')
        # a request with a body takes a fresh connection of its own; the pool is untouched
        body = b'x' * 5000
        response = conn.request('POST', '/echo', body=body)
        assert response.status == 200
        assert response.body == body
        response = conn.request('GET', '/hello?n=after')
        assert (response.status, response.body) == (200, b'hello after')


# ------------------------------------------------------------------ wsgi.file_wrapper: fd passing

def written_by(pid):
    """Bytes the process has written with write()/send() calls so far (/proc/PID/io wchar)."""
    with open('/proc/%d/io' % pid) as f:
        return int(dict(line.split(': ') for line in f.read().splitlines())['wchar'])


def test_file_wrapper_in_a_daemon_passes_the_file_not_its_bytes(start_server):
    server = start_server(SUITE_APP, '--daemon', '--processes', '1', '--threads', '2')
    (daemon,), _ = wait_for_processes(server, daemons=1)
    data = os.urandom(4 * 1024 * 1024 + 123)
    (server.state_dir / 'big.bin').write_bytes(data)
    before = written_by(daemon)
    with RawConnection(server.port, timeout=30) as conn:
        for _ in range(3):  # on one client connection, so on the pooled daemon connection too
            response = conn.request('GET', '/file_wrapper?name=big.bin')
            assert response.status == 200
            assert response.header('Content-Length') == str(len(data))
            assert response.body == data
        response = conn.request('HEAD', '/file_wrapper?name=big.bin')
        assert (response.status, response.body) == (200, b'')
        # without a Content-Length from the app the server still frames it by the file's size
        response = conn.request('GET', '/file_wrapper?name=big.bin&cl=0')
        assert response.body == data
    # the daemon wrote heads, not 16 MiB of file
    assert written_by(daemon) - before < 256 * 1024


def test_file_wrapper_over_a_file_object_without_fileno_is_copied(start_server):
    server = start_server(SUITE_APP, '--daemon', '--processes', '1', '--threads', '2')
    wait_for_processes(server, daemons=1)
    data = os.urandom(300 * 1024)
    (server.state_dir / 'small.bin').write_bytes(data)
    response, body = server.get('/file_wrapper?name=small.bin&obj=bytesio')
    assert (response.status, body) == (200, data)


def test_requests_beyond_the_groups_capacity_wait_then_get_503(start_server):
    # one daemon thread: the server keeps at most two relays in flight for the group, so a third
    # request waits in the server process, and gets 503 once the queue timeout passes
    server, first = with_its_one_thread_busy(start_server, 'one', seconds=3)
    others = [in_thread(server.get, '/hello?n=%d' % index, timeout=30) for index in range(3)]
    (first_response, _), *other_results = results_of([first] + others)
    assert first_response.status == 200
    assert sorted(response.status for response, _ in other_results) == [503, 503, 503]
    response, body = server.get('/hello?n=after')
    assert (response.status, body) == (200, b'hello after')


@pytest.mark.timeout(240)
def test_reloads_and_daemon_kills_under_load_fail_only_the_killed_requests(start_server):
    """Issue 6's load test: clients keep sending while the master reloads (SIGHUP) and daemon
    processes are SIGKILLed; the only failures allowed are 502s for requests that were inside a
    killed daemon (at most its threads' worth per kill)."""
    threads_per_daemon = 4
    server = start_server(DAEMON_APP, '--daemon', '--processes', '2',
                          '--threads', str(threads_per_daemon))
    wait_for_processes(server, daemons=2)
    stop = threading.Event()
    lock = threading.Lock()
    done = [0]
    unexpected, bad_gateway = [], []
    give_up = time.monotonic() + 120

    def client(worker):
        index = 0
        while not stop.is_set() and index < 5000 and time.monotonic() < give_up:
            try:
                response, body = server.get('/hello?n=%d-%d&pause=0.005' % (worker, index),
                                            timeout=30)
                if response.status == 502:
                    bad_gateway.append((worker, index))
                elif (response.status, body) != (200, b'hello %d-%d' % (worker, index)):
                    unexpected.append((worker, index, response.status, body[:80]))
            except Exception as error:
                unexpected.append((worker, index, repr(error)))
            with lock:
                done[0] += 1
            index += 1

    clients = [threading.Thread(target=client, args=(w,), daemon=True) for w in range(4)]
    for thread in clients:
        thread.start()
    kills = 0
    try:
        for round_ in range(2):
            target = done[0] + 50
            wait_until(lambda target=target: done[0] >= target, 60, message='50 more requests')
            if round_ == 0:
                before = set(server.children())
                server.proc.send_signal(signal.SIGHUP)
                wait_until(lambda before=before: not before & set(server.children())
                           and len(daemon_pids(server)) == 2, 60, message='the reload')
            victim = daemon_pids(server)[0]
            os.kill(victim, signal.SIGKILL)
            kills += 1
            wait_until(lambda victim=victim: victim not in daemon_pids(server)
                       and len(daemon_pids(server)) == 2, 60, message='a replacement daemon')
        target = done[0] + 50
        wait_until(lambda: done[0] >= target, 60, message='50 requests after the faults')
    finally:
        stop.set()
        for thread in clients:
            thread.join(60)
    assert unexpected == []
    assert len(bad_gateway) <= kills * threads_per_daemon
    assert server.proc.poll() is None


# ------------------------------------------------------------------ spreading a light load

def start_two_daemons(start_server, tmp_path, shape):
    """`--daemon --processes 2 --threads 15`, relayed by the server's reactor ('direct-relay'), or
    by relay threads when a static mount sits beside the group ('beside-static'); returns once
    both daemons serve."""
    args = ['--daemon', '--processes', '2', '--threads', '15', '--log-level', 'debug']
    if shape == 'beside-static':
        (tmp_path / 'static').mkdir()
        args += ['--url-alias', '/static', tmp_path / 'static']
    server = start_server(DAEMON_APP, *args)
    daemons, _ = wait_for_processes(server, daemons=2)
    # logged once every process said it is ready, which it says just before it starts polling
    server.wait_for_log(r'listening on', timeout=30)
    time.sleep(0.5)
    return server, daemons


def count_answers(conn, served, count, tag):
    for index in range(count):
        response = conn.request('GET', '/hello?n=%s%d' % (tag, index))
        assert (response.status, response.body) == (200, b'hello %s%d' % (tag.encode(), index))
        pid = int(response.header('X-Pid'))
        served[pid] = served.get(pid, 0) + 1


@pytest.mark.parametrize('shape', ['direct-relay', 'beside-static'])
def test_idle_requests_spread_over_the_daemon_processes(start_server, tmp_path, shape):
    """One client's sequential requests reach both daemon processes of a group, not one of them
    (issue 17, item 8). The daemons take new connections in turn (accept.c, reactor_accept);
    the reactor's pool opens one connection per daemon process before it reuses any and then
    takes the one idle longest, and each relay thread's pooled connection lands on the next
    daemon in turn (relay.c). Before, one daemon served all 200."""
    server, daemons = start_two_daemons(start_server, tmp_path, shape)
    served = {}
    with RawConnection(server.port) as conn:
        count_answers(conn, served, 200, '')
    assert sorted(served) == sorted(daemons), served
    assert min(served.values()) >= 50, served  # a fair share each (100 when they alternate)


@pytest.mark.timeout(90)
@pytest.mark.parametrize('shape', ['direct-relay', 'beside-static'])
def test_a_restarted_daemon_gets_its_share_again(start_server, tmp_path, shape):
    """While a daemon restarts, the other takes all of the relay's pooled connections; they are
    renewed every few seconds (PW_RELAY_POOL_RENEW in relay.h), so a light load soon reaches the
    replacement too, instead of leaving it idle for as long as the connections live."""
    server, daemons = start_two_daemons(start_server, tmp_path, shape)
    victim, survivor = daemons
    with RawConnection(server.port) as conn:
        count_answers(conn, {}, 200, 'warm')  # every relay thread holds a pooled connection
    mark = server.log_mark()
    os.kill(victim, signal.SIGKILL)

    def replacement_ready():
        log = server.stderr_text()[mark:]
        return [pid for pid in daemon_pids(server)
                if pid not in (victim, survivor) and '(pid %d) is ready' % pid in log]
    # the light load goes on while the daemon restarts: the survivor takes every request, and
    # every pooled connection
    give_up = time.monotonic() + 30
    with RawConnection(server.port) as conn:
        while not replacement_ready() and time.monotonic() < give_up:
            count_answers(conn, {}, 10, 'during')
            time.sleep(0.02)
    replacement, = replacement_ready()
    served = {}
    give_up = time.monotonic() + 30
    with RawConnection(server.port) as conn:
        while served.get(replacement, 0) < 50 and time.monotonic() < give_up:
            count_answers(conn, served, 10, 'after')
            time.sleep(0.02)  # a light load
    assert served.get(replacement, 0) >= 50, served
    assert set(served) <= {survivor, replacement}, served
