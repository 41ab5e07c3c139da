"""Slow readers hold no thread (issue 17, item 1).

A client that reads its response slowly used to hold a worker thread for the whole response: 200
readers of a 10 MB body at 1 KB/s and `--threads 4` left nobody to answer anyone else. Now what
the client does not take at once stays with the connection (up to --send-buffer-size; a file as
its descriptor), the reactor sends it, and a streamed body is pulled from the application again
only when the client has taken most of it - the worker serves others meanwhile. A client that
reads nothing for --socket-timeout, or slower than --send-min-rate, is dropped.
"""
import select
import socket
import time

import pytest

from httpraw import RawConnection, recv_until_close

MiB = 1024 * 1024

SLOW_APP = r'''
import os

BIG = b'x' * (10 * 1024 * 1024)


def application(environ, start_response):
    path = environ.get('PATH_INFO', '')
    if path == '/list':
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        return [BIG]
    if path == '/stream':
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        return (BIG[i:i + 65536] for i in range(0, len(BIG), 65536))
    if path == '/file':
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        return environ['wsgi.file_wrapper'](open(os.environ['SLOW_FILE'], 'rb'))
    if path == '/write':
        write = start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        write(BIG[:1024 * 1024])
        return [b'end']
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '2')])
    return [b'ok']
'''


@pytest.fixture
def slow_app(app_file, tmp_path):
    app = app_file(SLOW_APP, 'slow_app.wsgi')
    big = tmp_path / 'big.bin'
    big.write_bytes(b'f' * (10 * MiB))
    return app, {'SLOW_FILE': str(big)}


def open_slow_readers(port, path, count, method='GET'):
    readers = []
    body = b'x' if method == 'POST' else b''
    for _ in range(count):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # backpressure comes soon
        sock.settimeout(10)
        sock.connect(('127.0.0.1', port))
        sock.sendall(b'%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s'
                     % (method.encode(), path.encode(), len(body), body))
        sock.setblocking(False)
        readers.append(sock)
    return readers


def read_a_little(readers, received, budget=1024):
    """Every reader takes at most `budget` bytes (if it has any): a 1 KB/s client, once a second."""
    _, _, _ = select.select([], [], [], 0)
    for index, sock in enumerate(readers):
        try:
            data = sock.recv(budget)
        except BlockingIOError:
            continue
        received[index] += len(data)


def assert_slow_readers_leave_the_server_free(port, path, method='GET', count=200):
    """`count` readers of `path` (1 KB/s each) get their first bytes; then a normal request is
    answered at once (a bound, not a speed test: served beside them, not after them), and every
    reader still receives over the next seconds."""
    readers = open_slow_readers(port, path, count, method=method)
    try:
        received = [0] * len(readers)
        for _ in range(3):
            time.sleep(1)
            read_a_little(readers, received)
        before = list(received)
        assert answer_time(port) < 1.0
        for _ in range(3):
            time.sleep(1)
            read_a_little(readers, received)
        starved = [i for i, (a, b) in enumerate(zip(before, received)) if b <= a]
        assert not starved, '%d of %d slow readers got nothing for 3 s' % (len(starved),
                                                                           len(readers))
    finally:
        for sock in readers:
            sock.close()


def answer_time(port):
    started = time.monotonic()
    with RawConnection(port, timeout=10) as connection:
        response = connection.request('GET', '/hello')
    assert (response.status, response.body) == (200, b'ok')
    return time.monotonic() - started


@pytest.mark.timeout(90)
@pytest.mark.parametrize('path', ['/list', '/stream', '/file'])
@pytest.mark.parametrize('mode', [('--threads', '4'), ('--threads', '1'),
                                  ('--daemon', '--processes', '1', '--threads', '4')],
                         ids=['threads4', 'inline', 'daemon'])
def test_200_slow_readers_leave_the_workers_free(start_server, slow_app, path, mode):
    app, env = slow_app
    server = start_server(app, *mode, '--max-clients', '1000', env=env)
    assert_slow_readers_leave_the_server_free(server.port, path)


