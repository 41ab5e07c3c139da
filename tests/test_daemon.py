"""Daemon mode (issue 6): the application runs in daemon process groups, the server processes
relay to them over a UNIX socket (csrc/relay.c). Real servers, real sockets, real processes.

Covered: routing and environ in a daemon process, process titles, streaming both ways (uploads,
chunked, large responses, HEAD, keep-alive, pipelining, 100-continue), faults (a daemon that dies
-> 502 and a respawn; SIGKILL under load), queue-timeout -> 503, graceful reload under load with
zero failures, startup errors, SIGTERM with a request in flight, static files beside the daemons.
"""
import json
import os
import re
import signal
import sys
import threading
import time

import pytest

from httpraw import RawConnection, build_request, chunked
from serverproc import (
    APPS_DIR,
    EXAMPLE_APP,
    ServerProcess,
    in_thread,
    is_alive,
    results_of,
    wait_until,
)

sys.path.insert(0, str(APPS_DIR))
from daemon_app import pattern  # noqa: E402  (the app's own byte pattern, to check bodies)

DAEMON_APP = APPS_DIR / 'daemon_app.py'
MiB = 1024 * 1024


# ------------------------------------------------------------------ helpers

def cmdline(pid):
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            return f.read().split(b'\0')[0].decode('utf-8', 'replace')
    except (FileNotFoundError, ProcessLookupError):
        return ''


def daemon_pids(server):
    """The master's children that are daemon processes (their title is `(wsgi:NAME)`)."""
    return [pid for pid in server.children() if cmdline(pid).startswith('(wsgi:')]


def server_pids(server):
    return [pid for pid in server.children() if pid not in daemon_pids(server)]


def wait_for_processes(server, daemons, servers=1, timeout=20):
    """Wait until the master has `servers` server children and `daemons` daemon children."""
    def counted():
        found_daemons = daemon_pids(server)
        found_servers = [pid for pid in server.children() if pid not in found_daemons]
        if len(found_daemons) == daemons and len(found_servers) == servers:
            return found_daemons, found_servers
        return None
    return wait_until(counted, timeout, message='%d daemon and %d server processes'
                      % (daemons, servers))


def with_its_one_thread_busy(start_server, mark, seconds):
    """A server whose daemon group has one thread (queue-timeout 0.5 s), once that thread is
    running a request of `seconds` s: (server, the in_thread call of that request)."""
    server = start_server(DAEMON_APP, '--daemon-process',
                          'g:processes=1,threads=1,queue-timeout=0.5', '--process-group', 'g')
    wait_for_processes(server, daemons=1)
    busy = in_thread(server.get, '/sleep?s=%d&mark=%s' % (seconds, mark), timeout=30)
    server.wait_state_file('started-' + mark, timeout=20)
    return server, busy


def start_expecting_failure(args, workdir, timeout=30):
    """Start the server with args that must make it fail: (exit code, stderr text)."""
    server = ServerProcess(args, workdir, wait=False)
    try:
        code = server.proc.wait(timeout=timeout)
        return code, server.stderr_text()
    finally:
        server.stop()


# ------------------------------------------------------------------ the shared server

@pytest.fixture(scope='module')
def daemon_server(start_module_server):
    """--daemon --processes 2 --threads 15, the test app at /app."""
    server = start_module_server(DAEMON_APP, '--daemon', '--processes', '2', '--threads', '15',
                                 '--mount-point', '/app', '--keep-alive-timeout', '30')
    wait_for_processes(server, daemons=2)
    return server


# ------------------------------------------------------------------ 1. routing and environ

def test_example_runs_in_daemon_processes(start_server):
    server = start_server(EXAMPLE_APP, '--daemon', '--processes', '2', '--threads', '15')
    daemons, servers = wait_for_processes(server, daemons=2)
    for _ in range(4):
        response, body = server.get('/')
        assert response.status == 200
        assert body == b'mod_wsgi works!'
    # mod_wsgi-express names the group after the address it listens on
    for pid in daemons:
        assert cmdline(pid) == '(wsgi:127.0.0.1:%d)' % server.port


