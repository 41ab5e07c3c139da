"""--error-log PATH (issue 16): everything the server logs goes to the file - the core's own
lines (bad requests, limits, timeouts, refused connections) as well as the Python layer's and
what the application prints to sys.stderr - with the Apache-style prefix; SIGUSR1 reopens it."""
import os
import re
import signal

import pytest

from httpraw import RawConnection
from serverproc import SUITE_APP, wait_until

PREFIX = re.compile(r'^\[\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d\.\d{6} \d{4}\] \[pywsgi:\w+\] \[pid \d+\] ',
                    re.M)


def lines_with(path, text):
    if not path.exists():
        return []
    return [line for line in path.read_text().splitlines() if text in line]


def wait_logged(path, text, timeout=10):
    return wait_until(lambda: lines_with(path, text), timeout,
                      message='%r in %s' % (text, path))


@pytest.fixture(params=['1', '4'], ids=['inline', 'threads4'])
def logged_server(request, start_server, tmp_path):
    error_log = tmp_path / 'error.log'
    server = start_server(SUITE_APP, '--threads', request.param, '--error-log', error_log,
                          '--limit-request-body', '1000')
    server.error_log = error_log
    return server


def test_the_cores_bad_request_line_goes_to_the_error_log(logged_server):
    with RawConnection(logged_server.port) as connection:
        connection.send(b'GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n')
        assert connection.read_response().status == 400
    line = wait_logged(logged_server.error_log, 'bad request (400)')[0]
    assert PREFIX.match(line), line
    assert 'bad request' not in logged_server.stderr_text()


def test_the_cores_413_line_goes_to_the_error_log(logged_server):
    with RawConnection(logged_server.port) as connection:
        response = connection.request('POST', '/echo', body=b'x' * 5000)
        assert response.status == 413
    assert PREFIX.match(wait_logged(logged_server.error_log, '413')[0])


def test_application_stdout_and_stderr_go_to_the_error_log(logged_server):
    response, _ = logged_server.get('/errors?stderr=1')
    assert response.status == 200
    wait_logged(logged_server.error_log, 'printed-to-stderr')
    wait_logged(logged_server.error_log, 'printed-to-stdout')


def test_sigusr1_reopens_the_error_log_for_the_core_too(start_server, tmp_path):
    error_log = tmp_path / 'error.log'
    server = start_server(SUITE_APP, '--threads', '4', '--error-log', error_log)
    wait_logged(error_log, 'listening on')
    os.rename(error_log, tmp_path / 'error.log.1')  # what logrotate does
    os.kill(server.proc.pid, signal.SIGUSR1)
    wait_until(error_log.exists, 10, message='a new error log')  # the master's

    def bad_request_logged_in_the_new_file():
        # The master passes SIGUSR1 on to the child, which reopens a moment later: until then
        # its lines still go to the old file.
        with RawConnection(server.port) as connection:
            connection.send(b'GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n')
            assert connection.read_response().status == 400
        return lines_with(error_log, 'bad request (400)')
    wait_until(bad_request_logged_in_the_new_file, 10, interval=0.2,
               message="the core's line in the reopened error log")
