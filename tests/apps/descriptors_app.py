"""WSGI app for the connection-cap tests (tests/test_connection_limits.py) and
loadtests/connection_costs.py, which measures the same server at scale.

"/" answers "ok"; "/hold?leave=N" opens descriptors until the process has none left, then closes
N of them and keeps the rest: the application has used up the open-file limit.
"""
import os

HELD = []


def application(environ, start_response):
    if environ.get('PATH_INFO') == '/hold':
        leave = int(environ.get('QUERY_STRING', 'leave=8').partition('=')[2])
        while True:
            try:
                HELD.append(os.open('/dev/null', os.O_RDONLY))
            except OSError:
                break
        for _ in range(leave):
            os.close(HELD.pop())
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '2')])
    return [b'ok']