def test_app_runs_in_a_daemon_process(daemon_server):
    daemons, servers = wait_for_processes(daemon_server, daemons=2)
    with RawConnection(daemon_server.port) as conn:
        client_port = conn.sock.getsockname()[1]
        response = conn.request('GET', '/app/env/more/path?x=1')
    assert response.status == 200
    info = response.json()
    assert info['pid'] in daemons
    assert info['pid'] not in servers
    assert info['ppid'] == daemon_server.pid          # a child of the master
    assert cmdline(info['pid']).startswith('(wsgi:')
    assert info['REMOTE_ADDR'] == '127.0.0.1'        # the client's, carried by the preamble
    assert info['REMOTE_PORT'] == str(client_port)
    assert info['SCRIPT_NAME'] == '/app'
    assert info['PATH_INFO'] == '/env/more/path'
    assert info['QUERY_STRING'] == 'x=1'
    assert info['mod_wsgi.process_group'] == '127.0.0.1:%d' % daemon_server.port
    assert info['wsgi.multiprocess'] is True
    assert info['wsgi.multithread'] is True


def test_named_group_with_display_name(start_server):
    server = start_server(DAEMON_APP, '--daemon-process',
                          'example.com:processes=2,threads=3,display-name=%{GROUP}',
                          '--process-group', 'example.com')
    daemons, _ = wait_for_processes(server, daemons=2)
    assert all(cmdline(pid) == '(wsgi:example.com)' for pid in daemons)
    response, body = server.get('/env')
    info = json.loads(body)
    assert info['pid'] in daemons
    assert info['mod_wsgi.process_group'] == 'example.com'
    assert info['SCRIPT_NAME'] == ''
    assert info['PATH_INFO'] == '/env'


# ------------------------------------------------------------------ 2. streaming both ways

def test_large_upload_with_content_length(daemon_server):
    data = pattern(5 * MiB)
    response, body = daemon_server.request('POST', '/app/echo', body=data,
                                           headers={'Content-Type': 'application/octet-stream'},
                                           timeout=30)
    assert response.status == 200
    assert int(response.getheader('Content-Length')) == len(data)
    assert body == data


def test_chunked_upload(daemon_server):
    pieces = [pattern(size) for size in (1, 100, 70000, 3 * 65536 + 7, 5)]
    with RawConnection(daemon_server.port, timeout=30) as conn:
        conn.send(build_request('POST', '/app/echo', [('Transfer-Encoding', 'chunked')],
                                chunked(*pieces, trailer=b'X-Trailer: dropped\r\n')))
        response = conn.read_response()
        assert response.status == 200
        assert response.body == b''.join(pieces)
        # the connection is still usable afterwards
        assert conn.request('GET', '/app/hello?n=after').body == b'hello after'


def test_large_generator_response_is_chunked_for_http11(daemon_server):
    size = 20 * MiB
    with RawConnection(daemon_server.port, timeout=60) as conn:
        response = conn.request('GET', '/app/big?size=%d' % size)
        assert response.status == 200
        assert response.chunked
        assert response.header('Content-Length') is None
        assert len(response.body) == size
        assert response.body == pattern(size)
        assert conn.request('GET', '/app/hello?n=2').body == b'hello 2'


def test_large_generator_response_is_close_delimited_for_http10(daemon_server):
    size = 20 * MiB
    with RawConnection(daemon_server.port, timeout=60) as conn:
        response = conn.request('GET', '/app/big?size=%d' % size, version='HTTP/1.0')
        assert response.status == 200
        assert not response.chunked
        assert response.header('Content-Length') is None
        assert response.body == pattern(size)
        assert conn.eof  # the body ended with the connection


def test_head(daemon_server):
    with RawConnection(daemon_server.port) as conn:
        response = conn.request('HEAD', '/app/hello?n=head')
        assert response.status == 200
        assert response.header('Content-Length') == str(len(b'hello head'))
        assert response.body == b''
        # no stray body bytes: the next response on the connection parses cleanly
        assert conn.request('GET', '/app/hello?n=next').body == b'hello next'


def test_keep_alive_requests_all_relayed(daemon_server):
    daemons, _ = wait_for_processes(daemon_server, daemons=2)
    with RawConnection(daemon_server.port) as conn:
        for index in range(6):
            response = conn.request('GET', '/app/hello?n=%d' % index)
            assert response.status == 200
            assert response.body == b'hello %d' % index
            assert int(response.header('X-Pid')) in daemons
            assert not response.has_token('Connection', 'close')
        assert not conn.closed_by_server(timeout=0.2)


