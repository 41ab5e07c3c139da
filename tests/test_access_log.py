"""The access log (--access-log, --access-log-format): written by the core, Apache formats.
A full disk (issue 17 point 7): an error-log line, lines kept then dropped and counted, serving
unaffected, writing again once there is room."""
import errno
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
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


def test_escaping_and_literal_text_of_any_length(start_server, tmp_path):
    """Apache's escaping of bytes that are not printable ASCII (a tab, obs-text), and literal
    texts longer and shorter than the core's 16-byte fast copy, around and after the codes."""
    log = tmp_path / 'access.log'
    long_text = 'a literal text longer than sixteen bytes: '
    server = start_server(EXAMPLE, '--access-log', log, '--access-log-format',
                          long_text + '%s|"%{X-Note}i"%%' + 'then text after the last code')
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(b'GET / HTTP/1.1\r\nHost: x\r\nX-Note: caf\xe9\tand "q" \\\r\n'
                     b'Connection: close\r\n\r\n')
        while sock.recv(4096):
            pass
    line = log_lines(log, 1)[0]
    assert line == (long_text + '200|"caf\\xe9\\x09and \\"q\\" \\\\"%'
                    'then text after the last code'), line


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


# ------------------------------------------------------------------ failed writes: a full disk
# One line per request of a known, fixed length: '%U %>s' of a 1000-byte path is 1005 bytes.
FILL_FORMAT = '%U %>s'
FILL_LINE = re.compile(r'^/n/(\d{5})/x{991} 200$')


def fill_path(number):
    return '/n/%05d/' % number + 'x' * 991


def send_numbered(server, numbers):
    """One request per number; the server answers every one as usual."""
    for number in numbers:
        response, body = server.get(fill_path(number))
        assert (response.status, body) == (200, b'mod_wsgi works!'), number


def dropped_counts(text, pattern):
    return [int(count) for count in re.findall(pattern, text)]


