"""mod_python handlers (--python-handler): handlers written the way mod_python documents them
(tests/apps/modpython_handlers.py), served by real server processes, embedded and in daemon mode.
"""
import hashlib
import http.client
import json
import os
import socket
import uuid

import pytest

from httpraw import assert_items
from serverproc import APPS_DIR, ServerProcess

HANDLERS = APPS_DIR / 'modpython_handlers.py'
ROUTES = ['hello=modpython_handlers', 'info', 'status', 'created', 'empty', 'wrote_then_error',
          'form', 'redirect', 'permanent', 'moved', 'error', 'forbidden', 'declined', 'log',
          'internal', 'sendfile', 'streamed', 'lines', 'no_return']


def handler_args(routes=ROUTES):
    args = ['--python-path', APPS_DIR, '--mod-python-shim',
            '--python-option', 'color=blue', '--python-option', 'size=10']
    for route in routes:
        spec = route if '=' in route else '%s=modpython_handlers::%s' % (route, route)
        args += ['--python-handler', '/' + spec]
    return args


@pytest.fixture(scope='module')
def server(start_module_server):
    return start_module_server(*handler_args(), '--keep-alive-timeout', '30')


def multipart(fields, files, boundary=None):
    """A multipart/form-data body: (content type, bytes)."""
    boundary = boundary or 'boundary' + uuid.uuid4().hex
    parts = []
    for name, value in fields:
        parts.append(('--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n'
                      % (boundary, name)).encode() + value.encode('utf-8') + b'\r\n')
    for name, filename, ctype, data in files:
        parts.append(('--%s\r\nContent-Disposition: form-data; name="%s"; filename="%s"\r\n'
                      'Content-Type: %s\r\n\r\n' % (boundary, name, filename, ctype)).encode()
                     + data + b'\r\n')
    body = b''.join(parts) + ('--%s--\r\n' % boundary).encode()
    return 'multipart/form-data; boundary=%s' % boundary, body


