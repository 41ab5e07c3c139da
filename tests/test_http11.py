"""HTTP/1.1 behaviour (issue 2, point 7): keep-alive, HTTP/1.0, pipelining, chunked and
close-delimited responses, HEAD, bodiless statuses, Date/Server, Connection: close."""
import email.utils

import pytest

from httpraw import RawConnection, assert_closed_or_reusable, build_request, chunked

STREAM_BODY = b'chunk0;chunk1;chunk2;'


def test_keep_alive_serves_several_requests_on_one_connection(suite_server):
    with RawConnection(suite_server.port) as connection:
        for index in range(5):
            response = connection.request('GET', '/env?n=%d' % index)
            assert response.status == 200
            assert response.json()['QUERY_STRING'] == 'n=%d' % index
            assert not response.has_token('Connection', 'close')
        assert not connection.closed_by_server(timeout=0.3)


def test_http10_closes_by_default(suite_server):
    with RawConnection(suite_server.port) as connection:
        response = connection.request('GET', '/env', version='HTTP/1.0')
        assert response.status == 200
        assert response.json()['SERVER_PROTOCOL'] == 'HTTP/1.0'
        assert connection.closed_by_server()


def test_http10_keep_alive_when_asked(suite_server):
    with RawConnection(suite_server.port) as connection:
        for index in range(3):
            response = connection.request('GET', '/env?k=%d' % index,
                                          [('Connection', 'keep-alive')], version='HTTP/1.0')
            assert response.status == 200
            assert response.has_token('Connection', 'keep-alive')
            assert response.json()['QUERY_STRING'] == 'k=%d' % index
        assert not connection.closed_by_server(timeout=0.3)


def test_pipelined_requests_answered_in_order(suite_server):
    requests = (build_request('GET', '/env?first') +
                build_request('POST', '/echo', body=b'second body') +
                build_request('GET', '/stream') +
                build_request('HEAD', '/env?fourth') +
                build_request('GET', '/env?fifth'))
    with RawConnection(suite_server.port) as connection:
        connection.send(requests)
        first = connection.read_response()
        second = connection.read_response()
        third = connection.read_response()
        fourth = connection.read_response('HEAD')
        fifth = connection.read_response()
    assert first.json()['QUERY_STRING'] == 'first'
    assert second.body == b'second body'
    assert third.body == STREAM_BODY
    assert (fourth.status, fourth.body) == (200, b'')
    assert fifth.json()['QUERY_STRING'] == 'fifth'


def test_pipelined_chunked_request_bodies_keep_the_framing(suite_server):
    requests = (build_request('POST', '/echo', [('Transfer-Encoding', 'chunked')],
                              chunked(b'one ', b'body')) +
                build_request('POST', '/echo?mode=read_all', [('Transfer-Encoding', 'chunked')],
                              chunked(b'GET /smuggled HTTP/1.1\r\n\r\n')) +
                build_request('GET', '/env?last'))
    with RawConnection(suite_server.port) as connection:
        connection.send(requests)
        assert connection.read_response().body == b'one body'
        assert connection.read_response().body == b'GET /smuggled HTTP/1.1\r\n\r\n'
        assert connection.read_response().json()['QUERY_STRING'] == 'last'
        assert not connection.closed_by_server(timeout=0.3)


def test_large_streamed_response_arrives_whole(suite_server):
    with RawConnection(suite_server.port) as connection:
        response = connection.request('GET', '/slow_stream?n=40&token=large')
        assert response.status == 200
        assert response.body == b'x' * 65536 * 40
        assert connection.request('GET', '/env').status == 200


def test_pipelined_request_with_connection_close_ends_the_pipeline(suite_server):
    requests = (build_request('GET', '/env?a') +
                build_request('GET', '/env?b', [('Connection', 'close')]) +
                build_request('GET', '/env?c'))
    with RawConnection(suite_server.port) as connection:
        connection.send(requests)
        assert connection.read_response().json()['QUERY_STRING'] == 'a'
        second = connection.read_response()
        assert second.json()['QUERY_STRING'] == 'b'
        assert second.has_token('Connection', 'close')
        assert connection.closed_by_server()  # and never answers c


