"""--server-status (issue 7 point 5, issue 6 point 5): the live status of every process.

Real servers, real sockets: requests are made, then the JSON, the Prometheus text and the HTML
page (in headless Chromium, when it is installed) must show them - across server processes,
in daemon process groups, after a child is killed, and never to a client outside
--server-status-allow.  No timed assertions: every wait is a bounded poll.
"""
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest

from serverproc import (
    APPS_DIR,
    EXAMPLE_APP,
    SUITE_APP,
    ServerProcess,
    in_thread,
    is_alive,
    results_of,
    wait_until,
)

DAEMON_APP = APPS_DIR / 'daemon_app.py'
STATUS = '/server-status'


def status_json(server, path=STATUS + '?json'):
    response, body = server.get(path)
    assert response.status == 200, body
    assert response.getheader('Content-Type') == 'application/json'
    return json.loads(body)


def status_json_when(server, condition, message, timeout=20):
    """The status JSON once condition(document) holds.  A request is counted when its worker is
    done with it, a moment after the client has the response: hence a bounded poll, not a
    single look (the status URL's own requests are not counted, so polling changes nothing)."""
    def check():
        document = status_json(server)
        return document if condition(document) else None
    return wait_until(check, timeout, interval=0.05, message=message)


def rows_by_pid(document):
    return {p['pid']: p for p in document['processes']}


def live_rows(document, role=None):
    return [p for p in document['processes']
            if p['state'] == 'ready' and (role is None or p['role'] == role)]


# ------------------------------------------------------------------ embedded mode

@pytest.fixture(scope='module')
def two_process_server(start_module_server):
    """The test suite app, 2 server processes of 1 thread: a process serving a request leaves
    new connections to its sibling, so concurrent requests reach both."""
    server = start_module_server(SUITE_APP, '--processes', '2', '--threads', '1',
                                 '--server-status', STATUS)
    wait_until(lambda: len(live_rows(status_json(server))) == 2, 30,
               message='both server processes ready')
    return server


def test_requests_are_counted_in_the_process_that_served_them(two_process_server):
    server = two_process_server
    before = status_json(server)

    def slow(_):
        response, body = server.get('/sleep?ms=300')
        assert response.status == 200
        return json.loads(body)['pid']
    with ThreadPoolExecutor(6) as pool:
        pids = list(pool.map(slow, range(6)))
    total = before['totals']['requests'] + 6
    after = status_json_when(server, lambda d: d['totals']['requests'] >= total, '6 more requests')
    assert after['totals']['requests'] == total
    assert len(set(pids)) == 2, 'the concurrent requests should have reached both processes'
    old, new = rows_by_pid(before), rows_by_pid(after)
    for pid in set(pids):
        assert new[pid]['requests'] - old[pid]['requests'] == pids.count(pid), pid
    assert after['totals']['requests'] == sum(p['requests'] for p in after['processes'])
    for row in live_rows(after):
        assert row['role'] == 'server' and row['threads'] == 1 and row['restarts'] == 0
        assert row['rss_bytes'] > 1024 * 1024
        assert row['uptime_seconds'] >= 0
        assert row['latency']['count'] == row['requests']


def test_status_classes_count_404_and_others(two_process_server):
    server = two_process_server
    before = status_json(server)['totals']
    assert server.get('/env')[0].status == 200
    assert server.get('/no-such-route')[0].status == 404
    assert server.get('/status?code=304')[0].status == 304
    assert server.get('/status?code=204')[0].status == 204
    # a request the C core answers itself (a malformed Content-Length: 400) counts too
    assert server.request('GET', '/env', headers={'Content-Length': 'x'})[0].status == 400
    after = status_json_when(server, lambda d: d['totals']['requests'] >= before['requests'] + 5,
                             '5 more requests')['totals']
    assert after['requests'] == before['requests'] + 5
    grown = {cls: after['status'][cls] - before['status'][cls] for cls in after['status']}
    assert grown['2xx'] == 2  # /env and 204
    assert grown['3xx'] == 1
    assert grown['4xx'] == 2
    assert grown['5xx'] == 0
    assert after['bytes_out'] > before['bytes_out']
    latency = after['latency']
    assert latency['count'] == after['requests']
    assert latency['p50'] is not None and latency['p50'] <= latency['p90'] <= latency['p99']


