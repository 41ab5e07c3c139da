"""A graceful restart (SIGHUP) fails no request on a keep-alive connection (issue 17, item 6).

An old server process that stops closes each client connection after the request in flight, and
the client must have been told: the response says `Connection: close`, or the connection is kept
(like an idle one, for the keep-alive timeout at most) and the next request on it is answered
with `Connection: close`. A close the client was not told about meets its next request: wrk
counts a read error, `http.client` raises RemoteDisconnected. Daemon mode used to lose one
request per keep-alive connection per reload (5 SIGHUPs under `wrk -c50`: 250 read errors),
because the daemon frames the response and did not know the server process was stopping.

Covered for embedded mode (`--processes 2 --threads 15`), daemon mode as usually run (`--daemon
--processes 2 --threads 15`: the server process relays in its reactor, csrc/relay.c
pw_relay_async_*), and a daemon group beside a static mount (relay threads, pw_relay): wrk
keep-alive load across 5 SIGHUPs, and one `http.client` connection sending request after request
across a SIGHUP. Real servers, real sockets; bounded in time.
"""
import http.client
import re
import shutil
import signal
import subprocess
import threading
import time

import pytest

from serverproc import APPS_DIR, wait_until

DAEMON_APP = APPS_DIR / 'daemon_app.py'

SHAPES = {
    'embedded-2x15': (['--processes', '2', '--threads', '15'], 2),
    'daemon-2x15': (['--daemon', '--processes', '2', '--threads', '15'], 3),
    'daemon-beside-static': (['--daemon', '--processes', '2', '--threads', '15',
                              '--url-alias', '/static', '{static}'], 3),
}


def start_shape(start_server, tmp_path, shape):
    """The server of one shape, with all its children up; returns (server, children count)."""
    args, children = SHAPES[shape]
    static = tmp_path / 'static'
    static.mkdir(exist_ok=True)
    (static / 'a.txt').write_text('static\n')
    server = start_server(DAEMON_APP, *[arg.format(static=static) for arg in args])
    wait_until(lambda: len(server.children()) == children, 30,
               message='%d children' % children)
    return server, children


def reload_and_wait(server, children, timeout=60):
    """SIGHUP, then wait until every child of the old generation is gone."""
    before = set(server.children())
    server.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: not before & set(server.children())
               and len(server.children()) == children, timeout,
               message='the reload to replace every child')


def wrk_counts(output):
    """(requests, socket errors, non-2xx/3xx) from wrk's report; wrk prints the last two only
    when there were any."""
    requests = re.search(r'(\d+) requests in', output)
    assert requests, output
    errors = re.search(r'Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)',
                       output)
    non2xx = re.search(r'Non-2xx or 3xx responses: (\d+)', output)
    return (int(requests.group(1)), sum(int(n) for n in errors.groups()) if errors else 0,
            int(non2xx.group(1)) if non2xx else 0)


@pytest.mark.timeout(180)
@pytest.mark.parametrize('shape', list(SHAPES))
def test_five_reloads_under_wrk_keep_alive_load_fail_nothing(start_server, tmp_path, shape):
    if shutil.which('wrk') is None:
        pytest.skip('wrk is not installed: `loadtests/install_peers.sh --tools-only` (CI '
                    'installs it)')
    server, children = start_shape(start_server, tmp_path, shape)
    # wrk runs until told to stop (SIGINT makes it print its report); --timeout 10s: a slow
    # answer on this shared machine is not what this counts
    wrk = subprocess.Popen(['wrk', '-t1', '-c50', '-d120s', '--timeout', '10s',
                            server.url + '/hello?n=x'],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(1.0)
        for _ in range(5):
            reload_and_wait(server, children)
            time.sleep(0.3)  # load on the new generation before the next reload
    finally:
        wrk.send_signal(signal.SIGINT)
        try:
            output = wrk.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            wrk.kill()
            output = wrk.communicate()[0]
    requests, socket_errors, non2xx = wrk_counts(output)
    assert requests > 1000, output
    assert (socket_errors, non2xx) == (0, 0), output + server.stderr_text()[-3000:]
    assert server.proc.poll() is None


@pytest.mark.timeout(120)
@pytest.mark.parametrize('shape', list(SHAPES))
def test_one_keep_alive_connection_across_a_reload_sees_no_error(start_server, tmp_path, shape):
    """Request after request on one http.client connection (which reconnects by itself after a
    response that says Connection: close) while the master reloads: no exception, every answer
    200, and answers from both generations."""
    server, children = start_shape(start_server, tmp_path, shape)
    stop = threading.Event()
    errors, statuses, pids = [], [], []
    give_up = time.monotonic() + 90

    def client():
        connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
        index = 0
        while not stop.is_set() and time.monotonic() < give_up:
            try:
                connection.request('GET', '/hello?n=%d' % index)
                response = connection.getresponse()
                body = response.read()
            except Exception as error:  # the failure this test is about
                errors.append((index, repr(error)))
                connection.close()
                connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
            else:
                if (response.status, body) != (200, b'hello %d' % index):
                    statuses.append((index, response.status, body[:80]))
                pids.append(int(response.getheader('X-Pid')))
            index += 1
        connection.close()

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(pids) >= 50, 30, message='50 requests')
        first_generation = set(pids)
        reload_and_wait(server, children)
        count = len(pids)
        wait_until(lambda: len(pids) >= count + 50, 30, message='50 requests after the reload')
    finally:
        stop.set()
        thread.join(60)
    assert errors == []
    assert statuses == []
    assert set(pids) - first_generation, 'no answer came from the new generation'
