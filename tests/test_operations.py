"""Operations (docs/operations.md): --pid-file, --user/--group, --unix-socket, systemd socket
activation (LISTEN_FDS) and --reload-on-changes - each over real server processes and sockets."""
import http.client
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from httpraw import recv_until_close
from serverproc import STARTUP_TIMEOUT, free_port, is_alive, stop_process, wait_until

APP = '''
import os
def application(environ, start_response):
    body = "\\n".join([
        "remote_addr=%r" % environ.get("REMOTE_ADDR"),
        "remote_port=%r" % environ.get("REMOTE_PORT"),
        "server_name=%s" % environ.get("SERVER_NAME"),
        "server_port=%s" % environ.get("SERVER_PORT"),
        "uid=%d" % os.getuid(),
        "gid=%d" % os.getgid(),
        "listen=%r" % [os.environ.get(k) for k in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")],
    ]).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
'''


@pytest.fixture
def app_path(app_file):
    return app_file(APP)


@pytest.fixture
def public_dir():
    """A directory an unprivileged user can read (pytest's tmp_path is root's alone)."""
    import shutil
    import tempfile
    from pathlib import Path
    directory = Path(tempfile.mkdtemp(prefix='pywsgi-ops-test-'))
    os.chmod(directory, 0o755)
    (directory / 'app.wsgi').write_text(APP)
    os.chmod(directory / 'app.wsgi', 0o644)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def fields(body):
    return dict(line.split('=', 1) for line in body.decode().splitlines())


def run_pywsgi(*args, timeout=STARTUP_TIMEOUT, **kwargs):
    """Run pywsgi to completion (a startup error): (exit code, stderr)."""
    # not from the repository root, where `-m pywsgi` would find the source tree, not the build
    kwargs.setdefault('cwd', tempfile.gettempdir())
    result = subprocess.run([sys.executable, '-m', 'pywsgi'] + [str(a) for a in args],
                            stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=timeout, **kwargs)
    return result.returncode, result.stderr


