"""Settings from every source (issue 7, point 1): `--config FILE` (TOML), PYWSGI_* environment
variables, the command line and pywsgi.serve(**settings); precedence command line > environment >
file > defaults; one-line exit-2 errors naming the file and line or the variable;
--print-config and its round trip through --config; --log-to-terminal. Real processes throughout."""
import os
import re
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from serverproc import EXAMPLE_APP, SUITE_APP, free_port, wait_until

CLI_TIMEOUT = 60
REPO_ROOT = Path(__file__).resolve().parent.parent


def clean_env(**extra):
    """The environment without PYWSGI_* variables (except the test knobs), plus `extra`."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith('PYWSGI_') or key.startswith('PYWSGI_TEST_')}
    env.update(extra)
    return env


def run_cli(*args, cwd, env=None):
    return subprocess.run([sys.executable, '-m', 'pywsgi', *map(str, args)], cwd=str(cwd),
                          env=clean_env(**(env or {})), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=CLI_TIMEOUT)


def assert_one_line_error(result, *must_mention):
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, 'expected one stderr line, got:\n' + result.stderr
    assert lines[0].startswith('pywsgi: error: '), lines[0]
    for text in must_mention:
        assert text in lines[0], (text, lines[0])
    return lines[0]


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


def active_lines(toml_text):
    """--print-config output without comments: the settings themselves."""
    lines = []
    for line in toml_text.splitlines():
        if line.startswith('#') or not line.strip():
            continue
        lines.append(re.sub(r'\s+#[^"\]]*$', '', line))
    return lines


# ------------------------------------------------------------------ serving from a file

def test_file_settings_serve_with_relative_paths(start_server, tmp_path):
    site = tmp_path / 'site'
    (site / 'htdocs').mkdir(parents=True)
    (site / 'htdocs' / 'hello.txt').write_text('hello from the file\n')
    application = os.path.relpath(SUITE_APP, site)  # relative to the file, not the cwd
    config = write(site / 'pywsgi.toml', f'''\
        # a comment
        application = "{application}"
        mount-point = "/app"
        keep_alive_timeout = 30
        server_software = "from-file/1"

        [url_alias]
        "/static" = "htdocs"
        ''')
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    server = start_server('--config', config, cwd=elsewhere, env=clean_env())
    environ = server.get_json('/app/env')
    assert environ['SCRIPT_NAME'] == '/app'
    assert environ['SERVER_SOFTWARE'] == 'from-file/1'
    response, body = server.get('/static/hello.txt')
    assert (response.status, body) == (200, b'hello from the file\n')
    assert response.getheader('Server') == 'from-file/1'


def test_precedence_command_line_over_environment_over_file(start_server, tmp_path):
    file_port, env_port = free_port(), free_port()
    config = write(tmp_path / 'pywsgi.toml', f'''\
        application = "{SUITE_APP}"
        port = {file_port}
        server_software = "from-file"
        url_scheme = "https"
        mount_point = "/file"
        ''')
    env = clean_env(PYWSGI_PORT=str(env_port), PYWSGI_SERVER_SOFTWARE='from-env',
                    PYWSGI_MOUNT_POINT='/env')
    # start_server adds --port (a third free port) on the command line: the one that must win.
    server = start_server('--config', config, '--mount-point', '/cli', env=env)
    environ = server.get_json('/cli/env')
    assert environ['SCRIPT_NAME'] == '/cli'                  # command line > env > file
    assert environ['SERVER_SOFTWARE'] == 'from-env'          # env > file
    assert environ['wsgi.url_scheme'] == 'https'             # file > default
    assert environ['SERVER_PORT'] == str(server.port)
    response, _ = server.get('/env/env')
    assert response.status == 404
    for port in (file_port, env_port):  # nothing listens where the file and env said
        with pytest.raises(OSError):
            socket.create_connection(('127.0.0.1', port), timeout=2).close()


def test_environment_variables_alone(start_server, tmp_path):
    first, second = tmp_path / 'first', tmp_path / 'second'
    for directory in (first, second):
        directory.mkdir()
        (directory / 'which.txt').write_text(directory.name)
    env = clean_env(PYWSGI_APPLICATION=str(SUITE_APP), PYWSGI_KEEP_ALIVE_TIMEOUT='30',
                    PYWSGI_URL_ALIAS='/one=%s\n/two=%s\n' % (first, second),
                    PYWSGI_THREADS='1', PYWSGI_PROCESSES='')  # empty: not set
    server = start_server(env=env)
    assert server.get_json('/env')['wsgi.multithread'] is False
    for url, expected in (('/one/which.txt', b'first'), ('/two/which.txt', b'second')):
        response, body = server.get(url)
        assert (response.status, body) == (200, expected)


# ------------------------------------------------------------------ errors

@pytest.mark.parametrize('content, line, mention', [
    ('port = 8000\nprot = 9000\n', 2, "unknown setting 'prot' (did you mean 'port'?)"),
    ('\n\nport = "eighty"\n', 3, "bad value for setting 'port'"),
    ('host = "127.0.0.1"\n\n[url_alias]\n"/a" = ""\n', 3, "bad value for setting 'url_alias'"),
    ('process_index = 1\n', 1, "unknown setting 'process_index'"),
    ('threads = 2\nthreads = 3\n', 2, 'TOML syntax error'),
    ('keep_alive_timeout = 1\nkeep-alive-timeout = 2\n', 2, "'keep_alive_timeout' given twice"),
    ('[daemon_process.web]\nprocesses = 0\n', 1, "bad value for setting 'daemon_process'"),
    ('follow-symlinks = "maybe"\n', 1, "bad value for setting 'follow_symlinks'"),
    ('application = 3\n', 1, "'application' must be a string"),
])
def test_bad_file_is_one_line_naming_file_and_line(tmp_path, content, line, mention):
    (tmp_path / 'pywsgi.toml').write_text(content)
    result = run_cli('--config', 'pywsgi.toml', '--port', free_port(), cwd=tmp_path)
    assert_one_line_error(result, 'pywsgi.toml:%d: ' % line, mention)


def test_bad_file_value_is_an_error_even_when_overridden(tmp_path):
    (tmp_path / 'pywsgi.toml').write_text('port = -1\n')
    result = run_cli('--config', 'pywsgi.toml', '--port', free_port(), cwd=tmp_path)
    assert_one_line_error(result, 'pywsgi.toml:1: ', "'port'", '0-65535')


def test_missing_config_file(tmp_path):
    result = run_cli('--config', 'nowhere.toml', cwd=tmp_path)
    assert_one_line_error(result, '--config nowhere.toml', 'No such file')


def test_config_file_from_pywsgi_config_variable(tmp_path):
    (tmp_path / 'pywsgi.toml').write_text('port = 65536\n')
    result = run_cli(cwd=tmp_path, env={'PYWSGI_CONFIG': 'pywsgi.toml'})
    assert_one_line_error(result, 'pywsgi.toml:1: ', "'port'")


def test_without_tomllib_config_is_a_clear_error(tmp_path):
    """Python < 3.11 has no tomllib: pretend so in a real process."""
    (tmp_path / 'pywsgi.toml').write_text('port = 8000\n')
    code = ('import sys; sys.modules["tomllib"] = None; from pywsgi.cli import main; '
            'raise SystemExit(main(["--config", "pywsgi.toml"]))')
    result = subprocess.run([sys.executable, '-c', code], cwd=str(tmp_path), env=clean_env(),
                            stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=CLI_TIMEOUT)
    assert_one_line_error(result, '--config pywsgi.toml', 'Python 3.11', 'tomllib')


@pytest.mark.parametrize('variable, value, mention', [
    ('PYWSGI_PORT', 'eighty', "PYWSGI_PORT: bad value for setting 'port'"),
    ('PYWSGI_PROT', '9000', "PYWSGI_PROT: unknown setting 'prot'"),
    ('PYWSGI_PROCESS_INDEX', '1', "PYWSGI_PROCESS_INDEX: unknown setting"),
    ('PYWSGI_URL_ALIAS', '/a=/tmp\nno-equals-sign', "PYWSGI_URL_ALIAS: bad value"),
    ('PYWSGI_LOG_TO_TERMINAL', 'perhaps', "PYWSGI_LOG_TO_TERMINAL: bad value"),
])
def test_bad_environment_variable_is_one_line_naming_it(tmp_path, variable, value, mention):
    result = run_cli('--port', free_port(), cwd=tmp_path, env={variable: value})
    assert_one_line_error(result, mention)


def test_test_knobs_are_not_settings(tmp_path):
    result = run_cli('--print-config', cwd=tmp_path,
                     env={'PYWSGI_TEST_ANYTHING': 'x', 'PYWSGI_SMOKE_REBUILD_BASE': '0'})
    assert result.returncode == 0, result.stderr
    assert active_lines(result.stdout) == []


def test_a_bad_command_line_value_still_wins_the_blame(tmp_path):
    result = run_cli('--port', 'x', cwd=tmp_path, env={'PYWSGI_PORT': '9000'})
    assert result.returncode == 2
    assert '--port' in result.stderr


# ------------------------------------------------------------------ --print-config

def test_print_config_shows_the_winning_values_and_their_sources(tmp_path):
    (tmp_path / 'pywsgi.toml').write_text('threads = 7\nport = 1111\nlog_level = "debug"\n')
    result = run_cli('--config', 'pywsgi.toml', '--port', '3333', '--print-config', cwd=tmp_path,
                     env={'PYWSGI_PORT': '2222', 'PYWSGI_THREADS': '9'})
    assert result.returncode == 0, result.stderr
    assert 'port = 3333  # --port' in result.stdout
    assert 'threads = 9  # PYWSGI_THREADS' in result.stdout
    assert 'log_level = "debug"  # pywsgi.toml:3' in result.stdout
    assert '# processes = 1' in result.stdout  # defaults commented out
    assert active_lines(result.stdout) == ['port = 3333', 'threads = 9', 'log_level = "debug"']


def test_print_config_binds_and_loads_nothing(tmp_path):
    with socket.socket() as occupant:
        occupant.bind(('127.0.0.1', 0))
        occupant.listen()
        port = occupant.getsockname()[1]
        result = run_cli('missing-app.wsgi', '--port', port, '--print-config', cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert 'application = "%s"' % (tmp_path / 'missing-app.wsgi') in result.stdout


def test_print_config_round_trips_through_config(tmp_path):
    """Many kinds of values (lists, pairs, daemon groups, access rules, switches) printed, read
    back with --config from another directory, printed again: the same settings."""
    work = tmp_path / 'work'
    (work / 'htdocs').mkdir(parents=True)
    (work / 'cgi-bin').mkdir()
    (work / 'lib').mkdir()
    (work / 'lib' / 'handlers.py').write_text('def handler(req): return 0\n')
    write(work / 'first.toml', '''\
        application = "app.wsgi"
        threads = 3
        keep-alive-timeout = 2.5
        limit_request_body = "1M"
        follow_symlinks = true
        precompressed = false
        document_root = "htdocs"
        handler_extension = ["wsgi", "py"]
        python_path = ["lib"]
        cgi_script = ["/c=cgi-bin/x.wsgi", "cgi-bin/y.wsgi"]
        python_handler = ["/h=handlers", "handlers::other"]
        access_log = "logs/access.log"
        log_to_terminal = true
        server_name = "quote\\" and backslash \\\\ é"

        [url_alias]
        "/static" = "htdocs"
        "/" = "htdocs"

        [script_alias]
        "/a" = "a.wsgi"
        "/m" = "some.module:app"

        [cgi_alias]
        "/cgi-bin" = "cgi-bin"

        [access]
        "/admin" = ["Order deny,allow", "Deny from all", "Allow from 10.0.0.0/8"]
        "/" = "Require all granted"

        [python_option]
        KEY = "value=with=equals"

        [daemon_process.web]
        processes = 2
        threads = 4
        display-name = "%{GROUP}"
        queue_timeout = 12.5
        python-path = ["lib", "/opt/x"]
        home = "."

        [daemon_process.other]
        processes = 1
        ''')
    first = run_cli('--config', 'first.toml', '--print-config', '--url-scheme', 'https',
                    cwd=work, env={'PYWSGI_MAX_CLIENTS': '50'})
    assert first.returncode == 0, first.stderr
    assert ('daemon_process = ["web:processes=2,threads=4,display-name=%%{GROUP},'
            'queue-timeout=12.5,python-path=%s:/opt/x,home=%s", "other:' % (
                work / 'lib', work)) in first.stdout
    assert 'document_root = "%s"' % (work / 'htdocs') in first.stdout
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    (elsewhere / 'printed.toml').write_text(first.stdout)
    second = run_cli('--config', 'printed.toml', '--print-config', cwd=elsewhere)
    assert second.returncode == 0, second.stderr
    assert active_lines(second.stdout) == active_lines(first.stdout)
    assert len(active_lines(first.stdout)) == 22


# ------------------------------------------------------------------ --log-to-terminal

def test_log_to_terminal_overrides_log_files(start_server, tmp_path):
    error_log, access_log = tmp_path / 'error.log', tmp_path / 'access.log'
    server = start_server(EXAMPLE_APP, '--error-log', error_log, '--access-log', access_log,
                          '--log-to-terminal', env=clean_env())
    response, _ = server.get('/logged-path')
    assert response.status == 200
    wait_until(lambda: '/logged-path' in server.stdout_text(), 10, message='access line on stdout')
    assert 'listening on' in server.stderr_text()
    assert not error_log.exists() or 'listening on' not in error_log.read_text()
    assert not access_log.exists() or access_log.read_text() == ''


def test_log_to_terminal_from_a_file_does_not_enable_the_access_log(start_server, tmp_path):
    config = write(tmp_path / 'pywsgi.toml', '''\
        log-to-terminal = true
        error_log = "error.log"
        ''')
    server = start_server(EXAMPLE_APP, '--config', config, env=clean_env())
    response, _ = server.get('/not-logged')
    assert response.status == 200
    server.wait_for_log('listening on')
    assert not (tmp_path / 'error.log').exists()
    assert '/not-logged' not in server.stdout_text()


# ------------------------------------------------------------------ the Python API

API_SCRIPT = '''\
import sys
import pywsgi
from pywsgi.config import ConfigError

def app(environ, start_response):
    body = ("%s %s" % (environ["SERVER_SOFTWARE"], environ["wsgi.url_scheme"])).encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]

try:
    pywsgi.serve(app, bogus_setting=1)
except ConfigError as exc:
    print("rejected:", exc, flush=True)
port = int(sys.argv[-1])  # the test harness appends --host 127.0.0.1 --port N
pywsgi.serve(app, config="api.toml", port=port, server_software="from-keyword")
'''


def test_serve_keywords_over_environment_over_config_file(start_server, tmp_path):
    (tmp_path / 'api_server.py').write_text(API_SCRIPT)
    (tmp_path / 'api.toml').write_text('server_software = "from-file"\nurl_scheme = "https"\n'
                                       'port = 1\n')
    env = clean_env(PYWSGI_SERVER_SOFTWARE='from-env', PYWSGI_URL_SCHEME='http')
    server = start_server(command=[sys.executable, tmp_path / 'api_server.py'], cwd=tmp_path,
                          env=env)
    response, body = server.get('/')
    assert (response.status, body) == (200, b'from-keyword http')
    assert "rejected: unknown setting 'bogus_setting'" in server.stdout_text()


# ------------------------------------------------------------------ docs

def test_configuration_doc_lists_every_setting():
    from pywsgi import config
    doc = (REPO_ROOT / 'docs' / 'configuration.md').read_text()
    missing = [setting.name for setting in config.SETTINGS
               if setting.flag is not None and '`%s`' % setting.name not in doc]
    assert not missing, ('docs/configuration.md lacks these settings (regenerate the table: '
                         'python docs/gen_settings_table.py): %s' % missing)
