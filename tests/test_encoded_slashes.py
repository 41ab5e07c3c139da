"""--allow-encoded-slashes off|on|nodecode (issue 16, item 3; Apache's AllowEncodedSlashes).

Real servers over real sockets, one per mode, each serving the test-app suite at /app, a document
root at /, a URL alias and a CGI directory, so every way a path is mapped is seen in each mode:
PATH_INFO and routing (an encoded slash is a segment boundary only when decoded), dot segments,
static files (never a byte from outside the root, whatever the mode), CGI (its PATH_INFO and a
local redirect), the error log. Then daemon mode: the server process relays the raw request and
the daemon process decodes the path itself, so the setting must reach it.
"""
import subprocess
import sys
import textwrap

import pytest

from httpraw import RawConnection
from serverproc import APPS_DIR, SUITE_APP

SECRET = b'TOP-SECRET-OUTSIDE-THE-ROOT'
PYTHON_CGI_HEAD = '#!%s\n' % sys.executable
MODES = ['off', 'on', 'nodecode']


def _write(path, data, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mode is not None:
        path.chmod(mode)


@pytest.fixture(scope='module')
def tree(tmp_path_factory):
    base = tmp_path_factory.mktemp('slashes')
    _write(base / 'outside' / 'secret.txt', SECRET + b'\n')
    _write(base / 'root' / 'small.txt', b'small\n')
    _write(base / 'root' / 'sub' / 'deeper' / 'file.txt', b'deeper\n')
    _write(base / 'root' / 'a%2Fb.txt', b'a file named a%2Fb.txt\n')   # the three characters
    _write(base / 'alias' / 'a.txt', b'alias\n')
    _write(base / 'cgi-bin' / 'env.py', (PYTHON_CGI_HEAD + textwrap.dedent('''\
        import json, os, sys
        data = json.dumps(dict(os.environ)).encode()
        sys.stdout.buffer.write(b'Content-Type: application/json\\r\\n\\r\\n' + data)
        ''')).encode(), 0o755)
    _write(base / 'cgi-bin' / 'redirect.py', (PYTHON_CGI_HEAD + textwrap.dedent('''\
        import sys
        sys.stdout.write('Location: /cgi-bin/env.py/x%2Fy%20z\\n\\n')
        ''')).encode(), 0o755)
    return base


@pytest.fixture(scope='module', params=MODES)
def server(request, start_module_server, tree):
    mode = request.param
    # off: the default, no flag; nodecode spelt as in Apache configurations (no case)
    flag = {'off': [], 'on': ['--allow-encoded-slashes', 'on'],
            'nodecode': ['--allow-encoded-slashes', 'NoDecode']}[mode]
    srv = start_module_server(SUITE_APP, '--mount-point', '/app',
                              '--document-root', tree / 'root',
                              '--url-alias', '/alias', tree / 'alias',
                              '--cgi-alias', '/cgi-bin', tree / 'cgi-bin',
                              '--threads', '4', '--keep-alive-timeout', '30', *flag)
    srv.mode = mode
    return srv


def raw(server, target, method='GET', body=b''):
    with RawConnection(server.port) as conn:
        return conn.request(method, target, body=body)


def environ_of(server, target, method='GET'):
    """The app's environ for target, or None when the server itself answered 404."""
    response = raw(server, target, method, body=b'x' if method == 'POST' else b'')
    if response.status == 404:
        assert b'<h1>Not Found</h1>' in response.body   # pywsgi's page, not the app's
        return None
    assert response.status == 200, response.raw
    return response.json()


# ------------------------------------------------------------------ what the application sees

@pytest.mark.parametrize('target, expected', [
    # target: {mode: (SCRIPT_NAME, PATH_INFO) or None for the server's 404}
    ('/app/env/a%2Fb%20c', {'off': None, 'on': ('/app', '/env/a/b c'),
                            'nodecode': ('/app', '/env/a%2Fb c')}),
    # kept as written, lower case included (Apache's NoDecode copies the escape)
    ('/app/env/a%2fb', {'off': None, 'on': ('/app', '/env/a/b'),
                        'nodecode': ('/app', '/env/a%2fb')}),
    # an encoded slash splits the mount prefix only when decoded
    ('/app%2Fenv/x', {'off': None, 'on': ('/app', '/env/x'), 'nodecode': None}),
    # '..%2F' is a dot segment only when decoded; kept, it is part of one segment
    ('/app/env/x/..%2Fy', {'off': None, 'on': ('/app', '/env/y'),
                           'nodecode': ('/app', '/env/x/..%2Fy')}),
    # %25 is an ordinary escape: %252F is the text %2F in every mode (as in Apache)
    ('/app/env/a%252Fb', {'off': ('/app', '/env/a%2Fb'), 'on': ('/app', '/env/a%2Fb'),
                          'nodecode': ('/app', '/env/a%2Fb')}),
])
@pytest.mark.parametrize('method', ['GET', 'POST'])
def test_path_info_and_routing(server, target, expected, method):
    environ = environ_of(server, target, method)
    want = expected[server.mode]
    if want is None:
        assert environ is None
        return
    assert (environ['SCRIPT_NAME'], environ['PATH_INFO']) == want
    assert environ['REQUEST_URI'] == target                 # always the raw target
    assert environ['pywsgi.allow_encoded_slashes'] == server.mode


def test_off_logs_why_it_answered_404(server):
    mark = server.log_mark()
    status = raw(server, '/app/env/a%2Fb').status
    if server.mode == 'off':
        assert status == 404
        server.wait_for_log(r'404 for /app/env/a%2Fb: an encoded slash \(%2F\) in the path '
                            r'\(see --allow-encoded-slashes\)', since=mark)
    else:
        assert status == 200
        assert 'encoded slash' not in server.stderr_text()


def test_climbing_above_the_root_with_decoded_slashes_is_400(server):
    status = raw(server, '/app/env/..%2F..%2F..%2Fetc/passwd').status
    assert status == {'off': 404, 'on': 400, 'nodecode': 200}[server.mode]
    if server.mode == 'nodecode':   # one segment, handed over as it is
        environ = environ_of(server, '/app/env/..%2F..%2F..%2Fetc/passwd')
        assert environ['PATH_INFO'] == '/env/..%2F..%2F..%2Fetc/passwd'


# ------------------------------------------------------------------ static files

@pytest.mark.parametrize('target', [
    '/..%2F..%2F..%2F..%2F..%2F..%2Fetc/passwd',
    '/..%2Foutside%2Fsecret.txt',
    '/..%2foutside/secret.txt',
    '/sub%2F..%2F..%2Foutside/secret.txt',
    '/sub/deeper/..%2F..%2F..%2F..%2Foutside%2Fsecret.txt',
    '/%2e%2e%2Foutside%2Fsecret.txt',
    '/%2E%2E%2F%2E%2E%2Foutside/secret.txt',
    '/alias/..%2F..%2Foutside/secret.txt',
    '/alias%2F..%2F..%2Foutside/secret.txt',
    '/app/..%2F..%2Foutside/secret.txt',
    '/cgi-bin/..%2F..%2Foutside/secret.txt',
    '/..%252F..%252Foutside%252Fsecret.txt',
])
def test_encoded_slashes_never_leave_the_root(server, target):
    response = raw(server, target)
    assert response.status in (400, 403, 404), (server.mode, target, response.status)
    assert SECRET not in response.body and b'root:' not in response.body


@pytest.mark.parametrize('target, expected', [
    # decoded: a path into the tree; kept: a file name with '%2F' in it (none here)
    ('/sub%2Fdeeper%2Ffile.txt', {'off': 404, 'on': b'deeper\n', 'nodecode': 404}),
    # kept: the file whose name holds the three characters, as Apache's NoDecode maps it
    ('/a%2Fb.txt', {'off': 404, 'on': 404, 'nodecode': b'a file named a%2Fb.txt\n'}),
    ('/a%252Fb.txt', {'off': b'a file named a%2Fb.txt\n', 'on': b'a file named a%2Fb.txt\n',
                      'nodecode': b'a file named a%2Fb.txt\n'}),
])
def test_static_files(server, target, expected):
    response = raw(server, target)
    want = expected[server.mode]
    if want == 404:
        assert response.status == 404
    else:
        assert (response.status, response.body) == (200, want)


# ------------------------------------------------------------------ CGI

def test_cgi_path_info(server):
    response = raw(server, '/cgi-bin/env.py/x%2Fy%20z')
    if server.mode == 'off':
        assert response.status == 404
        return
    env = response.json()
    assert env['PATH_INFO'] == {'on': '/x/y z', 'nodecode': '/x%2Fy z'}[server.mode]
    assert env['REQUEST_URI'] == '/cgi-bin/env.py/x%2Fy%20z'


def test_cgi_local_redirect_decodes_its_location_as_a_request(server):
    # Location: /cgi-bin/env.py/x%2Fy%20z -- Apache processes the new URI as a request
    response = raw(server, '/cgi-bin/redirect.py')
    if server.mode == 'off':
        assert response.status == 404
        return
    assert response.status == 200, response.raw
    env = response.json()
    assert env['PATH_INFO'] == {'on': '/x/y z', 'nodecode': '/x%2Fy z'}[server.mode]
    assert env['REDIRECT_URL'] == '/cgi-bin/redirect.py'


# ------------------------------------------------------------------ daemon mode

@pytest.mark.parametrize('mode', MODES)
def test_daemon_processes_decode_with_the_setting(start_server, mode):
    # One daemon group serving every mount: the server process relays body-less requests from
    # the reactor without decoding the path (the daemon decodes it), the others from a worker.
    server = start_server(APPS_DIR / 'daemon_app.py', '--daemon', '--processes', '1',
                          '--threads', '2', '--mount-point', '/app',
                          '--allow-encoded-slashes', mode)
    for method in ('GET', 'POST'):
        response = raw(server, '/app/env/a%2Fb%20c', method, body=b'x' if method == 'POST'
                       else b'')
        if mode == 'off':
            assert response.status == 404, response.raw
            continue
        assert response.status == 200, response.raw
        info = response.json()
        with open('/proc/%d/cmdline' % info['pid'], 'rb') as f:
            assert f.read().startswith(b'(wsgi:')          # a daemon process answered
        assert info['REQUEST_METHOD'] == method
        assert info['PATH_INFO'] == {'on': '/env/a/b c', 'nodecode': '/env/a%2Fb c'}[mode]
        assert info['REQUEST_URI'] == '/app/env/a%2Fb%20c'
        assert info['pywsgi.allow_encoded_slashes'] == mode


# ------------------------------------------------------------------ the status URL

@pytest.mark.parametrize('daemon', [False, True], ids=['embedded', 'daemon'])
def test_status_url_is_the_same_requests_embedded_and_relayed(start_server, daemon):
    # The status URL is matched as written and as decoded: in daemon mode the server process
    # relays body-less requests in C, checking only the raw path, so a decoded '/server-status/'
    # spelt with %2F goes to the application in both modes, never to the status page in one.
    more = ['--daemon', '--processes', '1'] if daemon else []
    server = start_server(APPS_DIR / 'daemon_app.py', '--threads', '2', *more,
                          '--server-status', '/server-status', '--allow-encoded-slashes', 'on')
    for method in ('GET', 'POST'):
        body = b'x' if method == 'POST' else b''
        response = raw(server, '/server-status/?json', method, body)
        assert response.status == 200, response.raw
        assert response.header('Content-Type').startswith('application/json')
        response = raw(server, '/server-status%2F?json', method, body)
        assert (response.status, response.body) == (404, b'no such test route')  # the app's


# ------------------------------------------------------------------ bad values

def test_bad_value_is_a_usage_error(tmp_path):
    result = subprocess.run([sys.executable, '-m', 'pywsgi', '--allow-encoded-slashes', 'yes',
                             '--port', '0'], cwd=str(tmp_path), stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result
    assert "must be off, on or nodecode, got 'yes'" in result.stderr
    assert 'allow_encoded_slashes' in result.stderr or '--allow-encoded-slashes' in result.stderr