def test_busy_threads_while_a_slow_request_runs(start_server):
    server = start_server(SUITE_APP, '--threads', '4', '--server-status', STATUS)
    assert status_json(server)['totals']['busy'] == 1  # the status request itself
    thread, outcome = in_thread(server.get, '/sleep?ms=6000&mark=slow')
    server.wait_state_file('started-slow', timeout=10)
    # (a status request just answered may still hold its worker for a moment: poll)
    document = status_json_when(server, lambda d: d['totals']['busy'] == 2,
                                'the slow request and this one busy', timeout=5)
    assert document['totals']['threads'] == 4
    assert document['totals']['connections'] >= 2
    thread.join(30)
    assert outcome['result'][0].status == 200
    wait_until(lambda: status_json(server)['totals']['busy'] == 1, 10,
               message='busy back to the status request alone')


def test_restart_is_counted_after_a_child_is_killed(start_server):
    server = start_server(SUITE_APP, '--processes', '2', '--server-status', STATUS)
    rows = wait_until(lambda: len(live_rows(status_json(server))) == 2 and
                      live_rows(status_json(server)), 30, message='2 ready processes')
    victim = rows[0]
    assert victim['pid'] in server.children()
    os.kill(victim['pid'], signal.SIGKILL)

    def replaced():
        row = status_json(server)['processes'][victim['slot']]
        return row if row['state'] == 'ready' and row['pid'] != victim['pid'] else None
    row = wait_until(replaced, 30, interval=0.2, message='the slot served by a new process')
    assert row['restarts'] == 1
    assert row['pid'] in server.children() and not is_alive(victim['pid'])
    # nothing of the killed process is left in the gauges: only a status request is busy
    document = status_json_when(server, lambda d: d['totals']['busy'] == 1, 'busy 1')
    assert document['processes'][1 - victim['slot']]['restarts'] == 0
    assert document['totals']['restarts'] == 1


def test_graceful_restart_counts_and_keeps_the_gauges_right(start_server):
    server = start_server(SUITE_APP, '--threads', '2', '--server-status', STATUS)
    assert server.get('/env')[0].status == 200
    (old,) = live_rows(status_json_when(
        server, lambda d: live_rows(d) and d['totals']['requests'] == 1, 'ready, 1 request'))
    os.kill(server.pid, signal.SIGHUP)

    def replaced():
        row = status_json(server)['processes'][0]
        return row if row['state'] == 'ready' and row['pid'] != old['pid'] else None
    row = wait_until(replaced, 30, interval=0.2, message='the new process serving')
    assert row['restarts'] == 1
    wait_until(lambda: not is_alive(old['pid']), 30, message='the old process gone')
    status_json_when(server, lambda d: d['totals']['busy'] == 1 and
                     d['totals']['connections'] == 1, 'only the status request busy and open')
    assert server.get('/env')[0].status == 200
    status_json_when(server, lambda d: d['totals']['requests'] == 2,
                     'the slot counting on from where the old process left it')


# ------------------------------------------------------------------ daemon mode

@pytest.fixture(scope='module')
def daemon_status_server(start_module_server):
    server = start_module_server(DAEMON_APP, '--daemon', '--processes', '2', '--threads', '3',
                                 '--mount-point', '/app', '--server-status', STATUS)
    wait_until(lambda: len(live_rows(status_json(server), 'daemon')) == 2, 30,
               message='2 daemon processes ready')
    return server


def test_daemon_group_counters(daemon_status_server):
    server = daemon_status_server
    before = status_json(server)
    (group_before,) = before['groups']
    for _ in range(5):
        assert server.get('/app/hello')[0].status == 200
    assert server.get('/app/nothing-here')[0].status == 404
    after = status_json_when(
        server, lambda d: d['totals']['requests'] >= before['totals']['requests'] + 6 and
        d['groups'][0]['served'] >= group_before['served'] + 6, '6 more requests')
    (group,) = after['groups']
    assert group['requests'] - group_before['requests'] == 6
    assert group['served'] - group_before['served'] == 6
    assert group['processes'] == group['processes_ready'] == 2
    assert group['threads'] == 6
    assert group['errors'] == {'502': 0, '503': 0, '504': 0}
    daemons = [p for p in after['processes'] if p['role'] == 'daemon']
    assert len(daemons) == 2 and all(p['group'] == group['name'] for p in daemons)
    assert sum(p['requests'] for p in daemons) == group['served']
    # what the clients got is counted by the server processes, relayed or not
    assert after['totals']['requests'] - before['totals']['requests'] == 6
    assert after['totals']['status']['4xx'] - before['totals']['status']['4xx'] == 1