@pytest.mark.timeout(90)
@pytest.mark.parametrize('shape', ['post', 'mixed'])
def test_200_slow_readers_in_daemon_mode_hold_no_relay_thread(start_server, slow_app, tmp_path,
                                                                shape):
    # A request with a body, and any request when a static mount sits beside the daemon
    # group, is relayed by a thread (not the reactor alone): it hands a slow client's
    # response to the reactor instead of waiting for it.
    app, env = slow_app
    flags = ['--daemon', '--processes', '1', '--threads', '4']
    if shape == 'mixed':
        (tmp_path / 'htdocs').mkdir()
        flags += ['--url-alias', '/static', tmp_path / 'htdocs']
    server = start_server(app, *flags, env=env)
    assert_slow_readers_leave_the_server_free(server.port, '/stream',
                                              method='POST' if shape == 'post' else 'GET')


@pytest.mark.timeout(90)
def test_200_slow_readers_of_a_static_file_leave_the_workers_free(start_server, slow_app, tmp_path):
    app, env = slow_app
    root = tmp_path / 'htdocs'
    root.mkdir()
    (root / 'big.bin').write_bytes(b's' * (10 * MiB))
    server = start_server(app, '--threads', '4', '--url-alias', '/static', root, env=env)
    assert_slow_readers_leave_the_server_free(server.port, '/static/big.bin')


@pytest.mark.timeout(60)
def test_a_reader_slower_than_the_minimum_rate_is_dropped(start_server, slow_app):
    app, env = slow_app
    server = start_server(app, '--socket-timeout', '2', '--send-min-rate', '5000', env=env)
    reader, = open_slow_readers(server.port, '/stream', 1)
    try:
        deadline = time.monotonic() + 20
        closed = False
        while time.monotonic() < deadline and not closed:
            time.sleep(0.5)
            try:
                data = reader.recv(1000)  # 2 KB/s, under the 5000 bytes/s minimum
                closed = data == b''
            except BlockingIOError:
                pass
            except ConnectionResetError:
                closed = True
        assert closed, 'the slow reader was not dropped'
        server.wait_for_log('under --send-min-rate')
        assert answer_time(server.port) < 5
    finally:
        reader.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize('path', ['/list', '/stream', '/file', '/write'])
@pytest.mark.parametrize('mode', [(), ('--daemon', '--processes', '1'), ('--daemon', 'POST')],
                         ids=['embedded', 'daemon', 'daemon-post'])
def test_a_slow_but_steady_reader_gets_every_byte(start_server, slow_app, path, mode):
    app, env = slow_app
    method = 'POST' if 'POST' in mode else 'GET'
    flags = [flag for flag in mode if flag != 'POST']
    server = start_server(app, '--threads', '2', '--send-buffer-size', '64k', *flags, env=env)
    reader, = open_slow_readers(server.port, path, 1, method=method)
    reader.setblocking(True)
    try:
        time.sleep(0.5)  # let the server fill every buffer first
        data = recv_until_close(reader, complete=lambda data: data.endswith(b'0\r\n\r\n'))
    finally:
        reader.close()
    head, _, body = data.partition(b'\r\n\r\n')
    assert head.startswith(b'HTTP/1.1 200')
    if b'chunked' in head:
        decoded, rest = bytearray(), body
        while True:
            size_line, _, rest = rest.partition(b'\r\n')
            size = int(size_line, 16)
            if size == 0:
                break
            decoded += rest[:size]
            rest = rest[size + 2:]
        body = bytes(decoded)
    expected = {'/list': 10 * MiB, '/stream': 10 * MiB, '/file': 10 * MiB, '/write': MiB + 3}[path]
    assert len(body) == expected


@pytest.mark.timeout(60)
def test_daemon_mode_a_reader_slower_than_the_daemons_socket_timeout_is_kept(start_server,
                                                                             slow_app):
    # The server process stops reading the daemon while its client is behind - here for
    # seconds at a time, longer than --socket-timeout; the daemon must not take that for a
    # stalled reader of its own (the server process applies the client limits itself).
    app, env = slow_app
    server = start_server(app, '--daemon', '--processes', '1', '--threads', '2',
                          '--socket-timeout', '2', '--send-min-rate', '0',
                          '--send-buffer-size', '64k', env=env)
    reader, = open_slow_readers(server.port, '/list', 1)
    received = []
    try:
        started = time.monotonic()
        while time.monotonic() - started < 15:
            time.sleep(0.1)
            try:
                piece = reader.recv(1000)  # 10 KB/s: the server process pauses ~5 s at a time
            except BlockingIOError:
                continue
            assert piece, 'the connection was closed after %d bytes' % sum(received)
            received.append(len(piece))
    finally:
        reader.close()
    assert sum(received) > 100000
    log = server.stderr_text()
    assert 'ended early' not in log and 'did not read the response in time' not in log, log
