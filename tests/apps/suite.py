"""WSGI apps for the functional tests: one script, routed by the first PATH_INFO segment.

The server under test loads this file the way mod_wsgi loads a .wsgi script (its `application`),
so the routing works under any mount point. Apps whose behaviour is valid WSGI are wrapped in
`wsgiref.validate.validator`, with its warnings turned into errors: a server that breaks PEP 3333
makes the validator raise, the request fails with a 500, and the test sees it. The misbehaving apps
(bad status, bad headers, str body, ...) are deliberately not wrapped: the server must catch them.

Side effects a test needs to observe from outside (close() was called, a request has started) are
files in $PYWSGI_TEST_STATE, the per-server directory the test fixture creates.
"""
import io
import json
import os
import sys
import threading
import time
import warnings
from urllib.parse import parse_qs
from wsgiref.validate import WSGIWarning, validator

warnings.simplefilter('error', WSGIWarning)

STATE_DIR = os.environ.get('PYWSGI_TEST_STATE') or os.getcwd()
TEXT = [('Content-Type', 'text/plain')]


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


def respond(start_response, body, status='200 OK', headers=TEXT):
    start_response(status, list(headers) + [('Content-Length', str(len(body)))])
    return [body]


# --- valid apps (validated) ------------------------------------------------------------------

def describe_environ(environ):
    """JSON-able view of the environ: str values as they are, wsgi.* values described."""
    described = {}
    for key, value in environ.items():
        if isinstance(value, (str, bool, int, float)) or value is None:
            described[key] = value
        elif isinstance(value, tuple):
            described[key] = list(value)
        else:
            described[key] = '<%s>' % type(value).__name__
    described['test.pid'] = os.getpid()
    described['test.file_wrapper_callable'] = callable(environ.get('wsgi.file_wrapper'))
    errors = environ['wsgi.errors']
    described['test.errors_is_stream'] = all(
        callable(getattr(errors, name, None)) for name in ('write', 'writelines', 'flush'))
    return described


def env_app(environ, start_response):
    body = json.dumps(describe_environ(environ), sort_keys=True).encode('ascii')
    return respond(start_response, body, headers=[('Content-Type', 'application/json')])


def echo_app(environ, start_response):
    """Echo the request body, read in the way ?mode= says; report what the reads saw in headers."""
    args = query_args(environ)
    mode = args.get('mode', 'read_n')
    size = int(args.get('size', '1000'))
    stream = environ['wsgi.input']
    # The validator's wrapper only allows read(size); read() with no argument is checked on the
    # server's own object underneath.
    server_stream = getattr(stream, 'input', stream)
    pieces = []
    if mode == 'read_n':
        while True:
            piece = stream.read(size)
            if not piece:
                break
            pieces.append(piece)
    elif mode == 'read_all':
        pieces.append(server_stream.read())
    elif mode == 'read_cl':
        pieces.append(stream.read(int(environ.get('CONTENT_LENGTH') or '0')))
    elif mode == 'readline':
        while True:
            piece = stream.readline()
            if not piece:
                break
            pieces.append(piece)
    elif mode == 'readline_hint':
        while True:
            piece = stream.readline(size)
            if not piece:
                break
            pieces.append(piece)
    elif mode == 'readlines':
        pieces.extend(stream.readlines())
    elif mode == 'iter':
        pieces.extend(line for line in stream)
    else:
        raise ValueError('unknown mode %r' % mode)
    after_eof = stream.read(10)
    body = b''.join(pieces)
    headers = TEXT + [
        ('X-Pieces', str(len(pieces))),
        ('X-Max-Piece', str(max([len(p) for p in pieces] or [0]))),
        ('X-After-EOF', str(len(after_eof))),
        ('X-Input-Terminated', repr(environ.get('wsgi.input_terminated'))),
    ]
    return respond(start_response, body, headers=headers)


def readn_app(environ, start_response):
    """Read only the first n bytes of the body and answer at once (the body is streamed)."""
    n = int(query_args(environ).get('n', '5'))
    return respond(start_response, environ['wsgi.input'].read(n))


