"""The response side of WSGI (issue 2, point 6): start_response and exc_info, validation of what
the app hands over (500 + an error-log line, never bad bytes), write(), close() always called,
wsgi.file_wrapper, and app exceptions before/after the headers went out."""
import itertools
import os
import re
from urllib.parse import quote

import pytest

from httpraw import RawConnection, assert_closed_or_reusable
from serverproc import ERROR_LINE, SUITE_APP

_tokens = itertools.count()


def new_token(prefix):
    return '%s%d' % (prefix, next(_tokens))


def assert_500_and_error_logged(server, target):
    """GET target is answered 500, with nothing of what the app tried to send, and an error
    line is logged; returns the error log's mark from before the request."""
    mark = server.log_mark()
    with RawConnection(server.port) as connection:
        response = connection.request('GET', target)
        raw = bytes(connection.received)
    assert response.status == 500, raw[:500]
    assert b'X-Injected' not in raw and b'x-injected' not in raw.lower()
    assert b'SHOULD-NEVER' not in raw
    server.wait_for_log(ERROR_LINE.pattern, since=mark)
    return mark


# --- start_response and validation ---------------------------------------------------------

def test_plain_response_headers_pass_through(suite_server):
    with RawConnection(suite_server.port) as connection:
        response = connection.request('GET', '/multi_header')
    assert response.status == 200
    assert response.header_values('Set-Cookie') == ['a=1; Path=/', 'b=2; Path=/']
    assert response.body == b'cookies'


@pytest.mark.parametrize('variant', ['word', 'long', 'short', 'crlf', 'bytes', 'int'])
def test_bad_status_gives_500_and_error_log(suite_server, variant):
    token = new_token('status')
    assert_500_and_error_logged(suite_server, '/bad_status?v=%s&token=%s' % (variant, token))


@pytest.mark.parametrize('variant', ['space_in_name', 'colon_in_name', 'empty_name', 'crlf_in_name',
                                     'crlf_in_value', 'lf_in_value', 'cr_in_value', 'bytes_name',
                                     'int_value'])
def test_bad_header_gives_500_and_error_log(suite_server, variant):
    assert_500_and_error_logged(suite_server, '/bad_header?v=%s' % variant)


def test_each_response_has_its_own_content_length_and_headers(suite_server):
    """The same status and headers are checked once and their head reused; what differs from
    one response to the next (here Content-Length, X-Extra) is still each response's own."""
    sent = [('3', '3', 'a'), ('5', '5', 'a'), ('05', '5', 'a'), (' 4', '4', 'b'), ('2,2', '2', 'b'),
            ('', '0', 'b'), ('7', '7', 'b')]
    with RawConnection(suite_server.port) as connection:
        for length, body, extra in sent:
            response = connection.request(
                'GET', '/headers?length=%s&body=%s&extra=%s' % (length.replace(' ', '+'), body,
                                                                extra))
            assert response.status == 200, response.raw
            assert response.header('Content-Length') == body
            assert response.body == b'x' * int(body)
            assert response.header('X-Extra') == extra


@pytest.mark.parametrize('length', ['3x', '3,4', '-3', '\u00b2'])
def test_a_bad_content_length_is_refused_after_good_ones(suite_server, length):
    with RawConnection(suite_server.port) as connection:
        assert connection.request('GET', '/headers?length=3&body=3').status == 200
    mark = assert_500_and_error_logged(suite_server, '/headers?length=%s&body=3' % quote(length))
    suite_server.wait_for_log('invalid Content-Length response header', since=mark)


def test_start_response_by_keyword(suite_server):
    with RawConnection(suite_server.port) as connection:
        for _ in range(2):
            response = connection.request('GET', '/headers?keywords=1&length=2&body=2')
            assert (response.status, response.body) == (200, b'xx')


@pytest.mark.parametrize('wrong', ['too_few', 'too_many'])
def test_start_response_with_a_wrong_argument_count_gives_500(suite_server, wrong):
    mark = assert_500_and_error_logged(suite_server, '/headers?%s=1' % wrong)
    suite_server.wait_for_log(r'TypeError: .*start_response\(\) takes', since=mark)


def test_str_body_gives_500_and_close_is_called(suite_server):
    token = new_token('str')
    assert_500_and_error_logged(suite_server, '/str_body?token=%s' % token)
    suite_server.wait_state_file('closed-' + token)


