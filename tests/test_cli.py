"""The command line (issue 2, point 5): script and module forms, mounts, aliases, and the one-line
exit-2 errors for a missing file, a missing callable and a port in use. Issue 16: --help in
sections, no abbreviations, the pywsgi option named for a mistyped one or another server's
spelling, what `pywsgi` alone says, and load errors reported at the user's file:line."""
import os
import re
import socket
import subprocess
import sys
from importlib import metadata

import pytest

from pywsgi import config
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

    environ = server.get_json('/myapp/env/sub?x=1')
    assert (environ['SCRIPT_NAME'], environ['PATH_INFO']) == ('/myapp', '/env/sub')
    assert environ['QUERY_STRING'] == 'x=1'
    environ = server.get_json('/myapp')
    assert (environ['SCRIPT_NAME'], environ['PATH_INFO']) == ('/myapp', '')
    environ = server.get_json('/myapp/')
    assert (environ['SCRIPT_NAME'], environ['PATH_INFO']) == ('/myapp', '/')


@pytest.mark.parametrize('path', ['/myappx', '/myappx/env', '/', '/other/myapp'])
def test_paths_outside_the_mount_point_are_404(start_server, path):
    server = start_server(SUITE_APP, '--mount-point', '/myapp')
    response, _ = server.get(path)
    assert response.status == 404


def test_script_alias_serves_several_apps(start_server):
    server = start_server('--script-alias', '/a=%s' % SUITE_APP,
                          '--script-alias', '/b=%s' % (APPS_DIR / 'other.wsgi'))

    environ = server.get_json('/a/env/x')
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
    environ = server.get_json('/a/env')  # /a/e is not a path-segment prefix of /a/env
    assert (environ['SCRIPT_NAME'], environ['PATH_INFO']) == ('/a', '/env')


# ------------------------------------------------------------------ --help (issue 16, point 5)

SECTION_HEADING = re.compile(r'^(\S[^:]*?)(?: \(.*\))?:$')


def help_sections(text):
    """{section title: its text} of `pywsgi --help`."""
    sections, title = {}, None
    for line in text.splitlines():
        match = SECTION_HEADING.match(line)
        if match and not line.startswith('usage:'):
            title = match.group(1)
            sections[title] = ''
        elif title is not None:
            sections[title] += line + '\n'
    return sections


def test_help_groups_the_options_by_topic_and_lists_every_flag():
    result = run_cli('--help', env={'COLUMNS': '100'})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('usage: pywsgi [OPTIONS] [SCRIPT | MODULE:APP]\n')
    sections = help_sections(result.stdout)
    for title in ('serving', 'processes and threads', 'limits', 'timeouts', 'static files',
                  'handler scripts and CGI', 'mod_python handlers', 'daemon mode', 'logs',
                  'proxies', 'operations', 'configuration'):
        assert title in sections, (title, list(sections))
    assert 'other options' not in sections, 'a setting in no section of config.HELP_SECTIONS'
    flags = [s.flag for s in config.SETTINGS if s.flag]
    for title, names in ((t, n) for t, _, n in config.HELP_SECTIONS):
        for name in names:
            assert name in config.SETTINGS_BY_NAME, (title, name)
            flag = config.SETTINGS_BY_NAME[name].flag
            if flag:
                assert re.search(r'^  %s\b' % re.escape(flag), sections[title], re.M), \
                    (flag, title)
    assert all(re.search(r'^  %s\b' % re.escape(flag), result.stdout, re.M) for flag in flags)
    for option in ('-h, --help', '--version', '--config', '--print-config'):
        assert option in sections['configuration'], option
    assert 'SCRIPT | MODULE:APP' in sections['serving']
    # each section short enough to read at a glance (at 100 columns)
    assert max(len(section.splitlines()) for section in sections.values()) < 30


# ------------------------------------------------------------------ unknown options

@pytest.mark.parametrize('args, must_mention', [
    (['--prot', '8000'], ['--prot', 'did you mean --port?']),
    (['--thread', '4'], ['--thread', 'did you mean --threads?']),        # no abbreviations
    (['--proc', '2', EXAMPLE_APP], ['--proc', '--processes']),
    (['-port', '8000'], ['did you mean --port?']),
    (['--limit-request-field_size', '100'], ['--limit-request-field-size']),
])
def test_a_mistyped_option_gets_the_nearest_flag(args, must_mention):
    assert_one_line_error(run_cli(*args), 'unrecognized option', *must_mention)


