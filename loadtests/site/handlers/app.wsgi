# The seed's ".htaccess/SetHandler" row: a script found in a directory whose .wsgi files are run as
# applications (Apache: `AddHandler wsgi-script .wsgi`; pywsgi: --handler-scripts). Same body as
# myapp.wsgi, so every WSGI row measures the same application.
def application(environ, start_response):
    output = b'mod_wsgi works!'
    start_response('200 OK', [('Content-type', 'text/plain'),
                              ('Content-Length', str(len(output)))])
    return [output]