def test_pipelined_requests_answered_in_order(daemon_server):
    with RawConnection(daemon_server.port, timeout=20) as conn:
        requests = [build_request('GET', '/app/hello?n=%d' % index) for index in range(5)]
        requests.insert(2, build_request('POST', '/app/echo', body=b'posted in the pipe'))
        conn.send(b''.join(requests))
        bodies = [conn.read_response().body for _ in requests]
    assert bodies == [b'hello 0', b'hello 1', b'posted in the pipe',
                      b'hello 2', b'hello 3', b'hello 4']


def test_expect_100_continue_is_answered_once(daemon_server):
    body = pattern(200000)
    with RawConnection(daemon_server.port, timeout=20) as conn:
        head = build_request('POST', '/app/echo', [('Content-Length', str(len(body))),
                                                   ('Expect', '100-continue')])
        conn.send(head)
        version, status, reason, headers, raw = conn.read_head()
        assert status == 100
        conn.send(body)
        response = conn.read_response('POST')
        assert response.informational == []  # no second 100 Continue (e.g. from the daemon)
        assert response.status == 200
        assert response.body == body
        assert conn.request('GET', '/app/hello?n=x').body == b'hello x'


# ------------------------------------------------------------------ 3. faults

def test_daemon_dying_mid_request_gives_502_and_is_respawned(start_server):
    server = start_server(DAEMON_APP, '--daemon', '--processes', '1', '--threads', '4')
    (victim,), _ = wait_for_processes(server, daemons=1)
    mark = server.log_mark()
    response, _ = server.get('/exit', timeout=30)
    assert response.status == 502
    server.wait_for_log(r'\[pywsgi:error\].*502', since=mark)
    wait_until(lambda: not is_alive(victim), 10, message='the daemon to die')
    # the next requests wait in the group's backlog until the master has started a new daemon
    for index in range(5):
        response, body = server.get('/hello?n=%d' % index, timeout=30)
        assert response.status == 200
        assert body == b'hello %d' % index
        assert int(response.getheader('X-Pid')) != victim
    assert server.proc.poll() is None


def test_daemon_dying_mid_response_closes_the_client_connection(start_server):
    # a long keep-alive timeout, so the server's idle close cannot pass for the close expected
    server = start_server(DAEMON_APP, '--daemon', '--processes', '1', '--threads', '4',
                          '--keep-alive-timeout', '30')
    wait_for_processes(server, daemons=1)
    with RawConnection(server.port, timeout=8) as conn:
        conn.send(build_request('GET', '/exit_midway'))
        version, status, reason, headers, raw = conn.read_head()
        assert status == 200
        # the client must see the connection end, not wait for the missing 979 bytes
        received = conn.read_until_eof()
        assert received.startswith(b'only part of the body')
        assert len(received) < 1000


def test_sigkill_of_a_daemon_fails_only_its_in_flight_requests(start_server):
    server = start_server(DAEMON_APP, '--daemon', '--processes', '2', '--threads', '4')
    daemons, _ = wait_for_processes(server, daemons=2)
    count = 6
    clients = [in_thread(server.get, '/sleep?s=1.5&mark=k%d' % index, timeout=30)
               for index in range(count)]
    started = {}
    for index in range(count):
        started[index] = int(server.wait_state_file('started-k%d' % index, timeout=20))
    victim = started[0]
    assert victim in daemons
    os.kill(victim, signal.SIGKILL)
    for index, (response, body) in enumerate(results_of(clients)):
        if started[index] == victim:
            assert response.status == 502, (index, response.status, body)
        else:
            assert response.status == 200, (index, response.status, body)
            assert body == b'slept %d' % started[index]
    # the master replaces the killed daemon, and the server keeps answering
    wait_until(lambda: victim not in daemon_pids(server) and len(daemon_pids(server)) == 2, 20,
               message='a replacement for daemon %d' % victim)
    for index in range(6):
        response, body = server.get('/hello?n=%d' % index, timeout=30)
        assert (response.status, body) == (200, b'hello %d' % index)


