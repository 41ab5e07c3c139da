"""HTTP/1.1 strictness over real sockets (issue 3, points 1 and 5).

Every malformed request of tests/malformed_cases.CASES is sent to one running server followed,
in the same write, by a valid pipelined request. The server must answer exactly once, with the
expected status and `Connection: close`, then close; the pipelined request must never reach the
application (a server that re-synchronises on it is open to request smuggling). The application
appends every PATH_INFO it is called with to a log file, so "never reached" is checked on the
application's side too, not only on the wire.

The valid-traffic tests at the end make sure strictness does not turn away legal requests.
"""
import socket

import pytest

from httpraw import IncompleteResponse, RawConnection, assert_items, chunked
from malformed_cases import CASES
from serverproc import https_server

# The application: logs each PATH_INFO, reads the whole body (so a malformed chunked body is
# detected and answered by the server), and describes the environ on /env.
STRICT_APP = r'''
import json
import os

STATE_DIR = os.environ['PYWSGI_TEST_STATE']
PATHS_LOG = os.path.join(STATE_DIR, 'paths.log')


def log_path(text):
    # One O_APPEND write per line: lines from several worker threads never interleave.
    fd = os.open(PATHS_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (text + '\n').encode('utf-8', 'backslashreplace'))
    finally:
        os.close(fd)


def application(environ, start_response):
    path = environ.get('PATH_INFO', '')
    log_path(path)
    stream = environ['wsgi.input']
    pieces = []
    try:
        while True:
            piece = stream.read(65536)
            if not piece:
                break
            pieces.append(piece)
    except OSError:
        log_path(path + ' body-error')
        raise
    body = b''.join(pieces)
    if path == '/env':
        keys = ['REQUEST_METHOD', 'PATH_INFO', 'QUERY_STRING', 'REQUEST_URI', 'SERVER_NAME',
                'SERVER_PORT', 'SERVER_PROTOCOL', 'HTTP_HOST', 'CONTENT_LENGTH']
        described = {key: environ.get(key) for key in keys}
        described['http_keys'] = sorted(k for k in environ if k.startswith('HTTP_'))
        described['body'] = body.decode('latin-1')
        out = json.dumps(described).encode('ascii')
    else:
        out = b'ok ' + path.encode('utf-8', 'backslashreplace') + b' ' + str(len(body)).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(out)))])
    return [out]
'''

IO_TIMEOUT = 5.0


@pytest.fixture(scope='module', params=['plain', 'tls'])
def strict_server(request, start_module_server, tmp_path_factory):
    """The strict app, over plain HTTP and once more over HTTPS (the same bytes inside TLS)."""
    app = tmp_path_factory.mktemp('strict_app') / 'strict_app.wsgi'
    app.write_text(STRICT_APP)
    if request.param == 'tls':
        return https_server(start_module_server, request.getfixturevalue('pki'), app,
                            '--threads', '4')
    return start_module_server(app, '--threads', '4')


def app_paths(server):
    """PATH_INFO values the application has seen so far, in order."""
    path = server.state_file('paths.log')
    return path.read_text().splitlines() if path.exists() else []


def second_request(marker):
    return b'GET /second-%s HTTP/1.1\r\nHost: x\r\n\r\n' % marker.encode('ascii')


def read_all_until_close(conn):
    """Everything the server sends until it closes (a reset counts as a close)."""
    conn.sock.settimeout(IO_TIMEOUT)
    try:
        conn.read_until_eof()
    except IncompleteResponse:
        pass
    return bytes(conn.received)


def count_status_lines(raw):
    return sum(1 for line in raw.split(b'\r\n') if line.startswith(b'HTTP/1.'))


@pytest.mark.timeout(120)
@pytest.mark.parametrize('index', range(len(CASES)), ids=[case[0] for case in CASES])
def test_malformed_request_is_answered_once_and_closed(strict_server, index):
    name, raw, expected_status = CASES[index]
    marker = str(index)
    with RawConnection(strict_server.port, timeout=IO_TIMEOUT) as conn:
        try:
            conn.send(raw + second_request(marker))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before taking all of a large request
        try:
            response = conn.read_response()
        except IncompleteResponse as exc:
            pytest.fail('%s: no complete response (%s); received %r'
                        % (name, exc, bytes(conn.received[:300])))
        assert response.status == expected_status, (
            '%s: expected %d, got %d %s' % (name, expected_status, response.status,
                                             response.reason))
        assert response.has_token('Connection', 'close'), (
            '%s: no Connection: close in %r' % (name, response.headers))
        rest = read_all_until_close(conn)
        assert conn.eof, '%s: the server kept the connection open' % name
        raw_received = rest
        assert count_status_lines(raw_received) == 1, (
            '%s: more than one response: %r' % (name, raw_received[:600]))
        assert b'second-' not in raw_received
    seen = app_paths(strict_server)
    assert '/second-%s' % marker not in seen, (
        '%s: the pipelined request reached the application' % name)


# ---- the control: the same pipelining, valid, is answered twice ---------------------------

