"""The hello-world application every server in the benchmark runs: the seed's mod_wsgi example
(wsgi-apache-modwsgi.md), with the body as bytes, as WSGI requires. 15-byte body, Content-Length
set."""


def application(environ, start_response):
    status = '200 OK'
    output = b'mod_wsgi works!'

    response_headers = [('Content-type', 'text/plain'), ('Content-Length', str(len(output)))]
    start_response(status, response_headers)

    return [output]