def test_master_log_names_a_killed_daemon_process_as_such(start_server):
    # issue 17 point 8: it was "server process 1" in the master's log
    server = start_server(DAEMON_APP, '--daemon-process', 'example.com:processes=2,threads=2',
                          '--process-group', 'example.com', '--server-status', '/status')
    daemons, (server_child,) = wait_for_processes(server, daemons=2)

    def daemon_rows():
        response, body = server.get('/status?json')
        rows = [p for p in json.loads(body)['processes']
                if p['role'] == 'daemon' and p['state'] == 'ready']
        return rows if len(rows) == 2 else None
    rows = wait_until(daemon_rows, 20, message='both daemon processes ready')
    (victim,) = [p['pid'] for p in rows if p['index'] == 1]
    assert victim in daemons
    mark = server.log_mark()
    os.kill(victim, signal.SIGKILL)
    line = server.wait_for_log(r'\(pid %d\)' % victim, since=mark, timeout=10)
    assert re.search(r'\[pywsgi:error\] .*\] daemon process 1 of group example\.com \(pid %d\) '
                     r'was killed by SIGKILL; restarting it in [\d.]+ s$' % victim, line), line
    # and a server process is still called one
    mark = server.log_mark()
    os.kill(server_child, signal.SIGKILL)
    line = server.wait_for_log(r'\(pid %d\)' % server_child, since=mark, timeout=10)
    assert re.search(r'\] server process 0 \(pid %d\) was killed by SIGKILL; restarting it'
                     % server_child, line), line
    wait_for_processes(server, daemons=2)
    assert server.get('/hello?n=1')[1] == b'hello 1'


@pytest.mark.parametrize('mode', [('--daemon', '--processes', '1', '--threads', '2'),
                                  ('--daemon', '--processes', '1', '--threads', '15'),
                                  ('--processes', '1', '--threads', '2'),
                                  ('--processes', '1', '--threads', '15')],
                         ids=['daemon-1x2', 'daemon-1x15', 'embedded-1x2', 'embedded-1x15'])
def test_a_slow_request_holds_up_no_other(start_server, mode):
    # The workers take turns polling for requests (leader_pop in csrc/queue.c): the one that
    # picked up the slow request was polling, so another must take over for the requests that
    # arrive meanwhile.
    server = start_server(DAEMON_APP, *mode)
    if '--daemon' in mode:
        wait_for_processes(server, daemons=1)
    slow = in_thread(server.get, '/sleep?s=6&mark=slow', timeout=30)
    server.wait_state_file('started-slow', timeout=20)
    with RawConnection(server.port, timeout=20) as conn:
        for index in range(10):
            conn.send(build_request('GET', '/hello?n=%d' % index))
            response = conn.read_response()
            assert (response.status, response.body) == (200, b'hello %d' % index)
    assert slow[0].is_alive(), 'the fast requests waited for the slow one'
    slow[0].join(30)
    response, body = slow[1]['result']
    assert response.status == 200


# ------------------------------------------------------------------ 4. queue-timeout

def test_queue_timeout_gives_503(start_server):
    server, first = with_its_one_thread_busy(start_server, 'first', seconds=2)
    mark = server.log_mark()
    second = in_thread(server.get, '/sleep?s=2&mark=second', timeout=30)
    assert [response.status for response, _ in results_of([first, second])] == [200, 503]
    assert not server.state_file('started-second').exists()  # the app never saw it
    server.wait_for_log(r'queue timeout.*503', since=mark)


# ------------------------------------------------------------------ 5. graceful reload under load

