"""The access log (--access-log, --access-log-format): written by the core, Apache formats."""
import os
import re
import signal
import socket
import time
from pathlib import Path

import pytest

from serverproc import wait_until

EXAMPLE = Path(__file__).resolve().parent.parent / 'examples' / 'myapp.wsgi'
# [27/Nov/2026:22:15:04 +0000]
TIME = r'\[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\]'


def log_lines(path, count, timeout=5.0):
    """The log's lines once it has at least `count` (the core flushes 4 times a second)."""
    def enough():
        return path.exists() and len(path.read_text().splitlines()) >= count
    wait_until(enough, timeout, message='%d access log lines in %s' % (count, path))
    return path.read_text().splitlines()


def test_combined_format_byte_for_byte(start_server, tmp_path):
    log = tmp_path / 'access.log'
    server = start_server(EXAMPLE, '--access-log', log)
    response, body = server.request('GET', '/some/path?x=1&y=%20',
                                    headers={'Referer': 'http://example.org/from',
                                             'User-Agent': 'tester "quoted" \\ agent'})
    assert response.status == 200
    lines = log_lines(log, 1)
    # %h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i" -- quotes and backslashes escaped
    expected = (r'^127\.0\.0\.1 - - ' + TIME +
                re.escape(' "GET /some/path?x=1&y=%20 HTTP/1.1" 200 15 "http://example.org/from" '
                          '"tester \\"quoted\\" \\\\ agent"') + '$')
    assert re.match(expected, lines[0]), lines[0]


def test_custom_format_and_missing_headers(start_server, tmp_path):
    log = tmp_path / 'access.log'
    server = start_server(EXAMPLE, '--access-log', log, '--access-log-format',
                          '%m|%U|%q|%H|%s|%B|%b|%{X-Missing}i|%D|%T|%P|%%')
    server.request('HEAD', '/p?q=2')
    line = log_lines(log, 1)[0]
    method, path, query, proto, status, big_b, clf_b, missing, micros, secs, pid, pct = \
        line.split('|')
    assert (method, path, query, proto, status) == ('HEAD', '/p', '?q=2', 'HTTP/1.1', '200')
    assert (big_b, clf_b, missing, pct) == ('0', '-', '-', '%')
    assert micros.isdigit() and secs.isdigit() and pid.isdigit() and int(pid) != server.pid


def test_rejected_requests_and_404_are_logged(start_server, tmp_path):
    log = tmp_path / 'access.log'
    server = start_server(EXAMPLE, '--mount-point', '/app', '--access-log', log)
    server.get('/nothing-here')
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(b'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: '
                     b'chunked\r\n\r\n')
        sock.recv(4096)
    lines = log_lines(log, 2)
    # A worker writes its line after the client has the response, the reactor its own at once:
    # the two lines may come in either order.
    not_found = [line for line in lines if '"GET /nothing-here HTTP/1.1" 404' in line]
    rejected = [line for line in lines if '"-" 400' in line]
    assert len(not_found) == 1 and len(rejected) == 1, lines
    assert not_found[0].startswith('127.0.0.1 - - [')
    assert rejected[0].startswith('127.0.0.1 - - [')


def test_static_and_daemon_requests_are_logged(start_server, tmp_path):
    root = tmp_path / 'htdocs'
    root.mkdir()
    (root / 'hello.txt').write_bytes(b'hello static\n')
    log = tmp_path / 'access.log'
    server = start_server('--script-alias', '/app=%s' % EXAMPLE, '--document-root', root,
                          '--daemon', '--processes', '1', '--threads', '2', '--access-log', log)
    assert server.get('/hello.txt')[1] == b'hello static\n'
    assert server.get('/app')[1] == b'mod_wsgi works!'
    lines = log_lines(log, 2)
    assert any('"GET /hello.txt HTTP/1.1" 200 13 ' in line for line in lines), lines
    assert any('"GET /app HTTP/1.1" 200 15 ' in line for line in lines), lines


def test_sigusr1_reopens_the_log(start_server, tmp_path):
    log = tmp_path / 'access.log'
    rotated = tmp_path / 'access.log.1'
    server = start_server(EXAMPLE, '--access-log', log)
    server.get('/before')
    log_lines(log, 1)
    os.rename(log, rotated)
    os.kill(server.pid, signal.SIGUSR1)
    time.sleep(0.5)  # the master forwards the signal to its children
    server.get('/after')
    lines = log_lines(log, 1)
    assert '/after' in lines[0]
    assert '/before' in rotated.read_text()


@pytest.mark.parametrize('args, message', [
    (('--access-log-format', '%h %Z'), 'unsupported code %Z'),
    (('--access-log', '/nonexistent-dir/sub/access.log'), 'cannot open the access log'),
])
def test_bad_access_log_settings_exit_2(start_server, args, message):
    server = start_server(EXAMPLE, *args, wait=False)
    assert server.proc.wait(timeout=30) == 2
    assert message in server.stderr_text()
