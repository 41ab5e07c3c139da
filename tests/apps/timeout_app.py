"""WSGI app for the --request-timeout tests (tests/test_request_timeout.py), routed by PATH_INFO.

Every response says which process served it (X-Pid). A request records `started-MARK` (holding
the pid) in $PYWSGI_TEST_STATE when it starts, so a test knows it is running.
"""
import os
import threading
import time
from urllib.parse import parse_qs

STATE_DIR = os.environ.get('PYWSGI_TEST_STATE') or os.getcwd()


def mark_started(environ):
    args = parse_qs(environ.get('QUERY_STRING', ''))
    if 'mark' in args:
        path = os.path.join(STATE_DIR, 'started-' + args['mark'][-1])
        with open(path + '.partial', 'w') as f:
            f.write(str(os.getpid()))
        os.replace(path + '.partial', path)
    return args


def respond(start_response, body):
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body))),
                              ('X-Pid', str(os.getpid()))])
    return [body]


def spin_forever():
    """Never returns, and swallows every Exception on the way, as a careless app does."""
    while True:
        try:
            sum(range(1000))
        except Exception:
            pass


def block_forever():
    """Blocks in a lock acquire: C code that no exception raised into the thread can end."""
    lock = threading.Lock()
    lock.acquire()
    lock.acquire()


def hold(args):
    """Runs until the file release-MARK exists (at most 5 s), in short sleeps."""
    release = os.path.join(STATE_DIR, 'release-' + args['mark'][-1])
    give_up = time.monotonic() + 5
    while not os.path.exists(release) and time.monotonic() < give_up:
        time.sleep(0.02)


def stream_forever(start_response):
    """A response that has started and never ends."""
    start_response('200 OK', [('Content-Type', 'text/plain'), ('X-Pid', str(os.getpid()))])
    while True:
        yield b'tick\n'
        time.sleep(0.05)


def application(environ, start_response):
    args = mark_started(environ)
    route = environ.get('PATH_INFO', '')
    if route == '/stream':
        return stream_forever(start_response)
    if route == '/spin':
        spin_forever()
    elif route == '/block':
        block_forever()
    elif route == '/hold':
        hold(args)
    return respond(start_response, b'%s from %d' % (route.encode(), os.getpid()))