def sleep_app(environ, start_response):
    args = query_args(environ)
    started = time.time()
    if 'mark' in args:
        record('started-' + args['mark'])
    time.sleep(int(args.get('ms', '200')) / 1000.0)
    body = json.dumps({'start': started, 'end': time.time(), 'pid': os.getpid(),
                       'thread': threading.get_ident()}).encode('ascii')
    return respond(start_response, body, headers=[('Content-Type', 'application/json')])


def stream_app(environ, start_response):
    """No Content-Length: the server must chunk (HTTP/1.1) or close-delimit (HTTP/1.0)."""
    args = query_args(environ)
    count = int(args.get('n', '3'))
    with_empty = args.get('empty') == '1'
    start_response('200 OK', list(TEXT))

    def body():
        for index in range(count):
            if with_empty:
                yield b''  # must not become a 0-size chunk (that would end the body)
            yield ('chunk%d;' % index).encode('ascii')
    return body()


def write_app(environ, start_response):
    write = start_response('200 OK', list(TEXT))
    write(b'hello ')
    write(b'')
    return [b'world']


def write_then_app(environ, start_response):
    """?then=list|tuple|file|iter [&cl=N]: write() a first part, then return the rest as that
    kind of iterable (issue 16: a one-element list after write() was cut to its own length)."""
    args = query_args(environ)
    headers = list(TEXT)
    if 'cl' in args:
        headers.append(('Content-Length', args['cl']))
    write = start_response('200 OK', headers)
    write(b'AAAA-from-write\n')
    rest = b'BBBB-from-iterable\n'
    then = args.get('then', 'list')
    if then == 'tuple':
        return (rest,)
    if then == 'iter':
        return iter([rest])
    if then == 'file':
        path = os.path.join(STATE_DIR, 'write_then.txt')
        with open(path, 'wb') as f:
            f.write(rest)
        return environ['wsgi.file_wrapper'](open(path, 'rb'))
    return [rest]


def status_app(environ, start_response):
    """?code=204|304|...: a bodiless status (no Content-Type for 204/304, as the validator wants)."""
    code = query_args(environ).get('code', '204')
    reasons = {'204': 'No Content', '304': 'Not Modified', '200': 'OK', '404': 'Not Found'}
    headers = [('ETag', '"pywsgi-test"')] if code == '304' else []
    if code not in ('204', '304'):
        headers += TEXT + [('Content-Length', '0')]
    start_response('%s %s' % (code, reasons[code]), headers)
    return []


def multi_header_app(environ, start_response):
    return respond(start_response, b'cookies', headers=TEXT + [
        ('Set-Cookie', 'a=1; Path=/'), ('Set-Cookie', 'b=2; Path=/')])


def errors_app(environ, start_response):
    token = query_args(environ).get('token', 'none')
    errors = environ['wsgi.errors']
    errors.write('pywsgi-test wsgi.errors line %s\n' % token)
    errors.writelines(['pywsgi-test writelines %s' % token, ' second half\n'])
    errors.flush()
    if query_args(environ).get('stderr') == '1':
        print('pywsgi-test printed-to-stderr %s' % token, file=sys.stderr)
        print('pywsgi-test printed-to-stdout %s' % token)
    return respond(start_response, b'logged')


def exc_info_before_app(environ, start_response):
    """An error before any body byte: start_response again with exc_info replaces the headers."""
    start_response('200 OK', list(TEXT))
    try:
        raise ValueError('pywsgi-test: replaced before headers were sent')
    except ValueError:
        start_response('500 Internal Server Error', TEXT + [('X-Replaced', 'yes')], sys.exc_info())
    return [b'replaced']


def exc_info_after_app(environ, start_response):
    """An error after the headers went out: start_response(..., exc_info) must re-raise."""
    start_response('200 OK', list(TEXT))

    def body():
        yield b'first part;'
        try:
            raise ValueError('pywsgi-test: error after headers were sent')
        except ValueError:
            start_response('500 Internal Server Error', list(TEXT), sys.exc_info())
        yield b'SHOULD-NEVER-BE-SENT'
    return body()


