"""A Flask 3.1 application exercising what users do with one: a streamed response, send_file of a
large file (with Range requests), form uploads, raw and chunked uploads.

REALAPP_DATA_DIR names the directory whose files /files/<name> sends; /stream waits for
/release between its first and its other chunks, so a test can tell that the first chunk reached
it before the generator went on (streamed, not buffered)."""
import hashlib
import os
import threading

from flask import Flask, Response, abort, request, send_file, stream_with_context

app = Flask(__name__)
application = app  # the name pywsgi (like mod_wsgi) looks for

DATA_DIR = os.environ.get('REALAPP_DATA_DIR', '.')
_released = {}
_released_lock = threading.Lock()


def _release_event(key):
    with _released_lock:
        return _released.setdefault(key, threading.Event())


@app.get('/')
def index():
    return 'flask index'


@app.get('/stream/<key>')
def stream(key):
    chunks = int(request.args.get('chunks', '10'))

    def generate():
        yield 'chunk 0\n'
        # Goes on only once the client has seen chunk 0 and said so (bounded, so a server that
        # buffers the whole response makes the test fail rather than hang).
        released = _release_event(key).wait(timeout=20)
        for index in range(1, chunks):
            yield 'chunk %d%s\n' % (index, '' if released else ' (not released)')
    return Response(stream_with_context(generate()), mimetype='text/plain')


@app.post('/release/<key>')
def release(key):
    _release_event(key).set()
    return 'released'


@app.get('/files/<name>')
def files(name):
    path = os.path.join(DATA_DIR, os.path.basename(name))
    if not os.path.isfile(path):
        abort(404)
    return send_file(path, mimetype='application/octet-stream', conditional=True)


def _digest(stream):
    sha = hashlib.sha256()
    size = 0
    while True:
        block = stream.read(1 << 16)
        if not block:
            break
        sha.update(block)
        size += len(block)
    return {'size': size, 'sha256': sha.hexdigest()}


@app.post('/upload')
def upload():
    """A form upload (multipart/form-data, field 'file'), as a browser sends it."""
    uploaded = request.files.get('file')
    if uploaded is None:
        abort(400)
    result = _digest(uploaded.stream)
    result['filename'] = uploaded.filename
    result['note'] = request.form.get('note', '')
    return result


@app.route('/raw', methods=['POST', 'PUT'])
def raw():
    """A raw body (Content-Length or chunked), read as a stream."""
    return _digest(request.stream)