@pytest.mark.timeout(240)
def test_graceful_reload_under_load_fails_no_request(start_server):
    server = start_server(DAEMON_APP, '--daemon', '--processes', '2', '--threads', '4',
                          '--server-processes', '2')
    wait_for_processes(server, daemons=2, servers=2)
    stop = threading.Event()
    lock = threading.Lock()
    done = [0]
    failures = []
    pids_seen = set()
    give_up = time.monotonic() + 150  # bounded in time as well as in count

    def client(worker):
        index = 0
        # bounded: the loop ends when the test says so, or after 1500 requests per client; the
        # app's pause paces it so the reloads happen in the middle of the load
        while not stop.is_set() and index < 20000 and time.monotonic() < give_up:
            expected = b'hello %d-%d' % (worker, index)
            try:
                response, body = server.get('/hello?n=%d-%d&pause=0.01' % (worker, index),
                                            timeout=30)
                if response.status != 200 or body != expected:
                    failures.append((worker, index, response.status, body[:100]))
                else:
                    with lock:
                        pids_seen.add(int(response.getheader('X-Pid')))
            except Exception as error:
                failures.append((worker, index, repr(error)))
            with lock:
                done[0] += 1
            index += 1

    def wait_for(predicate, what):
        try:
            wait_until(predicate, 45, message=what)
        except AssertionError as error:
            raise AssertionError('%s; %d requests done, failures %s, clients alive %s, '
                                 'children %s; error log:\n%s' % (
                                     error, done[0], failures[:5],
                                     [thread.is_alive() for thread in threads],
                                     server.children(), server.stderr_text()[-3000:])) from None

    threads = [threading.Thread(target=client, args=(worker,), daemon=True) for worker in range(4)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(2):
            before = set(server.children())
            target = done[0] + 40
            wait_for(lambda target=target: done[0] >= target, '40 more requests')
            # One reload at a time, each after the last has settled: a storm of SIGHUPs is
            # not what this tests.
            time.sleep(1.0)
            server.proc.send_signal(signal.SIGHUP)
            # every child is replaced: new ones start first, the old ones are retired once
            # their replacement is ready
            wait_for(lambda before=before: not before & set(server.children())
                     and len(server.children()) == 4,
                     'the old children to go')
        after_reloads = done[0]
        target = after_reloads + 40
        wait_for(lambda: done[0] >= target, '40 requests after the reloads')
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert failures == []
    assert server.proc.poll() is None
    assert len(pids_seen) > 2  # answered by the daemons of more than one generation


# ------------------------------------------------------------------ 6. startup errors

def test_unknown_process_group_exits_2(tmp_path):
    code, stderr = start_expecting_failure([DAEMON_APP, '--process-group', 'nosuch'], tmp_path)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert 'nosuch' in lines[0]


@pytest.mark.parametrize('spec', [
    'g:bogus=1',
    'g:processes=0',
    'g:threads=many',
    'g:processes',
    'g:queue-timeout=-1',
    'a/b:processes=1',
])
def test_bad_daemon_process_option_exits_2(tmp_path, spec):
    code, stderr = start_expecting_failure(
        [DAEMON_APP, '--daemon-process', spec, '--process-group', spec.split(':')[0]], tmp_path)
    assert code == 2
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert 'error' in stderr


def test_group_defined_twice_exits_2(tmp_path):
    code, stderr = start_expecting_failure(
        [DAEMON_APP, '--daemon-process', 'g:processes=1', '--daemon-process', 'g:processes=2',
         '--process-group', 'g'], tmp_path)
    assert code == 2
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert 'twice' in stderr


# ------------------------------------------------------------------ 7. SIGTERM with a request in flight

def test_sigterm_lets_the_daemon_request_finish(start_server):
    server = start_server(DAEMON_APP, '--daemon', '--processes', '1', '--threads', '2')
    wait_for_processes(server, daemons=1)
    thread, outcome = in_thread(server.get, '/sleep?s=1&mark=term', timeout=30)
    daemon_pid = int(server.wait_state_file('started-term', timeout=20))
    server.proc.send_signal(signal.SIGTERM)
    thread.join(30)
    assert 'error' not in outcome, outcome
    response, body = outcome['result']
    assert response.status == 200
    assert body == b'slept %d' % daemon_pid
    assert server.proc.wait(timeout=30) == 0
    wait_until(lambda: not server.session_members(), 10, message='every child to exit')


# ------------------------------------------------------------------ 8. static files beside daemons

def test_static_files_are_served_by_the_server_process(start_server, tmp_path):
    root = tmp_path / 'root'
    root.mkdir()
    (root / 'index.txt').write_bytes(b'from the document root\n')
    aliased = tmp_path / 'aliased'
    aliased.mkdir()
    (aliased / 'file.txt').write_bytes(b'from the url alias\n')
    server = start_server(DAEMON_APP, '--daemon-process', 'g:processes=1,threads=1',
                          '--process-group', 'g', '--mount-point', '/app',
                          '--document-root', root, '--url-alias', '/static', aliased)
    wait_for_processes(server, daemons=1)
    # the group's only thread is busy: anything routed to it would wait behind this request
    busy_thread, busy = in_thread(server.get, '/app/sleep?s=3&mark=busy', timeout=30)
    server.wait_state_file('started-busy', timeout=20)
    response, body = server.get('/index.txt', timeout=10)
    assert (response.status, body) == (200, b'from the document root\n')
    assert response.getheader('X-Pid') is None
    response, body = server.get('/static/file.txt', timeout=10)
    assert (response.status, body) == (200, b'from the url alias\n')
    assert response.getheader('X-Pid') is None
    assert 'result' not in busy  # both answered while the daemon was still busy
    busy_thread.join(30)
    assert busy['result'][0].status == 200