def not_found_app(environ, start_response):
    return respond(start_response, b'no such test route', status='404 Not Found')


# --- close() recording -----------------------------------------------------------------------

class ClosingBody:
    """A body iterable whose close() leaves a state file `closed-<token>` holding the item count."""

    def __init__(self, token, items, fail_at=None, delay=0.0):
        self.token = token
        self.items = items
        self.fail_at = fail_at
        self.delay = delay
        self.produced = 0

    def __iter__(self):
        for index, item in enumerate(self.items):
            if index == self.fail_at:
                raise RuntimeError('pywsgi-test: failure inside the body iterator')
            if self.delay:
                time.sleep(self.delay)
            self.produced += 1
            yield item

    def close(self):
        record('closed-' + self.token, str(self.produced))


def closing_app(environ, start_response):
    """?token=T [&fail=N] [&cl=LEN] [&n=COUNT]: a body with close() recording; may fail at item N."""
    args = query_args(environ)
    items = [b'part%d;' % index for index in range(int(args.get('n', '3')))]
    headers = list(TEXT)
    if 'cl' in args:
        headers.append(('Content-Length', args['cl']))
    start_response('200 OK', headers)
    fail_at = int(args['fail']) if 'fail' in args else None
    return ClosingBody(args.get('token', 'none'), items, fail_at=fail_at)


def slow_stream_app(environ, start_response):
    """A long body (1000 x 64 KiB, 10 ms apart) for the client-disconnect test; close() records."""
    args = query_args(environ)
    start_response('200 OK', [('Content-Type', 'application/octet-stream')])
    items = [b'x' * 65536] * int(args.get('n', '1000'))
    return ClosingBody(args.get('token', 'none'), items, delay=0.01)


# --- wsgi.file_wrapper -----------------------------------------------------------------------

class RecordingFile(io.FileIO):
    """A real file (it has a fileno, so sendfile can be used) whose close() is recorded."""

    token = None

    def close(self):
        if not self.closed and self.token:
            record('closed-' + self.token, 'file')
        super().close()


def file_wrapper_app(environ, start_response):
    """?name=FILE [&cl=0] [&token=T] [&obj=bytesio]: send a file of the state dir via wsgi.file_wrapper."""
    args = query_args(environ)
    path = os.path.join(STATE_DIR, args.get('name', 'data.bin'))
    size = os.path.getsize(path)
    headers = [('Content-Type', 'application/octet-stream')]
    if args.get('cl', '1') == '1':
        headers.append(('Content-Length', str(size)))
    start_response('200 OK', headers)
    if args.get('obj') == 'bytesio':
        # Not a real file: the wrapper must fall back to read()-ing blocks.
        with open(path, 'rb') as f:
            filelike = io.BytesIO(f.read())
    else:
        filelike = RecordingFile(path, 'r')
        filelike.token = args.get('token')
    return environ['wsgi.file_wrapper'](filelike, 65536)


# --- misbehaving apps (not validated: the server itself must catch these) --------------------

BAD_STATUSES = {
    'word': 'abc OK',
    'long': '2000 OK',
    'short': '20 OK',
    'crlf': '200 OK\r\nX-Injected: yes',
    'bytes': b'200 OK',
    'int': 200,
}

BAD_HEADERS = {
    'space_in_name': ('Bad Header', 'v'),
    'colon_in_name': ('X-Bad:Name', 'v'),
    'empty_name': ('', 'v'),
    'crlf_in_name': ('X-A\r\nX-Injected', 'yes'),
    'crlf_in_value': ('X-Test', 'a\r\nX-Injected: yes'),
    'lf_in_value': ('X-Test', 'a\nX-Injected: yes'),
    'cr_in_value': ('X-Test', 'a\rX-Injected: yes'),
    'bytes_name': (b'X-Bytes', 'v'),
    'int_value': ('X-Int', 5),
}


