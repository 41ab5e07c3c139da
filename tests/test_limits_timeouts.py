"""Limits, timeouts and backpressure over real sockets (issue 3, points 2 and 3).

Each test starts its own server with small limits / timeouts, plays a misbehaving client with a
plain socket, and checks what the server does: the status it answers with, that it closes, that
the application saw an error instead of a truncated body, and that other clients are still
served. No test asserts how fast anything happens; every wait is bounded so a test that would
hang fails within a few seconds instead.
"""
import select
import socket
import threading
import time

import pytest

from httpraw import RawConnection, build_request
from serverproc import raise_own_nofile, wait_until

# /echo reads the whole body and logs what it got (or that reading failed); /big streams
# `mb` MiB and logs when the server closes the result; anything else answers "ok".
LIMITS_APP = r'''
import os

STATE_DIR = os.environ['PYWSGI_TEST_STATE']


def log_event(text):
    fd = os.open(os.path.join(STATE_DIR, 'events.log'), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, (text + '\n').encode())
    finally:
        os.close(fd)


def query(environ):
    return dict(part.partition('=')[::2] for part in environ.get('QUERY_STRING', '').split('&')
                if part)


class Big:
    def __init__(self, count):
        self.count = count

    def __iter__(self):
        block = b'x' * (1 << 20)
        for _ in range(self.count):
            yield block

    def close(self):
        log_event('big-closed')


def application(environ, start_response):
    path = environ.get('PATH_INFO', '')
    if path == '/echo':
        stream = environ['wsgi.input']
        total = 0
        try:
            while True:
                piece = stream.read(65536)
                if not piece:
                    break
                total += len(piece)
        except OSError as exc:
            log_event('echo-error %d %s' % (total, exc))
            raise
        log_event('echo-ok %d' % total)
        body = b'got %d' % total
        start_response('200 OK', [('Content-Type', 'text/plain'),
                                  ('Content-Length', str(len(body)))])
        return [body]
    if path == '/big':
        count = int(query(environ).get('mb', '64'))
        start_response('200 OK', [('Content-Type', 'application/octet-stream'),
                                  ('Content-Length', str(count << 20))])
        return Big(count)
    body = b'ok'
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '2')])
    return [body]
'''

IO_TIMEOUT = 5.0


@pytest.fixture
def serve(start_server, app_file):
    """serve(*flags) -> a running server of LIMITS_APP with those flags."""
    app = app_file(LIMITS_APP, 'limits_app.wsgi')

    def start(*flags):
        return start_server(app, *flags)
    return start


def events(server):
    path = server.state_file('events.log')
    return path.read_text().splitlines() if path.exists() else []


def wait_event(server, prefix, timeout=IO_TIMEOUT):
    def find():
        return [line for line in events(server) if line.startswith(prefix)]
    return wait_until(find, timeout, message='app event %r (events: %r)' % (prefix, events(server)))


def send_and_read(server, raw):
    """Send raw bytes on a fresh connection; (response, closed_after_it)."""
    with RawConnection(server.port, timeout=IO_TIMEOUT) as conn:
        conn.send(raw)
        response = conn.read_response()
        closed = conn.closed_by_server(timeout=IO_TIMEOUT) if response.has_token(
            'Connection', 'close') else None
    return response, closed


def assert_refused(server, raw, status):
    response, closed = send_and_read(server, raw)
    assert response.status == status, response.raw[:300]
    assert closed, 'the connection was not closed after %d' % status


def assert_ok(server, raw):
    response, _ = send_and_read(server, raw)
    assert response.status == 200, response.raw[:300]
    return response


def read_error_response_or_close(sock, timeout=IO_TIMEOUT):
    """After a misbehaving client: (status or None, closed). Reads until the server closes."""
    sock.settimeout(timeout)
    received = b''
    closed = False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            closed = True
            break
        except socket.timeout:
            break
        if not data:
            closed = True
            break
        received += data
    status = None
    if received.startswith(b'HTTP/1.1 '):
        status = int(received[9:12])
    return status, closed, received


# ---- request-line and header limits ------------------------------------------------------------

def test_limit_request_line_414(serve):
    server = serve('--limit-request-line', '100')
    assert_ok(server, build_request('GET', '/' + 'a' * 70))
    assert_refused(server, build_request('GET', '/' + 'a' * 120), 414)
    # A line longer than the limit is refused before its end arrives: no waiting for a CRLF.
    with socket.create_connection((server.host, server.port), timeout=IO_TIMEOUT) as sock:
        sock.sendall(b'GET /' + b'a' * 500)
        status, closed, _ = read_error_response_or_close(sock)
    assert (status, closed) == (414, True)


