"""Helpers for the functional tests: start a real pywsgi server process, find its children,
wait for conditions. The fixtures in conftest.py are built on these."""
import http.client
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
APPS_DIR = TESTS_DIR / 'apps'
SUITE_APP = APPS_DIR / 'suite.py'
EXAMPLE_APP = REPO_ROOT / 'examples' / 'myapp.wsgi'

# Generous: with an editable install (the dev venv) every import of the package runs the
# meson-python rebuild check, and may recompile. PYWSGI_TEST_STARTUP_TIMEOUT overrides it.
STARTUP_TIMEOUT = float(os.environ.get('PYWSGI_TEST_STARTUP_TIMEOUT', '30'))
STOP_TIMEOUT = 20.0
ERROR_LINE = re.compile(r'\[[\w.-]*:error\]')


def free_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def _proc_stat_fields(pid):
    """The fields of /proc/PID/stat after the command name (state first), or None if gone."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat[stat.rindex(')') + 2:].split()


def read_proc_stat(pid):
    """(state, ppid, session) of a live process, or None if it is gone."""
    fields = _proc_stat_fields(pid)
    return fields and (fields[0], int(fields[1]), int(fields[3]))


def cpu_ticks(pid):
    """User + system CPU time a live process has used so far, in clock ticks."""
    fields = _proc_stat_fields(pid)
    return int(fields[11]) + int(fields[12])


def raise_own_nofile(needed):
    """This test process needs `needed` descriptors (for a crowd of client sockets): its soft
    RLIMIT_NOFILE goes up to that, or the test is skipped where the hard limit is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip('RLIMIT_NOFILE hard limit %d < %d' % (hard, needed))
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def all_pids():
    return [int(name) for name in os.listdir('/proc') if name.isdigit()]


def children_of(pid):
    """Live (non-zombie) child PIDs of `pid`."""
    found = []
    for candidate in all_pids():
        stat = read_proc_stat(candidate)
        if stat and stat[1] == pid and stat[0] != 'Z':
            found.append(candidate)
    return sorted(found)


def is_alive(pid):
    stat = read_proc_stat(pid)
    return stat is not None and stat[0] != 'Z'


def wait_until(predicate, timeout, interval=0.05, message='condition'):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError('timed out after %.1f s waiting for %s' % (timeout, message))
        time.sleep(interval)


