"""Daemon process groups, issue 6 continued: several groups at once (a group per mount, with
--mount-process-group), the recycling options of WSGIDaemonProcess (restart-interval,
inactivity-timeout, memory-limit, request-timeout with its 504 and grace period) and reloading a
group when its script file changes. Real servers, real sockets, real processes; bounded waits.
"""
import json
import os
import signal
import threading
import time

import pytest

from serverproc import APPS_DIR, is_alive, wait_until
from test_daemon import cmdline, daemon_pids, in_thread, start_expecting_failure, wait_for_processes

DAEMON_APP = APPS_DIR / 'daemon_app.py'
RECYCLE_APP = APPS_DIR / 'recycle_app.py'

GROUP_SCRIPT = '''
import json, os
NAME = %(name)r
with open(os.path.join(os.environ['PYWSGI_TEST_STATE'], 'loaded-%%s-%%d' %% (NAME, os.getpid())), 'w'):
    pass

def application(environ, start_response):
    if environ['PATH_INFO'] == '/sleep':
        import time
        with open(os.path.join(os.environ['PYWSGI_TEST_STATE'], 'sleeping-' + NAME), 'w') as f:
            f.write(str(os.getpid()))
        time.sleep(3)
    body = json.dumps({'app': NAME, 'pid': os.getpid(), 'version': %(version)r,
                       'process_group': environ.get('mod_wsgi.process_group'),
                       'script_name': environ['SCRIPT_NAME']}).encode()
    start_response('200 OK', [('Content-Type', 'application/json'),
                              ('Content-Length', str(len(body)))])
    return [body]
'''


def write_script(path, name, version=1):
    path.write_text(GROUP_SCRIPT % {'name': name, 'version': version})
    return path


def touch_ahead(path, seconds=2):
    """Sets the file's mtime `seconds` ahead: a change the server sees even on a file system
    with coarse-grained times."""
    later = time.time() + seconds
    os.utime(path, (later, later))


def rewrite_script(path, name, version):
    """The script written again as `version`, with a newer mtime."""
    write_script(path, name, version)
    touch_ahead(path)


def pids_of_group(server, name):
    return sorted(pid for pid in daemon_pids(server) if cmdline(pid) == '(wsgi:%s)' % name)


def one_daemon_group(start_server, app, options):
    """A server of `app` in daemon group g, one process with `options`, once it is up:
    (server, [the daemon process's pid])."""
    server = start_server(app, '--daemon-process', 'g:processes=1,' + options,
                          '--process-group', 'g')
    daemons, _ = wait_for_processes(server, daemons=1)
    return server, daemons


def assert_another_process_serves(server, old_pid, name):
    """/hello?n=NAME is answered, by a daemon process other than old_pid."""
    response, body = server.get('/hello?n=%s' % name, timeout=30)
    assert (response.status, body) == (200, b'hello ' + name.encode())
    assert int(response.getheader('X-Pid')) != old_pid


# ------------------------------------------------------------------ several groups at once

