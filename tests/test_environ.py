"""The WSGI environ (PEP 3333; issue 2, point 6), seen by a validated app over real requests."""
import pytest

from httpraw import RawConnection, assert_items, chunked
from serverproc import SUITE_APP


def environ_via(server, method='GET', target='/env', headers=None, body=b'', version='HTTP/1.1'):
    with RawConnection(server.port) as connection:
        response = connection.request(method, target, headers, body, version)
        assert response.status == 200, response.raw
        return response.json(), connection.sock.getsockname()


def over_tls(server):
    return getattr(server, 'tls_context', None) is not None


def default_port(server):
    """SERVER_PORT for a Host without a port: the listening port; over TLS https's default
    port, as Apache says for https (and as pywsgi says behind a TLS proxy)."""
    return '443' if over_tls(server) else str(server.port)


def test_server_and_remote_address(suite_server):
    environ, (client_host, client_port) = environ_via(suite_server)
    assert environ['REQUEST_METHOD'] == 'GET'
    assert environ['SERVER_NAME']
    assert environ['SERVER_PORT'] == default_port(suite_server)
    assert environ['SERVER_PROTOCOL'] == 'HTTP/1.1'
    assert environ['REMOTE_ADDR'] == client_host == '127.0.0.1'
    assert environ['REMOTE_PORT'] == str(client_port)


def test_server_protocol_follows_the_request(suite_server):
    environ, _ = environ_via(suite_server, version='HTTP/1.0')
    assert environ['SERVER_PROTOCOL'] == 'HTTP/1.0'


@pytest.mark.parametrize('target, expected', [
    pytest.param('/env/a/b', {'SCRIPT_NAME': '', 'PATH_INFO': '/env/a/b'},
                 id='root-mount-has-empty-script-name'),
    # WSGI "bytes as latin-1": the UTF-8 bytes of "café" appear as two latin-1 characters.
    pytest.param('/env/caf%C3%A9%20x%7E', {'PATH_INFO': '/env/caf\u00c3\u00a9 x~'},
                 id='path-info-is-percent-decoded-as-latin1'),
    pytest.param('/env/p%20q?a=1&b=%20c+d&e=%C3%A9',
                 {'QUERY_STRING': 'a=1&b=%20c+d&e=%C3%A9', 'PATH_INFO': '/env/p q'},
                 id='query-string-is-raw'),
    pytest.param('/env', {'QUERY_STRING': ''}, id='query-string-present-and-empty-without-query'),
])
def test_script_name_path_info_and_query_string(suite_server, target, expected):
    environ, _ = environ_via(suite_server, target=target)
    assert_items(environ, expected)


def test_content_type_and_length_absent_when_not_sent(suite_server):
    environ, _ = environ_via(suite_server)
    for key in ('CONTENT_TYPE', 'CONTENT_LENGTH', 'HTTP_CONTENT_TYPE', 'HTTP_CONTENT_LENGTH'):
        assert key not in environ, key


def test_content_type_and_length_when_sent(suite_server):
    environ, _ = environ_via(suite_server, 'POST', headers=[('Content-Type', 'application/x-test')],
                             body=b'hello')
    assert environ['CONTENT_TYPE'] == 'application/x-test'
    assert environ['CONTENT_LENGTH'] == '5'
    assert 'HTTP_CONTENT_TYPE' not in environ and 'HTTP_CONTENT_LENGTH' not in environ


def test_chunked_request_has_no_content_length(suite_server):
    environ, _ = environ_via(suite_server, 'POST', headers=[('Transfer-Encoding', 'chunked')],
                             body=chunked(b'abc'))
    assert 'CONTENT_LENGTH' not in environ or environ['CONTENT_LENGTH'] == ''


