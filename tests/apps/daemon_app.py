"""WSGI app for the daemon-mode tests (tests/test_daemon.py), routed by the first PATH_INFO segment.

Every response says which process served it (X-Pid), so a test can tell a daemon process from a
server process. Side effects a test observes from outside are files in $PYWSGI_TEST_STATE.
"""
import json
import os
import threading
import time
from urllib.parse import parse_qs

STATE_DIR = os.environ.get('PYWSGI_TEST_STATE') or os.getcwd()
BLOCK = 65536


def query_args(environ):
    parsed = parse_qs(environ.get('QUERY_STRING', ''), keep_blank_values=True)
    return {name: values[-1] for name, values in parsed.items()}


def record(name, text=''):
    """Write a state file atomically, so a polling test never reads half of it."""
    path = os.path.join(STATE_DIR, name)
    partial = '%s.partial-%d-%d' % (path, os.getpid(), threading.get_ident())
    with open(partial, 'w') as f:
        f.write(text)
    os.replace(partial, path)


def pattern(size):
    """Deterministic, not-all-the-same bytes: a reordered or dropped block changes them."""
    unit = bytes(range(251))  # a prime length, so blocks of any power of two differ
    return (unit * (size // len(unit) + 1))[:size]


def respond(start_response, body, status='200 OK', content_type='text/plain', extra=()):
    start_response(status, [('Content-Type', content_type), ('Content-Length', str(len(body))),
                            ('X-Pid', str(os.getpid()))] + list(extra))
    return [body]


def env_app(environ, start_response):
    keys = ('REMOTE_ADDR', 'REMOTE_PORT', 'SCRIPT_NAME', 'PATH_INFO', 'QUERY_STRING',
            'REQUEST_METHOD', 'REQUEST_URI', 'SERVER_PROTOCOL', 'mod_wsgi.process_group',
            'mod_wsgi.application_group', 'wsgi.multiprocess', 'wsgi.multithread',
            'pywsgi.allow_encoded_slashes')
    info = {key: environ.get(key) for key in keys}
    info.update(pid=os.getpid(), ppid=os.getppid())
    return respond(start_response, json.dumps(info).encode(), content_type='application/json')


def hello_app(environ, start_response):
    """?n=TEXT [&pause=SECONDS]: `hello TEXT` (the pause paces a load loop)."""
    pause = float(query_args(environ).get('pause', '0'))
    if pause:
        time.sleep(pause)
    return respond(start_response, b'hello ' + query_args(environ).get('n', '').encode())


def echo_app(environ, start_response):
    """The request body back, read in blocks (Content-Length or chunked: wsgi.input ends at EOF)."""
    stream = environ['wsgi.input']
    pieces = []
    while True:
        piece = stream.read(BLOCK)
        if not piece:
            break
        pieces.append(piece)
    return respond(start_response, b''.join(pieces), content_type='application/octet-stream')


def big_app(environ, start_response):
    """?size=N bytes of pattern(), from a generator without Content-Length."""
    size = int(query_args(environ).get('size', str(20 * 1024 * 1024)))
    data = pattern(size)
    start_response('200 OK', [('Content-Type', 'application/octet-stream'),
                              ('X-Pid', str(os.getpid()))])

    def body():
        for offset in range(0, size, BLOCK):
            yield data[offset:offset + BLOCK]
    return body()


def sleep_app(environ, start_response):
    """?s=SECONDS [&mark=M]: records started-M (holding the pid) first, then sleeps."""
    args = query_args(environ)
    if 'mark' in args:
        record('started-' + args['mark'], str(os.getpid()))
    time.sleep(float(args.get('s', '1')))
    return respond(start_response, b'slept %d' % os.getpid())


def exit_app(environ, start_response):
    """The daemon process dies in the middle of the request, before any response byte."""
    os._exit(1)


def exit_midway_app(environ, start_response):
    """The daemon process dies after the head and part of a Content-Length body went out."""
    write = start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '1000')])
    write(b'only part of the body')
    time.sleep(0.2)  # let the bytes leave before the process ends
    os._exit(1)


def pid_app(environ, start_response):
    return respond(start_response, str(os.getpid()).encode())


ROUTES = {
    'env': env_app,
    'hello': hello_app,
    'echo': echo_app,
    'big': big_app,
    'sleep': sleep_app,
    'exit': exit_app,
    'exit_midway': exit_midway_app,
    'pid': pid_app,
}


def not_found_app(environ, start_response):
    return respond(start_response, b'no such test route', status='404 Not Found')


def application(environ, start_response):
    route = environ.get('PATH_INFO', '').lstrip('/').split('/', 1)[0]
    return ROUTES.get(route, not_found_app)(environ, start_response)