def test_two_groups_each_serve_their_own_mounts(start_server, tmp_path):
    scripts = {name: write_script(tmp_path / ('%s.wsgi' % name), name) for name in 'abc'}
    server = start_server('--daemon-process', 'a:processes=1,threads=2',
                          '--daemon-process', 'b:processes=2,threads=3',
                          '--script-alias', '/a=%s' % scripts['a'],
                          '--script-alias', '/b=%s' % scripts['b'],
                          '--script-alias', '/c=%s' % scripts['c'],
                          '--mount-process-group', '/a=a', '--mount-process-group', '/b=b')
    wait_for_processes(server, daemons=3)
    group_a = wait_until(lambda: len(pids_of_group(server, 'a')) == 1 and pids_of_group(server, 'a'),
                         20, message='group a')
    group_b = wait_until(lambda: len(pids_of_group(server, 'b')) == 2 and pids_of_group(server, 'b'),
                         20, message='group b')

    info = server.get_json('/a/')
    assert (info['app'], info['process_group'], info['script_name']) == ('a', 'a', '/a')
    assert info['pid'] in group_a
    for _ in range(4):
        info = server.get_json('/b/')
        assert (info['app'], info['process_group']) == ('b', 'b')
        assert info['pid'] in group_b
    # /c is in no group: it runs embedded, in the server process
    info = server.get_json('/c/')
    assert (info['app'], info['process_group']) == ('c', '')
    assert info['pid'] not in group_a + group_b
    assert info['pid'] in server.children()

    # each group loaded only its own mounts
    loaded = os.listdir(server.state_dir)
    for pid in group_a:
        assert 'loaded-a-%d' % pid in loaded and 'loaded-b-%d' % pid not in loaded
    for pid in group_b:
        assert 'loaded-b-%d' % pid in loaded and 'loaded-a-%d' % pid not in loaded

    # killing group a's process leaves group b's request and processes alone
    slow_b = in_thread(server.get, '/b/sleep', timeout=30)
    sleeper = int(server.wait_state_file('sleeping-b', timeout=20))
    assert sleeper in group_b
    os.kill(group_a[0], signal.SIGKILL)
    slow_b[0].join(30)
    response, body = slow_b[1]['result']
    assert response.status == 200 and json.loads(body)['pid'] == sleeper
    wait_until(lambda: pids_of_group(server, 'a') and pids_of_group(server, 'a') != group_a, 20,
               message='a new process for group a')
    assert pids_of_group(server, 'b') == group_b
    assert server.get_json('/a/')['app'] == 'a'
    assert server.get_json('/b/')['app'] == 'b'


def test_longest_mount_process_group_prefix_wins_over_process_group(start_server, tmp_path):
    script = write_script(tmp_path / 'x.wsgi', 'x')
    server = start_server(script, '--daemon-process', 'main:processes=1,threads=2',
                          '--daemon-process', 'api:processes=1,threads=2',
                          '--process-group', 'main',
                          '--script-alias', '/api=%s' % script,
                          '--script-alias', '/api/v2=%s' % script,
                          '--mount-process-group', '/api=api',
                          '--mount-process-group', '/api/v2=%{GLOBAL}')
    wait_for_processes(server, daemons=2)
    assert server.get_json('/')['process_group'] == 'main'
    assert server.get_json('/api/')['process_group'] == 'api'
    assert server.get_json('/api/v2/')['process_group'] == ''


def test_unknown_mount_process_group_exits_2(tmp_path):
    code, stderr = start_expecting_failure(
        [DAEMON_APP, '--daemon-process', 'a:processes=1', '--mount-process-group', '/=nosuch'],
        tmp_path)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert 'nosuch' in lines[0] and 'error' in lines[0]


@pytest.mark.parametrize('args', [
    ['--mount-process-group', 'noequals'],
    ['--mount-process-group', '/a='],
    ['--mount-process-group', '/a=x/y'],
    ['--mount-process-group', '/a=a', '--mount-process-group', '/a=a'],
], ids=['no-equals', 'no-group', 'slash-in-group', 'url-twice'])
def test_bad_mount_process_group_exits_2(tmp_path, args):
    code, stderr = start_expecting_failure(
        [DAEMON_APP, '--daemon-process', 'a:processes=1'] + args, tmp_path)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith('pywsgi: error:') and '--mount-process-group' in lines[0]


# ------------------------------------------------------------------ recycling

def test_restart_interval_recycles_and_requests_keep_working(start_server):
    server, (first,) = one_daemon_group(start_server, DAEMON_APP, 'threads=2,restart-interval=1')
    wait_until(lambda: not is_alive(first), 20, message='the daemon to be recycled')
    pids = set()
    for index in range(10):
        response, body = server.get('/hello?n=%d' % index, timeout=30)
        assert (response.status, body) == (200, b'hello %d' % index)
        pids.add(int(response.getheader('X-Pid')))
    assert first not in pids
    assert 'restart-interval (1s) reached' in server.stderr_text()


def test_inactivity_timeout_recycles_an_idle_process(start_server):
    server, _ = one_daemon_group(start_server, DAEMON_APP, 'threads=2,inactivity-timeout=1')
    response, _ = server.get('/pid', timeout=30)
    idle = int(response.getheader('X-Pid'))
    # no more requests: the process is replaced
    wait_until(lambda: not is_alive(idle), 20, message='the idle daemon to be recycled')
    wait_for_processes(server, daemons=1)
    assert_another_process_serves(server, idle, 'after')
    assert 'no request for inactivity-timeout' in server.stderr_text()


