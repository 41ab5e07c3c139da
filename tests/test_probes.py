"""--health-url and --ready-url (issue 21): answered by the server process itself, in C, as soon
as the head is parsed - no application call - framed, logged and counted like any answer;
allowed from loopback, UNIX-socket clients and --health-allow; readiness 503 while a daemon
process group has no live process and from the first instant of a graceful stop.

Real servers on real sockets; the client address of a remote prober is a trusted proxy's
X-Forwarded-For (a test can only connect from loopback here).
"""
import json
import os
import signal
import socket
import time

import pytest

from httpraw import RawConnection, build_request, recv_until_close
from serverproc import APPS_DIR, wait_until

DAEMON_APP = APPS_DIR / 'daemon_app.py'
SLOW_START_APP = APPS_DIR / 'slow_start_app.py'
PROBES = ('--health-url', '/healthz', '--ready-url', '/readyz')


def probe(server, path, method='GET', headers=None):
    with RawConnection(server.port) as conn:
        return conn.request(method, path, headers=headers)


def test_health_and_ready_are_answered_without_the_application(start_server):
    server = start_server(DAEMON_APP, *PROBES, '--threads', '2')
    health = probe(server, '/healthz')
    assert (health.status, health.body) == (200, b'ok\n')
    assert health.header('Content-Type') == 'text/plain; charset=utf-8'
    assert health.header('Cache-Control') == 'no-store'
    assert health.header('X-Pid') is None  # the application sets X-Pid on every answer
    ready = probe(server, '/readyz?probe=kubelet')  # the query is not part of the path
    assert (ready.status, ready.body) == (200, b'ready\n')
    head = probe(server, '/readyz', method='HEAD')
    assert (head.status, head.body, head.header('Content-Length')) == (200, b'', '6')
    # anything else is the application's, even a path below a probe URL
    below = probe(server, '/healthz/more')
    assert below.status == 404 and below.header('X-Pid')


def test_other_methods_get_405(start_server):
    server = start_server(DAEMON_APP, *PROBES)
    response = probe(server, '/readyz', method='POST')
    assert response.status == 405
    assert response.header('Allow') == 'GET, HEAD'


def test_pipelined_probes_and_requests_are_answered_in_order(start_server):
    server = start_server(DAEMON_APP, *PROBES, '--threads', '2')
    with RawConnection(server.port) as conn:
        conn.send(build_request('GET', '/healthz') + build_request('GET', '/hello?n=1')
                  + build_request('GET', '/readyz') + build_request('GET', '/readyz')
                  + build_request('GET', '/hello?n=2'))
        bodies = [conn.read_response().body for _ in range(5)]
        assert bodies == [b'ok\n', b'hello 1', b'ready\n', b'ready\n', b'hello 2']
        # and the connection stays usable
        assert conn.request('GET', '/healthz').body == b'ok\n'


def test_http10_and_keep_alive(start_server):
    server = start_server(DAEMON_APP, *PROBES)
    with RawConnection(server.port) as conn:
        response = conn.request('GET', '/healthz', version='HTTP/1.0')
        assert response.status == 200
        assert conn.closed_by_server()
    with RawConnection(server.port) as conn:
        response = conn.request('GET', '/healthz', version='HTTP/1.0',
                                headers=[('Connection', 'keep-alive')])
        assert response.header('Connection') == 'keep-alive'
        assert conn.request('GET', '/readyz').status == 200


def test_a_probe_with_a_body_is_answered_and_closed(start_server):
    server = start_server(DAEMON_APP, *PROBES)
    with RawConnection(server.port) as conn:
        response = conn.request('GET', '/healthz', body=b'x' * 10)
        assert (response.status, response.header('Connection')) == (200, 'close')
        assert conn.closed_by_server()


@pytest.mark.parametrize('allow, status', [((), 403), (('--health-allow', '10.0.0.0/8'), 200),
                                           (('--health-allow', '192.0.2.0/24'), 403)])
def test_only_allowed_clients_may_ask(start_server, allow, status):
    """A client forwarded by a trusted proxy is that client, not the proxy: 10.1.2.3 here."""
    server = start_server(DAEMON_APP, *PROBES, '--trust-proxy', '127.0.0.1', *allow)
    mark = server.log_mark()
    for path in ('/healthz', '/readyz'):
        response = probe(server, path, headers=[('X-Forwarded-For', '10.1.2.3')])
        assert response.status == status
    if status == 403:
        server.wait_for_log(r'10\.1\.2\.3:\d+: client not allowed to ask --health-url '
                            r'\(--health-allow\): 403', since=mark)
    # loopback may always ask
    assert probe(server, '/healthz').status == 200