def test_daemon_group_busy_while_a_slow_request_runs(daemon_status_server):
    server = daemon_status_server
    thread, outcome = in_thread(server.get, '/app/sleep?s=6&mark=group-slow')
    pid = int(server.wait_state_file('started-group-slow', timeout=10))
    document = status_json_when(server, lambda d: d['groups'][0]['busy'] == 1, 'one relay in '
                                'flight (an earlier one may take a moment to finish)', timeout=5)
    (group,) = document['groups']
    assert group['queue'] == 0
    assert rows_by_pid(document)[pid]['busy'] == 1
    thread.join(30)
    assert outcome['result'][0].status == 200
    wait_until(lambda: status_json(server)['groups'][0]['busy'] == 0, 10,
               message='no relay in flight')


def test_group_counters_with_static_files_beside_the_daemons(start_server, tmp_path):
    """Static files beside the group: each request is routed first (not the direct relay)."""
    root = tmp_path / 'root'
    root.mkdir()
    (root / 'index.txt').write_bytes(b'from the document root\n')
    server = start_server(DAEMON_APP, '--daemon-process', 'g:processes=1,threads=2',
                          '--process-group', 'g', '--mount-point', '/app',
                          '--document-root', root, '--server-status', STATUS)
    status_json_when(server, lambda d: len(live_rows(d, 'daemon')) == 1, 'the daemon ready', 30)
    for path in ('/app/hello', '/index.txt', '/app/hello', '/missing.txt'):
        server.get(path)
    document = status_json_when(server, lambda d: d['totals']['requests'] == 4 and
                                d['groups'][0]['served'] == 2, '4 requests, 2 relayed')
    (group,) = document['groups']
    assert (group['name'], group['requests'], group['busy']) == ('g', 2, 0)
    assert document['totals']['status']['2xx'] == 3 and document['totals']['status']['4xx'] == 1


def test_daemon_group_queue_length(start_server):
    """More relays than daemon threads: the rest wait for a daemon thread (the queue)."""
    server = start_server(DAEMON_APP, '--daemon', '--processes', '1', '--threads', '1',
                          '--server-threads', '4', '--server-status', STATUS)
    wait_until(lambda: len(live_rows(status_json(server), 'daemon')) == 1, 30,
               message='the daemon process ready')
    clients = [in_thread(server.get, '/sleep?s=2&mark=q%d' % i) for i in range(3)]

    def queued():
        (group,) = status_json(server)['groups']
        return group if group['busy'] == 3 and group['queue'] == 2 else None
    group = wait_until(queued, 20, interval=0.1, message='3 relays in flight, 2 of them queued')
    assert group['threads'] == 1
    assert [response.status for response, _ in results_of(clients, timeout=60)] == [200] * 3
    status_json_when(server, lambda d: (d['groups'][0]['busy'], d['groups'][0]['queue'],
                                        d['groups'][0]['requests']) == (0, 0, 3),
                     'nothing in flight, 3 relayed')


def test_daemon_died_is_a_502_and_a_group_restart(daemon_status_server):
    server = daemon_status_server
    (before,) = status_json(server)['groups']
    response, _ = server.get('/app/exit')
    assert response.status == 502

    def restarted():
        (group,) = status_json(server)['groups']
        return group if group['restarts'] > before['restarts'] and \
            group['processes_ready'] == 2 else None
    group = wait_until(restarted, 30, interval=0.2, message='the daemon restarted')
    assert group['errors']['502'] == before['errors']['502'] + 1
    assert group['restarts'] == before['restarts'] + 1


# ------------------------------------------------------------------ URLs, formats, access

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
                    r',?)*\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$')