def test_a_full_disk_is_told_in_the_error_log_and_serving_goes_on(start_server):
    # /dev/full: every write fails with ENOSPC.  64 KiB of lines wait in memory, the rest are
    # dropped; the error log says so once at once, then at most every 10 s with the count, and
    # at stop for the lines still waiting: every line is accounted for.
    server = start_server(EXAMPLE, '--processes', '1', '--access-log', '/dev/full',
                          '--access-log-format', FILL_FORMAT)
    send_numbered(server, range(80))      # 80 lines of 1005 bytes: over 64 KiB
    server.wait_for_log(r'\[pywsgi:error\] .*access log: write failed: No space left on device; '
                        r'lines are kept in memory \(up to 64 KiB\)')
    report = server.wait_for_log(r'access log: \d+ lines? dropped in the last \d+ s: '
                                 r'No space left on device', timeout=30)
    assert '[pywsgi:error]' in report
    assert server.get('/still-serving')[1] == b'mod_wsgi works!'
    server.stop()
    text = server.stderr_text()
    assert text.count('access log: write failed') == 1, text
    reported = dropped_counts(text, r'access log: (\d+) lines? dropped in the last')
    at_stop = dropped_counts(text, r'access log: (\d+) lines? dropped as the server stops: '
                                   r'No space left on device')
    assert len(at_stop) == 1, text
    # what fit in 64 KiB (65 long lines, then the short one) waited until the stop, the other
    # 15 were dropped: not one of the 81 lines is unaccounted for
    assert at_stop == [66], text
    assert sum(reported) == 15, text


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 256 KiB tmpfs, for a real full filesystem that gets room again (needs root and a
    kernel that lets this process mount: CI runs the tests as root)."""
    mount = shutil.which('mount')
    if os.geteuid() != 0 or mount is None:
        pytest.skip('a real full filesystem needs a tmpfs, and mounting one needs root '
                    '(the /dev/full and RLIMIT_FSIZE tests cover the rest)')
    where = tmp_path / 'small-fs'
    where.mkdir()
    done = subprocess.run([mount, '-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', str(where)],
                          capture_output=True, timeout=30)
    if done.returncode != 0:
        pytest.skip('cannot mount a tmpfs here (%s); the /dev/full and RLIMIT_FSIZE tests '
                    'cover the rest' % done.stderr.decode(errors='replace').strip())
    yield where
    # after the server (set up later, so stopped earlier); lazy, should anything still hold it
    subprocess.run(['umount', '-l', str(where)], capture_output=True, timeout=30)


def fill_up(directory):
    """Take every free block of the filesystem with one file; returns its path."""
    filler = directory / 'filler'
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        chunk = b'f' * 4096
        while True:
            try:
                os.write(fd, chunk)
            except OSError as error:
                assert error.errno == errno.ENOSPC, error
                break
    finally:
        os.close(fd)
    return filler


def test_a_full_filesystem_then_room_again(small_tmpfs, start_server):
    log = small_tmpfs / 'access.log'
    # 100 bytes in the log's first 4 KiB page: the other 3996 bytes are room for 3 whole lines
    # and part of a 4th, so the write that fills the disk is a short one, cut mid-line.
    log.write_text('prefilled line'.ljust(99) + '\n')
    filler = fill_up(small_tmpfs)
    server = start_server(EXAMPLE, '--processes', '1', '--access-log', log,
                          '--access-log-format', FILL_FORMAT)
    mark = server.log_mark()
    send_numbered(server, range(5))
    server.wait_for_log(r'access log: write failed: No space left on device', since=mark)
    send_numbered(server, range(5, 90))   # more than 64 KiB waits: some lines are dropped
    filler.unlink()                       # room again
    line = server.wait_for_log(r'access log: writing again; \d+ lines? dropped while writes '
                               r'failed', since=mark, timeout=10)
    dropped = int(re.search(r'writing again; (\d+) line', line).group(1))
    assert 0 < dropped < 90
    send_numbered(server, range(90, 93))
    lines = log_lines(log, 1 + 93 - dropped)
    assert lines[0] == 'prefilled line'.ljust(99)
    # every line whole - the one cut by the short write was completed, nothing glued to it
    numbers = []
    for text in lines[1:]:
        match = FILL_LINE.match(text)
        assert match, text[:120] + '... (%d bytes)' % len(text)
        numbers.append(int(match.group(1)))
    assert len(numbers) == len(set(numbers)) == 93 - dropped
    assert {90, 91, 92} <= set(numbers)   # written as usual after the room came back
    assert server.stderr_text().count('access log: write failed') == 1


def test_a_file_size_limit_then_a_rotation(start_server, tmp_path):
    # RLIMIT_FSIZE: a write past the limit fails with EFBIG (and raises SIGXFSZ, which must not
    # kill the server process).  The first write is cut at the limit, mid-line; after a
    # rotation (SIGUSR1) the rest of that line is dropped, and the whole lines waiting behind
    # it go to the new file.
    limit = 1024 * 1024
    log = tmp_path / 'access.log'
    rotated = tmp_path / 'access.log.1'
    log.write_bytes(b'f' * (limit - 501) + b'\n')   # room for 500 bytes
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    # SIGXFSZ's default action (as a program embedding Python may leave it; the python
    # command itself ignores it): pywsgi's processes must not die of it
    with_limit = ('import resource, runpy, signal, sys; '
                  'resource.setrlimit(resource.RLIMIT_FSIZE, (%d, %d)); '
                  'signal.signal(signal.SIGXFSZ, signal.SIG_DFL); '
                  'sys.argv[0] = "pywsgi"; '
                  'runpy.run_module("pywsgi", run_name="__main__", alter_sys=True)'
                  % (limit, hard))
    server = start_server(EXAMPLE, '--processes', '1', '--access-log', log,
                          '--access-log-format', FILL_FORMAT,
                          command=[sys.executable, '-c', with_limit])
    children = server.children()
    send_numbered(server, range(3))
    server.wait_for_log(r'access log: write failed: File too large')
    send_numbered(server, range(3, 4))
    assert server.children() == children, 'a server process died (SIGXFSZ?)'
    assert 'killed' not in server.stderr_text()
    os.rename(log, rotated)
    os.kill(server.pid, signal.SIGUSR1)
    line = server.wait_for_log(r'access log: writing again; 1 line dropped while writes failed',
                               timeout=10)
    assert '[pywsgi:warn]' in line
    old = rotated.read_bytes()
    assert len(old) == limit
    fragment = old[limit - 500:].decode()
    assert fragment.startswith('/n/0') and '\n' not in fragment
    cut = int(fragment[3:8])
    lines = log_lines(log, 3)
    numbers = sorted(int(FILL_LINE.match(text).group(1)) for text in lines)
    assert numbers == sorted(set(range(4)) - {cut})
