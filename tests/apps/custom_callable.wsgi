# No `application` here: served with `--callable-object handler` (mod_wsgi's WSGICallableObject).
def handler(environ, start_response):
    body = b'custom callable'
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
