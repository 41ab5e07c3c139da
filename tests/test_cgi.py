"""CGI (issue 5, point 3): --cgi-alias runs executables per request with the RFC 3875 environment,
the body on stdin, the response parsed from stdout (Status, Location: local and client redirects),
stderr in the error log, a timeout that kills the program's process group (504), a bound on how
many run at once (503), 403/404 for what cannot run; --cgi-script runs a WSGI script as CGI."""
import json
import sys
import textwrap

import pytest

from httpraw import assert_items
from serverproc import EXAMPLE_APP, all_pids, is_alive, read_proc_stat, wait_until

PYTHON_CGI_HEAD = '#!%s\n' % sys.executable

SCRIPTS = {
    # the environment as JSON, plus the body read from stdin per CONTENT_LENGTH
    'env.py': '''
        import json, os, sys
        length = int(os.environ.get('CONTENT_LENGTH') or 0)
        body = sys.stdin.buffer.read(length) if length else b''
        out = dict(os.environ)
        out['_body'] = body.decode('latin-1')
        out['_argv'] = sys.argv[1:]
        out['_cwd'] = os.getcwd()
        data = json.dumps(out).encode()
        sys.stdout.buffer.write(b'Content-Type: application/json\\r\\nX-Script: env\\r\\n\\r\\n' + data)
        ''',
    'stderr.py': '''
        import sys
        sys.stderr.write('first complaint\\nsecond complaint\\n')
        sys.stderr.flush()
        sys.stdout.write('Content-Type: text/plain\\n\\nfine')
        ''',
    'no_output.py': '''
        pass
        ''',
    'big.py': '''
        import sys
        sys.stdout.write('Content-Type: application/octet-stream\\n\\n')
        sys.stdout.flush()
        for i in range(64):
            sys.stdout.buffer.write(bytes([65 + i % 26]) * 16384)
        ''',
    # hangs before its headers; records its own pid and a grandchild's (same process group)
    'hang.py': '''
        import os, subprocess, sys, time
        state = os.environ['QUERY_STRING']
        child = subprocess.Popen(['sleep', '300'])
        with open(state, 'w') as f:
            f.write('%d %d' % (os.getpid(), child.pid))
        time.sleep(300)
        ''',
    # holds its slot for a while, writing a byte of body per 0.3 s so it never times out
    'slow.py': '''
        import sys, time
        sys.stdout.write('Content-Type: text/plain\\n\\n')
        sys.stdout.flush()
        for _ in range(12):
            time.sleep(0.3)
            sys.stdout.write('.')
            sys.stdout.flush()
        ''',
}


# Programs that print a fixed response: a status, redirects, a head that is not one.
FIXED_OUTPUT = {
    'status.py': 'Status: 418 I am a teapot\nContent-Type: text/plain\n\nshort and stout',
    'status_code_only.py': 'Status: 404\nContent-Type: text/plain\n\nnothing',
    'local_redirect.py': 'Location: /cgi-bin/env.py/after?from=redirect\n\n',
    'static_redirect.py': 'Location: /files/hello.txt\n\n',
    'external_redirect.py': 'Location: http://example.com/elsewhere\n\n',
    'malformed.py': 'this is not a header\n\nbody',
}
SCRIPTS.update({name: 'import sys\nsys.stdout.write(%r)\n' % output
                for name, output in FIXED_OUTPUT.items()})


def write_cgi_dir(directory):
    directory.mkdir(parents=True, exist_ok=True)
    for name, source in SCRIPTS.items():
        path = directory / name
        path.write_text(PYTHON_CGI_HEAD + textwrap.dedent(source))
        path.chmod(0o755)
    shell = directory / 'hello.sh'
    shell.write_text('#!/bin/sh\nprintf "Content-Type: text/plain\\n\\n"\n'
                     'printf "hello from sh %s %s" "$REQUEST_METHOD" "$PATH_INFO"\n')
    shell.chmod(0o755)
    plain = directory / 'not_executable.py'
    plain.write_text(PYTHON_CGI_HEAD + 'print("Content-Type: text/plain\\n\\nran")\n')
    plain.chmod(0o644)
    (directory / 'sub').mkdir(exist_ok=True)