def test_pipelined_valid_requests_are_both_answered(strict_server):
    with RawConnection(strict_server.port, timeout=IO_TIMEOUT) as conn:
        conn.send(b'GET /first HTTP/1.1\r\nHost: x\r\n\r\n' + second_request('control'))
        first = conn.read_response()
        second = conn.read_response()
    assert (first.status, first.body) == (200, b'ok /first 0')
    assert (second.status, second.body) == (200, b'ok /second-control 0')
    assert '/second-control' in app_paths(strict_server)


def test_pipelined_after_body_is_answered(strict_server):
    with RawConnection(strict_server.port, timeout=IO_TIMEOUT) as conn:
        conn.send(b'POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello'
                  + b'POST /chunky HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'
                  + chunked(b'abc', b'de') + second_request('after-body'))
        responses = [conn.read_response() for _ in range(3)]
    assert [r.body for r in responses] == [b'ok /first 5', b'ok /chunky 5',
                                           b'ok /second-after-body 0']


# ---- valid traffic the strict parser must accept ---------------------------------------------

def get_env(server, raw):
    with RawConnection(server.port, timeout=IO_TIMEOUT) as conn:
        conn.send(raw)
        response = conn.read_response()
    assert response.status == 200, response.raw[:300]
    return response.json()


def test_absolute_form_target_takes_host_from_target(strict_server):
    env = get_env(strict_server, b'GET http://example.org:8080/env?x=1 HTTP/1.1\r\n'
                                 b'Host: other.example\r\n\r\n')
    assert_items(env, {'HTTP_HOST': 'example.org:8080', 'SERVER_NAME': 'example.org',
                       'SERVER_PORT': '8080', 'PATH_INFO': '/env', 'QUERY_STRING': 'x=1'})


def test_absolute_form_target_without_path(strict_server):
    with RawConnection(strict_server.port, timeout=IO_TIMEOUT) as conn:
        conn.send(b'GET http://example.org HTTP/1.1\r\nHost: example.org\r\n\r\n')
        response = conn.read_response()
    assert response.status == 200
    assert response.body == b'ok / 0'


def test_http10_without_host_is_fine(strict_server):
    env = get_env(strict_server, b'GET /env HTTP/1.0\r\n\r\n')
    assert env['SERVER_PROTOCOL'] == 'HTTP/1.0'
    assert env['HTTP_HOST'] is None
    assert env['SERVER_NAME']


def test_leading_empty_lines_are_skipped(strict_server):
    env = get_env(strict_server, b'\r\n' * 8 + b'GET /env HTTP/1.1\r\nHost: h\r\n\r\n')
    assert env['PATH_INFO'] == '/env'


def test_method_is_case_sensitive_token(strict_server):
    env = get_env(strict_server, b'get /env HTTP/1.1\r\nHost: h\r\n\r\n')
    assert env['REQUEST_METHOD'] == 'get'


def test_trailers_are_not_merged_into_environ(strict_server):
    body = chunked(b'hello', trailer=b'X-Trailer: t\r\n')
    env = get_env(strict_server, b'POST /env HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked'
                                 b'\r\n\r\n' + body)
    assert env['body'] == 'hello'
    assert 'HTTP_X_TRAILER' not in env['http_keys']
    assert 'HTTP_TRANSFER_ENCODING' in env['http_keys']


def test_repeated_identical_content_length_is_accepted(strict_server):
    # RFC 9110 8.6: a list of identical values may be accepted as that value.
    env = get_env(strict_server, b'POST /env HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n'
                                 b'Content-Length: 5\r\n\r\nhello')
    assert env['body'] == 'hello'


def test_optional_whitespace_around_field_values(strict_server):
    env = get_env(strict_server, b'GET /env HTTP/1.1\r\nHost:h\r\nX-A: \t a b \t\r\n\r\n')
    assert env['HTTP_HOST'] == 'h'


def test_chunk_extensions_are_accepted(strict_server):
    body = b'5;name=value;q="quoted \\" x"\r\nhello\r\n0\r\n\r\n'
    env = get_env(strict_server, b'POST /env HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked'
                                 b'\r\n\r\n' + body)
    assert env['body'] == 'hello'


def test_http11_keep_alive_survives_many_requests(strict_server):
    with RawConnection(strict_server.port, timeout=IO_TIMEOUT) as conn:
        for index in range(5):
            response = conn.request('GET', '/k%d' % index)
            assert response.body == b'ok /k%d 0' % index
            assert not response.has_token('Connection', 'close')


def test_server_survives_a_hostile_burst(strict_server):
    """After all the malformed traffic the server still answers (and did not crash)."""
    sockets = []
    try:
        for _, raw, _ in CASES[:40]:
            sock = socket.create_connection((strict_server.host, strict_server.port), timeout=5)
            sock.sendall(raw)
            sockets.append(sock)
        response, body = strict_server.get('/alive')
        assert response.status == 200 and body == b'ok /alive 0'
    finally:
        for sock in sockets:
            sock.close()
    assert strict_server.proc.poll() is None