def test_missing_start_response_gives_500(suite_server):
    assert_500_and_error_logged(suite_server, '/no_start_response')


def test_second_start_response_without_exc_info_is_an_error(suite_server):
    assert_500_and_error_logged(suite_server, '/double_start_response')


def test_exception_before_start_response_gives_500_with_traceback_logged(suite_server):
    mark = assert_500_and_error_logged(suite_server, '/raise_before')
    suite_server.wait_for_log(r'raised before start_response', since=mark)


def test_connection_usable_after_a_500(suite_server):
    with RawConnection(suite_server.port) as connection:
        first = connection.request('GET', '/raise_before')
        assert first.status == 500
        assert_closed_or_reusable(connection, first)


def test_exc_info_before_headers_replaces_the_response(suite_server):
    with RawConnection(suite_server.port) as connection:
        response = connection.request('GET', '/exc_info_before')
    assert response.status == 500
    assert response.header('X-Replaced') == 'yes'
    assert response.body == b'replaced'


def test_exc_info_after_headers_closes_the_connection_without_a_clean_end(suite_server):
    mark = suite_server.log_mark()
    with RawConnection(suite_server.port) as connection:
        connection.send(b'GET /exc_info_after HTTP/1.1\r\nHost: x\r\n\r\n')
        raw = connection.read_until_eof()
    assert raw.startswith(b'HTTP/1.1 200'), raw[:300]
    assert b'first part;' in raw
    assert b'SHOULD-NEVER-BE-SENT' not in raw
    assert not raw.endswith(b'0\r\n\r\n'), 'truncated body must not look complete: %r' % raw[-50:]
    suite_server.wait_for_log(r'error after headers were sent', since=mark)


# --- exceptions while iterating the body -----------------------------------------------------

def test_exception_before_first_body_byte_gives_500_and_close(suite_server):
    token = new_token('fail0')
    assert_500_and_error_logged(suite_server, '/closing?fail=0&token=%s' % token)
    suite_server.wait_state_file('closed-' + token)


def test_exception_after_headers_chunked_has_no_terminating_chunk(suite_server):
    token = new_token('fail1')
    mark = suite_server.log_mark()
    with RawConnection(suite_server.port) as connection:
        connection.send(b'GET /closing?fail=1&token=%s HTTP/1.1\r\nHost: x\r\n\r\n'
                        % token.encode())
        raw = connection.read_until_eof()
    head, _, body = raw.partition(b'\r\n\r\n')
    assert head.startswith(b'HTTP/1.1 200'), raw[:300]
    assert b'chunked' in head.lower()
    assert b'part0;' in body
    assert not body.endswith(b'0\r\n\r\n'), 'no terminating 0-chunk after an error: %r' % body
    assert suite_server.wait_state_file('closed-' + token) == '1'
    line = suite_server.wait_for_log(ERROR_LINE.pattern, since=mark)
    # the request it was, as for an exception before the response (issue 17 point 8)
    assert re.search(r'exception in WSGI application .* \(GET /closing\?fail=1&token=%s\) '
                     r'after the response started: connection closed$' % re.escape(token), line), line


def test_exception_after_headers_with_content_length_closes_short(suite_server):
    token = new_token('failcl')
    with RawConnection(suite_server.port) as connection:
        connection.send(b'GET /closing?fail=1&cl=18&token=%s HTTP/1.1\r\nHost: x\r\n\r\n'
                        % token.encode())
        raw = connection.read_until_eof()  # a hang here would mean the server kept it open
    head, _, body = raw.partition(b'\r\n\r\n')
    assert head.startswith(b'HTTP/1.1 200'), raw[:300]
    assert body == b'part0;'
    suite_server.wait_state_file('closed-' + token)


# --- write() and close() ---------------------------------------------------------------------

def test_write_callable(suite_server):
    with RawConnection(suite_server.port) as connection:
        response = connection.request('GET', '/write')
        assert (response.status, response.body) == (200, b'hello world')
        assert connection.request('GET', '/env').status == 200  # framing stayed intact


WRITE_THEN_BODY = b'AAAA-from-write\nBBBB-from-iterable\n'