def parse_prometheus(text):
    """A small parser of the text exposition format: {family: {'type', 'help', 'samples'}};
    fails on anything the format does not allow."""
    families, current = {}, None
    assert text.endswith('\n')
    for line in text.splitlines():
        if line.startswith('# HELP '):
            name, help_text = line[7:].split(' ', 1)
            assert name not in families, 'family %s given twice' % name
            current = families[name] = {'help': help_text, 'type': None, 'samples': []}
        elif line.startswith('# TYPE '):
            name, kind = line[7:].split(' ')
            assert current is families.get(name) and kind in ('counter', 'gauge', 'histogram')
            current['type'] = kind
        else:
            match = SAMPLE.match(line)
            assert match, 'not a sample line: %r' % line
            name, labels, value = match.group(1), match.group(2) or '', match.group(3)
            base = re.sub(r'_(bucket|sum|count)$', '', name)
            assert current is not None and current is families.get(name, families.get(base)), line
            labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', labels))
            current['samples'].append((name, labels, float(value)))
    return families


def test_prometheus_text_parses(daemon_status_server):
    server = daemon_status_server
    server.get('/app/hello')
    status_json_when(server, lambda d: d['totals']['requests'] > 0, 'a request counted')
    for path in (STATUS + '?prometheus', STATUS + '/metrics'):
        response, body = server.get(path)
        assert response.status == 200
        assert response.getheader('Content-Type').startswith('text/plain; version=0.0.4')
        families = parse_prometheus(body.decode('utf-8'))
    for name, family in families.items():
        assert family['type'] and family['help'], name
        if family['type'] == 'counter':
            assert name.endswith('_total'), name
    requests = families['pywsgi_requests_total']['samples']
    assert {s[1]['role'] for s in requests} == {'server', 'daemon'}
    assert all(set(s[1]) == {'role', 'group', 'process'} for s in requests)
    relayed = families['pywsgi_daemon_group_requests_total']['samples']
    assert relayed[0][2] >= 1 and relayed[0][1]['group']
    histogram = families['pywsgi_request_duration_seconds']
    assert histogram['type'] == 'histogram'
    server_zero = {'role': 'server', 'group': '', 'process': '0'}
    buckets = [(s[1]['le'], s[2]) for s in histogram['samples']
               if s[0].endswith('_bucket') and {k: v for k, v in s[1].items() if k != 'le'}
               == server_zero]
    assert buckets[-1][0] == '+Inf'
    assert [float(le) for le, _ in buckets[:-1]] == sorted(float(le) for le, _ in buckets[:-1])
    counts = [count for _, count in buckets]
    assert counts == sorted(counts), 'buckets must be cumulative'
    (count,) = [s[2] for s in histogram['samples']
                if s[0].endswith('_count') and s[1] == server_zero]
    assert counts[-1] == count > 0


def test_urls_and_formats(two_process_server):
    server = two_process_server
    response, body = server.get(STATUS)
    assert response.status == 200
    assert response.getheader('Content-Type') == 'text/html; charset=utf-8'
    assert response.getheader('Cache-Control') == 'no-store'
    page = body.decode('utf-8')
    assert '<title>pywsgi server status</title>' in page
    # self-contained: nothing is fetched from anywhere else
    assert not re.search(r'''(src|href)\s*=\s*["']?(https?:)?//''', page)
    assert not re.search(r'@import|url\(', page)
    assert json.dumps(STATUS + '?json') in page
    assert status_json(server, STATUS + '/json')['server']['url'] == STATUS
    assert server.get(STATUS + '/')[0].status == 200
    assert server.get(STATUS + '/nothing')[0].status == 404
    assert server.get(STATUS + '?bogus')[0].status == 404
    # the head of the status URL is the server's, never the application's
    assert server.get(STATUS + 'x')[1] == b'no such test route'
    response, body = server.request('HEAD', STATUS + '?json')
    assert response.status == 200 and body == b''


def test_a_client_outside_the_allowed_networks_gets_403(start_server):
    server = start_server(SUITE_APP, '--server-status', STATUS,
                          '--server-status-allow', '10.0.0.0/8',
                          '--server-status-allow', 'fd00::/8')
    mark = server.log_mark()
    for path in (STATUS, STATUS + '?json', STATUS + '/metrics'):
        response, body = server.get(path)
        assert response.status == 403, path
        assert b'pywsgi_requests_total' not in body and b'"processes"' not in body
    server.wait_for_log(r'127\.0\.0\.1:\d+: client not allowed to see the server status', mark)
    assert server.get('/env')[0].status == 200  # nothing else is disturbed


