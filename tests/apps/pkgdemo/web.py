"""Served as `pywsgi pkgdemo.web:app` (tests/apps on PYTHONPATH)."""
from wsgiref.validate import validator


@validator
def app(environ, start_response):
    body = b'pkgdemo.web:app'
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
