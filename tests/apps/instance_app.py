"""WSGI app for the scale-out test (tests/test_scale_out.py): says which instance served it
($PYWSGI_TEST_INSTANCE) and works for ?ms=N milliseconds first, so requests are in flight."""
import os
import time

INSTANCE = os.environ.get('PYWSGI_TEST_INSTANCE', '?')


def application(environ, start_response):
    query = environ.get('QUERY_STRING', '')
    if query.startswith('ms='):
        time.sleep(int(query[3:]) / 1000)
    body = ('instance %s\n' % INSTANCE).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body))),
                              ('X-Instance', INSTANCE)])
    return [body]