def test_memory_limit_recycles_a_process_above_it(start_server):
    server, _ = one_daemon_group(start_server, RECYCLE_APP, 'threads=2,memory-limit=100M')
    response, body = server.get('/hog', timeout=30)
    assert response.status == 200, body
    fat = int(response.getheader('X-Pid'))
    response, body = server.get('/hog', timeout=30)  # 128 MiB held, well above the limit
    if int(response.getheader('X-Pid')) == fat:
        wait_until(lambda: not is_alive(fat), 20, message='the process above memory-limit to go')
    assert_another_process_serves(server, fat, 'lean')
    assert 'above memory-limit' in server.stderr_text()


def test_request_timeout_gives_504_and_recycles_the_process(start_server):
    server, (daemon,) = one_daemon_group(start_server, DAEMON_APP,
                                         'threads=3,request-timeout=2,shutdown-timeout=2')
    stuck = in_thread(server.get, '/sleep?s=60&mark=stuck', timeout=40)
    assert int(server.wait_state_file('started-stuck', timeout=20)) == daemon
    # a shorter request on the same process: it finishes although the process is recycled
    other = in_thread(server.get, '/sleep?s=1.5&mark=other', timeout=40)
    assert int(server.wait_state_file('started-other', timeout=20)) == daemon
    stuck[0].join(40)
    response, body = stuck[1]['result']
    assert response.status == 504, body[:200]
    other[0].join(40)
    response, body = other[1]['result']
    assert (response.status, body) == (200, b'slept %d' % daemon)
    # the stuck process is killed after shutdown-timeout; a new one serves
    wait_until(lambda: not is_alive(daemon), 30, message='the stuck daemon to go')
    assert_another_process_serves(server, daemon, 'next')
    log = server.stderr_text()
    assert 'longer than request-timeout' in log
    # the stuck request, and where it was stuck
    assert '"GET /sleep?s=60&mark=stuck HTTP/1.1" has run' in log, log
    assert 'daemon_app.py", line' in log and 'in sleep_app' in log, log


# ------------------------------------------------------------------ reloading on a touched script

@pytest.mark.timeout(180)
def test_touching_the_script_reloads_its_group_without_failing_a_request(start_server, tmp_path):
    script = write_script(tmp_path / 'app.wsgi', 'app', version=1)
    other = write_script(tmp_path / 'other.wsgi', 'other', version=1)
    server = start_server(script, '--daemon-process', 'g:processes=2,threads=3',
                          '--daemon-process', 'h:processes=1,threads=2', '--process-group', 'g',
                          '--script-alias', '/other=%s' % other,
                          '--mount-process-group', '/other=h')
    wait_for_processes(server, daemons=3)
    group_h = pids_of_group(server, 'h')
    assert server.get_json('/')['version'] == 1
    stop = threading.Event()
    failures = []
    versions = []
    give_up = time.monotonic() + 120

    def client():
        index = 0
        while not stop.is_set() and index < 20000 and time.monotonic() < give_up:
            try:
                response, body = server.get('/', timeout=30)
                if response.status != 200:
                    failures.append((index, response.status, body[:100]))
                else:
                    versions.append(json.loads(body)['version'])
            except Exception as error:
                failures.append((index, repr(error)))
            index += 1
            time.sleep(0.005)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: len(versions) >= 20, 30, message='requests before the reload')
        rewrite_script(script, 'app', version=2)
        wait_until(lambda: versions and versions[-1] == 2, 60, message='the new code to answer')
        seen = len(versions)
        wait_until(lambda: len(versions) >= seen + 20, 30, message='requests after the reload')
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert failures == []
    assert server.get_json('/')['version'] == 2
    assert pids_of_group(server, 'h') == group_h  # the other group was not touched
    assert 'the script %s changed' % script in server.stderr_text()


