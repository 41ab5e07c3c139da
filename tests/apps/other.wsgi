# The second app of the --script-alias test; reports its own SCRIPT_NAME/PATH_INFO.
def application(environ, start_response):
    body = ('other app SCRIPT_NAME=%s PATH_INFO=%s'
            % (environ['SCRIPT_NAME'], environ.get('PATH_INFO', ''))).encode('latin-1')
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
