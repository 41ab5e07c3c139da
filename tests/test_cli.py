"""The command line (issue 2, point 5): script and module forms, mounts, aliases, and the one-line
exit-2 errors for a missing file, a missing callable and a port in use."""
import json
import os
import socket
import subprocess
import sys
from importlib import metadata

import pytest

from serverproc import APPS_DIR, EXAMPLE_APP, SUITE_APP, free_port

CLI_TIMEOUT = 30


def run_cli(*args, cwd=None, env=None):
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, '-m', 'pywsgi', *map(str, args)], cwd=cwd or APPS_DIR,
                          env=full_env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=CLI_TIMEOUT)


def assert_one_line_error(result, *must_mention):
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, 'expected one stderr line, got:\n' + result.stderr
    for text in must_mention:
        assert text in lines[0], (text, lines[0])


def test_version_prints_the_package_version():
    result = run_cli('--version')
    assert result.returncode == 0, result.stderr
    assert metadata.version('pywsgi') in result.stdout + result.stderr


def test_help_lists_the_options():
    result = run_cli('--help')
    assert result.returncode == 0, result.stderr
    for option in ('--host', '--port', '--processes', '--threads', '--mount-point',
                   '--script-alias', '--callable-object', '--version'):
        assert option in result.stdout, option


def test_missing_script_exits_2_with_one_line(tmp_path):
    missing = tmp_path / 'no-such-app.wsgi'
    result = run_cli(missing, '--port', free_port())
    assert_one_line_error(result, 'no-such-app.wsgi')


def test_script_without_application_exits_2_with_one_line():
    result = run_cli(APPS_DIR / 'no_callable.wsgi', '--port', free_port())
    assert_one_line_error(result, 'application')


def test_missing_callable_object_exits_2_with_one_line():
    result = run_cli(APPS_DIR / 'custom_callable.wsgi', '--callable-object', 'not_there',
                     '--port', free_port())
    assert_one_line_error(result, 'not_there')


def test_missing_module_exits_2_with_one_line():
    result = run_cli('no_such_module_for_pywsgi_tests:app', '--port', free_port())
    assert_one_line_error(result, 'no_such_module_for_pywsgi_tests')


def test_port_in_use_exits_2_with_one_line():
    with socket.socket() as occupant:
        occupant.bind(('127.0.0.1', 0))
        occupant.listen()
        port = occupant.getsockname()[1]
        result = run_cli(EXAMPLE_APP, '--host', '127.0.0.1', '--port', port)
    assert_one_line_error(result, str(port))


def test_serves_the_bundled_example(start_server):
    server = start_server(EXAMPLE_APP)
    response, body = server.get('/')
    assert response.status == 200
    assert body == b'mod_wsgi works!'


def test_callable_object_names_the_callable(start_server):
    server = start_server(APPS_DIR / 'custom_callable.wsgi', '--callable-object', 'handler')
    response, body = server.get('/')
    assert (response.status, body) == (200, b'custom callable')


def test_module_colon_callable_form(start_server):
    server = start_server('pkgdemo.web:app', cwd=APPS_DIR, env={'PYTHONPATH': str(APPS_DIR)})
    response, body = server.get('/anything')
    assert (response.status, body) == (200, b'pkgdemo.web:app')


def test_mount_point_splits_script_name_and_path_info(start_server):
    server = start_server(SUITE_APP, '--mount-point', '/myapp')

    response, body = server.get('/myapp/env/sub?x=1')
    assert response.status == 200, body
    environ = json.loads(body)
    assert (environ['SCRIPT_NAME'], environ['PATH_INFO']) == ('/myapp', '/env/sub')
    assert environ['QUERY_STRING'] == 'x=1'

    response, body = server.get('/myapp')
    assert response.status == 200, body
    environ = json.loads(body)
    assert (environ['SCRIPT_NAME'], environ['PATH_INFO']) == ('/myapp', '')

    response, body = server.get('/myapp/')
    assert response.status == 200, body
    environ = json.loads(body)
    assert (environ['SCRIPT_NAME'], environ['PATH_INFO']) == ('/myapp', '/')


@pytest.mark.parametrize('path', ['/myappx', '/myappx/env', '/', '/other/myapp'])
def test_paths_outside_the_mount_point_are_404(start_server, path):
    server = start_server(SUITE_APP, '--mount-point', '/myapp')
    response, _ = server.get(path)
    assert response.status == 404


def test_script_alias_serves_several_apps(start_server):
    server = start_server('--script-alias', '/a=%s' % SUITE_APP,
                          '--script-alias', '/b=%s' % (APPS_DIR / 'other.wsgi'))

    response, body = server.get('/a/env/x')
    assert response.status == 200, body
    environ = json.loads(body)
    assert (environ['SCRIPT_NAME'], environ['PATH_INFO']) == ('/a', '/env/x')

    response, body = server.get('/b/y')
    assert response.status == 200, body
    assert body == b'other app SCRIPT_NAME=/b PATH_INFO=/y'

    response, _ = server.get('/c')
    assert response.status == 404
    response, _ = server.get('/ab')
    assert response.status == 404


def test_script_alias_longest_prefix_wins_on_a_segment_boundary(start_server):
    server = start_server('--script-alias', '/a=%s' % SUITE_APP,
                          '--script-alias', '/a/e=%s' % (APPS_DIR / 'other.wsgi'))
    response, body = server.get('/a/e/c')
    assert body == b'other app SCRIPT_NAME=/a/e PATH_INFO=/c'
    response, body = server.get('/a/env')  # /a/e is not a path-segment prefix of /a/env
    assert response.status == 200
    environ = json.loads(body)
    assert (environ['SCRIPT_NAME'], environ['PATH_INFO']) == ('/a', '/env')