def stop_process(proc, timeout=STOP_TIMEOUT):
    """Stop a subprocess.Popen: SIGTERM, then SIGKILL if it has not exited within `timeout`."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def in_thread(function, *args, **kwargs):
    """Run function in a thread; returns (thread, outcome dict with 'result' or 'error')."""
    outcome = {}

    def run():
        try:
            outcome['result'] = function(*args, **kwargs)
        except Exception as error:  # reported by the test's assertions
            outcome['error'] = error
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def results_of(calls, timeout=30):
    """What in_thread calls returned (in order), once they have finished; a call that raised or
    did not finish within `timeout` fails the test."""
    for thread, _ in calls:
        thread.join(timeout)
    for index, (_, outcome) in enumerate(calls):
        assert 'result' in outcome, (index, outcome)
    return [outcome['result'] for _, outcome in calls]


def https_server(start, pki, *args):
    """A server started by `start` (a start_server fixture) with an --https-port too, spoken to
    over TLS from then on (ServerProcess.use_https): the plain-HTTP suites run again over TLS."""
    https_port = free_port()
    server = start(*args, '--https-port', https_port, *pki.server_args())
    server.use_https(https_port, pki.client_context())
    return server


class ServerProcess:
    """One pywsgi server process started for a test, in its own session (so its children can be
    found and, if it leaves any behind, stopped by PID)."""

    def __init__(self, args, workdir, env=None, cwd=None, command=None, wait=True,
                 preexec_fn=None):
        self.port = free_port()
        self.host = '127.0.0.1'
        self.url = 'http://%s:%d' % (self.host, self.port)
        self.workdir = Path(workdir)
        self.state_dir = self.workdir / 'state'
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.stderr_path = self.workdir / 'stderr.log'
        self.stdout_path = self.workdir / 'stdout.log'
        command = [str(part) for part in (command or [sys.executable, '-m', 'pywsgi'])]
        self.argv = command + [str(arg) for arg in args] + [
            '--host', self.host, '--port', str(self.port)]
        full_env = dict(os.environ)
        full_env['PYWSGI_TEST_STATE'] = str(self.state_dir)
        full_env['PYTHONUNBUFFERED'] = '1'
        full_env.update(env or {})
        self._stderr_file = open(self.stderr_path, 'wb')
        self._stdout_file = open(self.stdout_path, 'wb')
        # cwd defaults to a scratch directory: run from a source checkout, `-m pywsgi` must find the
        # installed package, not the uncompiled source tree.
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=self._stdout_file,
            stderr=self._stderr_file, cwd=str(cwd or self.state_dir), env=full_env,
            start_new_session=True, preexec_fn=preexec_fn)
        self.pid = self.proc.pid
        if wait:
            self.wait_ready()

    def __repr__(self):
        return '<ServerProcess pid=%d %s>' % (self.pid, ' '.join(self.argv))

    def stderr_text(self):
        return self.stderr_path.read_text(errors='replace')

    def stdout_text(self):
        return self.stdout_path.read_text(errors='replace')

    def wait_ready(self, timeout=STARTUP_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError('server exited with %s before accepting on port %d\n'
                                   'argv: %s\nstderr:\n%s' % (self.proc.returncode, self.port,
                                                              self.argv, self.stderr_text()))
            try:
                socket.create_connection((self.host, self.port), timeout=0.5).close()
                return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError('server did not accept on port %d within %.0f s\nargv: %s\n'
                                   'stderr:\n%s' % (self.port, timeout, self.argv, self.stderr_text()))
            time.sleep(0.05)

    # --- error log -----------------------------------------------------------------------------

    def log_mark(self):
        """A position in the error log; wait_for_log(since=mark) only looks at what follows."""
        return len(self.stderr_text())

    def wait_for_log(self, pattern, since=0, timeout=5.0):
        """The first new error-log line matching regex `pattern` (waits up to `timeout`)."""
        regex = re.compile(pattern)

        def find():
            for line in self.stderr_text()[since:].splitlines():
                if regex.search(line):
                    return line
            return None
        try:
            return wait_until(find, timeout, message='log line %r' % pattern)
        except AssertionError:
            raise AssertionError('no error-log line matching %r; new log text:\n%s'
                                 % (pattern, self.stderr_text()[since:])) from None

    # --- requests ------------------------------------------------------------------------------

    def use_https(self, https_port, context):
        """From now on .port is the server's --https-port: RawConnection (httpraw.TLS_PORTS)
        and request() speak TLS to it with `context`; .plain_port is the HTTP one."""
        import httpraw
        self.plain_port = self.port
        self.port = https_port
        self.tls_context = context
        httpraw.TLS_PORTS[https_port] = context

    def request(self, method, path, body=None, headers=None, timeout=10.0):
        """One request on a fresh connection (http.client); returns (response, body bytes)."""
        context = getattr(self, 'tls_context', None)
        if context is not None:
            connection = http.client.HTTPSConnection('localhost', self.port, timeout=timeout,
                                                     context=context)
        else:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response, response.read()
        finally:
            connection.close()

    def get(self, path, **kwargs):
        return self.request('GET', path, **kwargs)

    def get_json(self, path, timeout=30.0):
        """The JSON body (an app's environ, say) of GET path, which must be answered 200; the
        bound is generous, as a daemon process may be (re)starting."""
        response, body = self.get(path, timeout=timeout)
        assert response.status == 200, (path, response.status, body[:300])
        return json.loads(body)

    def state_file(self, name):
        return self.state_dir / name

    def wait_state_file(self, name, timeout=5.0):
        """The text of state file `name` once the app has written it."""
        path = self.state_dir / name
        wait_until(path.exists, timeout, message='state file %s' % name)
        return path.read_text()

    # --- processes -----------------------------------------------------------------------------

    def children(self):
        return children_of(self.pid)

    def session_members(self):
        """Live processes of the server's session (the master, its children, theirs)."""
        members = []
        for pid in all_pids():
            stat = read_proc_stat(pid)
            if stat and stat[2] == self.pid and stat[0] != 'Z':
                members.append(pid)
        return members

    def stop(self):
        stop_process(self.proc)
        # Children the master failed to take down would outlive the test: stop them by PID.
        for pid in self.session_members():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._stderr_file.close()
        self._stdout_file.close()