@pytest.fixture(scope='module')
def cgi_server(start_module_server, tmp_path_factory):
    base = tmp_path_factory.mktemp('cgi')
    write_cgi_dir(base / 'cgi-bin')
    files = base / 'files'
    files.mkdir()
    (files / 'hello.txt').write_text('static hello\n')
    docroot = base / 'htdocs'
    docroot.mkdir()
    server = start_module_server('--cgi-alias', '/cgi-bin', base / 'cgi-bin',
                                 '--url-alias', '/files', files,
                                 '--document-root', docroot, '--cgi-timeout', '3',
                                 env={'HTTP_PROXY': 'http://server-env-proxy:1'})
    server.base = base
    return server


def test_environment_follows_rfc_3875(cgi_server):
    response, body = cgi_server.request(
        'POST', '/cgi-bin/env.py/extra/path?a=1&b=two', body=b'x=1&y=2',
        headers={'Content-Type': 'application/x-www-form-urlencoded', 'X-Custom': 'custom value',
                 'Proxy': 'http://evil.example:3128'})
    assert response.status == 200, body
    assert response.getheader('X-Script') == 'env'
    assert response.getheader('Content-Type') == 'application/json'
    env = json.loads(body)
    assert env['GATEWAY_INTERFACE'] == 'CGI/1.1'
    assert env['SERVER_PROTOCOL'] == 'HTTP/1.1'
    assert env['SERVER_PORT'] == str(cgi_server.port)
    assert env['SERVER_NAME']
    assert env['SERVER_SOFTWARE'].startswith('pywsgi')
    assert env['REQUEST_METHOD'] == 'POST'
    assert env['SCRIPT_NAME'] == '/cgi-bin/env.py'
    assert env['PATH_INFO'] == '/extra/path'
    docroot = str(cgi_server.base / 'htdocs')
    assert env['PATH_TRANSLATED'] == docroot + '/extra/path'
    assert env['DOCUMENT_ROOT'] == docroot
    assert env['SCRIPT_FILENAME'] == str(cgi_server.base / 'cgi-bin' / 'env.py')
    assert env['QUERY_STRING'] == 'a=1&b=two'
    assert env['REMOTE_ADDR'] == '127.0.0.1'
    assert int(env['REMOTE_PORT']) > 0
    assert env['CONTENT_TYPE'] == 'application/x-www-form-urlencoded'
    assert env['CONTENT_LENGTH'] == '7'
    assert env['_body'] == 'x=1&y=2'
    assert env['HTTP_X_CUSTOM'] == 'custom value'
    assert 'HTTP_PROXY' not in env  # httpoxy: neither the client's header nor the server's env
    assert 'PYWSGI_TEST_STATE' not in env  # the server's environment does not leak
    assert env['_cwd'] == str(cgi_server.base / 'cgi-bin')  # run in the script's directory
    assert env['_argv'] == []


def test_get_without_body_has_no_content_length(cgi_server):
    response, body = cgi_server.get('/cgi-bin/env.py')
    env = json.loads(body)
    assert env['REQUEST_METHOD'] == 'GET'
    assert 'CONTENT_LENGTH' not in env
    assert 'PATH_INFO' not in env and 'PATH_TRANSLATED' not in env
    assert env['_body'] == ''


def test_chunked_body_arrives_with_a_content_length(cgi_server):
    def chunks():
        yield b'part one, '
        yield b'part two'
    # http.client frames a generator body with chunked transfer coding
    response, body = cgi_server.request('PUT', '/cgi-bin/env.py', body=chunks())
    env = json.loads(body)
    assert env['_body'] == 'part one, part two'
    assert env['CONTENT_LENGTH'] == str(len('part one, part two'))