def test_http_headers_and_repeated_headers_joined(suite_server):
    environ, _ = environ_via(suite_server, headers=[
        ('User-Agent', 'pywsgi-tests/1'), ('X-Multi', 'a'), ('X-Custom-Thing', 'value with  spaces'),
        ('X-Multi', 'b'), ('x-multi', 'c'), ('Accept', '*/*')])
    assert_items(environ, {'HTTP_HOST': '127.0.0.1', 'HTTP_USER_AGENT': 'pywsgi-tests/1',
                           'HTTP_X_MULTI': 'a, b, c', 'HTTP_X_CUSTOM_THING': 'value with  spaces',
                           'HTTP_ACCEPT': '*/*'})


def test_wsgi_keys(suite_server):
    environ, _ = environ_via(suite_server)
    assert environ['wsgi.version'] == [1, 0]
    assert environ['wsgi.url_scheme'] == ('https' if over_tls(suite_server) else 'http')
    assert environ.get('HTTPS') == ('on' if over_tls(suite_server) else None)
    assert environ['wsgi.run_once'] is False
    assert environ['test.file_wrapper_callable'] is True
    assert environ['test.errors_is_stream'] is True
    assert 'wsgi.input' in environ and 'wsgi.errors' in environ


def test_process_and_application_group_extras(suite_server):
    environ, _ = environ_via(suite_server)
    extras = [key for key in environ if key.startswith(('pywsgi.', 'mod_wsgi.'))]
    assert any(key.endswith('process_group') for key in extras), extras
    assert any(key.endswith('application_group') for key in extras), extras


@pytest.mark.parametrize('processes, threads, multiprocess, multithread', [
    (1, 1, False, False),
    (1, 4, False, True),
    (2, 1, True, False),
    (2, 3, True, True),
])
def test_multithread_and_multiprocess_are_honest(start_server, processes, threads, multiprocess,
                                                 multithread):
    server = start_server(SUITE_APP, '--processes', processes, '--threads', threads)
    environ, _ = environ_via(server)
    assert environ['wsgi.multiprocess'] is multiprocess
    assert environ['wsgi.multithread'] is multithread


def test_wsgi_errors_lines_go_to_the_error_log(suite_server):
    mark = suite_server.log_mark()
    response, body = suite_server.get('/errors?token=e1rr')
    assert (response.status, body) == (200, b'logged')
    line = suite_server.wait_for_log(r'pywsgi-test wsgi\.errors line e1rr', since=mark)
    assert ':error]' in line
    suite_server.wait_for_log(r'pywsgi-test writelines e1rr second half', since=mark)


def test_environ_is_fresh_per_request(suite_server):
    with RawConnection(suite_server.port) as connection:
        first = connection.request('GET', '/env?one', [('X-Only-First', '1')]).json()
        second = connection.request('GET', '/env?two').json()
    assert first['HTTP_X_ONLY_FIRST'] == '1'
    assert 'HTTP_X_ONLY_FIRST' not in second
    assert (first['QUERY_STRING'], second['QUERY_STRING']) == ('one', 'two')



def test_repeated_headers_join_even_when_their_values_are_equal(suite_server):
    environ, _ = environ_via(suite_server, headers=[
        ('X-Same', 'a'), ('X-Same', 'a'), ('Cookie', 'k=1'), ('Cookie', 'k=1')])
    assert environ['HTTP_X_SAME'] == 'a, a'
    assert environ['HTTP_COOKIE'] == 'k=1; k=1'


def test_header_values_are_each_requests_own(suite_server):
    """Over one connection, a header whose value changes (or goes) is seen as each request
    sent it."""
    sent = [[('X-Value', '1'), ('User-Agent', 'one')], [('X-Value', '2'), ('User-Agent', 'one')],
            [('x-value', '2'), ('User-Agent', 'two')], [('User-Agent', 'two')],
            [('X-VALUE', '1' * 300)], [('X-Value', '1' * 300)]]
    with RawConnection(suite_server.port) as connection:
        seen = [connection.request('GET', '/env', headers).json() for headers in sent]
    assert [environ.get('HTTP_X_VALUE') for environ in seen] == ['1', '2', '2', None, '1' * 300,
                                                                 '1' * 300]
    assert [environ.get('HTTP_USER_AGENT') for environ in seen] == ['one', 'one', 'two', 'two',
                                                                    None, None]