def proc_ids(pid):
    """(real uid, real gid) of a live process from /proc/PID/status."""
    with open('/proc/%d/status' % pid) as f:
        status = dict(line.split(':', 1) for line in f if ':' in line)
    return int(status['Uid'].split()[0]), int(status['Gid'].split()[0])


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a UNIX stream socket."""

    def __init__(self, path, timeout=10.0):
        super().__init__('localhost', timeout=timeout)
        self.unix_path = str(path)

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


def unix_get(path, target='/', headers=None):
    connection = UnixHTTPConnection(path)
    try:
        connection.request('GET', target, headers=headers or {})
        response = connection.getresponse()
        return response, response.read()
    finally:
        connection.close()


def unix_exchange(path, request):
    """Raw request bytes sent over the UNIX socket at `path`; all the server sends back until
    it closes."""
    with socket.socket(socket.AF_UNIX) as raw:
        raw.settimeout(10)
        raw.connect(str(path))
        raw.sendall(request)
        return recv_until_close(raw)


def wait_unix_ready(server, path):
    def ready():
        if server.proc.poll() is not None:
            raise AssertionError('server exited with %s:\n%s' % (server.proc.returncode,
                                                                 server.stderr_text()))
        try:
            probe = socket.socket(socket.AF_UNIX)
            probe.settimeout(0.5)
            probe.connect(str(path))
            probe.close()
            return True
        except OSError:
            return False
    wait_until(ready, STARTUP_TIMEOUT, message='the UNIX socket %s' % path)
    server.wait_for_log(r'listening on unix:', timeout=STARTUP_TIMEOUT)


def stop_and_wait(server):
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(timeout=30)


# ------------------------------------------------------------------ --pid-file

def test_pid_file_written_while_running_and_removed_on_exit(start_server, app_path, tmp_path):
    pid_file = tmp_path / 'run' / 'pywsgi.pid'
    pid_file.parent.mkdir()
    server = start_server(app_path, '--pid-file', pid_file)
    wait_until(lambda: pid_file.exists() and pid_file.read_text() == '%d\n' % server.pid, 10,
               message='the pid file')
    assert [p.name for p in pid_file.parent.iterdir()] == ['pywsgi.pid']  # no temp file left
    assert server.get('/')[0].status == 200
    stop_and_wait(server)
    assert server.proc.returncode == 0
    assert not pid_file.exists()


def test_pid_file_of_a_running_server_refuses_a_second_one(start_server, app_path, tmp_path):
    pid_file = tmp_path / 'pywsgi.pid'
    server = start_server(app_path, '--pid-file', pid_file)
    wait_until(pid_file.exists, 10, message='the pid file')
    code, stderr = run_pywsgi(app_path, '--pid-file', pid_file, '--port', free_port())
    assert code == 2
    assert stderr.startswith('pywsgi: error: --pid-file %s: process %d' % (pid_file, server.pid))
    assert 'running' in stderr
    # the running server's file and service are untouched
    wait_until(lambda: pid_file.exists() and pid_file.read_text() == '%d\n' % server.pid, 10,
               message='the pid file')
    assert server.get('/')[0].status == 200


@pytest.mark.parametrize('content', ['dead', 'garbage\n', ''])
def test_stale_pid_file_is_replaced(start_server, app_path, tmp_path, content):
    pid_file = tmp_path / 'pywsgi.pid'
    if content == 'dead':
        gone = subprocess.Popen(['true'])
        gone.wait()
        content = '%d\n' % gone.pid
    pid_file.write_text(content)
    server = start_server(app_path, '--pid-file', pid_file)
    wait_until(lambda: pid_file.exists() and pid_file.read_text() == '%d\n' % server.pid, 10,
               message='the pid file')
    server.wait_for_log(r'replacing a stale pid file')
    stop_and_wait(server)
    assert not pid_file.exists()


def test_pid_file_left_alone_when_it_names_another_process(start_server, app_path, tmp_path):
    pid_file = tmp_path / 'pywsgi.pid'
    server = start_server(app_path, '--pid-file', pid_file)
    # the port accepts once the master listens, a moment before it writes the file
    wait_until(lambda: pid_file.exists() and pid_file.read_text() == '%d\n' % server.pid, 10,
               message='the pid file')
    pid_file.write_text('%d\n' % os.getpid())   # then a successor took the file over
    stop_and_wait(server)
    assert pid_file.read_text() == '%d\n' % os.getpid()


def test_pid_file_in_a_missing_directory_is_a_startup_error(app_path, tmp_path):
    code, stderr = run_pywsgi(app_path, '--pid-file', tmp_path / 'no' / 'such' / 'x.pid',
                              '--port', free_port())
    assert code == 2
    assert stderr.startswith('pywsgi: error: --pid-file ')
    assert 'cannot write it' in stderr


# ------------------------------------------------------------------ --unix-socket

def test_unix_socket_serves_http_and_is_removed_on_exit(start_server, app_path, tmp_path):
    path = tmp_path / 'app.sock'
    access_log = tmp_path / 'access.log'
    server = start_server(app_path, '--unix-socket', path, '--access-log', access_log,
                          '--threads', '2', wait=False)
    wait_unix_ready(server, path)
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o660
    response, body = unix_get(path, '/', headers={'Host': 'app.example'})
    assert response.status == 200
    got = fields(body)
    # as gunicorn: a UNIX-socket client has the empty address and no port
    assert got['remote_addr'] == "''"
    assert got['remote_port'] == 'None'
    assert got['server_name'] == 'app.example'
    # no Host header (HTTP/1.0): SERVER_NAME/PORT fall back to localhost:80
    data = unix_exchange(path, b'GET / HTTP/1.0\r\n\r\n')
    head, _, body = data.partition(b'\r\n\r\n')
    assert head.startswith(b'HTTP/1.1 200') or head.startswith(b'HTTP/1.0 200')
    got = fields(body)
    assert (got['server_name'], got['server_port']) == ('localhost', '80')
    # TCP is not listened on
    with pytest.raises(OSError):
        socket.create_connection((server.host, server.port), timeout=2).close()
    # the access log's %h is '-' for a UNIX-socket client
    wait_until(lambda: access_log.exists() and access_log.read_text().count('\n') >= 2, 10,
               message='two access log lines')
    for line in access_log.read_text().splitlines():
        assert line.startswith('- - - [')
        assert '" 200 ' in line
    stop_and_wait(server)
    assert server.proc.returncode == 0
    assert not path.exists()


def test_unix_socket_in_daemon_mode(start_server, app_path, tmp_path):
    path = tmp_path / 'app.sock'
    server = start_server(app_path, '--unix-socket', path, '--daemon', wait=False)
    wait_unix_ready(server, path)
    response, body = unix_get(path, '/', headers={'Host': 'daemon.example'})
    assert response.status == 200
    got = fields(body)
    assert (got['remote_addr'], got['remote_port']) == ("''", 'None')
    assert got['server_name'] == 'daemon.example'


def test_unix_socket_mode(start_server, app_path, tmp_path):
    path = tmp_path / 'app.sock'
    server = start_server(app_path, '--unix-socket', path, '--unix-socket-mode', '0600',
                          wait=False)
    wait_unix_ready(server, path)
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
    assert unix_get(path)[0].status == 200


def test_unix_socket_a_live_one_is_refused_a_stale_one_replaced(start_server, app_path, tmp_path):
    path = tmp_path / 'app.sock'
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()   # the file stays behind, nobody listens: stale
    server = start_server(app_path, '--unix-socket', path, wait=False)
    wait_unix_ready(server, path)
    server.wait_for_log(r'replacing a stale socket file')
    assert unix_get(path)[0].status == 200

    code, stderr = run_pywsgi(app_path, '--unix-socket', path)
    assert code == 2
    assert stderr == 'pywsgi: error: --unix-socket %s: another server is listening there\n' % path
    assert unix_get(path)[0].status == 200   # the running server keeps its socket


def test_unix_socket_path_that_is_not_a_socket_is_refused(app_path, tmp_path):
    path = tmp_path / 'regular-file'
    path.write_text('keep me')
    code, stderr = run_pywsgi(app_path, '--unix-socket', path)
    assert code == 2
    assert 'exists and is not a socket' in stderr
    assert path.read_text() == 'keep me'


def test_unix_socket_mode_bad_value(app_path, tmp_path):
    code, stderr = run_pywsgi(app_path, '--unix-socket', tmp_path / 's', '--unix-socket-mode', '0999')
    assert code == 2
    assert stderr.startswith('pywsgi: error: ')
    assert 'octal' in stderr


# ------------------------------------------------------------------ --user / --group

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason='dropping privileges needs root: '
                                'run the tests as root to check --user/--group for real')


@needs_root
def test_user_and_group_children_run_unprivileged(start_server, public_dir):
    import pwd
    nobody = pwd.getpwnam('nobody')
    app_path = public_dir / 'app.wsgi'
    access_log = public_dir / 'logs' / 'access.log'
    access_log.parent.mkdir()
    os.chmod(access_log.parent, 0o755)   # only root may create files here
    server = start_server(app_path, '--user', 'nobody', '--processes', '2',
                          '--access-log', access_log)
    got = fields(server.get('/')[1])
    assert int(got['uid']) == nobody.pw_uid
    assert int(got['gid']) == nobody.pw_gid
    children = wait_until(lambda: len(server.children()) == 2 and server.children(), 10,
                          message='two children')
    for pid in children:
        assert proc_ids(pid) == (nobody.pw_uid, nobody.pw_gid)
        with open('/proc/%d/status' % pid) as f:
            groups = [line for line in f if line.startswith('Groups:')][0].split()[1:]
        assert '0' not in groups   # none of root's supplementary groups
    assert proc_ids(server.pid)[0] == 0   # the master stays root (it owns the sockets)
    # the access log was opened before the switch: written although nobody cannot create it
    wait_until(lambda: access_log.exists() and '"GET / HTTP/1.1" 200' in access_log.read_text(),
               10, message='an access log line')


@needs_root
def test_user_numeric_ids_and_unix_socket_ownership(start_server, public_dir):
    app_path = public_dir / 'app.wsgi'
    path = public_dir / 'app.sock'
    server = start_server(app_path, '--user', '65534', '--group', '65534',
                          '--unix-socket', path, wait=False)
    wait_unix_ready(server, path)
    assert (os.lstat(path).st_uid, os.lstat(path).st_gid) == (65534, 65534)
    got = fields(unix_get(path)[1])
    assert (got['uid'], got['gid']) == ('65534', '65534')


@needs_root
def test_user_applies_to_daemon_processes(start_server, public_dir):
    app_path = public_dir / 'app.wsgi'
    server = start_server(app_path, '--daemon', '--user', 'nobody')
    response, body = server.get('/')
    assert response.status == 200, body
    got = fields(body)
    import pwd
    assert int(got['uid']) == pwd.getpwnam('nobody').pw_uid
    for pid in server.children():
        assert proc_ids(pid)[0] == pwd.getpwnam('nobody').pw_uid


@needs_root
def test_daemon_group_user_and_group_options(start_server, public_dir):
    """A group's own user= runs its daemons as that user (the server processes stay as they
    are); its group= alone takes --user with that group."""
    import pwd
    nobody = pwd.getpwnam('nobody')
    app_path = public_dir / 'app.wsgi'
    server = start_server(app_path, '--daemon-process', 'g:processes=1,threads=2,user=nobody',
                          '--process-group', 'g')
    got = fields(server.get('/')[1])
    assert (int(got['uid']), int(got['gid'])) == (nobody.pw_uid, nobody.pw_gid)
    assert sorted(proc_ids(pid)[0] for pid in server.children()) == [0, nobody.pw_uid]
    server.stop()
    server = start_server(app_path, '--user', 'nobody', '--process-group', 'g',
                          '--daemon-process', 'g:processes=1,threads=2,group=54321')
    got = fields(server.get('/')[1])
    assert (int(got['uid']), int(got['gid'])) == (nobody.pw_uid, 54321)


@pytest.mark.parametrize('args, message', [
    (['--user', 'no-such-user-pywsgi'], '--user no-such-user-pywsgi: no such user'),
    (['--group', 'no-such-group-pywsgi'], '--group no-such-group-pywsgi: no such group'),
    (['--user', 'bad name'], 'argument --user: expected a name or a numeric id'),
])
def test_user_group_errors(app_path, args, message):
    code, stderr = run_pywsgi(app_path, '--port', free_port(), *args)
    assert code == 2
    assert stderr.startswith('pywsgi: error: ')
    assert message in stderr


@needs_root
def test_user_uid_without_passwd_entry_needs_a_group(app_path):
    import pwd
    uid = 54321
    while True:
        try:
            pwd.getpwuid(uid)
            uid += 1
        except KeyError:
            break
    code, stderr = run_pywsgi(app_path, '--port', free_port(), '--user', uid)
    assert code == 2
    assert 'no passwd entry for this uid' in stderr


def test_not_root_cannot_switch_user(app_path):
    if os.geteuid() == 0:
        pytest.skip('runs as root here; the non-root refusal is checked when the tests run '
                    'as an ordinary user')
    code, stderr = run_pywsgi(app_path, '--port', free_port(), '--user', 'root')
    assert code == 2
    assert 'only root can run as another user' in stderr


# ------------------------------------------------------------------ systemd socket activation

# Run in the started process: the passed listeners to fds 3.., LISTEN_PID = its own pid (exec
# keeps the pid), then exec pywsgi - what systemd does before it execs a service.
ACTIVATOR = """
import fcntl, os, sys
count = int(sys.argv[1]); fds = [int(fd) for fd in sys.argv[2:2 + count]]
high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in fds]   # out of the way of 3.. first
for index, fd in enumerate(high):
    os.dup2(fd, 3 + index)
