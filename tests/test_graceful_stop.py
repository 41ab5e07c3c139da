"""A stop that loses nothing (issue 21): on SIGTERM --ready-url turns 503 at once, the server
keeps accepting for --shutdown-delay (each response closing its connection), then stops
accepting, serves every connection already waiting in the listen backlog, finishes what is in
flight and exits 0.

The backlog test fills the kernel's accept queue behind a blocked single worker (the listening
socket's queue length is read from /proc/net/tcp, so the test knows the connections are queued
and not accepted) and checks that every queued client gets its answer. Before issue 21 they
were reset: the server left the listening socket without accepting them, and the socket closed
when the master exited. Real servers, real sockets, bounded in time.
"""
import signal
import socket
import threading
import time

import pytest

from httpraw import RawConnection, build_request, recv_until_close
from serverproc import APPS_DIR, wait_until

DAEMON_APP = APPS_DIR / 'daemon_app.py'


def listen_queue(port):
    """Connections waiting in the accept queue of the listening socket on 127.0.0.1:port
    (rx_queue of a LISTEN entry in /proc/net/tcp), or None when nothing listens there."""
    with open('/proc/net/tcp') as f:
        next(f)
        for line in f:
            fields = line.split()
            local, state, queues = fields[1], fields[3], fields[4]
            if state == '0A' and int(local.split(':')[1], 16) == port:
                return int(queues.split(':')[1], 16)
    return None


def queue_clients(server, count):
    """`count` connections that each send a request and wait in the listen backlog."""
    clients = []
    for index in range(count):
        client = socket.create_connection((server.host, server.port), timeout=30)
        client.sendall(build_request('GET', '/hello?n=%d' % index))
        clients.append(client)
    wait_until(lambda: listen_queue(server.port) == count, 10,
               message='%d connections queued in the backlog' % count)
    return clients


@pytest.mark.timeout(90)
@pytest.mark.parametrize('processes', [1, 2])
def test_sigterm_serves_every_connection_queued_in_the_backlog(start_server, processes):
    """--threads 1: each process's only thread runs a request that sleeps, so nothing else is
    accepted; the clients that connect meanwhile wait in the backlog; SIGTERM; each of them
    gets its answer (with Connection: close) and the server exits 0."""
    server = start_server(DAEMON_APP, '--threads', '1', '--processes', str(processes),
                          '--listen-backlog', '64', '--graceful-timeout', '30')
    wait_until(lambda: len(server.children()) == processes, 30, message='the children')
    busy = []
    for index in range(processes):
        busy.append(RawConnection(server.port, timeout=30))
        busy[-1].send(build_request('GET', '/sleep?s=4&mark=%d' % index))
        server.wait_state_file('started-%d' % index, timeout=10)
    clients = queue_clients(server, 12)
    # and one that connects but sends nothing (a browser's preconnect): it must not hold the
    # stop for the graceful timeout; it is closed like an idle keep-alive connection
    silent = socket.create_connection((server.host, server.port), timeout=30)
    wait_until(lambda: listen_queue(server.port) == 13, 10, message='13 queued')
    sigterm_at = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    answers = [recv_until_close(client) for client in clients]
    for client in clients:
        client.close()
    assert recv_until_close(silent) == b''
    silent.close()
    for index, answer in enumerate(answers):
        assert answer.startswith(b'HTTP/1.1 200 OK\r\n'), (index, answer[:200])
        assert b'\r\nConnection: close\r\n' in answer
        assert answer.endswith(b'hello %d' % index)
    for conn in busy:
        assert conn.read_response().status == 200  # the requests in flight finish too
        conn.close()
    assert server.proc.wait(timeout=30) == 0
    assert time.monotonic() - sigterm_at < 15  # not the 30 s of --graceful-timeout
    assert listen_queue(server.port) is None


@pytest.mark.timeout(60)
def test_shutdown_delay_keeps_serving_while_ready_says_503(start_server):
    """During --shutdown-delay: readiness 503, new connections still accepted and served, every
    response says Connection: close (a keep-alive connection from before the SIGTERM included);
    afterwards the port refuses connections and the server has exited 0."""
    server = start_server(DAEMON_APP, '--ready-url', '/readyz', '--health-url', '/healthz',
                          '--shutdown-delay', '2', '--threads', '4')
    kept = RawConnection(server.port)
    assert kept.request('GET', '/hello?n=before').header('Connection') is None
    assert server.get('/readyz')[0].status == 200
    mark = server.log_mark()
    sigterm_at = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    server.wait_for_log(r'still accepting for 2 s \(--shutdown-delay\)', since=mark)
    ready, body = server.get('/readyz')
    assert (ready.status, body) == (503, b'not ready: the server is stopping\n')
    assert server.get('/healthz')[0].status == 200
    response, body = server.get('/hello?n=during')
    assert (response.status, body, response.getheader('Connection')) == \
        (200, b'hello during', 'close')
    again = kept.request('GET', '/hello?n=kept')
    assert (again.body, again.header('Connection')) == (b'hello kept', 'close')
    assert kept.closed_by_server()
    kept.close()
    assert time.monotonic() - sigterm_at < 2  # all of that within the delay
    assert server.proc.wait(timeout=20) == 0
    assert time.monotonic() - sigterm_at >= 2
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.host, server.port), timeout=5)


@pytest.mark.timeout(90)
def test_daemon_mode_stop_loses_no_request_under_load(start_server):
    """Daemon mode: the server processes stop first and the daemons only once nobody can relay
    to them any more, so requests during the delay and the stop - fresh connections and a slow
    one in flight - all get 200."""
    server = start_server(DAEMON_APP, '--daemon', '--processes', '2', '--threads', '4',
                          '--ready-url', '/readyz', '--shutdown-delay', '1.5')
    wait_until(lambda: server.get('/readyz')[0].status == 200, 30, message='ready')
    results, stop = [], threading.Event()

    def load():
        while not stop.is_set():
            try:
                response, body = server.get('/hello?n=load', timeout=10)
                results.append((response.status, body))
            except ConnectionRefusedError:
                return  # the stop is over: nothing listens any more
            except OSError as error:
                results.append(('error', repr(error)))

    threads = [threading.Thread(target=load, daemon=True) for _ in range(3)]
    for thread in threads:
        thread.start()
    slow = RawConnection(server.port, timeout=30)
    slow.send(build_request('GET', '/sleep?s=2.5&mark=slow'))
    server.wait_state_file('started-slow')
    server.proc.send_signal(signal.SIGTERM)
    assert slow.read_response().status == 200
    slow.close()
    assert server.proc.wait(timeout=30) == 0
    stop.set()
    for thread in threads:
        thread.join(15)
    assert len(results) > 10
    assert {result for result in results} == {(200, b'hello load')}, \
        [result for result in results if result != (200, b'hello load')][:5]
