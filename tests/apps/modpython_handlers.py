"""mod_python handlers for tests/test_modpython.py, written the way mod_python's manual writes
them (Python 3 spelling). Each is mounted with --python-handler /URL=modpython_handlers::NAME."""
import hashlib
import json
import os

from mod_python import apache, util


def handler(req):
    # The "Hello World" of the mod_python tutorial.
    req.content_type = 'text/plain'
    req.write('Hello World!')
    return apache.OK


def info(req):
    # What the request object says about the request, as JSON.
    req.content_type = 'application/json'
    req.headers_out['X-Handler'] = 'info'
    req.headers_out.add('X-Multi', 'one')
    req.headers_out.add('X-Multi', 'two')
    req.err_headers_out['X-Always'] = 'yes'
    body = req.read()
    facts = {
        'method': req.method,
        'uri': req.uri,
        'args': req.args,
        'unparsed_uri': req.unparsed_uri,
        'path_info': req.path_info,
        'hostname': req.hostname,
        'protocol': req.protocol,
        'the_request': req.the_request,
        'header_lower': req.headers_in.get('x-test-header'),
        'header_upper': (req.headers_in['X-TEST-HEADER']
                         if req.headers_in.has_key('x-test-header') else None),
        'has_user_agent': 'user-agent' in req.headers_in,
        'remote_host': req.get_remote_host(apache.REMOTE_NOLOOKUP),
        'remote_ip': req.connection.remote_ip,
        'options': dict(req.get_options()),
        'env_remote_addr': req.subprocess_env['REMOTE_ADDR'],
        'filename': req.filename,
        'body': body.decode('latin-1'),
        'pid': os.getpid(),
        'process_group': req.build_wsgi_env().get('mod_wsgi.process_group'),
    }
    req.write(json.dumps(facts))
    return apache.OK


def status(req):
    # Return the status code given as ?code=NNN; the server sends its error page.
    req.headers_out['X-Dropped'] = 'headers_out is not sent with an error'
    req.err_headers_out['X-Err'] = 'err_headers_out is'
    return int(util.FieldStorage(req).getfirst('code', '200'))


def created(req):
    # req.status set by the handler, body written: that status with that body.
    req.status = apache.HTTP_CREATED
    req.content_type = 'text/plain'
    req.headers_out['Location'] = '/things/1'
    req.write('made it')
    return apache.OK


def empty(req):
    # Nothing written, OK returned: the status (204 here) and no body.
    req.status = apache.HTTP_NO_CONTENT
    return apache.OK


def wrote_then_error(req):
    # Something written, then an error code: what was written stands.
    req.content_type = 'text/plain'
    req.write('partial answer')
    return apache.HTTP_INTERNAL_SERVER_ERROR


def form(req):
    # A form posted urlencoded or multipart (or sent in the query string).
    fs = util.FieldStorage(req, keep_blank_values=1)
    fields = {}
    for name, item in fs.items():
        if item.filename:
            data = item.file.read()
            value = {'filename': item.filename, 'type': item.type, 'size': len(data),
                     'sha256': hashlib.sha256(data).hexdigest()}
        else:
            value = str(item)
        fields.setdefault(name, []).append(value)
    req.content_type = 'application/json'
    req.write(json.dumps({'fields': fields, 'first': fs.getfirst('name'),
                          'list': fs.getlist('multi'), 'has_name': 'name' in fs}))
    return apache.OK


def redirect(req):
    util.redirect(req, '/hello')


def permanent(req):
    util.redirect(req, '/hello', permanent=True)


def moved(req):
    # The other documented way: Location in headers_out, return the redirect status.
    req.headers_out['Location'] = '/hello'
    return apache.HTTP_MOVED_TEMPORARILY


def error(req):
    # An exception: 500 and a traceback in the error log.
    req.content_type = 'text/plain'
    raise ValueError('handler exploded on purpose')


def forbidden(req):
    # mod_python's `raise apache.SERVER_RETURN, apache.HTTP_FORBIDDEN`, in Python 3 syntax.
    req.err_headers_out['X-Reason'] = 'forbidden'
    raise apache.SERVER_RETURN(apache.HTTP_FORBIDDEN)


def declined(req):
    return apache.DECLINED


def log(req):
    req.log_error('request log line from the handler')
    apache.log_error('server log line from the handler', apache.APLOG_WARNING)
    req.content_type = 'text/plain'
    req.write('logged')
    return apache.OK


def internal(req):
    req.internal_redirect('/hello')
    return apache.OK


def sendfile(req):
    req.content_type = 'text/x-python'
    req.sendfile(__file__)
    return apache.OK


def streamed(req):
    # Several writes: each goes out as it is written (chunked, no Content-Length).
    req.content_type = 'text/plain'
    for number in range(5):
        req.write('line %d\n' % number)
        req.flush()
    return apache.OK


def lines(req):
    # readline() through the body.
    req.content_type = 'text/plain'
    count = 0
    while True:
        line = req.readline()
        if not line:
            break
        count += 1
    req.write('%d lines' % count)
    return apache.OK


def no_return(req):
    # A common slip: no return value. Nothing written: 500; written: the response stands.
    if req.args == 'write':
        req.content_type = 'text/plain'
        req.write('written anyway')
