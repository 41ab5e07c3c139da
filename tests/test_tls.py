"""HTTPS in the core (issue 20, docs/tls.md): real TLS with real clients - Python's ssl and
http.client, curl, openssl s_client - against real server processes; certificates are made at
test time (tests/tlscerts.py, trustme)."""
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest

from httpraw import RawConnection, build_request, recv_until_close
from serverproc import SUITE_APP, free_port, wait_until
from tlscerts import Pki, https_connection, https_get, tls_socket

CURL = shutil.which('curl')
OPENSSL = shutil.which('openssl')


@pytest.fixture(scope='module')
def tls_server(start_module_server, pki, tmp_path_factory):
    """The suite app on a plain port and an HTTPS port (server.https_port), 4 threads."""
    port = free_port()
    docroot = tmp_path_factory.mktemp('htdocs')
    (docroot / 'big.bin').write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    server = start_module_server(SUITE_APP, '--threads', '4', '--https-port', port,
                                 '--url-alias', '/files', docroot, '--header-timeout', '2',
                                 '--ssl-environ', *pki.server_args())
    server.https_port = port
    server.docroot = docroot
    return server


def env_over_tls(server, pki, path='/env', **kwargs):
    status, _, body = https_get(server.https_port, pki.client_context(**kwargs), path)
    assert status == 200
    return json.loads(body)


# ---------------------------------------------------------------- the basics

@pytest.mark.skipif(CURL is None, reason='curl is not installed')
def test_curl_gets_the_page_over_https(tls_server, pki):
    """The issue's acceptance command: curl --cacert ca.pem https://localhost:PORT/."""
    out = subprocess.run([CURL, '-sS', '--cacert', str(pki.ca_path),
                          'https://localhost:%d/env' % tls_server.https_port],
                         capture_output=True, timeout=20)
    assert out.returncode == 0, out.stderr
    env = json.loads(out.stdout)
    assert env['wsgi.url_scheme'] == 'https'
    assert env['HTTPS'] == 'on'


def test_https_environ_and_the_plain_port_stays_http(tls_server, pki):
    env = env_over_tls(tls_server, pki)
    assert env['wsgi.url_scheme'] == 'https' and env['HTTPS'] == 'on'
    assert env['SERVER_PORT'] == str(tls_server.https_port)   # from Host: localhost:PORT
    assert env['REMOTE_ADDR'] == '127.0.0.1'
    response, body = tls_server.get('/env')
    plain = json.loads(body)
    assert plain['wsgi.url_scheme'] == 'http' and 'HTTPS' not in plain
    assert 'SSL_PROTOCOL' not in plain


def test_tls_13_and_12_negotiate(tls_server, pki):
    for version, name in ((ssl.TLSVersion.TLSv1_3, 'TLSv1.3'), (ssl.TLSVersion.TLSv1_2, 'TLSv1.2')):
        with tls_socket(tls_server.https_port,
                        pki.client_context(minimum=version, maximum=version)) as sock:
            assert sock.version() == name
        env = env_over_tls(tls_server, pki, minimum=version, maximum=version)
        assert env['SSL_PROTOCOL'] == name