def test_limit_request_fields_431(serve):
    server = serve('--limit-request-fields', '5')
    fields = [('X-F%d' % i, 'v') for i in range(4)]  # + Host = 5
    assert_ok(server, build_request('GET', '/', fields))
    assert_refused(server, build_request('GET', '/', fields + [('X-Extra', 'v')]), 431)


def test_limit_request_field_size_431(serve):
    server = serve('--limit-request-field-size', '100')
    assert_ok(server, build_request('GET', '/', [('X-A', 'v' * 80)]))
    assert_refused(server, build_request('GET', '/', [('X-A', 'v' * 150)]), 431)
    assert_refused(server, build_request('GET', '/', [('X-' + 'n' * 150, 'v')]), 431)


# ---- request body limit --------------------------------------------------------------------------

def test_limit_request_body_content_length_413(serve):
    server = serve('--limit-request-body', '1000')
    response = assert_ok(server, build_request('POST', '/echo', body=b'b' * 1000))
    assert response.body == b'got 1000'
    assert_refused(server, build_request('POST', '/echo', body=b'b' * 1001), 413)
    # Refused from the head alone: the client need not send the body.
    head = build_request('POST', '/echo', [('Content-Length', '10000000')])
    assert_refused(server, head, 413)
    assert events(server) == ['echo-ok 1000']


def test_limit_request_body_zero_means_unlimited(serve):
    server = serve('--limit-request-body', '0')
    response = assert_ok(server, build_request('POST', '/echo', body=b'b' * 300000))
    assert response.body == b'got 300000'


@pytest.mark.parametrize('total', [3000, 200000], ids=['small-body', 'streamed-body'])
@pytest.mark.parametrize('buffered', [True, False], ids=['reactor', 'app-reads'])
def test_limit_request_body_chunked_413(serve, total, buffered):
    """A chunked body has no length up front: it is cut when it passes the limit - in the
    reactor while it buffers a small body (the app never runs), else in the app's read, which
    raises. The app never sees a silently truncated body; the client gets its 413 (the server
    lingers, reading what is still sent, so the answer is not lost to a reset)."""
    server = serve('--limit-request-body', '1000', *(() if buffered else ('--body-buffer-size', '0')))
    piece = b'c' * 500
    with socket.create_connection((server.host, server.port), timeout=IO_TIMEOUT) as sock:
        sock.sendall(b'POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n')
        sent = 0
        try:
            while sent < total:
                sock.sendall(b'%x\r\n%s\r\n' % (len(piece), piece))
                sent += len(piece)
            sock.sendall(b'0\r\n\r\n')
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server gave up on the body: fine
        status, closed, received = read_error_response_or_close(sock)
    assert status == 413, received[:300]
    assert b'Connection: close' in received
    server.wait_for_log('over --limit-request-body')
    if buffered:
        assert events(server) == []  # answered before the application ran
    else:
        error = wait_event(server, 'echo-')
        assert error[0].startswith('echo-error'), events(server)
    assert not [line for line in events(server) if line.startswith('echo-ok')]


def test_chunked_body_within_limit_is_read(serve):
    server = serve('--limit-request-body', '1000')
    body = b'3e8\r\n' + b'c' * 1000 + b'\r\n0\r\n\r\n'
    response = assert_ok(server, b'POST /echo HTTP/1.1\r\nHost: h\r\n'
                                 b'Transfer-Encoding: chunked\r\n\r\n' + body)
    assert response.body == b'got 1000'


# ---- header timeout and slowloris ----------------------------------------------------------------

HEADER_TIMEOUT_FLAGS = ('--header-timeout', '1', '--header-max-timeout', '2')


@pytest.mark.timeout(20)
def test_header_timeout_half_a_head_gets_408(serve):
    server = serve(*HEADER_TIMEOUT_FLAGS)
    with socket.create_connection((server.host, server.port), timeout=IO_TIMEOUT) as sock:
        sock.sendall(b'GET / HTTP/1.1\r\nHost: h\r\nX-Half: ')
        status, closed, received = read_error_response_or_close(sock, timeout=8)
    assert status == 408, received[:300]
    assert b'Connection: close' in received
    assert closed
    response, _ = server.get('/')
    assert response.status == 200