def test_unix_socket_clients_may_ask(start_server, tmp_path):
    path = tmp_path / 'pywsgi.sock'
    start_server(DAEMON_APP, *PROBES, '--unix-socket', path, wait=False)
    wait_until(path.exists, 30, message='the UNIX socket')
    client = socket.socket(socket.AF_UNIX)
    client.settimeout(10)
    wait_until(lambda: client.connect_ex(str(path)) == 0, 30, message='connect')
    client.sendall(build_request('GET', '/readyz', headers=[('Connection', 'close')]))
    answer = recv_until_close(client)
    client.close()
    assert answer.startswith(b'HTTP/1.1 200 OK\r\n') and answer.endswith(b'\r\n\r\nready\n')


def test_probes_are_logged_and_counted(start_server, tmp_path):
    log = tmp_path / 'access.log'
    server = start_server(DAEMON_APP, *PROBES, '--access-log', log,
                          '--server-status', '/server-status')
    for _ in range(3):
        assert probe(server, '/healthz').status == 200
    assert probe(server, '/readyz').status == 200
    wait_until(lambda: log.exists() and log.read_text().count('"GET /healthz HTTP/1.1" 200 3')
               == 3, 5, message='3 access-log lines for /healthz')
    assert '"GET /readyz HTTP/1.1" 200 6' in log.read_text()
    status = json.loads(server.get('/server-status?json')[1])
    assert status['totals']['requests'] >= 4


def test_daemon_mode_probes_do_not_wait_for_a_busy_daemon(start_server):
    """The server process answers while the daemon's only thread runs a slow request."""
    server = start_server(DAEMON_APP, *PROBES, '--daemon', '--processes', '1', '--threads', '1')
    wait_until(lambda: probe(server, '/readyz').status == 200, 30, message='ready')
    with RawConnection(server.port) as slow:
        slow.send(build_request('GET', '/sleep?s=3&mark=busy'))
        server.wait_state_file('started-busy')
        started = time.monotonic()
        assert probe(server, '/healthz').status == 200
        assert probe(server, '/readyz').status == 200
        assert time.monotonic() - started < 2.5  # well before the daemon is free again
        assert slow.read_response().status == 200


@pytest.mark.timeout(120)
def test_ready_is_503_while_a_daemon_group_has_no_live_process(start_server, tmp_path):
    """Starting: the daemon is loading its application (held by a file); restarting: the only
    daemon was killed and its replacement is loading. Liveness stays 200 throughout."""
    hold = tmp_path / 'hold'
    hold.write_text('')
    server = start_server(SLOW_START_APP, *PROBES, '--daemon', '--processes', '1',
                          '--threads', '2', env={'PYWSGI_TEST_HOLD': str(hold)})
    response = wait_until(lambda: _answered(server, '/readyz'), 30, message='an answer')
    assert response.status == 503
    assert response.body.startswith(b'not ready: daemon process group ')
    assert response.body.endswith(b' has no live process\n')
    assert probe(server, '/healthz').status == 200
    hold.unlink()
    wait_until(lambda: probe(server, '/readyz').status == 200, 30, message='ready')
    assert server.get('/hello?n=x')[1] == b'hello x'

    daemon = int(server.get('/pid')[1])
    hold.write_text('')
    os.kill(daemon, signal.SIGKILL)
    wait_until(lambda: probe(server, '/readyz').status == 503, 10, message='503 after the kill')
    hold.unlink()
    wait_until(lambda: probe(server, '/readyz').status == 200, 30, message='ready again')


def _answered(server, path):
    try:
        return probe(server, path)
    except OSError:
        return None


def test_ready_stays_200_across_a_graceful_restart(start_server):
    """SIGHUP replaces every process, the daemon's new one first: the group always has a live
    process and the server is not stopping, so a prober never sees 503."""
    server = start_server(DAEMON_APP, *PROBES, '--daemon', '--processes', '1', '--threads', '2')
    wait_until(lambda: probe(server, '/readyz').status == 200, 30, message='ready')
    before = set(server.children())
    server.proc.send_signal(signal.SIGHUP)
    statuses = set()
    deadline = time.monotonic() + 60
    while before & set(server.children()) and time.monotonic() < deadline:
        statuses.add(probe(server, '/readyz').status)
        time.sleep(0.02)
    statuses.add(probe(server, '/readyz').status)
    assert statuses == {200}


def test_settings_are_checked():
    from pywsgi.config import ConfigError, build
    settings = build(health_url='/healthz/', ready_url='/readyz', health_allow=['10.0.0.0/8'],
                     shutdown_delay='5')
    assert (settings.health_url, settings.ready_url, settings.shutdown_delay) == \
        ('/healthz', '/readyz', 5.0)
    for bad in ({'health_url': 'healthz'}, {'ready_url': '/'}, {'ready_url': '/caf%C3%A9'},
                {'health_allow': ['not-a-network']}, {'shutdown_delay': '-1'},
                {'health_url': '/probe', 'ready_url': '/probe'}):
        with pytest.raises(ConfigError):
            build(**bad)


def test_bad_command_line_values_exit_2(start_server, tmp_path):
    import subprocess
    import sys
    result = subprocess.run([sys.executable, '-m', 'pywsgi', '--ready-url', 'readyz'],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 2
    assert '--ready-url' in result.stderr