def bad_status_app(environ, start_response):
    args = query_args(environ)
    start_response(BAD_STATUSES[args['v']], TEXT + [('Content-Length', '2')])
    return ClosingBody(args.get('token', 'none'), [b'ok'])


def bad_header_app(environ, start_response):
    args = query_args(environ)
    start_response('200 OK', TEXT + [('Content-Length', '2'), BAD_HEADERS[args['v']]])
    return ClosingBody(args.get('token', 'none'), [b'ok'])


def str_body_app(environ, start_response):
    args = query_args(environ)
    start_response('200 OK', list(TEXT))
    return ClosingBody(args.get('token', 'none'), ['a str, not bytes'])


def no_start_response_app(environ, start_response):
    return [b'the app never called start_response']


def double_start_response_app(environ, start_response):
    start_response('200 OK', list(TEXT))
    start_response('200 OK', list(TEXT))  # without exc_info: an error (PEP 3333)
    return [b'twice']


def raise_before_app(environ, start_response):
    raise RuntimeError('pywsgi-test: raised before start_response')


def body_with_204_app(environ, start_response):
    start_response('204 No Content', [])
    return [b'oops, a body on a 204']


def headers_app(environ, start_response):
    """start_response as the query says: ?length= Content-Length values (comma-separated, as
    given), body= its size, extra= an X-Extra value, keywords=1 to pass the arguments by name,
    too_few=1 / too_many=1 to pass one argument / four."""
    args = query_args(environ)
    headers = [('Content-Type', 'text/plain')]
    if 'extra' in args:
        headers.append(('X-Extra', args['extra']))
    for value in args['length'].split(',') if args.get('length') else ():
        headers.append(('Content-Length', value))
    if args.get('keywords'):
        start_response(status='200 OK', headers=headers, exc_info=None)
    elif args.get('too_few'):
        start_response('200 OK')
    elif args.get('too_many'):
        start_response('200 OK', headers, None, 'one too many')
    else:
        start_response('200 OK', headers)
    return [b'x' * int(args.get('body', '0'))]


KEPT_INPUT = []


def swap_input_app(environ, start_response):
    """As some middleware does: replace wsgi.input (here with a buffer, read halfway and kept
    past the request).  Answers with where the previous request's buffer stands now."""
    previous = b'%d:%s' % (KEPT_INPUT[0].tell(), KEPT_INPUT[0].getvalue()) if KEPT_INPUT else b''
    environ['wsgi.input'] = io.BytesIO(b'kept past its request')
    environ['wsgi.input'].read(5)
    KEPT_INPUT[:] = [environ['wsgi.input']]
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [previous]


VALIDATED = {
    '': env_app,
    'env': env_app,
    'echo': echo_app,
    'readn': readn_app,
    'sleep': sleep_app,
    'stream': stream_app,
    'write': write_app,
    'status': status_app,
    'multi_header': multi_header_app,
    'errors': errors_app,
    'exc_info_before': exc_info_before_app,
    'exc_info_after': exc_info_after_app,
    'closing': closing_app,
    'slow_stream': slow_stream_app,
    'file_wrapper_validated': file_wrapper_app,
}

UNVALIDATED = {
    # Not wrapped so the server's own wsgi.file_wrapper (and its sendfile path) is what it gets back.
    'file_wrapper': file_wrapper_app,
    'bad_status': bad_status_app,
    'bad_header': bad_header_app,
    'str_body': str_body_app,
    'no_start_response': no_start_response_app,
    'double_start_response': double_start_response_app,
    'raise_before': raise_before_app,
    'body_with_204': body_with_204_app,
    'write_then': write_then_app,
    'swap_input': swap_input_app,
    'headers': headers_app,
}

ROUTES = {name: validator(app) for name, app in VALIDATED.items()}
ROUTES.update(UNVALIDATED)
NOT_FOUND = validator(not_found_app)


def application(environ, start_response):
    route = environ.get('PATH_INFO', '').lstrip('/').split('/', 1)[0]
    return ROUTES.get(route, NOT_FOUND)(environ, start_response)
