"""Uploads (issue 16, item 4): the 1 GiB default body limit, and a 413 that reaches the client.

A body over --limit-request-body is answered 413 before the application runs when its size is
known (Content-Length, or a chunked body the reactor buffers or whose chunk sizes say so);
otherwise the application's read raises an exception carrying status 413 (a Werkzeug
RequestEntityTooLarge in a Werkzeug application, so Flask answers 413 itself). Either way the
server then lingers - it reads and drops what the client still sends before closing - so the
client reads its 413 instead of a connection reset. Real clients: curl and requests.
"""
import hashlib
import http.client
import shutil
import socket
import subprocess

import pytest
import requests

MiB = 1024 * 1024

# /upload reads the whole body and answers its size and sha256; /catch reports the exception a
# body read raised (type, status, code); anything else reads nothing.
UPLOAD_APP = r'''
import hashlib


def application(environ, start_response):
    path = environ.get('PATH_INFO', '')
    stream = environ['wsgi.input']
    if path == '/catch':
        try:
            while stream.read(65536):
                pass
            body = b'read to the end'
        except OSError as exc:
            body = ('%s status=%s code=%s' % (type(exc).__name__, getattr(exc, 'status', None),
                                              getattr(exc, 'code', None))).encode()
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [body]
    digest = hashlib.sha256()
    total = 0
    while True:
        piece = stream.read(1 << 20)
        if not piece:
            break
        total += len(piece)
        digest.update(piece)
    body = ('%d %s' % (total, digest.hexdigest())).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
'''

FLASK_APP = r'''
from flask import Flask, request

app = Flask(__name__)


@app.route('/upload', methods=['POST', 'PUT'])
def upload():
    return 'got %d' % len(request.get_data())
'''


@pytest.fixture
def upload_app(app_file):
    return app_file(UPLOAD_APP, 'upload_app.wsgi')


def chunks(total, size=64 * 1024):
    block = b'u' * size
    sent = 0
    while sent < total:
        piece = block[:min(size, total - sent)]
        sent += len(piece)
        yield piece


def test_a_50_mb_upload_is_accepted_by_default(start_server, upload_app):
    server = start_server(upload_app)
    body = bytes(range(256)) * (50 * MiB // 256)
    response = requests.post('http://127.0.0.1:%d/upload' % server.port, data=body, timeout=60)
    assert response.status_code == 200
    assert response.text == '%d %s' % (len(body), hashlib.sha256(body).hexdigest())


def test_over_the_default_limit_is_refused_from_the_head(start_server, upload_app):
    server = start_server(upload_app)
    connection = http.client.HTTPConnection('127.0.0.1', server.port, timeout=10)
    connection.putrequest('POST', '/upload')
    connection.putheader('Content-Length', str(1024 * MiB + 1))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413
    line = server.wait_for_log(r'--limit-request-body \(\d+\).*413')
    assert '--limit-request-body (1073741824)' in line


@pytest.mark.timeout(120)
@pytest.mark.parametrize('mode', ['chunked', 'content-length'])
def test_requests_upload_over_the_limit_gets_413_every_time(start_server, upload_app, mode):
    # requests sends the whole body before it reads: the answer survives only if the server
    # reads what is still coming instead of resetting the connection.
    server = start_server(upload_app, '--limit-request-body', '1M')
    url = 'http://127.0.0.1:%d/upload' % server.port
    for _ in range(20):
        data = chunks(3 * MiB) if mode == 'chunked' else b'u' * (3 * MiB)
        response = requests.post(url, data=data, timeout=30)
        assert response.status_code == 413
    assert 'over --limit-request-body' in server.stderr_text()


@pytest.mark.timeout(120)
@pytest.mark.skipif(shutil.which('curl') is None, reason='needs curl')
@pytest.mark.parametrize('flags', [('--body-buffer-size', '64k'), ('--body-buffer-size', '0'),
                                   ('--daemon', '--processes', '1', '--threads', '2')],
                         ids=['buffered', 'unbuffered', 'daemon'])
def test_curl_chunked_upload_over_the_limit_gets_413_every_time(start_server, upload_app,
                                                                  tmp_path, flags):
    server = start_server(upload_app, '--limit-request-body', '1M', *flags)
    payload = tmp_path / 'payload'
    payload.write_bytes(b'c' * (3 * MiB))
    for _ in range(20):
        with open(payload, 'rb') as stdin:
            done = subprocess.run(
                ['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', '-T', '-', '-X', 'POST',
                 'http://127.0.0.1:%d/upload' % server.port],
                stdin=stdin, capture_output=True, timeout=30)
        assert (done.returncode, done.stdout) == (0, b'413'), done.stderr


def test_an_application_reading_past_the_limit_gets_an_exception_with_status_413(
        start_server, upload_app):
    server = start_server(upload_app, '--limit-request-body', '100k', '--body-buffer-size', '0')
    response = requests.post('http://127.0.0.1:%d/catch' % server.port,
                             data=chunks(300 * 1024), timeout=30)
    assert response.status_code == 200
    assert response.text == 'RequestBodyTooLarge status=413 code=413'


def test_an_application_letting_the_exception_through_gives_413(start_server, upload_app):
    server = start_server(upload_app, '--limit-request-body', '100k', '--body-buffer-size', '0')
    response = requests.post('http://127.0.0.1:%d/upload' % server.port,
                             data=chunks(300 * 1024), timeout=30)
    assert response.status_code == 413


def test_a_chunk_announcing_more_than_the_limit_is_refused_before_its_data(start_server,
                                                                          upload_app):
    server = start_server(upload_app, '--limit-request-body', '1M')
    with socket.create_connection(('127.0.0.1', server.port), timeout=10) as sock:
        sock.sendall(b'POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n'
                     b'200000\r\n')  # 2 MiB announced, none sent
        received = sock.recv(65536)
    assert received.startswith(b'HTTP/1.1 413 '), received[:200]


@pytest.mark.parametrize('mode', ['chunked', 'content-length'])
def test_flask_answers_413_not_500(start_server, tmp_path, mode):
    pytest.importorskip('flask')
    (tmp_path / 'flaskapp.py').write_text(FLASK_APP)
    server = start_server('flaskapp:app', '--limit-request-body', '100k',
                          '--body-buffer-size', '0', cwd=tmp_path)
    url = 'http://127.0.0.1:%d/upload' % server.port
    small = requests.post(url, data=b'x' * 1000, timeout=30)
    assert (small.status_code, small.text) == (200, 'got 1000')
    data = chunks(300 * 1024) if mode == 'chunked' else b'x' * (300 * 1024)
    response = requests.post(url, data=data, timeout=30)
    assert response.status_code == 413, response.text[:300]