os.environ["LISTEN_PID"] = str(os.getpid())
os.environ["LISTEN_FDS"] = str(count)
os.execv(sys.executable, [sys.executable, "-m", "pywsgi"] + sys.argv[2 + count:])
"""


def activated(tmp_path, app_path, listeners, names=None, extra=()):
    """Start pywsgi the way systemd does (sd_listen_fds(3)); returns (Popen, stderr path)."""
    fds = [sock.fileno() for sock in listeners]
    stderr_path = tmp_path / 'activated-stderr.log'
    stderr_file = open(stderr_path, 'wb')
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    if names:
        env['LISTEN_FDNAMES'] = names
    proc = subprocess.Popen([sys.executable, '-c', ACTIVATOR, str(len(fds))]
                            + [str(fd) for fd in fds]
                            + [str(app_path), '--port', str(free_port())] + list(extra),
                            pass_fds=fds, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=stderr_file, cwd=str(tmp_path), env=env,
                            start_new_session=True)
    stderr_file.close()
    return proc, stderr_path


def test_socket_activation_tcp_and_unix(tmp_path, app_path):
    tcp = socket.socket()
    tcp.bind(('127.0.0.1', 0))
    tcp.listen(16)
    unix_path = tmp_path / 'activated.sock'
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(str(unix_path))
    unix.listen(16)
    proc, stderr_path = activated(tmp_path, app_path, [tcp, unix], names='web:api')
    try:
        wait_until(lambda: 'listening on' in stderr_path.read_text() or proc.poll() is not None,
                   STARTUP_TIMEOUT, message='the listening line')
        log = stderr_path.read_text()
        assert proc.poll() is None, log
        assert 'socket activation: listening on 2 socket(s) passed by systemd' in log
        assert 'web=http://127.0.0.1:%d' % tcp.getsockname()[1] in log
        assert 'api=unix:%s' % unix_path in log
        assert '--host and --port are ignored' in log
        port = tcp.getsockname()[1]
        connection = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
        connection.request('GET', '/')
        response = connection.getresponse()
        got = fields(response.read())
        connection.close()
        assert response.status == 200
        assert got['listen'] == '[None, None, None]'   # the children do not see LISTEN_*
        assert got['server_port'] == str(port)
        assert unix_get(unix_path)[0].status == 200
    finally:
        stop_process(proc, timeout=30)
        tcp.close()
        unix.close()
    assert proc.returncode == 0


def test_socket_activation_rejects_a_socket_that_is_not_listening(tmp_path, app_path):
    idle = socket.socket()
    idle.bind(('127.0.0.1', 0))   # bound, never listen()ed
    proc, stderr_path = activated(tmp_path, app_path, [idle])
    try:
        proc.wait(timeout=STARTUP_TIMEOUT)
    finally:
        stop_process(proc, timeout=30)
        idle.close()
    assert proc.returncode == 2
    assert ('pywsgi: error: LISTEN_FDS=1: fd 3 (fd 3) is not a listening TCP or UNIX stream '
            'socket') in stderr_path.read_text()


def test_socket_activation_for_another_pid_is_ignored(start_server, app_path):
    # LISTEN_PID naming some other process: the variables were not meant for us
    server = start_server(app_path, env={'LISTEN_PID': '1', 'LISTEN_FDS': '1'})
    got = fields(server.get('/')[1])
    assert got['server_port'] == str(server.port)
    assert got['listen'] == '[None, None, None]'


# ------------------------------------------------------------------ --reload-on-changes

RELOAD_SCRIPT = '''
import os, sys
sys.path.insert(0, os.path.dirname(__file__))
import reloadhelper
SCRIPT_VERSION = %r
def application(environ, start_response):
    body = ("%%s %%s %%d" %% (SCRIPT_VERSION, reloadhelper.VERSION, os.getpid())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
'''


def write_and_bump(path, text):
    """Write `text` and move the mtime clearly forward (a coarse file system clock must not
    hide the change)."""
    path.write_text(text)
    later = time.time() + 2
    os.utime(path, (later, later))


@pytest.mark.parametrize('mode', ['embedded', 'daemon'])
def test_reload_on_changes_script_and_imported_module(start_server, tmp_path, mode):
    code_dir = tmp_path / 'code'
    code_dir.mkdir()
    script = code_dir / 'app.wsgi'
    helper = code_dir / 'reloadhelper.py'
    helper.write_text('VERSION = "helper-1"\n')
    script.write_text(RELOAD_SCRIPT % 'script-1')
    server = start_server(script, '--reload-on-changes', '--processes', '2', '--threads', '2',
                          *(['--daemon'] if mode == 'daemon' else []))
    assert server.get('/')[1].decode().startswith('script-1 helper-1 ')

    failures = []
    stop = threading.Event()

    def hammer():
        while not stop.is_set():
            try:
                response, body = server.get('/')
                if response.status != 200:
                    failures.append((response.status, body))
            except OSError as exc:
                failures.append(repr(exc))
            time.sleep(0.01)
    client = threading.Thread(target=hammer)
    client.start()
    try:
        # the master must have the children's module list before the change (it polls 1/s)
        time.sleep(1.5)
        mark = server.log_mark()
        write_and_bump(helper, 'VERSION = "helper-2"\n')
        wait_until(lambda: server.get('/')[1].decode().startswith('script-1 helper-2 '), 30,
                   interval=0.2, message='the changed helper module served')
        assert 'reloadhelper.py changed' in server.wait_for_log(r'--reload-on-changes', since=mark)

        time.sleep(1.5)
        write_and_bump(script, RELOAD_SCRIPT % 'script-2')
        wait_until(lambda: server.get('/')[1].decode().startswith('script-2 helper-2 '), 30,
                   interval=0.2, message='the changed script served')
    finally:
        stop.set()
        client.join(30)
    assert failures == []
    assert is_alive(server.pid)   # only the children were replaced


def test_reload_on_changes_survives_a_broken_edit(start_server, tmp_path):
    code_dir = tmp_path / 'code'
    code_dir.mkdir()
    script = code_dir / 'app.wsgi'
    (code_dir / 'reloadhelper.py').write_text('VERSION = "h"\n')
    script.write_text(RELOAD_SCRIPT % 'good-1')
    server = start_server(script, '--reload-on-changes')
    assert server.get('/')[1].decode().startswith('good-1 ')
    time.sleep(1.5)
    mark = server.log_mark()
    write_and_bump(script, 'this is not python (\n')
    server.wait_for_log(r'graceful restart of server process 0 failed', since=mark, timeout=30)
    assert server.get('/')[1].decode().startswith('good-1 ')   # the old process keeps serving
    time.sleep(1.5)
    write_and_bump(script, RELOAD_SCRIPT % 'good-2')
    wait_until(lambda: server.get('/')[1].decode().startswith('good-2 '), 30, interval=0.2,
               message='the fixed script served')


@needs_root
def test_user_sigusr1_reopen_that_needs_root_keeps_serving(start_server, public_dir):
    logs = public_dir / 'logs'
    logs.mkdir()
    os.chmod(logs, 0o755)   # nobody cannot create the new file after the rotation
    access_log = logs / 'access.log'
    server = start_server(public_dir / 'app.wsgi', '--user', 'nobody', '--access-log', access_log)
    assert server.get('/first')[0].status == 200
    os.rename(access_log, logs / 'access.log.1')
    mark = server.log_mark()
    os.kill(server.pid, signal.SIGUSR1)
    server.wait_for_log(r'cannot reopen the logs: .*still writing to the old file', since=mark)
    assert server.get('/second')[0].status == 200
    wait_until(lambda: 'GET /second' in (logs / 'access.log.1').read_text(), 10,
               message='the request logged to the old file')
    assert server.children()   # the child survived the failed reopen


def test_unix_socket_bad_request_is_answered_and_logged(start_server, app_path, tmp_path):
    path = tmp_path / 'app.sock'
    access_log = tmp_path / 'access.log'
    server = start_server(app_path, '--unix-socket', path, '--access-log', access_log,
                          wait=False)
    wait_unix_ready(server, path)
    data = unix_exchange(path, b'GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n')
    assert data.startswith(b'HTTP/1.1 400 ')
    assert unix_get(path)[0].status == 200   # the server is unharmed
    wait_until(lambda: access_log.exists() and ' 200 ' in access_log.read_text(), 10,
               message='an access log line')
    for line in access_log.read_text().splitlines():
        assert line.startswith('- - - [')
