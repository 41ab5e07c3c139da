"""wsgi.input (issue 2, point 6): every read style, EOF at the end of the body, chunked request
bodies with wsgi.input_terminated, streaming, and Expect: 100-continue (point 7)."""
import socket

import pytest

from httpraw import RawConnection, build_request, chunked

LINES = b''.join(b'line %d %s\n' % (index, b'x' * (index % 37)) for index in range(300)) + b'tail'
BINARY = bytes(range(256)) * 400  # 100 KiB, every byte value, including CR and LF


def post(server, target, body, headers=None):
    with RawConnection(server.port) as connection:
        return connection.request('POST', target, headers, body)


@pytest.mark.parametrize('mode', ['read_n', 'read_all', 'read_cl', 'readline', 'readlines', 'iter'])
@pytest.mark.parametrize('body', [LINES, BINARY, b''], ids=['lines', 'binary', 'empty'])
def test_every_read_style_returns_the_body(suite_server, mode, body):
    headers = [('Content-Length', str(len(body)))]
    response = post(suite_server, '/echo?mode=%s&size=777' % mode, body, headers)
    assert response.status == 200, response.raw[:500]
    assert response.body == body
    assert response.header('X-After-EOF') == '0'  # reading past the body gives b'' (and no hang)


def test_readline_returns_whole_lines(suite_server):
    response = post(suite_server, '/echo?mode=readline', LINES)
    assert response.header('X-Pieces') == str(LINES.count(b'\n') + 1)
    assert response.body == LINES


def test_readline_with_hint_never_returns_more_than_hint(suite_server):
    response = post(suite_server, '/echo?mode=readline_hint&size=10', LINES)
    assert response.status == 200
    assert response.body == LINES
    assert int(response.header('X-Max-Piece')) <= 10


def test_read_n_past_the_end_returns_what_is_left(suite_server):
    # read(1000) on a 5-byte body must return 5 bytes at once, not wait for 995 more.
    response = post(suite_server, '/echo?mode=read_n&size=1000', b'12345')
    assert response.body == b'12345'
    assert response.header('X-Pieces') == '1'


@pytest.mark.parametrize('mode', ['read_n', 'read_all', 'readline', 'iter'])
def test_chunked_request_body(suite_server, mode):
    body = chunked(b'hello ', b'chunked', b' world\nsecond line\n', b'x' * 70000)
    response = post(suite_server, '/echo?mode=%s&size=4096' % mode, body,
                    [('Transfer-Encoding', 'chunked')])
    assert response.status == 200, response.raw[:500]
    assert response.body == b'hello chunked world\nsecond line\n' + b'x' * 70000
    assert response.header('X-Input-Terminated') == 'True'
    assert response.header('X-After-EOF') == '0'


def test_chunked_request_body_with_extensions_and_trailer(suite_server):
    body = b'5;name=value\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n'
    response = post(suite_server, '/echo?mode=read_n', body, [('Transfer-Encoding', 'chunked')])
    assert (response.status, response.body) == (200, b'hello')


def test_keep_alive_after_a_body_the_app_did_not_read(suite_server):
    # The server must skip the unread rest of the body, not parse it as the next request.
    with RawConnection(suite_server.port) as connection:
        first = connection.request('POST', '/readn?n=2', body=b'GET /env HTTP/1.1\r\n\r\n')
        assert (first.status, first.body) == (200, b'GE')
        if first.has_token('Connection', 'close'):
            assert connection.closed_by_server()
            return
        second = connection.request('GET', '/env?after')
        assert second.status == 200
        assert second.json()['QUERY_STRING'] == 'after'


def test_input_is_streamed_not_buffered_whole(suite_server):
    # The app reads 5 bytes and answers while most of the declared body has not been sent yet.
    with RawConnection(suite_server.port) as connection:
        connection.send(build_request('POST', '/readn?n=5', [('Content-Length', '10000000')]))
        connection.send(b'first' + b'.' * 1000)
        response = connection.read_response()
        assert (response.status, response.body) == (200, b'first')


def test_expect_100_continue_sent_when_the_app_reads(suite_server):
    body = b'expected body'
    with RawConnection(suite_server.port) as connection:
        connection.send(build_request('POST', '/echo?mode=read_n', [
            ('Content-Length', str(len(body))), ('Expect', '100-continue')]))
        interim = connection.read_line()
        assert interim == b'HTTP/1.1 100 Continue\r\n'
        assert connection.read_line() == b'\r\n'
        connection.send(body)
        response = connection.read_response()
        assert (response.status, response.body) == (200, body)
        assert response.informational == []


def test_expect_100_continue_not_sent_when_the_app_does_not_read(suite_server):
    with RawConnection(suite_server.port) as connection:
        connection.send(build_request('POST', '/env', [
            ('Content-Length', '100'), ('Expect', '100-continue')]))
        response = connection.read_response()
        assert response.status == 200
        assert response.informational == []
        assert not response.raw.startswith(b'HTTP/1.1 100')


def test_no_100_continue_without_expect(suite_server):
    with RawConnection(suite_server.port) as connection:
        connection.send(build_request('POST', '/echo?mode=read_n', [('Content-Length', '3')]))
        connection.sock.settimeout(0.5)
        try:
            early = connection.sock.recv(100)
        except socket.timeout:
            early = b''
        assert early == b''
        connection.sock.settimeout(10)
        connection.send(b'abc')
        response = connection.read_response()
        assert (response.status, response.body, response.informational) == (200, b'abc', [])


def test_an_application_may_replace_wsgi_input(suite_server):
    """Middleware replaces environ['wsgi.input'] (wsgiref's validator wraps it); the server lets
    go of its own stream, never of whatever object the application put there."""
    with RawConnection(suite_server.port) as connection:
        assert connection.request('GET', '/swap_input').status == 200
        response = connection.request('GET', '/swap_input')
    assert (response.status, response.body) == (200, b'5:kept past its request')
