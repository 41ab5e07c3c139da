# Endpoints for the realistic Locust scenarios (loadtests/locustfile.py, tag `mix`), at /mix:
#   POST /mix/upload      reads the whole request body; answers its size and SHA-256 (hex), so the
#                         client can check that every byte arrived;
#   GET  /mix/slow?ms=N   answers after N milliseconds (default 200, at most 5000): an application
#                         waiting on a database or another service; it holds a worker thread.
import hashlib
import time
from urllib.parse import parse_qs


def application(environ, start_response):
    path = environ.get('PATH_INFO', '')
    method = environ['REQUEST_METHOD']
    if path == '/upload' and method == 'POST':
        digest = hashlib.sha256()
        size = 0
        stream = environ['wsgi.input']
        while True:
            chunk = stream.read(65536)
            if not chunk:
                break
            size += len(chunk)
            digest.update(chunk)
        return _answer(start_response, '200 OK', b'%d %s' % (size, digest.hexdigest().encode()))
    if path == '/slow' and method in ('GET', 'HEAD'):
        query = parse_qs(environ.get('QUERY_STRING', ''))
        try:
            milliseconds = min(5000, max(0, int(query.get('ms', ['200'])[0])))
        except ValueError:
            return _answer(start_response, '400 Bad Request', b'ms must be an integer')
        time.sleep(milliseconds / 1000.0)
        return _answer(start_response, '200 OK', b'slept %d ms' % milliseconds)
    return _answer(start_response, '404 Not Found', b'not found: %s %s' % (
        method.encode('latin-1'), path.encode('latin-1')))


def _answer(start_response, status, body):
    start_response(status, [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