@pytest.mark.timeout(20)
def test_header_timeout_silent_connection_is_closed(serve):
    """A connection that never sends a byte is closed (nothing to answer: no request)."""
    server = serve(*HEADER_TIMEOUT_FLAGS)
    with socket.create_connection((server.host, server.port), timeout=IO_TIMEOUT) as sock:
        status, closed, received = read_error_response_or_close(sock, timeout=8)
    assert closed
    assert status in (None, 408), received[:300]


def trickle(sock, data, interval, limit):
    """Send `data` one byte every `interval` s until the server answers or closes, for at most
    `limit` s; returns (status or None, closed, bytes sent)."""
    deadline = time.monotonic() + limit
    sent = 0
    received = b''
    while time.monotonic() < deadline:
        # Wait for the server between bytes: a response is read before the next byte is sent.
        readable, _, _ = select.select([sock], [], [], interval)
        if readable:
            status, closed, more = read_error_response_or_close(sock, timeout=2)
            return status, closed, sent, received + more
        if sent >= len(data):
            continue
        try:
            sock.sendall(data[sent:sent + 1])
        except (BrokenPipeError, ConnectionResetError):
            return None, True, sent, received
        sent += 1
    return None, False, sent, received


@pytest.mark.timeout(20)
def test_slowloris_is_cut_at_header_max_timeout(serve):
    """1 byte every 0.2 s: with a min rate of 5 B/s every byte earns 0.2 s, so only the maximum
    (2 s) stops a client that trickles forever."""
    server = serve(*HEADER_TIMEOUT_FLAGS, '--header-min-rate', '5')
    endless_head = b'GET / HTTP/1.1\r\nHost: h\r\n' + b'X-Slow: ' + b'a' * 10000
    with socket.create_connection((server.host, server.port), timeout=IO_TIMEOUT) as sock:
        status, closed, sent, received = trickle(sock, endless_head, 0.2, limit=10)
    assert closed, 'a trickling client was never cut off (%d bytes sent)' % sent
    assert status in (408, None), received[:300]
    response, _ = server.get('/')
    assert response.status == 200


@pytest.mark.timeout(20)
def test_slowloris_default_rate_is_cut(serve):
    """With the default min rate (500 B/s) a 5 B/s client earns almost nothing."""
    server = serve(*HEADER_TIMEOUT_FLAGS)
    endless_head = b'GET / HTTP/1.1\r\nHost: h\r\n' + b'X-Slow: ' + b'a' * 10000
    with socket.create_connection((server.host, server.port), timeout=IO_TIMEOUT) as sock:
        status, closed, sent, received = trickle(sock, endless_head, 0.2, limit=10)
    assert closed, 'a trickling client was never cut off (%d bytes sent)' % sent
    assert status in (408, None), received[:300]


@pytest.mark.timeout(20)
def test_header_deadline_grows_with_data(serve):
    """A head that arrives steadily at a good rate may take longer than --header-timeout (the
    mod_reqtimeout MinRate rule): 3000 bytes at ~1.5 KB/s over ~1.6 s with a 1 s timeout."""
    server = serve('--header-timeout', '1', '--header-max-timeout', '10',
                   '--header-min-rate', '500')
    head = build_request('GET', '/', [('X-Pad%d' % i, 'p' * 90) for i in range(30)])
    with RawConnection(server.port, timeout=IO_TIMEOUT) as conn:
        for start in range(0, len(head), 300):
            conn.send(head[start:start + 300])
            time.sleep(0.15)
        response = conn.read_response()
    assert response.status == 200


# ---- body timeout ----------------------------------------------------------------------------