def test_status_url_not_served_without_the_flag(start_server):
    server = start_server(SUITE_APP)
    assert server.get(STATUS)[1] == b'no such test route'


@pytest.mark.parametrize('args, message', [
    (['--server-status', '/'], "--server-status.*not the root"),
    (['--server-status', 'status'], "--server-status.*must start with '/'"),
    (['--server-status', STATUS, '--server-status-allow', '10.0.0.300/8'],
     '--server-status-allow.*not an IP address or CIDR network'),
])
def test_bad_values_are_usage_errors(tmp_path, args, message):
    server = ServerProcess([SUITE_APP] + args, tmp_path, wait=False)
    try:
        assert server.proc.wait(timeout=60) == 2
        stderr = server.stderr_text()
    finally:
        server.stop()
    assert stderr.startswith('pywsgi: error:'), stderr
    assert re.search(message, stderr), stderr


# ------------------------------------------------------------------ the page in a browser

# ------------------------------------------------------------------ access-log lines dropped

def full_disk_server(start_server):
    """An access log on /dev/full (every write fails with ENOSPC), and 80 requests of 1 KiB
    log lines: more than the 64 KiB a process keeps in memory, so some lines are dropped."""
    server = start_server(EXAMPLE_APP, '--processes', '1', '--server-status', STATUS,
                          '--access-log', '/dev/full')
    for index in range(80):
        response, body = server.get('/n/%05d/' % index + 'x' * 991)
        assert (response.status, body) == (200, b'mod_wsgi works!')
    return server


def test_dropped_access_log_lines_in_json_and_prometheus(start_server):
    server = full_disk_server(start_server)
    document = status_json_when(server, lambda d: d['totals']['access_log_dropped'] > 0,
                                'dropped access-log lines counted')
    (row,) = live_rows(document, 'server')
    assert row['access_log_dropped'] == document['totals']['access_log_dropped'] >= 15
    families = parse_prometheus(server.get(STATUS + '?prometheus')[1].decode('utf-8'))
    family = families['pywsgi_access_log_dropped_lines_total']
    assert family['type'] == 'counter'
    ((name, labels, value),) = family['samples']
    assert labels == {'role': 'server', 'group': '', 'process': '0'}
    # the status requests are logged too, and dropped: the count only grows
    assert value >= row['access_log_dropped']
    server.wait_for_log(r'access log: write failed: No space left on device')


def _chromium():
    for name in ('chromium', 'chromium-browser', 'google-chrome'):
        path = shutil.which(name)
        if path:
            return path
    return None


def _chromium_run(tmp_path, *args):
    browser = _chromium()
    command = [browser, '--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars',
               '--no-first-run', '--disable-extensions', '--force-device-scale-factor=1',
               '--disable-dev-shm-usage',
               '--user-data-dir=%s' % (tmp_path / 'chromium-profile')] + list(args)
    env = dict(os.environ, HOME=str(tmp_path))
    return subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=120,
                          cwd=str(tmp_path), env=env)