@pytest.mark.parametrize('then', ['list', 'tuple', 'iter', 'file'])
@pytest.mark.parametrize('version', ['HTTP/1.1', 'HTTP/1.0'])
def test_write_then_a_one_element_iterable_sends_every_byte(suite_server, then, version):
    # PEP 3333: what write() sent, then every byte of the iterable - a one-element list is not
    # the whole body once write() has been called (issue 16: it was cut to its own length).
    with RawConnection(suite_server.port) as connection:
        response = connection.request('GET', '/write_then?then=' + then, version=version)
        assert (response.status, response.body) == (200, WRITE_THEN_BODY)
        if version == 'HTTP/1.1':
            assert connection.request('GET', '/env').status == 200  # framing stayed intact


@pytest.mark.parametrize('then', ['list', 'file'])
def test_write_then_an_iterable_within_the_given_content_length(suite_server, then):
    with RawConnection(suite_server.port) as connection:
        response = connection.request(
            'GET', '/write_then?then=%s&cl=%d' % (then, len(WRITE_THEN_BODY)))
        assert (response.status, response.body) == (200, WRITE_THEN_BODY)
        assert response.header('Content-Length') == str(len(WRITE_THEN_BODY))
        assert connection.request('GET', '/env').status == 200


@pytest.mark.parametrize('then', ['list', 'tuple', 'file'])
def test_write_then_a_one_element_iterable_in_daemon_mode(start_server, then):
    server = start_server(SUITE_APP, '--daemon', '--processes', '1', '--threads', '2')
    with RawConnection(server.port) as connection:
        response = connection.request('GET', '/write_then?then=' + then)
        assert (response.status, response.body) == (200, WRITE_THEN_BODY)
        assert connection.request('GET', '/env').status == 200
    assert 'Content-Length' not in server.stderr_text()


def test_close_called_after_a_normal_response(suite_server):
    token = new_token('ok')
    response, body = suite_server.get('/closing?token=%s' % token)
    assert (response.status, body) == (200, b'part0;part1;part2;')
    assert suite_server.wait_state_file('closed-' + token) == '3'


def test_close_called_when_the_client_disconnects_mid_response(suite_server):
    token = new_token('gone')
    connection = RawConnection(suite_server.port)
    connection.send(b'GET /slow_stream?token=%s HTTP/1.1\r\nHost: x\r\n\r\n' % token.encode())
    connection.read_exact(100000)  # the response is under way
    connection.close()
    produced = int(suite_server.wait_state_file('closed-' + token, timeout=15))
    # It stopped iterating because the client went away, not because the body ran out.
    assert produced < 1000


# --- wsgi.file_wrapper -----------------------------------------------------------------------

@pytest.fixture(scope='module')
def data_file(suite_server):
    content = os.urandom(300000) + b'\r\n0\r\n\r\nend'
    (suite_server.state_dir / 'data.bin').write_bytes(content)
    return content


@pytest.mark.parametrize('route', ['file_wrapper', 'file_wrapper_validated'])
def test_file_wrapper_with_content_length(suite_server, data_file, route):
    token = new_token('file')
    with RawConnection(suite_server.port) as connection:
        response = connection.request('GET', '/%s?token=%s' % (route, token))
        assert response.status == 200
        assert response.header('Content-Length') == str(len(data_file))
        assert response.body == data_file
        assert connection.request('GET', '/env').status == 200
    suite_server.wait_state_file('closed-' + token)


def test_file_wrapper_without_content_length(suite_server, data_file):
    # Chunked, or a Content-Length the server took from the file's size: either frames it exactly.
    with RawConnection(suite_server.port) as connection:
        response = connection.request('GET', '/file_wrapper?cl=0')
        assert response.status == 200
        assert response.chunked or response.header('Content-Length') == str(len(data_file))
        assert response.body == data_file
        assert connection.request('GET', '/env').status == 200


def test_file_wrapper_over_a_non_file_object(suite_server, data_file):
    response, body = suite_server.get('/file_wrapper?obj=bytesio')
    assert response.status == 200
    assert body == data_file


def test_file_wrapper_head_sends_no_body(suite_server, data_file):
    with RawConnection(suite_server.port) as connection:
        response = connection.request('HEAD', '/file_wrapper')
        assert response.status == 200
        assert response.header('Content-Length') == str(len(data_file))
        assert connection.request('GET', '/env').status == 200