def test_large_body_streams_through_stdin(cgi_server):
    payload = bytes(range(256)) * 4096  # 1 MiB
    response, body = cgi_server.request('POST', '/cgi-bin/env.py', body=payload)
    assert response.status == 200
    assert json.loads(body)['_body'].encode('latin-1') == payload


def test_large_output_streams_back(cgi_server):
    response, body = cgi_server.get('/cgi-bin/big.py')
    assert response.status == 200
    assert len(body) == 64 * 16384
    assert body[:3] == b'AAA' and body[-16384:] == bytes([65 + 63 % 26]) * 16384


def test_shell_script(cgi_server):
    response, body = cgi_server.request('DELETE', '/cgi-bin/hello.sh/x')
    assert (response.status, body) == (200, b'hello from sh DELETE /x')


def test_status_header_sets_the_status(cgi_server):
    response, body = cgi_server.get('/cgi-bin/status.py')
    assert (response.status, response.reason) == (418, 'I am a teapot')
    assert body == b'short and stout'
    assert response.getheader('Status') is None
    response, body = cgi_server.get('/cgi-bin/status_code_only.py')
    assert (response.status, response.reason, body) == (404, 'Not Found', b'nothing')


def test_local_location_is_an_internal_redirect(cgi_server):
    response, body = cgi_server.request('POST', '/cgi-bin/local_redirect.py?orig=1', body=b'zz')
    assert response.status == 200, body
    env = json.loads(body)
    assert_items(env, {'REQUEST_METHOD': 'GET', 'SCRIPT_NAME': '/cgi-bin/env.py',
                       'PATH_INFO': '/after', 'QUERY_STRING': 'from=redirect',
                       'REDIRECT_URL': '/cgi-bin/local_redirect.py',
                       'REDIRECT_QUERY_STRING': 'orig=1', '_body': ''})


def test_local_redirect_to_a_static_file(cgi_server):
    response, body = cgi_server.get('/cgi-bin/static_redirect.py')
    assert (response.status, body) == (200, b'static hello\n')


def test_absolute_location_is_a_302(cgi_server):
    response, _ = cgi_server.get('/cgi-bin/external_redirect.py')
    assert response.status == 302
    assert response.getheader('Location') == 'http://example.com/elsewhere'


def test_stderr_lines_go_to_the_error_log(cgi_server):
    mark = cgi_server.log_mark()
    response, body = cgi_server.get('/cgi-bin/stderr.py')
    assert (response.status, body) == (200, b'fine')
    cgi_server.wait_for_log(r'\[pywsgi:error\].*stderr\.py: first complaint', since=mark)
    cgi_server.wait_for_log(r'\[pywsgi:error\].*stderr\.py: second complaint', since=mark)


@pytest.mark.parametrize('script', ['malformed.py', 'no_output.py'])
def test_broken_output_is_500_with_a_log_line(cgi_server, script):
    mark = cgi_server.log_mark()
    response, _ = cgi_server.get('/cgi-bin/' + script)
    assert response.status == 500
    cgi_server.wait_for_log(r'%s: malformed header from script' % script.replace('.', r'\.'),
                            since=mark)


@pytest.mark.parametrize('path, status', [
    ('/cgi-bin/missing.py', 404),
    ('/cgi-bin/missing.py/more', 404),
    ('/cgi-bin/not_executable.py', 403),
    ('/cgi-bin/sub', 403),
    ('/cgi-bin/', 403),
    ('/cgi-bin/%2e%2e/%2e%2e/etc/passwd', 400),
])
def test_what_cannot_run(cgi_server, path, status):
    response, body = cgi_server.get(path)
    assert response.status == status, (path, body)
    assert b'ran' not in body