@pytest.mark.parametrize('args, must_mention', [
    # gunicorn
    (['-b', '127.0.0.1:8005', 'app:app'], ['-b', '--host 127.0.0.1 --port 8005']),
    (['--bind=[::1]:8080'], ['--host ::1 --port 8080']),
    (['--bind', 'unix:/run/app.sock'], ['--unix-socket /run/app.sock']),
    (['-w', '2', 'app:app'], ['-w', '--processes 2']),
    (['-w4'], ['--processes 4']),
    ([EXAMPLE_APP, '--workers', '2'], ['--workers', '--processes 2']),
    (['--timeout', '30'], ['--request-timeout 30', '--socket-timeout']),
    (['--chdir', '/srv/app'], ['--chdir', 'cd /srv/app', 'home=/srv/app']),
    (['--keep-alive', '5'], ['--keep-alive-timeout 5']),
    (['--access-logfile', '-'], ['--access-log -']),
    (['--error-logfile', '/var/log/app.log'], ['--error-log /var/log/app.log']),
    (['--max-requests', '1000'], ['--maximum-requests 1000']),
    (['--reload'], ['--reload-on-changes']),
    (['--pid', '/run/app.pid'], ['--pid-file /run/app.pid']),
    (['-D'], ['does not detach', '--daemon']),
    (['--forwarded-allow-ips', '10.0.0.1'], ['--trust-proxy']),
    (['--certfile', 'cert.pem'], ['--ssl-certificate-file cert.pem', '--https-port']),
    (['--ssl-certificate', '/etc/site'], ['--ssl-certificate-file /etc/site.crt',
                                          '--ssl-certificate-key-file /etc/site.key']),
    # uWSGI
    (['--http', ':9090'], ['--host 0.0.0.0 --port 9090']),
    (['-w', 'mysite.wsgi'], ['pywsgi mysite.wsgi:application']),
    (['--wsgi-file', 'app.wsgi'], ['pywsgi app.wsgi']),
    (['--master'], ['master process']),
    (['--listen', '128'], ['--listen-backlog 128']),
    (['--static-map', '/static=/srv/static'], ['--url-alias /static /srv/static']),
    # waitress-serve
    (['--listen=127.0.0.1:8080', 'app:app'], ['--host 127.0.0.1 --port 8080']),
    (['--url-prefix', '/app'], ['--mount-point /app']),
    # mod_wsgi-express (the table's express names, and daemon group options)
    (['--listener-backlog', '10'], ['--listen-backlog 10']),
    (['--queue-timeout', '60'], ['--daemon-process NAME:queue-timeout=60']),
])
def test_another_servers_option_names_pywsgis(args, must_mention):
    result = run_cli(*args)
    assert_one_line_error(result, 'unrecognized option', *must_mention)
    assert 'see pywsgi --help' not in result.stderr  # the hint is the answer


def test_an_unknown_option_without_a_near_flag_points_at_help():
    assert_one_line_error(run_cli('--frobnicate'), 'unrecognized option --frobnicate',
                          'pywsgi --help')


def test_a_second_script_says_how_to_mount_several():
    assert_one_line_error(run_cli(EXAMPLE_APP, APPS_DIR / 'other.wsgi'), 'other.wsgi',
                          '--script-alias')


def test_pywsgis_own_spellings_still_work(start_server):
    # --threads, --processes, --graceful-timeout are shared with gunicorn/uWSGI: not hinted
    server = start_server(EXAMPLE_APP, '--threads', '2', '--processes', '1',
                          '--graceful-timeout', '5')
    assert server.get('/')[1] == b'mod_wsgi works!'


# ------------------------------------------------------------------ no application

def test_without_an_application_the_startup_log_says_how_to_mount_one(start_server):
    server = start_server()
    line = server.wait_for_log(r'only the welcome page is served[^\n]*')
    assert "'pywsgi myapp.wsgi'" in line and '--script-alias' in line, line
    assert b'pywsgi is running' in server.get('/')[1]


def test_with_an_application_there_is_no_welcome_page_line(start_server):
    server = start_server(EXAMPLE_APP)
    server.wait_for_log('listening on')
    assert 'welcome page' not in server.stderr_text()


# ------------------------------------------------------------------ startup error locations

DJANGO_LIKE_WSGI = '''\
import importlib
import os
os.environ.setdefault('SETTINGS_MODULE', 'mysite.settings')
settings = importlib.import_module(os.environ['SETTINGS_MODULE'])  # as django.conf does


def application(environ, start_response):
    start_response('200 OK', [])
    return [b'never']
'''


@pytest.fixture
def django_like_site(tmp_path):
    """mysite/wsgi.py importing mysite/settings.py through importlib, which fails in line 2."""
    site = tmp_path / 'mysite'
    site.mkdir()
    (site / '__init__.py').write_text('')
    (site / 'settings.py').write_text("import os\nSECRET_KEY = os.environ['PYWSGI_TEST_NO_SUCH_VAR']\n")
    (site / 'wsgi.py').write_text(DJANGO_LIKE_WSGI)
    (tmp_path / 'site.wsgi').write_text(DJANGO_LIKE_WSGI)
    return tmp_path.resolve()


@pytest.mark.parametrize('target', ['mysite.wsgi:application', 'site.wsgi'])
def test_a_startup_error_names_the_users_file_and_line(django_like_site, target):
    result = run_cli(target, '--port', free_port(), cwd=django_like_site)
    settings_py = '%s:2' % (django_like_site / 'mysite' / 'settings.py')
    assert_one_line_error(result, settings_py, "KeyError: 'PYWSGI_TEST_NO_SUCH_VAR'",
                          '--log-level debug prints the traceback')
    assert '<frozen' not in result.stderr


def test_log_level_debug_prints_the_traceback(django_like_site):
    result = run_cli('mysite.wsgi:application', '--port', free_port(), '--log-level', 'debug',
                     cwd=django_like_site)
    assert result.returncode == 2, result.stderr
    assert 'Traceback (most recent call last)' in result.stderr
    assert "SECRET_KEY = os.environ['PYWSGI_TEST_NO_SUCH_VAR']" in result.stderr
    assert 'prints the traceback' not in result.stderr