@pytest.mark.skipif(OPENSSL is None, reason='openssl is not installed')
def test_tls_11_is_refused(tls_server):
    mark = tls_server.log_mark()
    out = subprocess.run([OPENSSL, 's_client', '-connect', '127.0.0.1:%d' % tls_server.https_port,
                          '-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0'],
                         stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
    assert out.returncode != 0
    assert b'Cipher is (NONE)' in out.stdout or b'alert' in out.stderr
    tls_server.wait_for_log(r'TLS handshake failed: unsupported protocol', since=mark)


@pytest.mark.skipif(OPENSSL is None, reason='openssl is not installed')
def test_alpn_says_http11_and_refuses_h2_only(tls_server):
    def s_client(*args):
        return subprocess.run([OPENSSL, 's_client', '-connect',
                               '127.0.0.1:%d' % tls_server.https_port] + list(args),
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
    both = s_client('-alpn', 'h2,http/1.1')
    assert b'ALPN protocol: http/1.1' in both.stdout
    only_h2 = s_client('-alpn', 'h2')
    assert b'no application protocol' in only_h2.stderr   # RFC 7301 3.2's alert


def test_keep_alive_and_pipelining_over_tls(tls_server, pki):
    with tls_socket(tls_server.https_port, pki.client_context()) as sock:
        raw = RawConnection.over(sock)
        for index in range(3):
            response = raw.request('GET', '/env?n=%d' % index)
            assert response.json()['QUERY_STRING'] == 'n=%d' % index
        raw.send(build_request('GET', '/env?p=1') + build_request('POST', '/echo', body=b'b' * 70000)
                 + build_request('GET', '/stream'))
        assert raw.read_response().json()['QUERY_STRING'] == 'p=1'
        assert raw.read_response().body == b'b' * 70000
        assert raw.read_response().body == b'chunk0;chunk1;chunk2;'


def test_idle_keep_alive_connections_serve_again_after_their_buffers_are_freed(start_server,
                                                                              pki):
    """An idle connection gives its buffers back after a second (OpenSSL's record buffers too,
    SSL_free_buffers); its next request, TLS 1.3 or 1.2, gets new ones."""
    port = free_port()
    start_server(SUITE_APP, '--https-port', port, '--threads', '1', '--keep-alive-timeout', '30',
                 *pki.server_args())
    raws = []
    try:
        for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2) * 5:
            sock = tls_socket(port, pki.client_context(minimum=version, maximum=version))
            raws.append(RawConnection.over(sock))
        for round_ in range(3):
            for index, raw in enumerate(raws):
                response = raw.request('GET', '/env?n=%d-%d' % (round_, index))
                assert response.json()['QUERY_STRING'] == 'n=%d-%d' % (round_, index)
            time.sleep(1.6)   # idle past PW_IDLE_FREE (1 s) and the next scan (0.25 s)
    finally:
        for raw in raws:
            raw.sock.close()


def test_large_upload_and_download_over_tls(tls_server, pki):
    context = pki.client_context()
    body = os.urandom(5 * 1024 * 1024 + 3)
    connection = https_connection(tls_server.https_port, context)
    connection.request('POST', '/echo?size=65536', body=body)
    response = connection.getresponse()
    assert response.status == 200 and response.read() == body
    # chunked upload
    connection.request('POST', '/echo?mode=read_all', body=iter([body[:100000], body[100000:]]),
                       encode_chunked=True)
    response = connection.getresponse()
    assert response.read() == body
    connection.close()


def test_static_file_over_tls_is_whole(tls_server, pki):
    """A static file (sendfile for plain HTTP) goes through TLS's buffered path (or kernel TLS
    where the kernel has it), read slowly so the reactor finishes it (WRITING)."""
    expected = (tls_server.docroot / 'big.bin').read_bytes()
    with tls_socket(tls_server.https_port, pki.client_context()) as sock:
        sock.sendall(build_request('GET', '/files/big.bin', host='localhost'))
        time.sleep(0.5)   # the socket fills; the rest waits in the reactor
        # the response is whole once its body is (the connection stays open)
        data = recv_until_close(
            sock, complete=lambda data: len(data.partition(b'\r\n\r\n')[2]) >= len(expected))
    head, _, rest = data.partition(b'\r\n\r\n')
    assert head.startswith(b'HTTP/1.1 200')
    assert hashlib.sha256(rest).hexdigest() == hashlib.sha256(expected).hexdigest()
    # ... and a range of it
    status, headers, part = https_get(tls_server.https_port, pki.client_context(),
                                      '/files/big.bin', headers={'Range': 'bytes=1000-1999'})
    assert status == 206 and part == expected[1000:2000]


def test_file_wrapper_over_tls(tls_server, pki):
    data = os.urandom(600000)
    tls_server.state_file('data.bin').write_bytes(data)
    status, _, body = https_get(tls_server.https_port, pki.client_context(),
                                '/file_wrapper?name=data.bin')
    assert status == 200 and body == data


# ---------------------------------------------------------------- what is not TLS

def test_plain_http_to_the_https_port_gets_nginx_s_400(tls_server):
    mark = tls_server.log_mark()
    with RawConnection(tls_server.https_port) as connection:
        response = connection.request('GET', '/env')
        assert response.status == 400
        assert b'The plain HTTP request was sent to HTTPS port' in response.body
        assert response.has_token('Connection', 'close')
        assert connection.closed_by_server()
    tls_server.wait_for_log(r'plain HTTP request sent to the HTTPS port: 400', since=mark)


def test_garbage_handshake_is_dropped_and_logged(tls_server, pki):
    mark = tls_server.log_mark()
    for garbage in (b'\x00\x01\x02garbage\r\n', b'\x16\x03\x01\x00\x05hello-not-tls' * 10):
        with socket.create_connection(('127.0.0.1', tls_server.https_port), timeout=5) as sock:
            sock.sendall(garbage)
            sock.settimeout(5)
            try:
                while sock.recv(4096):   # an alert at most, then the close
                    pass
            except ConnectionResetError:
                pass
    tls_server.wait_for_log(r'not a TLS handshake \(first byte 0x00\)', since=mark)
    tls_server.wait_for_log(r'TLS handshake failed', since=mark)
    env = env_over_tls(tls_server, pki)   # still serving
    assert env['HTTPS'] == 'on'


def test_a_stalled_handshake_is_dropped_at_the_header_timeout(tls_server):
    """A client that starts a handshake and stops holds no thread and goes at --header-timeout
    (2 s here), logged; one that never says a word goes quietly."""
    mark = tls_server.log_mark()
    with socket.create_connection(('127.0.0.1', tls_server.https_port), timeout=10) as sock, \
            socket.create_connection(('127.0.0.1', tls_server.https_port), timeout=10) as silent:
        sock.sendall(b'\x16\x03\x01\x02\x00\x01')   # the start of a ClientHello record
        started = time.monotonic()
        assert sock.recv(100) == b''
        assert silent.recv(100) == b''
        assert 1.5 < time.monotonic() - started < 6
    line = tls_server.wait_for_log(r'TLS handshake not complete in time', since=mark)
    assert ':info]' in line


# ---------------------------------------------------------------- settings around HTTPS

def test_https_only_redirects_plain_http(start_server, pki):
    port = free_port()
    server = start_server(SUITE_APP, '--https-port', port, '--https-only', *pki.server_args())
    with RawConnection(server.port) as connection:
        response = connection.request('GET', '/env?a=1', headers=[('Host', 'example.test:8000')])
        assert response.status == 301
        assert response.header('Location') == 'https://example.test:%d/env?a=1' % port
    status, _, body = https_get(port, pki.client_context(), '/env')
    assert status == 200 and json.loads(body)['HTTPS'] == 'on'


def test_hsts_on_https_only(start_server, pki):
    port = free_port()
    server = start_server(SUITE_APP, '--https-port', port, '--threads', '2',
                          '--hsts-policy', 'max-age=31536000; includeSubDomains',
                          *pki.server_args())
    status, headers, _ = https_get(port, pki.client_context(), '/env')
    assert headers['strict-transport-security'] == 'max-age=31536000; includeSubDomains'
    status, headers, _ = https_get(port, pki.client_context(), '/no-such-route')
    assert status == 404 and 'strict-transport-security' in headers
    response, _ = server.get('/env')
    assert response.getheader('Strict-Transport-Security') is None


def test_sessions_resume_across_processes(start_server, pki):
    """TLS 1.2 tickets (and TLS 1.3 ones) made by one process resume in any other: the master
    makes the ticket keys every process shares."""
    port = free_port()
    start_server(SUITE_APP, '--https-port', port, '--processes', '3', '--threads', '1',
                 *pki.server_args())
    context = pki.client_context(maximum=ssl.TLSVersion.TLSv1_2)
    with tls_socket(port, context) as first:
        session = first.session
    resumed = 0
    for _ in range(8):
        with tls_socket(port, context, session=session) as sock:
            resumed += sock.session_reused
    assert resumed == 8


def test_tls_13_session_resumes(start_server, pki):
    port = free_port()
    start_server(SUITE_APP, '--https-port', port, '--threads', '2', *pki.server_args())
    context = pki.client_context(minimum=ssl.TLSVersion.TLSv1_3)
    with tls_socket(port, context) as first:
        first.sendall(build_request('GET', '/env', host='localhost'))
        first.recv(65536)   # the tickets come after the handshake
        session = first.session
    with tls_socket(port, context, session=session) as again:
        assert again.session_reused


# ---------------------------------------------------------------- bad certificates and keys

def run_pywsgi(*args, timeout=60):
    return subprocess.run([sys.executable, '-m', 'pywsgi', SUITE_APP, '--host', '127.0.0.1',
                           '--port', str(free_port())] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, cwd=str(SUITE_APP.parent))


def one_line_error(result):
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = [line for line in result.stderr.splitlines() if 'error' in line]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_startup_errors_are_one_line_and_exit_2(pki, tmp_path):
    port = str(free_port())
    other_cert, other_key = pki.leaf('other.test')
    expired_cert, expired_key = pki.expired_leaf()
    encrypted = tmp_path / 'encrypted.key'
    subprocess.run([OPENSSL or 'openssl', 'pkey', '-in', str(pki.key_path), '-out', str(encrypted),
                    '-aes256', '-passout', 'pass:secret'], check=True, capture_output=True)
    password = tmp_path / 'password'
    password.write_text('secret\n')
    wrong = tmp_path / 'wrong'
    wrong.write_text('nope\n')
    unreadable = tmp_path / 'unreadable.key'
    unreadable.write_bytes(pki.key_path.read_bytes())
    unreadable.chmod(0)
    cases = [
        (['--https-port', port], 'needs a certificate'),
        (['--https-port', port, '--ssl-certificate-file', tmp_path / 'missing.pem',
          '--ssl-certificate-key-file', pki.key_path], 'missing.pem: no such file'),
        (['--https-port', port, '--ssl-certificate-file', pki.cert_path,
          '--ssl-certificate-key-file', other_key], 'does not match the certificate'),
        (['--https-port', port, '--ssl-certificate-file', expired_cert,
          '--ssl-certificate-key-file', expired_key], 'the certificate expired on'),
        (['--https-port', port, '--ssl-certificate-file', pki.cert_path,
          '--ssl-certificate-key-file', encrypted], 'the private key is encrypted'),
        (['--https-port', port, '--ssl-certificate-file', pki.cert_path,
          '--ssl-certificate-key-file', encrypted, '--ssl-certificate-key-password-file', wrong],
         'wrong passphrase'),
        (['--https-port', port, '--ssl-certificate-file', pki.cert_path,
          '--ssl-certificate-key-file', pki.cert_path], 'cannot read the private key'),
        (['--https-port', port, '--ssl-certificate-file', pki.key_path,
          '--ssl-certificate-key-file', pki.key_path], 'no certificate in it'),
        (['--https-port', port, '--ssl-protocols', 'TLSv1.1'] + pki.server_args(),
         'insecure'),
        (['--https-port', port, '--ssl-ciphers', 'NO-SUCH-CIPHER'] + pki.server_args(),
         '--ssl-ciphers NO-SUCH-CIPHER'),
        (['--https-port', port, '--ssl-verify-client', 'require'] + pki.server_args(),
         'needs --ssl-ca-certificate-file'),
        (['--https-only'], '--https-port is not'),
    ]
    if os.geteuid() != 0:   # root reads any file
        cases.append((['--https-port', port, '--ssl-certificate-file', pki.cert_path,
                       '--ssl-certificate-key-file', unreadable], 'cannot read it'))
    for args, expected in cases:
        line = one_line_error(run_pywsgi(*args))
        assert expected in line, (args, line)
    # the right passphrase starts it
    port2 = free_port()
    proc = subprocess.Popen([sys.executable, '-m', 'pywsgi', SUITE_APP, '--host', '127.0.0.1',
                             '--port', str(free_port()), '--https-port', str(port2),
                             '--ssl-certificate-file', str(pki.cert_path),
                             '--ssl-certificate-key-file', str(encrypted),
                             '--ssl-certificate-key-password-file', str(password)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, cwd=str(SUITE_APP.parent))
    try:
        def answers():
            try:
                return https_get(port2, pki.client_context(), '/env')[0] == 200
            except OSError:
                return False
        wait_until(answers, 30, interval=0.2, message='HTTPS with a decrypted key')
    finally:
        proc.terminate()
        proc.wait(20)


def test_no_libssl_is_a_one_line_error_saying_how_to_get_tls(pki):
    result = subprocess.run(
        [sys.executable, '-m', 'pywsgi', SUITE_APP, '--host', '127.0.0.1', '--port',
         str(free_port()), '--https-port', str(free_port()),
         '--ssl-library', '/nonexistent/libssl.so.3'] + pki.server_args(),
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        cwd=str(SUITE_APP.parent))   # not the checkout: its pywsgi/ has no built core
    line = one_line_error(result)
    assert 'TLS is not available' in line and 'libssl' in line and 'install' in line


# ---------------------------------------------------------------- SNI, client certificates

def peer_names(sock):
    cert = sock.getpeercert()
    return sorted(value for kind, value in cert.get('subjectAltName', ()) if kind == 'DNS')


def test_sni_picks_the_virtual_host_s_certificate(start_server, pki, tmp_path):
    """Name-based virtual hosts with certificates of their own (a TOML file: the API and files
    take them as the Apache import makes them); an unknown name, or none, gets the default."""
    a_cert, a_key = pki.leaf('a.test', '*.a.test')
    b_cert, b_key = pki.leaf('b.test')
    config = tmp_path / 'sites.toml'
    config.write_text('''
[[virtual_host]]
server_name = "a.test"
server_alias = ["*.a.test"]
ssl_certificate_file = "%s"
ssl_certificate_key_file = "%s"

[[virtual_host]]
server_name = "b.test"
ssl_certificate_file = "%s"
ssl_certificate_key_file = "%s"
''' % (a_cert, a_key, b_cert, b_key))
    port = free_port()
    start_server(SUITE_APP, '--config', config, '--https-port', port, '--threads', '2',
                 *pki.server_args())
    context = pki.client_context()
    for name, expected in (('a.test', ['*.a.test', 'a.test']), ('www.a.test', ['*.a.test', 'a.test']),
                           ('b.test', ['b.test']), ('localhost', ['localhost'])):
        with tls_socket(port, context, server_hostname=name) as sock:
            assert peer_names(sock) == expected, name
    status, _, body = https_get(port, context, '/env', server_hostname='b.test')
    assert status == 200 and json.loads(body)['HTTP_HOST'] == 'b.test:%d' % port
    # no SNI at all (an IP address): the default certificate
    plain = pki.client_context()
    plain.check_hostname = False
    with tls_socket(port, plain, server_hostname=None) as sock:
        assert peer_names(sock) == ['localhost']


@pytest.fixture(scope='module')
def mtls_server(start_module_server, pki):
    port = free_port()
    server = start_module_server(SUITE_APP, '--https-port', port, '--threads', '2',
                                 '--ssl-environ', '--ssl-verify-client', 'require',
                                 '--ssl-ca-certificate-file', pki.ca_path, *pki.server_args())
    server.https_port = port
    return server


def test_client_certificate_required(mtls_server, pki):
    cert = pki.client_cert('alice.test')
    env = env_over_tls(mtls_server, pki, cert=cert)
    assert env['SSL_CLIENT_VERIFY'] == 'SUCCESS'
    assert 'CN=alice.test' in env['SSL_CLIENT_S_DN']
    assert env['SSL_CLIENT_S_DN_CN'] == 'alice.test'
    assert env['SSL_CLIENT_I_DN'] and env['SSL_CLIENT_M_SERIAL']
    assert env['SSL_CLIENT_V_END'].endswith('GMT')
    mark = mtls_server.log_mark()
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        # TLS 1.3: the refusal may only show on the first read
        with tls_socket(mtls_server.https_port, pki.client_context()) as sock:
            sock.sendall(build_request('GET', '/env', host='localhost'))
            if not sock.recv(100):
                raise ConnectionResetError('closed')
    mtls_server.wait_for_log(r'TLS handshake failed: peer did not return a certificate',
                             since=mark)
    # a certificate from another CA is refused too
    stranger = Pki(mtls_server.workdir / 'stranger')
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        with tls_socket(mtls_server.https_port,
                        pki.client_context(cert=stranger.client_cert('mallory.test'))) as sock:
            sock.sendall(build_request('GET', '/env', host='localhost'))
            if not sock.recv(100):
                raise ConnectionResetError('closed')


def test_client_certificate_optional(start_server, pki):
    port = free_port()
    start_server(SUITE_APP, '--https-port', port, '--threads', '2', '--ssl-environ',
                 '--ssl-verify-client', 'optional', '--ssl-ca-certificate-file', pki.ca_path,
                 *pki.server_args())
    status, _, body = https_get(port, pki.client_context(), '/env')
    assert json.loads(body)['SSL_CLIENT_VERIFY'] == 'NONE'
    status, _, body = https_get(port, pki.client_context(cert=pki.client_cert('bob.test')), '/env')
    assert json.loads(body)['SSL_CLIENT_S_DN_CN'] == 'bob.test'


@pytest.mark.skipif(OPENSSL is None, reason='openssl is not installed')
def test_s_client_with_a_client_certificate(mtls_server, pki):
    cert, key = pki.client_cert('carol.test')
    out = subprocess.run([OPENSSL, 's_client', '-connect', '127.0.0.1:%d' % mtls_server.https_port,
                          '-servername', 'localhost', '-CAfile', str(pki.ca_path),
                          '-cert', str(cert), '-key', str(key), '-quiet'],
                         input=build_request('GET', '/env', headers=[('Connection', 'close')],
                                             host='localhost'),
                         capture_output=True, timeout=20)
    assert b'"SSL_CLIENT_S_DN_CN": "carol.test"' in out.stdout


def test_ssl_environ_variables(tls_server, pki):
    env = env_over_tls(tls_server, pki)
    assert env['SSL_PROTOCOL'] == 'TLSv1.3'
    assert env['SSL_CIPHER'].startswith('TLS_')
    assert int(env['SSL_CIPHER_USEKEYSIZE']) >= 128
    assert env['SSL_SESSION_RESUMED'] == 'Initial'
    assert env['SSL_TLS_SNI'] == 'localhost'
    assert env['SSL_CLIENT_VERIFY'] == 'NONE'
    assert 'O=trustme' in env['SSL_SERVER_S_DN']
    assert env['SSL_VERSION_LIBRARY'].startswith('OpenSSL ')


def test_daemon_mode_over_tls(start_server, pki):
    """The server process ends TLS; the daemon's application sees https, HTTPS=on and the SSL
    variables the relay preamble carried (no key ever reaches a daemon process)."""
    port = free_port()
    start_server(SUITE_APP, '--daemon', '--processes', '1', '--threads', '2', '--https-port', port,
                 '--ssl-environ', '--hsts-policy', 'max-age=60', *pki.server_args())
    for path in ('/env', '/echo'):   # the reactor's relay (no body) and a relay thread's (body)
        connection = https_connection(port, pki.client_context())
        connection.request('POST' if path == '/echo' else 'GET', path,
                           body=b'x' * 100 if path == '/echo' else None)
        response = connection.getresponse()
        body = response.read()
        assert response.status == 200
        assert response.getheader('Strict-Transport-Security') == 'max-age=60'
        connection.close()
    status, _, body = https_get(port, pki.client_context(), '/env')
    env = json.loads(body)
    assert env['wsgi.url_scheme'] == 'https' and env['HTTPS'] == 'on'
    assert env['SSL_PROTOCOL'] == 'TLSv1.3' and env['SSL_TLS_SNI'] == 'localhost'
    assert env['mod_wsgi.process_group'] != ''


# ---------------------------------------------------------------- certificate rotation

def fingerprint(port, context):
    with tls_socket(port, context) as sock:
        return hashlib.sha256(sock.getpeercert(binary_form=True)).hexdigest()


@pytest.mark.timeout(120)
def test_new_certificate_on_sighup_under_load_fails_no_request(start_server, pki, tmp_path):
    """Certificate files replaced, SIGHUP: the new processes serve the new certificate, the old
    ones finish theirs; under keep-alive load (wrk) and new-connection load (Python) no request
    fails."""
    cert, key = tmp_path / 'site.crt', tmp_path / 'site.key'
    shutil.copy(pki.cert_path, cert)
    shutil.copy(pki.key_path, key)
    port = free_port()
    server = start_server(SUITE_APP, '--https-port', port, '--processes', '2', '--threads', '4',
                          '--ssl-certificate-file', cert, '--ssl-certificate-key-file', key)
    wait_until(lambda: len(server.children()) == 2, 30, message='2 children')
    context = pki.client_context()
    old = fingerprint(port, context)
    stop = time.monotonic() + 60
    failures, done = [], []
    halt = threading.Event()

    def new_connections():
        while not halt.is_set() and time.monotonic() < stop:
            try:
                status, _, _ = https_get(port, context, '/env')
                done.append(status)
                if status != 200:
                    failures.append(status)
            except Exception as error:   # the failure this test is about
                failures.append(repr(error))

    wrk = None
    if shutil.which('wrk'):
        wrk = subprocess.Popen(['wrk', '-t1', '-c20', '-d60s', '--timeout', '10s',
                                'https://127.0.0.1:%d/env' % port], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    threads = [threading.Thread(target=new_connections, daemon=True) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: len(done) >= 20, 30, message='requests before the rotation')
        renewed_cert, renewed_key = pki.leaf('localhost', '127.0.0.1', name='renewed')
        shutil.copy(renewed_cert, tmp_path / 'new.crt')
        shutil.copy(renewed_key, tmp_path / 'new.key')
        os.replace(tmp_path / 'new.crt', cert)
        os.replace(tmp_path / 'new.key', key)
        before = set(server.children())
        mark = server.log_mark()
        server.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: not before & set(server.children()) and len(server.children()) == 2,
                   60, message='the old processes replaced')
        server.wait_for_log(r'HTTPS certificate reloaded', since=mark)
        count = len(done)
        wait_until(lambda: len(done) >= count + 20, 30, message='requests after the rotation')
    finally:
        halt.set()
        for thread in threads:
            thread.join(30)
        output = ''
        if wrk is not None:
            wrk.send_signal(signal.SIGINT)
            output = wrk.communicate(timeout=30)[0]
    assert failures == [], failures
    new = fingerprint(port, context)
    assert new != old and new == hashlib.sha256(
        ssl.PEM_cert_to_DER_cert(renewed_cert.read_text().split('-----END CERTIFICATE-----')[0]
                                 + '-----END CERTIFICATE-----\n')).hexdigest()
    if wrk is not None:
        assert 'Socket errors' not in output and 'Non-2xx' not in output, output
        assert int(output.split(' requests in')[0].split()[-1]) > 100, output


def test_a_bad_new_certificate_keeps_the_old_one(start_server, pki, tmp_path):
    cert, key = tmp_path / 'site.crt', tmp_path / 'site.key'
    shutil.copy(pki.cert_path, cert)
    shutil.copy(pki.key_path, key)
    port = free_port()
    server = start_server(SUITE_APP, '--https-port', port, '--threads', '2',
                          '--ssl-certificate-file', cert, '--ssl-certificate-key-file', key)
    context = pki.client_context()
    old = fingerprint(port, context)
    other_cert, _ = pki.leaf('other.test')
    shutil.copy(other_cert, cert)   # a certificate that does not match the key
    mark = server.log_mark()
    server.proc.send_signal(signal.SIGHUP)
    line = server.wait_for_log(r'HTTPS certificate not reloaded', since=mark, timeout=20)
    assert 'does not match the certificate' in line
    time.sleep(1)
    wait_until(lambda: len(server.children()) == 1, 30, message='one child')
    assert fingerprint(port, context) == old