@pytest.mark.parametrize('host, server_name, server_port', [
    ('example.org:8080', 'example.org', '8080'),
    ('example.org', 'example.org', None),
    ('[::1]:9000', '[::1]', '9000'),
    ('[::1]', '[::1]', None),
    ('example.org:', 'example.org', None),
    (':8081', '', '8081'),
])
def test_server_name_and_port_come_from_the_host_header(suite_server, host, server_name,
                                                        server_port):
    with RawConnection(suite_server.port) as connection:
        for _ in range(2):  # the same Host twice on one connection
            environ = connection.request('GET', '/env', [('Host', host)]).json()
            assert environ['HTTP_HOST'] == host
            assert environ['SERVER_NAME'] == server_name
            assert environ['SERVER_PORT'] == (server_port or default_port(suite_server))


def test_request_uri_and_path_info_when_the_path_is_decoded(suite_server):
    with RawConnection(suite_server.port) as connection:
        plain = connection.request('GET', '/env/a/b').json()
        dotted = connection.request('GET', '/env/a/./b/../c').json()
        escaped = connection.request('GET', '/env/a%20b?q=1').json()
        absolute = connection.request('GET', 'http://example.org/env/x').json()
    assert (plain['REQUEST_URI'], plain['PATH_INFO']) == ('/env/a/b', '/env/a/b')
    assert (dotted['REQUEST_URI'], dotted['PATH_INFO']) == ('/env/a/./b/../c', '/env/a/c')
    assert (escaped['REQUEST_URI'], escaped['PATH_INFO']) == ('/env/a%20b?q=1', '/env/a b')
    assert (absolute['REQUEST_URI'], absolute['PATH_INFO']) == ('http://example.org/env/x',
                                                                 '/env/x')
    assert (absolute['HTTP_HOST'], absolute['SERVER_NAME']) == ('example.org', 'example.org')


@pytest.mark.parametrize('method', ['GET', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE'])
def test_request_method(suite_server, method):
    environ, _ = environ_via(suite_server, method, headers=[('Content-Length', '0')])
    assert environ['REQUEST_METHOD'] == method


def test_server_name_port_and_remote_addr_follow_each_request(suite_server):
    """Requests with and without a Host, over one connection and from two client addresses,
    each get their own SERVER_NAME, SERVER_PORT and REMOTE_ADDR."""
    keep = [('Connection', 'keep-alive')]
    with RawConnection(suite_server.port) as connection:
        default = connection.request('GET', '/env', keep, version='HTTP/1.0').json()
        seen = [connection.request('GET', '/env', headers, version=version).json()
                for headers, version in [
                    ([('Host', 'a.example:8081')], 'HTTP/1.1'), (keep, 'HTTP/1.0'),
                    ([('Host', 'b.example')], 'HTTP/1.1'), ([('Host', 'b.example')], 'HTTP/1.1'),
                    (keep, 'HTTP/1.0')]]
    assert 'HTTP_HOST' not in default
    assert default['SERVER_PORT'] == default_port(suite_server)
    expected = [('a.example', '8081'), (default['SERVER_NAME'], default['SERVER_PORT']),
                ('b.example', default['SERVER_PORT']), ('b.example', default['SERVER_PORT']),
                (default['SERVER_NAME'], default['SERVER_PORT'])]
    assert [(environ['SERVER_NAME'], environ['SERVER_PORT']) for environ in seen] == expected
    clients = []
    for source in ['127.0.0.2', '127.0.0.1', '127.0.0.2']:
        with RawConnection(suite_server.port, source=source) as connection:
            environ = connection.request('GET', '/env').json()
            clients.append((environ['REMOTE_ADDR'], environ['REMOTE_PORT']))
            assert environ['REMOTE_PORT'] == str(connection.sock.getsockname()[1])
    assert [addr for addr, _ in clients] == ['127.0.0.2', '127.0.0.1', '127.0.0.2']