def decode_png(data):
    """(width, height, rows of RGB(A) bytes) of an 8-bit RGB/RGBA PNG; stdlib only."""
    assert data[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack('>I4s', data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b'IHDR':
            header = struct.unpack('>IIBBBBB', chunk)
        elif kind == b'IDAT':
            idat.append(chunk)
        elif kind == b'IEND':
            break
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (2, 6) and interlace == 0, header
    channels = 3 if color == 2 else 4
    raw = zlib.decompress(b''.join(idat))
    stride = width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, previous))
        elif kind == 3:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = line[i - channels] if i >= channels else 0
                b = previous[i]
                c = previous[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, channels, rows


def test_status_page_in_headless_chromium(start_server, tmp_path):
    if _chromium() is None:
        pytest.skip('Chromium is not installed (Debian: apt-get install chromium; CI installs '
                    'it with loadtests/install_peers.sh --tools-only)')
    server = start_server(DAEMON_APP, '--daemon', '--processes', '2', '--threads', '3',
                          '--mount-point', '/app', '--server-status', STATUS)
    wait_until(lambda: len(live_rows(status_json(server))) == 3, 30,
               message='the server process and 2 daemon processes ready')
    # Some traffic while the browser looks, so the charts have something to draw; bounded.
    stop = threading.Event()

    def traffic():
        for i in range(2000):
            if stop.is_set():
                return
            server.get('/app/hello' if i % 7 else '/app/nothing')
            stop.wait(0.01)
    worker = threading.Thread(target=traffic, daemon=True)
    worker.start()
    try:
        shot = tmp_path / 'status.png'
        url = server.url + STATUS
        width, height = 1280, 900
        result = _chromium_run(tmp_path, '--window-size=%d,%d' % (width, height),
                               '--virtual-time-budget=20000', '--screenshot=%s' % shot, url)
        assert shot.exists(), result.stderr.decode(errors='replace')[-2000:]
        dom = _chromium_run(tmp_path, '--virtual-time-budget=3000', '--dump-dom', url)
    finally:
        stop.set()
        worker.join(30)
    if os.environ.get('PYWSGI_TEST_STATUS_SCREENSHOT'):
        shutil.copyfile(shot, os.environ['PYWSGI_TEST_STATUS_SCREENSHOT'])

    png_width, png_height, channels, rows = decode_png(shot.read_bytes())
    assert (png_width, png_height) == (width, height)
    # not blank: the top of the page (header, tiles, charts) has many colours and real contrast
    pixels = [row[i:i + 3] for row in rows[:420:3] for i in range(0, len(row), channels * 3)]
    assert len(set(pixels)) > 50
    luminance = [(299 * p[0] + 587 * p[1] + 114 * p[2]) // 1000 for p in pixels]
    mean = sum(luminance) / len(luminance)
    variance = sum((v - mean) ** 2 for v in luminance) / len(luminance)
    assert variance > 100, variance
    assert min(luminance) < 60 and max(luminance) > 230  # the dark header, the light page

    html = dom.stdout.decode('utf-8', errors='replace')
    assert '<title>pywsgi server status</title>' in html, dom.stderr[-2000:]
    document = status_json(server)
    process_rows = re.findall(r'<tr class="process-row" data-slot="(\d+)" data-pid="(\d+)">', html)
    assert len(process_rows) == len(document['processes']) == 3
    for slot, pid in process_rows:
        assert document['processes'][int(slot)]['pid'] == int(pid)
    (group,) = document['groups']
    assert '<tr class="group-row" data-group="%s">' % group['name'] in html
    assert 'daemon · %s #1' % group['name'] in html
    assert re.search(r'id="updated">updated \d', html), 'the JSON polls should have succeeded'
    assert re.search(r'id="t-total">[\d,]+ requests in all<', html)
    # no access-log line was dropped: no alert, no column
    assert re.search(r'<div class="alert" id="log-alert" hidden=""></div>', html)
    assert '<th id="th-log-dropped" hidden="">' in html


def test_dropped_access_log_lines_in_the_html_page(start_server, tmp_path):
    if _chromium() is None:
        pytest.skip('Chromium is not installed (Debian: apt-get install chromium; CI installs '
                    'it with loadtests/install_peers.sh --tools-only)')
    server = full_disk_server(start_server)
    status_json_when(server, lambda d: d['totals']['access_log_dropped'] > 0,
                     'dropped access-log lines counted')
    dom = _chromium_run(tmp_path, '--virtual-time-budget=3000', '--dump-dom',
                        server.url + STATUS)
    html = dom.stdout.decode('utf-8', errors='replace')
    assert '<th id="th-log-dropped">Log dropped</th>' in html, dom.stderr[-2000:]
    alert = re.search(r'<div class="alert" id="log-alert"( hidden="")?>([^<]*)</div>', html)
    assert alert and not alert.group(1), html[:3000]
    count = re.match(r'([\d,]+) access-log lines dropped: writing the access log failed',
                     alert.group(2))
    assert count and int(count.group(1).replace(',', '')) >= 15, alert.group(2)
    row = re.search(r'<tr class="process-row" data-slot="0" data-pid="\d+">(.*?)</tr>', html)
    cells = re.findall(r'<td[^>]*>(.*?)</td>', row.group(1))
    assert int(cells[-1].replace(',', '')) >= 15, cells