@pytest.mark.timeout(20)
@pytest.mark.parametrize('content_length', [100, 200000], ids=['reactor-buffered', 'worker-read'])
def test_body_timeout(serve, content_length):
    """A client that stops sending its body: 408 (or a close) and the app, if it was called,
    sees an error. Small bodies wait in the reactor, large ones in a worker: both are bounded."""
    server = serve('--body-timeout', '1', '--threads', '1')
    with socket.create_connection((server.host, server.port), timeout=IO_TIMEOUT) as sock:
        sock.sendall(b'POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n'
                     % content_length)
        sock.sendall(b'b' * min(content_length // 2, 70000))
        status, closed, received = read_error_response_or_close(sock, timeout=8)
    assert status in (408, None), received[:300]
    assert closed
    assert not [line for line in events(server) if line.startswith('echo-ok')]
    if content_length > 65536:
        assert wait_event(server, 'echo-error')
    # The one worker is free again.
    response, _ = server.get('/')
    assert response.status == 200


# ---- keep-alive timeout ------------------------------------------------------------------------

@pytest.mark.timeout(20)
def test_keep_alive_timeout_closes_idle_connection(serve):
    server = serve('--keep-alive-timeout', '1')
    with RawConnection(server.port, timeout=IO_TIMEOUT) as conn:
        first = conn.request('GET', '/')
        assert first.status == 200 and not first.has_token('Connection', 'close')
        second = conn.request('GET', '/')  # still open right after a response
        assert second.status == 200
        assert conn.closed_by_server(timeout=8), 'idle keep-alive connection never closed'


# ---- socket timeout: a client that stops reading -----------------------------------------------

@pytest.mark.timeout(30)
def test_socket_timeout_client_that_never_reads(serve):
    """The response is far larger than the socket buffers and the client never reads: after
    --socket-timeout the server gives up, closes the app's result, and its only worker serves
    the next client."""
    server = serve('--socket-timeout', '1', '--threads', '1')
    mark = server.log_mark()
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    try:
        stalled.settimeout(IO_TIMEOUT)
        stalled.connect((server.host, server.port))
        stalled.sendall(b'GET /big?mb=64 HTTP/1.1\r\nHost: h\r\n\r\n')
        wait_event(server, 'big-closed', timeout=10)
        server.wait_for_log('did not read the response in time', since=mark, timeout=5)
        response, body = server.get('/', timeout=IO_TIMEOUT)
        assert (response.status, body) == (200, b'ok')
        # What was buffered before the server gave up is all the client ever gets.
        stalled.settimeout(IO_TIMEOUT)
        received = 0
        while True:
            try:
                data = stalled.recv(1 << 20)
            except ConnectionResetError:
                break
            if not data:
                break
            received += len(data)
        assert received < 64 << 20
    finally:
        stalled.close()


# ---- max clients ------------------------------------------------------------------------------
# --max-clients, eviction at the cap, refusals and running out of descriptors:
# tests/test_connection_limits.py.


# ---- many idle and trickling connections --------------------------------------------------------

IDLE_CONNECTIONS = 500
TRICKLING_CONNECTIONS = 500


@pytest.mark.timeout(60)
def test_thousand_idle_and_trickling_connections_do_not_block_a_request(serve):
    total = IDLE_CONNECTIONS + TRICKLING_CONNECTIONS
    # The crowd needs descriptors here; the server raises its own limit. An explicit
    # --max-clients above the crowd: nobody may be closed to make room (a trickling connection
    # never is, but an idle one could be).
    raise_own_nofile(total + 512)
    server = serve('--max-clients', str(total + 50), '--threads', '2',
                   '--header-timeout', '30', '--header-max-timeout', '30')
    crowd = []
    stop = threading.Event()
    try:
        for index in range(total):
            sock = socket.create_connection((server.host, server.port), timeout=IO_TIMEOUT)
            if index >= IDLE_CONNECTIONS:
                sock.sendall(b'GET / HTTP/1.1\r\nHost: h\r\nX-Trickle: ')
            crowd.append(sock)
        trickling = crowd[IDLE_CONNECTIONS:]

        def trickle_forever():
            while not stop.is_set():
                for sock in trickling:
                    try:
                        sock.send(b'a')
                    except OSError:
                        pass
                stop.wait(0.5)
        trickler = threading.Thread(target=trickle_forever, daemon=True)
        trickler.start()
        time.sleep(0.5)  # let the trickle run a round or two

        for _ in range(3):
            response, body = server.get('/', timeout=15)
            assert (response.status, body) == (200, b'ok')
        response, body = server.request('POST', '/echo', body=b'e' * 1000, timeout=15)
        assert (response.status, body) == (200, b'got 1000')

        # The crowd was held open, not refused or dropped to make room.
        for sock in crowd[::50]:
            sock.setblocking(False)
            try:
                data = sock.recv(1024)
            except BlockingIOError:
                data = None
            assert data is None, 'a held connection was answered or closed: %r' % data
    finally:
        stop.set()
        for sock in crowd:
            sock.close()