def binary_payload(size, boundary_lookalike):
    """Bytes that cross the parser's 64 KiB blocks and hold near-miss delimiters."""
    chunk = os.urandom(1000) + b'\r\n--' + boundary_lookalike[:-1].encode() + b'\r\n'
    data = (chunk * (size // len(chunk) + 1))[:size]
    return data


def chunked_post(server, path, body, content_type, block=7000):
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        blocks = (body[i:i + block] for i in range(0, len(body), block))
        connection.request('POST', path, body=blocks, encode_chunked=True,
                           headers={'Content-Type': content_type, 'Transfer-Encoding': 'chunked'})
        response = connection.getresponse()
        return response, response.read()
    finally:
        connection.close()


# ------------------------------------------------------------------ text, headers, request object

def test_hello_world(server):
    response, body = server.get('/hello')
    assert response.status == 200
    assert response.getheader('Content-Type') == 'text/plain'
    assert body == b'Hello World!'


def test_head_sends_no_body(server):
    response, body = server.request('HEAD', '/hello')
    assert response.status == 200
    assert body == b''


def test_request_object(server):
    response, body = server.request('POST', '/info/more/path?a=1&b=two', body=b'the body',
                                    headers={'X-Test-Header': 'hello', 'Host': 'example.org:8080'})
    assert response.status == 200
    facts = json.loads(body)
    assert_items(facts, {'method': 'POST', 'uri': '/info/more/path', 'path_info': '/more/path',
                         'args': 'a=1&b=two', 'unparsed_uri': '/info/more/path?a=1&b=two',
                         'the_request': 'POST /info/more/path?a=1&b=two HTTP/1.1',
                         'protocol': 'HTTP/1.1', 'hostname': 'example.org'})
    assert facts['header_lower'] == facts['header_upper'] == 'hello'  # headers_in ignores case
    assert facts['has_user_agent'] is False
    assert facts['remote_host'] == facts['remote_ip'] == facts['env_remote_addr'] == '127.0.0.1'
    assert facts['options'] == {'color': 'blue', 'size': '10'}
    assert facts['filename'] == str(HANDLERS)
    assert facts['body'] == 'the body'
    assert facts['process_group'] == ''


def test_args_is_none_without_a_query(server):
    _, body = server.get('/info')
    assert json.loads(body)['args'] is None


def test_headers_out_and_err_headers_out_are_sent(server):
    response, _ = server.get('/info')
    assert response.getheader('Content-Type') == 'application/json'
    assert response.getheader('X-Handler') == 'info'
    assert response.getheader('X-Always') == 'yes'
    assert [v for k, v in response.getheaders() if k == 'X-Multi'] == ['one', 'two']


def test_several_writes_are_streamed(server):
    response, body = server.get('/streamed')
    assert response.status == 200
    assert response.getheader('Transfer-Encoding') == 'chunked'
    assert body == b''.join(b'line %d\n' % n for n in range(5))


def test_readline_reads_the_body(server):
    _, body = server.request('POST', '/lines', body=b'one\ntwo\nthree\n',
                             headers={'Content-Type': 'text/plain'})
    assert body == b'3 lines'


def test_sendfile(server):
    response, body = server.get('/sendfile')
    assert response.status == 200
    assert response.getheader('Content-Type') == 'text/x-python'
    assert body == HANDLERS.read_bytes()


# ------------------------------------------------------------------ status codes

@pytest.mark.parametrize('code', [400, 403, 404, 410, 503])
def test_returned_status_gets_the_error_page(server, code):
    response, body = server.get('/status?code=%d' % code)
    assert response.status == code
    assert response.getheader('Content-Type').startswith('text/html')
    assert b'<title>%d ' % code in body
    assert response.getheader('X-Err') == 'err_headers_out is'
    assert response.getheader('X-Dropped') is None  # headers_out is not part of an error


@pytest.mark.parametrize('path, status, location, expected_body', [
    pytest.param('/status?code=0', 200, None, b'', id='returned-ok-is-200'),
    pytest.param('/created', 201, '/things/1', b'made it', id='status-set-with-a-body'),
    pytest.param('/empty', 204, None, b'', id='status-set-without-a-body'),
    pytest.param('/wrote_then_error', 200, None, b'partial answer',
                 id='error-code-after-writing-keeps-what-was-written'),
])
def test_status_and_body(server, path, status, location, expected_body):
    response, body = server.get(path)
    assert (response.status, body) == (status, expected_body)
    assert response.getheader('Location') == location


def test_server_return_forbidden(server):
    response, body = server.get('/forbidden')
    assert response.status == 403
    assert response.getheader('X-Reason') == 'forbidden'
    assert b'403 Forbidden' in body


def test_declined_is_404(server):
    response, _ = server.get('/declined')
    assert response.status == 404


def test_exception_is_500_with_a_log_line(server):
    mark = server.log_mark()
    response, body = server.get('/error')
    assert response.status == 500
    assert b'500 Internal Server Error' in body
    server.wait_for_log(r'\[pywsgi:error\].*mod_python handler modpython_handlers::error failed '
                        r'\(GET /error\)', since=mark)
    server.wait_for_log(r'ValueError: handler exploded on purpose', since=mark)
    # the process survives: the next request is served
    assert server.get('/hello')[1] == b'Hello World!'


def test_returning_none(server):
    mark = server.log_mark()
    response, _ = server.get('/no_return')
    assert response.status == 500
    server.wait_for_log(r'no_return returned None, not an int', since=mark)
    response, body = server.get('/no_return?write')
    assert (response.status, body) == (200, b'written anyway')


def test_log_error(server):
    mark = server.log_mark()
    response, body = server.get('/log')
    assert body == b'logged'
    server.wait_for_log(r'\[pywsgi:error\].*\[client 127\.0\.0\.1:\d+\] request log line from the '
                        r'handler', since=mark)
    server.wait_for_log(r'\[pywsgi:warn\].*server log line from the handler', since=mark)


# ------------------------------------------------------------------ redirects

@pytest.mark.parametrize('path, status, in_body', [
    pytest.param('/redirect', 302, b'/hello', id='util-redirect'),
    pytest.param('/permanent', 301, b'', id='util-redirect-permanent'),
    pytest.param('/moved', 302, b'here', id='location-and-redirect-status'),
])
def test_redirects_to_hello(server, path, status, in_body):
    response, body = server.get(path)
    assert response.status == status
    assert response.getheader('Location') == '/hello'
    assert in_body in body


def test_internal_redirect(server):
    response, body = server.get('/internal')
    assert response.status == 200
    assert body == b'Hello World!'


# ------------------------------------------------------------------ forms

def test_form_in_the_query_string(server):
    _, body = server.get('/form?name=ann&multi=1&multi=2&blank=')
    result = json.loads(body)
    assert result['fields'] == {'name': ['ann'], 'multi': ['1', '2'], 'blank': ['']}
    assert result['first'] == 'ann'
    assert result['list'] == ['1', '2']


def test_form_urlencoded_post(server):
    _, body = server.request('POST', '/form?from_query=q',
                             body=b'name=J%C3%B6rg&multi=a&multi=b+c',
                             headers={'Content-Type': 'application/x-www-form-urlencoded'})
    result = json.loads(body)
    assert result['fields'] == {'from_query': ['q'], 'name': ['Jörg'], 'multi': ['a', 'b c']}
    assert result['has_name'] is True


def test_form_multipart_post(server):
    boundary = 'b' + uuid.uuid4().hex
    upload = binary_payload(300 * 1024, boundary)
    ctype, body = multipart([('name', 'Zoë'), ('multi', 'x'), ('multi', 'y')],
                            [('upload', 'data.bin', 'application/octet-stream', upload),
                             ('note', 'note.txt', 'text/plain', b'')], boundary=boundary)
    response, answer = server.request('POST', '/form', body=body, headers={'Content-Type': ctype})
    assert response.status == 200
    fields = json.loads(answer)['fields']
    assert fields['name'] == ['Zoë']
    assert fields['multi'] == ['x', 'y']
    assert fields['upload'] == [{'filename': 'data.bin', 'type': 'application/octet-stream',
                                 'size': len(upload),
                                 'sha256': hashlib.sha256(upload).hexdigest()}]
    assert fields['note'][0]['size'] == 0


def test_form_multipart_chunked_post(server):
    upload = os.urandom(150 * 1024)
    ctype, body = multipart([('name', 'chunked')], [('f', 'f.bin', 'image/png', upload)])
    response, answer = chunked_post(server, '/form', body, ctype)
    assert response.status == 200
    fields = json.loads(answer)['fields']
    assert fields['name'] == ['chunked']
    assert fields['f'][0]['sha256'] == hashlib.sha256(upload).hexdigest()


def test_form_with_an_unknown_content_type_is_501(server):
    response, _ = server.request('POST', '/form', body=b'{}',
                                 headers={'Content-Type': 'application/json'})
    assert response.status == 501


def test_multipart_without_boundary_is_400(server):
    response, _ = server.request('POST', '/form', body=b'x',
                                 headers={'Content-Type': 'multipart/form-data'})
    assert response.status == 400


def test_body_limit_is_honoured(start_server):
    limited = start_server(*handler_args(['form']), '--limit-request-body', '4k')
    ctype, body = multipart([('name', 'x')], [('f', 'f.bin', 'application/octet-stream',
                                               b'z' * 10000)])
    # a declared length over the limit: 413 before the handler runs
    with socket.create_connection((limited.host, limited.port), timeout=10) as sock:
        sock.sendall(('POST /form HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\n'
                      'Content-Length: %d\r\n\r\n' % (ctype, len(body))).encode())
        assert sock.recv(65536).startswith(b'HTTP/1.1 413 ')
    # a chunked body that grows over the limit while FieldStorage reads it: 413 as well
    response, _ = chunked_post(limited, '/form', body, ctype, block=1000)
    assert response.status == 413
    # within the limit: parsed
    ctype, body = multipart([('name', 'small')], [])
    response, answer = limited.request('POST', '/form', body=body, headers={'Content-Type': ctype})
    assert json.loads(answer)['first'] == 'small'


# ------------------------------------------------------------------ daemon mode

def test_handlers_in_daemon_mode(start_server):
    daemon = start_server(*handler_args(['hello=modpython_handlers', 'info', 'form', 'error',
                                         'internal']),
                          '--daemon', '--processes', '1', '--threads', '3')
    response, body = daemon.get('/hello')
    assert (response.status, body) == (200, b'Hello World!')
    facts = json.loads(daemon.get('/info')[1])
    assert facts['process_group'] != ''   # it ran in the daemon process group
    ctype, form_body = multipart([('name', 'daemon')], [('f', 'a.txt', 'text/plain', b'abc')])
    _, answer = daemon.request('POST', '/form', body=form_body, headers={'Content-Type': ctype})
    assert json.loads(answer)['fields']['f'][0]['size'] == 3
    assert daemon.get('/internal')[1] == b'Hello World!'
    mark = daemon.log_mark()
    assert daemon.get('/error')[0].status == 500
    daemon.wait_for_log(r'mod_python handler modpython_handlers::error failed', since=mark)


# ------------------------------------------------------------------ startup errors

def start_expecting_failure(args, workdir, timeout=30):
    server = ServerProcess(args, workdir, wait=False)
    try:
        return server.proc.wait(timeout=timeout), server.stderr_text()
    finally:
        server.stop()


@pytest.mark.parametrize('spec', ['not a module', '/x=', '/x=mod::a::b', '/x=mod::bad-name'])
def test_bad_handler_spec_exits_2(tmp_path, spec):
    code, stderr = start_expecting_failure(['--python-handler', spec], tmp_path)
    assert code == 2
    assert '--python-handler' in stderr and len(stderr.strip().splitlines()) == 1, stderr


def test_missing_handler_module_exits_2(tmp_path):
    code, stderr = start_expecting_failure(['--python-handler', 'no_such_handlers_module'],
                                           tmp_path)
    assert code == 2
    assert "no module named 'no_such_handlers_module'" in stderr


def test_missing_handler_function_exits_2(tmp_path):
    code, stderr = start_expecting_failure(handler_args(['x=modpython_handlers::nothing']),
                                           tmp_path)
    assert code == 2
    assert "has no attribute 'nothing'" in stderr


def test_without_the_shim_mod_python_is_not_importable(tmp_path):
    args = [a for a in handler_args(['hello=modpython_handlers']) if a != '--mod-python-shim']
    code, stderr = start_expecting_failure(args, tmp_path)
    assert code == 2
    assert '--mod-python-shim' in stderr
    assert stderr.count('--mod-python-shim') == 1 and len(stderr.strip().splitlines()) == 1


USES_MOD_PYTHON_UTIL = '''\
from mod_python import util


def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [util.__name__.encode()]
'''


def test_a_wsgi_script_importing_mod_python_is_told_about_the_shim(tmp_path, start_server):
    script = tmp_path / 'uses_util.wsgi'
    script.write_text(USES_MOD_PYTHON_UTIL)
    code, stderr = start_expecting_failure([script], tmp_path / 'run')
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "No module named 'mod_python'" in lines[0], stderr
    assert '%s:1' % script in lines[0] and '--mod-python-shim' in lines[0], stderr
    # ... and the flag it names makes it work (the shim serves WSGI scripts too)
    server = start_server(script, '--mod-python-shim')
    assert server.get('/')[1] == b'mod_python.util'


def test_a_handler_importing_mod_python_per_request_is_told_about_the_shim(tmp_path,
                                                                          start_server):
    (tmp_path / 'lazy_handler.py').write_text(
        'def handler(req):\n    from mod_python import apache\n    return apache.OK\n')
    server = start_server('--python-path', tmp_path, '--python-handler', '/=lazy_handler')
    mark = server.log_mark()
    assert server.get('/')[0].status == 500
    line = server.wait_for_log('lazy_handler::handler failed', since=mark)
    assert '--mod-python-shim' in line, line


def test_missing_python_path_exits_2(tmp_path):
    code, stderr = start_expecting_failure(
        ['--python-path', tmp_path / 'nowhere', '--python-handler', 'x'], tmp_path)
    assert code == 2
    assert 'nowhere' in stderr and 'no such directory' in stderr