def test_a_reload_lets_the_old_process_finish_its_request(start_server, tmp_path):
    script = write_script(tmp_path / 'app.wsgi', 'app', version=1)
    server, (old,) = one_daemon_group(start_server, script, 'threads=2')
    slow = in_thread(server.get, '/sleep', timeout=30)   # 3 s in the old process
    assert int(server.wait_state_file('sleeping-app', timeout=20)) == old
    rewrite_script(script, 'app', version=2)
    # the new process takes over; the old one finishes the request it was running
    info = wait_until(lambda: (lambda i: i if i['version'] == 2 else None)(server.get_json('/')),
                      30, interval=0.1, message='the new code to answer')
    assert info['pid'] != old
    slow[0].join(30)
    response, body = slow[1]['result']
    assert response.status == 200
    assert (json.loads(body)['pid'], json.loads(body)['version']) == (old, 1)
    wait_until(lambda: not is_alive(old), 30, message='the old process to be retired')


def test_a_script_that_no_longer_loads_leaves_the_old_code_serving(start_server, tmp_path):
    script = write_script(tmp_path / 'app.wsgi', 'app', version=1)
    server, (daemon,) = one_daemon_group(start_server, script, 'threads=2')
    mark = server.log_mark()
    script.write_text(script.read_text() + '\nthis is not python(\n')
    touch_ahead(script)
    server.wait_for_log(r'graceful restart of .* failed.*keeps serving', since=mark, timeout=30)
    info = server.get_json('/')
    assert (info['pid'], info['version']) == (daemon, 1)
    write_script(script, 'app', version=3)
    touch_ahead(script, 4)   # newer than the broken one
    wait_until(lambda: not is_alive(daemon), 30, message='the fixed script to replace the process')
    assert server.get_json('/')['version'] == 3


def test_handler_scripts_run_in_the_group_and_a_changed_one_recycles_it(start_server, tmp_path):
    root = tmp_path / 'root'
    root.mkdir()
    handler = write_script(root / 'h.wsgi', 'h', version=1)
    (root / 'plain.txt').write_bytes(b'a plain file\n')
    server = start_server('--document-root', root, '--handler-scripts',
                          '--daemon-process', 'g:processes=1,threads=2',
                          '--mount-process-group', '/=g')
    (daemon,), _ = wait_for_processes(server, daemons=1)
    info = server.get_json('/h.wsgi')
    assert (info['pid'], info['version'], info['process_group']) == (daemon, 1, 'g')
    response, body = server.get('/plain.txt')
    assert (response.status, body) == (200, b'a plain file\n')
    rewrite_script(handler, 'h', version=2)
    wait_until(lambda: not is_alive(daemon), 20, message='the group to be recycled')
    info = server.get_json('/h.wsgi')
    assert info['version'] == 2 and info['pid'] != daemon
    assert 'the handler script %s changed' % handler in server.stderr_text()


def test_script_reloading_off_keeps_the_process(start_server, tmp_path):
    script = write_script(tmp_path / 'app.wsgi', 'app', version=1)
    server, (daemon,) = one_daemon_group(start_server, script, 'threads=2,script-reloading=off')
    mark = server.log_mark()
    rewrite_script(script, 'app', version=2)
    # the checks run about once a second; a reload would have logged by then
    with pytest.raises(AssertionError):
        server.wait_for_log('recycling this process', since=mark, timeout=4)
    info = server.get_json('/')
    assert (info['pid'], info['version']) == (daemon, 1)


# ------------------------------------------------------------------ option checking

@pytest.mark.parametrize('option', [
    'restart-interval=-1', 'inactivity-timeout=soon', 'memory-limit=lots', 'graceful-timeout=nan',
    'shutdown-timeout=-2', 'script-reloading=maybe', 'deadlock-timeout=60',
    'interrupt-timeout=-1',
])
def test_bad_recycling_option_exits_2_naming_group_and_option(tmp_path, option):
    code, stderr = start_expecting_failure(
        [DAEMON_APP, '--daemon-process', 'grp:processes=1,%s' % option, '--process-group', 'grp'],
        tmp_path)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith('pywsgi: error:')
    assert 'grp' in lines[0] and option.split('=')[0] in lines[0]
