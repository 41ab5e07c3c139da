"""The hello world of examples/myapp.wsgi, made slower on purpose: each request first busy-waits
HELLO_SPIN_US microseconds (default 1). generator_bound.py serves it to show that a p99 measured
with wrk's threads short of CPU belongs to wrk, not to the server."""
import os
import time

SPIN = float(os.environ.get('HELLO_SPIN_US', '1')) / 1e6
clock = time.perf_counter


def application(environ, start_response):
    end = clock() + SPIN
    while clock() < end:
        pass
    start_response('200 OK', [('Content-type', 'text/plain'), ('Content-Length', '15')])
    return [b'mod_wsgi works!']