def test_chunked_response_without_content_length(suite_server):
    with RawConnection(suite_server.port) as connection:
        response = connection.request('GET', '/stream')
        assert response.status == 200
        assert response.chunked
        assert response.header('Content-Length') is None
        assert response.body == STREAM_BODY
        assert response.raw.endswith(b'0\r\n\r\n')
        assert connection.request('GET', '/env').status == 200


def test_empty_body_items_do_not_end_the_chunked_body(suite_server):
    with RawConnection(suite_server.port) as connection:
        response = connection.request('GET', '/stream?empty=1&n=4')
        assert response.body == b'chunk0;chunk1;chunk2;chunk3;'
        assert connection.request('GET', '/env').status == 200


def test_http10_response_without_length_is_close_delimited(suite_server):
    with RawConnection(suite_server.port) as connection:
        response = connection.request('GET', '/stream', version='HTTP/1.0')
        assert response.status == 200
        assert not response.chunked
        assert response.header('Transfer-Encoding') is None
        assert response.body == STREAM_BODY  # read until the server closed


def test_http10_keep_alive_without_length_still_closes(suite_server):
    with RawConnection(suite_server.port) as connection:
        response = connection.request('GET', '/stream', [('Connection', 'keep-alive')],
                                      version='HTTP/1.0')
        assert response.header('Transfer-Encoding') is None
        assert response.body == STREAM_BODY


def test_head_has_headers_but_no_body(suite_server):
    with RawConnection(suite_server.port) as connection:
        get = connection.request('GET', '/env')
        head = connection.request('HEAD', '/env')
        assert head.status == 200
        assert head.body == b''
        assert head.header('Content-Type') == 'application/json'
        assert head.header('Content-Length') is not None
        # No stray body bytes: the next response starts right where the HEAD response ended.
        after = connection.request('GET', '/env?after')
        assert after.json()['QUERY_STRING'] == 'after'
    assert get.status == 200


def test_head_on_a_streamed_response_has_no_body(suite_server):
    with RawConnection(suite_server.port) as connection:
        head = connection.request('HEAD', '/stream')
        assert head.status == 200
        assert_closed_or_reusable(connection, head)


@pytest.mark.parametrize('code', ['204', '304'])
def test_bodiless_statuses_send_no_body(suite_server, code):
    with RawConnection(suite_server.port) as connection:
        response = connection.request('GET', '/status?code=%s' % code)
        assert response.status == int(code)
        assert response.header('Transfer-Encoding') is None
        assert response.header('Content-Length') in (None, '0')
        after = connection.request('GET', '/env?after')
        assert after.json()['QUERY_STRING'] == 'after'


def test_body_from_app_on_204_is_not_sent(suite_server):
    with RawConnection(suite_server.port) as connection:
        response = connection.request('GET', '/body_with_204')
        assert response.status in (204, 500)
        assert_closed_or_reusable(connection, response)
    assert b'oops' not in bytes(connection.received)


def test_date_and_server_headers(suite_server):
    with RawConnection(suite_server.port) as connection:
        for target in ('/env', '/stream', '/status?code=204', '/no-such-route'):
            response = connection.request('GET', target)
            date = response.header('Date')
            assert date, target
            parsed = email.utils.parsedate_to_datetime(date)
            assert date.endswith(' GMT') and parsed.utcoffset().total_seconds() == 0, date
            assert response.header('Server'), target
            assert len(response.header_values('Date')) == 1


def test_client_connection_close_is_honoured(suite_server):
    with RawConnection(suite_server.port) as connection:
        response = connection.request('GET', '/env', [('Connection', 'close')])
        assert response.status == 200
        assert response.has_token('Connection', 'close')
        assert connection.closed_by_server()


def test_server_says_connection_close_when_it_closes(suite_server):
    # An HTTP/1.0 keep-alive client with a length-less response: the server must close, and say so.
    with RawConnection(suite_server.port) as connection:
        response = connection.request('GET', '/stream', [('Connection', 'keep-alive')],
                                      version='HTTP/1.0')
        assert not response.has_token('Connection', 'keep-alive')
        assert connection.closed_by_server()


def test_bad_request_is_answered_and_closed(suite_server):
    with RawConnection(suite_server.port) as connection:
        connection.send(b'GET / HTTP/1.1\r\nHost: x\r\nBad Header: value\r\n\r\n')
        response = connection.read_response()
        assert response.status == 400
        assert connection.closed_by_server()
