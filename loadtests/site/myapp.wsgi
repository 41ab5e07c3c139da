# The seed's mod_wsgi example (WSGIScriptAlias /myapp /var/www/wsgi-scripts/myapp.wsgi), made valid
# on Python 3: a WSGI body is an iterable of bytes, and Content-Length counts bytes. Every WSGI row
# of the replayed table (embedded, daemon, CGI) runs this file.
def application(environ, start_response):
    status = '200 OK'
    output = b'mod_wsgi works!'

    response_headers = [('Content-type', 'text/plain'),
                        ('Content-Length', str(len(output)))]
    start_response(status, response_headers)

    return [output]