def test_hanging_script_is_killed_at_the_timeout_with_504(cgi_server, tmp_path):
    state = tmp_path / 'hang.pids'
    mark = cgi_server.log_mark()
    response, _ = cgi_server.get('/cgi-bin/hang.py?%s' % state, timeout=15)
    assert response.status == 504
    cgi_server.wait_for_log(r'hang\.py: timed out after 3 s', since=mark)
    script_pid, grandchild_pid = map(int, state.read_text().split())
    # the whole process group is gone: the script and the sleep it started
    wait_until(lambda: not is_alive(script_pid) and not is_alive(grandchild_pid), 5,
               message='the CGI process group to be killed')
    # the server still serves
    response, body = cgi_server.get('/cgi-bin/hello.sh')
    assert response.status == 200


def test_bound_on_running_programs_gives_503(start_server, tmp_path):
    import threading
    write_cgi_dir(tmp_path / 'cgi-bin')
    server = start_server('--cgi-alias', '/cgi-bin', tmp_path / 'cgi-bin',
                          '--cgi-max-processes', '1', '--cgi-timeout', '1')
    first = {}

    def slow_request():
        first['result'] = server.get('/cgi-bin/slow.py', timeout=15)
    thread = threading.Thread(target=slow_request)
    thread.start()
    try:
        # the slow script holds the only slot for ~3.6 s; this one waits 1 s, then gives up
        wait_until(lambda: 'slow.py' in _running_scripts(server), 10,
                   message='the slow script to start')
        response, _ = server.get('/cgi-bin/hello.sh', timeout=15)
        assert response.status == 503
    finally:
        thread.join(20)
    response, body = first['result']
    assert (response.status, body) == (200, b'.' * 12)
    response, _ = server.get('/cgi-bin/hello.sh')
    assert response.status == 200


def _running_scripts(server):
    """Command lines of the CGI programs the server processes run (each in its own session)."""
    server_processes = set(server.children())
    lines = []
    for pid in all_pids():
        stat = read_proc_stat(pid)
        if stat is None or stat[1] not in server_processes:
            continue
        try:
            with open('/proc/%d/cmdline' % pid, 'rb') as f:
                lines.append(f.read().replace(b'\0', b' ').decode(errors='replace'))
        except OSError:
            pass
    return ' '.join(lines)


def test_cgi_script_runs_the_example_as_cgi(start_server):
    server = start_server('--cgi-script', '/myapp=%s' % EXAMPLE_APP)
    response, body = server.get('/myapp')
    assert (response.status, body) == (200, b'mod_wsgi works!')
    assert response.getheader('Content-Type') == 'text/plain'
    response, _ = server.get('/other')
    assert response.status == 404


def test_cgi_script_at_the_mount_point_sees_script_name_and_path_info(start_server, tmp_path):
    script = tmp_path / 'report.wsgi'
    script.write_text(textwrap.dedent('''
        import os
        def application(environ, start_response):
            body = ('%s|%s|%s|%s|%s' % (environ['SCRIPT_NAME'], environ.get('PATH_INFO', ''),
                    environ['wsgi.run_once'], environ['wsgi.input'].read().decode(),
                    os.getpid())).encode()
            start_response('201 Created', [('Content-Type', 'text/plain')])
            return [body]
        '''))
    server = start_server('--cgi-script', script, '--mount-point', '/m')
    response, body = server.request('POST', '/m/a/b', body=b'payload')
    assert response.status == 201
    script_name, path_info, run_once, seen_body, pid_one = body.decode().split('|')
    assert (script_name, path_info, run_once, seen_body) == ('/m', '/a/b', 'True', 'payload')
    _, body = server.get('/m/')
    pid_two = body.decode().split('|')[-1]
    assert pid_one != pid_two  # a fresh process per request


def test_cgi_script_load_failure_is_500_with_the_reason_logged(start_server, tmp_path):
    script = tmp_path / 'broken.wsgi'
    script.write_text('raise RuntimeError("broken on purpose")\n')
    server = start_server('--cgi-script', '/b=%s' % script)
    mark = server.log_mark()
    response, _ = server.get('/b')
    assert response.status == 500
    server.wait_for_log(r'broken\.wsgi: .*broken on purpose', since=mark)
