"""Fixtures for the functional tests: real server processes on real sockets.

`start_server(*args)` runs `python -m pywsgi ARGS --host 127.0.0.1 --port <free port>`, waits until
the port accepts, and stops it (by PID: SIGTERM, wait, SIGKILL) at the end of the test;
`start_module_server` does the same for a whole test module. The server's stderr (its error log)
goes to a file the tests read with `server.stderr_text()` / `server.wait_for_log(...)`.
The helpers themselves live in serverproc.py (processes) and httpraw.py (a strict raw HTTP client).
"""
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from serverproc import SUITE_APP, ServerProcess, https_server

DEFAULT_TEST_TIMEOUT = 60


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: builds and installs the package (minutes); still run in CI')


def pytest_collection_modifyitems(config, items):
    # A per-test bound (pytest-timeout), unless a test sets its own or the command line does.
    if config.getoption('timeout', None):
        return
    for item in items:
        if item.get_closest_marker('timeout') is None:
            item.add_marker(pytest.mark.timeout(DEFAULT_TEST_TIMEOUT))


def pytest_sessionstart(session):
    # With an editable install, importing the core rebuilds it when sources changed; do that once,
    # here, so the first server start does not spend its startup bound compiling.
    with tempfile.TemporaryDirectory() as scratch:
        try:
            subprocess.run([sys.executable, '-c', 'import pywsgi._core'], cwd=scratch,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=900)
        except subprocess.TimeoutExpired:
            pass


class _ServerFactory:
    def __init__(self, base_dir):
        self.base_dir = Path(base_dir)
        self.servers = []

    def __call__(self, *args, **kwargs):
        workdir = self.base_dir / ('server%d' % len(self.servers))
        server = ServerProcess(args, workdir, **kwargs)
        self.servers.append(server)
        return server

    def stop_all(self):
        for server in reversed(self.servers):
            server.stop()


@pytest.fixture
def start_server(tmp_path):
    """start_server(*cli_args, env=None, cwd=None, command=None, preexec_fn=None) ->
    ServerProcess (per test)."""
    factory = _ServerFactory(tmp_path)
    yield factory
    factory.stop_all()


@pytest.fixture
def app_file(tmp_path):
    """app_file(source, name='app.wsgi') -> the path of a WSGI script holding `source`, written
    into the test's tmp_path."""
    def write(source, name='app.wsgi'):
        path = tmp_path / name
        path.write_text(source)
        return path
    return write


@pytest.fixture(scope='module')
def start_module_server(tmp_path_factory):
    """Like start_server, but the servers live for the whole test module."""
    factory = _ServerFactory(tmp_path_factory.mktemp('servers'))
    yield factory
    factory.stop_all()


@pytest.fixture(scope='session')
def pki(tmp_path_factory):
    """A CA and a server certificate for localhost, made now (tests/tlscerts.py)."""
    from tlscerts import Pki
    return Pki(tmp_path_factory.mktemp('pki'))


@pytest.fixture(scope='module', params=['4', '1', 'tls'], ids=['threads4', 'inline', 'tls'])
def suite_server(request, start_module_server):
    """The test-app suite (tests/apps/suite.py), shared by a module's tests; each test runs three
    times: with 4 worker threads; with --threads 1, where the reactor thread runs the app
    inline; and over HTTPS (4 threads). The long keep-alive timeout keeps an idle close by the
    server from passing for the close a test expects (closed_by_server waits 3 s)."""
    args = (SUITE_APP, '--keep-alive-timeout', '30')
    if request.param == 'tls':
        return https_server(start_module_server, request.getfixturevalue('pki'), *args,
                            '--threads', '4')
    return start_module_server(*args, '--threads', request.param)
