"""Trusted proxies (issue 7, point 4; docs/proxies.md): --trust-proxy, --trust-proxy-header,
--proxy-protocol, over real sockets. 127.0.0.1 is the only peer here, so it is made trusted by
--trust-proxy 127.0.0.1/32 and untrusted by --trust-proxy 10.0.0.0/8."""
import json
import os
import shutil
import socket
import struct
import subprocess
import sys

import pytest

from httpraw import RawConnection, assert_items, build_request
from serverproc import REPO_ROOT, SUITE_APP, stop_process, wait_until

ALL_HEADERS = ['--trust-proxy-header', 'x-forwarded-for', '--trust-proxy-header',
               'x-forwarded-proto', '--trust-proxy-header', 'x-forwarded-host',
               '--trust-proxy-header', 'x-forwarded-port', '--trust-proxy-header', 'forwarded']


def env_via(server, headers=(), prefix=b'', target='/env'):
    """The app's environ for one request sent with `headers` (after `prefix` bytes)."""
    with RawConnection(server.port) as conn:
        conn.send(prefix + build_request('GET', target, list(headers)))
        response = conn.read_response('GET')
    assert response.status == 200, response.raw[:500]
    return response.json()


def env_once_logged(server, headers, logged):
    """The app's environ for one request sent with `headers`, once the error log has a line
    matching `logged` about it."""
    mark = server.log_mark()
    env = env_via(server, headers)
    server.wait_for_log(logged, since=mark)
    return env


def closed_without_answer(server, data):
    """Send data; True when the server closes the connection without sending a byte."""
    with RawConnection(server.port) as conn:
        try:
            conn.send(data)
        except OSError:
            return True
        return conn.read_until_eof() == b''


@pytest.fixture(scope='module')
def trusted(start_module_server, tmp_path_factory):
    log = tmp_path_factory.mktemp('proxylog') / 'access.log'
    server = start_module_server(
        SUITE_APP, '--threads', '4', '--trust-proxy', '127.0.0.1/32',
        '--trust-proxy', '192.0.2.0/24', '--trust-proxy', '2001:db8::/32', *ALL_HEADERS,
        '--access', '/admin=Require ip 203.0.113.0/24', '--log-level', 'debug',
        '--access-log', str(log), '--access-log-format', '%a|%{c}a|%h|%U')
    server.access_log_path = log
    return server


@pytest.fixture(scope='module')
def untrusted(start_module_server):
    return start_module_server(SUITE_APP, '--threads', '1', '--trust-proxy', '10.0.0.0/8',
                               *ALL_HEADERS)


@pytest.fixture(scope='module')
def proxy_protocol(start_module_server):
    return start_module_server(SUITE_APP, '--threads', '2', '--trust-proxy', '127.0.0.1',
                               '--proxy-protocol', '--trust-proxy-header', 'x-forwarded-proto')


# ------------------------------------------------------------------ X-Forwarded-For chains

@pytest.mark.parametrize('xff, client, port', [
    ('203.0.113.7', '203.0.113.7', None),
    # walk from the right, skipping trusted proxies (192.0.2.0/24 and 127.0.0.1 are trusted)
    ('203.0.113.7, 192.0.2.10', '203.0.113.7', None),
    ('198.51.100.1, 203.0.113.7, 192.0.2.10, 192.0.2.11', '203.0.113.7', None),
    # left of the client the client wrote what it liked: never looked at
    ('not-an-address, 203.0.113.7', '203.0.113.7', None),
    # every hop trusted: the left-most is the client
    ('192.0.2.1, 192.0.2.2', '192.0.2.1', None),
    # empty list elements are ignored (RFC 9110 5.6.1)
    ('203.0.113.7, , 192.0.2.10', '203.0.113.7', None),
    # addresses with ports, IPv6 plain and bracketed
    ('203.0.113.7:4711', '203.0.113.7', '4711'),
    ('2001:db9::17', '2001:db9::17', None),
    ('[2001:db9::17]:4711', '2001:db9::17', '4711'),
    ('2001:db9::1, 2001:db8::5', '2001:db9::1', None),
])
def test_x_forwarded_for_chain(trusted, xff, client, port):
    env = env_via(trusted, [('X-Forwarded-For', xff)])
    assert env['REMOTE_ADDR'] == client
    assert env.get('REMOTE_PORT') == port
    assert env['HTTP_X_FORWARDED_FOR'] == xff  # a trusted proxy's headers reach the app


def test_several_x_forwarded_for_lines_are_one_list(trusted):
    env = env_via(trusted, [('X-Forwarded-For', '203.0.113.9'),
                            ('X-Forwarded-For', '192.0.2.3')])
    assert env['REMOTE_ADDR'] == '203.0.113.9'


@pytest.mark.parametrize('xff', ['203.0.113.7, garbage', '999.1.1.1', '203.0.113.7:99999',
                                 '[2001:db8::1', '203.0.113.7 192.0.2.1'])
def test_malformed_x_forwarded_for_keeps_the_peer(trusted, xff):
    env = env_once_logged(trusted, [('X-Forwarded-For', xff)],
                          r'forwarding header from a trusted proxy ignored: X-Forwarded-For ')
    assert env['REMOTE_ADDR'] == '127.0.0.1'


def test_no_forwarding_headers_keeps_the_peer(trusted):
    env = env_via(trusted)
    assert env['REMOTE_ADDR'] == '127.0.0.1'
    assert env['REMOTE_PORT'].isdigit() and env['REMOTE_PORT'] != '0'
    assert env['wsgi.url_scheme'] == 'http'


# ------------------------------------------------------------------ Forwarded (RFC 7239)

@pytest.mark.parametrize('value, client, port', [
    ('for=203.0.113.43', '203.0.113.43', None),
    ('For="203.0.113.43:8080"', '203.0.113.43', '8080'),
    ('for="[2001:db9:cafe::17]:4711"', '2001:db9:cafe::17', '4711'),
    ('for="[2001:db9:cafe::17]"', '2001:db9:cafe::17', None),
    ('for=198.51.100.17;by=192.0.2.60;proto=http', '198.51.100.17', None),
    ('for=203.0.113.43, for=192.0.2.61', '203.0.113.43', None),
    ('for=1.1.1.1, for=203.0.113.43;proto=https, for=192.0.2.61', '203.0.113.43', None),
    # the walk stops at an unknown or obfuscated node: the last trusted hop stays the client
    ('for=unknown', '127.0.0.1', None),
    ('for=_hidden, for=192.0.2.61', '192.0.2.61', None),
    ('for="_gazonk:_port"', '127.0.0.1', None),
    # a pair list with empty members and spaces around separators
    (' for=203.0.113.43 ; ;proto=http ', '203.0.113.43', None),
])
def test_forwarded_grammar(trusted, value, client, port):
    env = env_via(trusted, [('Forwarded', value)])
    assert env['REMOTE_ADDR'] == client
    if port is not None:
        assert env['REMOTE_PORT'] == port
    elif client != '127.0.0.1':
        assert 'REMOTE_PORT' not in env  # a proxy that gave no port


@pytest.mark.parametrize('value', [
    'for=2001:db8::1',               # IPv6 must be bracketed and quoted
    'for=203.0.113.43:80',           # a port needs quotes (":" is not a tchar)
    'for="203.0.113.43',             # unterminated quoted-string
    'for=203.0.113.43;for=1.2.3.4',  # a parameter twice in one element
    'for=203.0.113.43;proto=gopher',
    'for',
    'for="[2001:db8::1]x"',
    'for="300.1.1.1"',
])
def test_malformed_forwarded_is_ignored(trusted, value):
    env = env_once_logged(trusted, [('Forwarded', value)],
                          r'forwarding header from a trusted proxy ignored: .*Forwarded')
    assert env['REMOTE_ADDR'] == '127.0.0.1'


def test_forwarded_proto_and_host_come_from_the_clients_element(trusted):
    env = env_via(trusted, [('Forwarded', 'for=203.0.113.43;proto=https;host="shop.example:8443", '
                                          'for=192.0.2.61;proto=http;host=inner')])
    assert_items(env, {'REMOTE_ADDR': '203.0.113.43', 'wsgi.url_scheme': 'https', 'HTTPS': 'on',
                       'HTTP_HOST': 'shop.example:8443', 'SERVER_NAME': 'shop.example',
                       'SERVER_PORT': '8443'})


def test_forwarded_wins_over_x_forwarded_for(trusted):
    env = env_via(trusted, [('Forwarded', 'for=203.0.113.1'), ('X-Forwarded-For', '203.0.113.2')])
    assert env['REMOTE_ADDR'] == '203.0.113.1'


# ------------------------------------------------------------------ scheme, host, port

@pytest.mark.parametrize('proto, scheme, port', [('https', 'https', '443'), ('HTTPS', 'https', '443'),
                                                 ('http', 'http', '80'),
                                                 ('http, https', 'https', '443')])
def test_x_forwarded_proto(trusted, proto, scheme, port):
    env = env_via(trusted, [('X-Forwarded-Proto', proto)])
    assert env['wsgi.url_scheme'] == scheme
    assert env.get('HTTPS') == ('on' if scheme == 'https' else None)
    assert env['SERVER_PORT'] == port
    assert env['REMOTE_ADDR'] == '127.0.0.1'


def test_bad_x_forwarded_proto_is_ignored(trusted):
    env = env_once_logged(trusted, [('X-Forwarded-Proto', 'javascript')],
                          r'ignored: X-Forwarded-Proto is neither http nor https')
    assert env['wsgi.url_scheme'] == 'http'


def test_x_forwarded_host_and_port(trusted):
    env = env_via(trusted, [('X-Forwarded-Host', 'www.example.org'), ('X-Forwarded-Proto', 'https'),
                            ('X-Forwarded-Port', '8443')])
    assert_items(env, {'HTTP_HOST': 'www.example.org', 'SERVER_NAME': 'www.example.org',
                       'SERVER_PORT': '8443', 'wsgi.url_scheme': 'https'})


@pytest.mark.parametrize('host', ['evil.example/path', 'a b', 'x:notaport', ''])
def test_bad_x_forwarded_host_is_ignored(trusted, host):
    env = env_via(trusted, [('X-Forwarded-Host', host)])
    assert env['HTTP_HOST'] == '127.0.0.1'


# ------------------------------------------------------------------ untrusted peers

def test_untrusted_peer_headers_never_reach_the_app(untrusted):
    env = env_via(untrusted, [('X-Forwarded-For', '203.0.113.7'), ('X-Forwarded-Proto', 'https'),
                              ('X-Forwarded-Host', 'evil.example'), ('X-Forwarded-Port', '443'),
                              ('Forwarded', 'for=203.0.113.7;proto=https'),
                              ('X-Other', 'kept')])
    assert env['REMOTE_ADDR'] == '127.0.0.1'
    assert env['wsgi.url_scheme'] == 'http'
    assert 'HTTPS' not in env
    assert env['HTTP_HOST'] == '127.0.0.1'
    for key in ('HTTP_X_FORWARDED_FOR', 'HTTP_X_FORWARDED_PROTO', 'HTTP_X_FORWARDED_HOST',
                'HTTP_X_FORWARDED_PORT', 'HTTP_FORWARDED'):
        assert key not in env, key
    assert env['HTTP_X_OTHER'] == 'kept'


def test_lower_case_and_underscore_spellings_are_stripped_too(untrusted):
    env = env_via(untrusted, [('x-forwarded-for', '203.0.113.7'), ('X_Forwarded_For', '1.2.3.4')])
    assert env['REMOTE_ADDR'] == '127.0.0.1'
    assert 'HTTP_X_FORWARDED_FOR' not in env


def test_without_trust_proxy_headers_pass_untouched(start_server):
    server = start_server(SUITE_APP, '--threads', '1')
    env = env_via(server, [('X-Forwarded-For', '203.0.113.7'), ('X-Forwarded-Proto', 'https')])
    assert env['REMOTE_ADDR'] == '127.0.0.1'
    assert env['wsgi.url_scheme'] == 'http'
    assert env['HTTP_X_FORWARDED_FOR'] == '203.0.113.7'


def test_default_headers_are_for_and_proto_only(start_server):
    server = start_server(SUITE_APP, '--threads', '1', '--trust-proxy', '127.0.0.1')
    env = env_via(server, [('X-Forwarded-For', '203.0.113.7'), ('X-Forwarded-Proto', 'https'),
                           ('X-Forwarded-Host', 'other.example'), ('Forwarded', 'for=1.2.3.4')])
    assert env['REMOTE_ADDR'] == '203.0.113.7'
    assert env['wsgi.url_scheme'] == 'https'
    assert env['HTTP_HOST'] == '127.0.0.1'
    assert env['HTTP_X_FORWARDED_HOST'] == 'other.example'  # not honoured, not stripped


# ------------------------------------------------------------------ access rules and the log

def test_access_rules_see_the_forwarded_client(trusted):
    with RawConnection(trusted.port) as conn:
        conn.send(build_request('GET', '/admin', [('X-Forwarded-For', '203.0.113.50')]))
        allowed = conn.read_response('GET')
        conn.send(build_request('GET', '/admin', [('X-Forwarded-For', '198.51.100.50')]))
        denied = conn.read_response('GET')
        conn.send(build_request('GET', '/admin'))
        peer = conn.read_response('GET')
    assert allowed.status == 404  # let through the rules; the suite has no such route
    assert denied.status == 403
    assert peer.status == 403


def test_keep_alive_requests_are_judged_one_by_one(trusted):
    with RawConnection(trusted.port) as conn:
        conn.send(build_request('GET', '/env', [('X-Forwarded-For', '203.0.113.1')]))
        first = conn.read_response('GET').json()
        conn.send(build_request('GET', '/env'))
        second = conn.read_response('GET').json()
    assert first['REMOTE_ADDR'] == '203.0.113.1'
    assert second['REMOTE_ADDR'] == '127.0.0.1'


@pytest.mark.parametrize('pipelined', [False, True])
def test_bad_request_after_a_forwarded_one_is_logged_with_the_peer(trusted, pipelined):
    good = build_request('GET', '/env', [('X-Forwarded-For', '203.0.113.88')])
    bad = b'GET /env HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n'
    mark = trusted.log_mark()
    with RawConnection(trusted.port) as conn:
        conn.send(good + bad if pipelined else good)
        assert conn.read_response('GET').json()['REMOTE_ADDR'] == '203.0.113.88'
        if not pipelined:
            conn.send(bad)
        assert conn.read_response('GET').status == 400
    line = trusted.wait_for_log(r'bad request \(400\)', since=mark)
    assert '127.0.0.1:' in line and '203.0.113.88' not in line


def test_access_log_shows_client_and_connection_peer(trusted):
    env_via(trusted, [('X-Forwarded-For', '203.0.113.77')], target='/env/logged')
    line = wait_until(lambda: next((text for text in trusted.access_log_path.read_text().splitlines()
                                    if text.endswith('|/env/logged')), None), 10,
                      message='access log line')
    assert line == '203.0.113.77|127.0.0.1|203.0.113.77|/env/logged'


# ------------------------------------------------------------------ PROXY protocol

V2_SIG = b'\r\n\r\n\x00\r\nQUIT\n'


def v2_header(command=1, family=0x11, addresses=None, tlvs=b''):
    if addresses is None:
        addresses = socket.inet_aton('203.0.113.9') + socket.inet_aton('127.0.0.1') + \
            struct.pack('!HH', 51000, 80)
    body = addresses + tlvs
    return V2_SIG + bytes([0x20 | command, family]) + struct.pack('!H', len(body)) + body


@pytest.mark.parametrize('header, client, port', [
    (b'PROXY TCP4 203.0.113.9 127.0.0.1 51000 80\r\n', '203.0.113.9', '51000'),
    (b'PROXY TCP6 2001:db8::9 ::1 4711 443\r\n', '2001:db8::9', '4711'),
    (b'PROXY UNKNOWN\r\n', '127.0.0.1', None),
    (b'PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n', '127.0.0.1', None),
    (v2_header(), '203.0.113.9', '51000'),
    (v2_header(family=0x21, addresses=socket.inet_pton(socket.AF_INET6, '2001:db8::7') +
               socket.inet_pton(socket.AF_INET6, '::1') + struct.pack('!HH', 1234, 443)),
     '2001:db8::7', '1234'),
    (v2_header(tlvs=b'\x04\x00\x03abc' + b'\x01\x00\x02h2'), '203.0.113.9', '51000'),
    (v2_header(command=0, family=0, addresses=b''), '127.0.0.1', None),  # LOCAL: health check
    (v2_header(family=0, addresses=b''), '127.0.0.1', None),             # UNSPEC
    (v2_header(family=0x31, addresses=b'\0' * 216), '127.0.0.1', None),  # AF_UNIX
])
def test_proxy_protocol_valid(proxy_protocol, header, client, port):
    env = env_via(proxy_protocol, prefix=header)
    assert env['REMOTE_ADDR'] == client
    if port:
        assert env['REMOTE_PORT'] == port


def test_proxy_protocol_v2_ssl_tlv_means_https(proxy_protocol):
    ssl_tlv = b'\x20\x00\x05' + b'\x01' + b'\0\0\0\0'  # PP2_TYPE_SSL, PP2_CLIENT_SSL
    env = env_via(proxy_protocol, prefix=v2_header(tlvs=ssl_tlv))
    assert env['wsgi.url_scheme'] == 'https'


def test_proxy_protocol_then_untrusted_forwarding_headers(proxy_protocol):
    # the PROXY client 203.0.113.9 is not a trusted proxy: its X-Forwarded-Proto is removed
    env = env_via(proxy_protocol, [('X-Forwarded-Proto', 'https')],
                  prefix=b'PROXY TCP4 203.0.113.9 127.0.0.1 51000 80\r\n')
    assert env['wsgi.url_scheme'] == 'http'
    assert 'HTTP_X_FORWARDED_PROTO' not in env


def test_proxy_protocol_keep_alive_reads_the_header_once(proxy_protocol):
    with RawConnection(proxy_protocol.port) as conn:
        conn.send(b'PROXY TCP4 203.0.113.9 127.0.0.1 51000 80\r\n' + build_request('GET', '/env'))
        first = conn.read_response('GET').json()
        conn.send(build_request('GET', '/env'))
        second = conn.read_response('GET').json()
    assert first['REMOTE_ADDR'] == second['REMOTE_ADDR'] == '203.0.113.9'


@pytest.mark.parametrize('header', [
    v2_header(),
    b'PROXY TCP4 203.0.113.9 127.0.0.1 51000 80\r\n',
])
def test_proxy_protocol_byte_by_byte(proxy_protocol, header):
    data = header + build_request('GET', '/env')
    with RawConnection(proxy_protocol.port) as conn:
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(data)):
            conn.send(data[i:i + 1])
        response = conn.read_response('GET')
    assert response.json()['REMOTE_ADDR'] == '203.0.113.9'


@pytest.mark.parametrize('data', [
    build_request('GET', '/env'),                            # plain HTTP: no header at all
    b'PROXY TCP4 203.0.113.9 127.0.0.1 51000 80\n',          # LF without CR
    b'PROXY TCP4 203.0.113.9  127.0.0.1 51000 80\r\n',       # two spaces
    b'PROXY TCP4 2001:db8::1 127.0.0.1 51000 80\r\n',        # v6 address under TCP4
    b'PROXY TCP4 203.0.113.9 127.0.0.1 051000 80\r\n',       # leading zero
    b'PROXY TCP4 203.0.113.9 127.0.0.1 65536 80\r\n',        # port out of range
    b'PROXY TCP4 203.0.113.9 127.0.0.1 51000\r\n',           # a field missing
    b'PROXY UDP4 203.0.113.9 127.0.0.1 51000 80\r\n',
    b'PROXY UNKNOWN ' + b'x' * 120 + b'\r\n',                # over 107 bytes
    b'PROXY TCP4 203.0.113.9\x00127.0.0.1 51000 80\r\n',
    v2_header()[:12] + b'\x30\x11\x00\x0c' + v2_header()[16:],  # version 3
    v2_header()[:12] + b'\x22\x11\x00\x0c' + v2_header()[16:],  # command 2
    v2_header()[:12] + b'\x21\x12\x00\x0c' + v2_header()[16:],  # DGRAM
    v2_header()[:12] + b'\x21\x41\x00\x0c' + v2_header()[16:],  # family 4
    v2_header()[:12] + b'\x21\x11\x00\x08' + v2_header()[16:24],  # shorter than its addresses
    v2_header()[:12] + b'\x21\x11\xff\xff',                      # longer than we accept
    v2_header(tlvs=b'\x04\x00\x09abc'),                         # TLV past the end
    v2_header(tlvs=b'\x04\x00'),                                # truncated TLV
])
def test_proxy_protocol_malformed_is_closed(proxy_protocol, data):
    mark = proxy_protocol.log_mark()
    assert closed_without_answer(proxy_protocol, data)
    proxy_protocol.wait_for_log(r'\(--proxy-protocol\): connection closed', since=mark)
    # other connections are unaffected
    env = env_via(proxy_protocol, prefix=b'PROXY TCP4 203.0.113.1 127.0.0.1 1 80\r\n')
    assert env['REMOTE_ADDR'] == '203.0.113.1'


def test_proxy_protocol_partial_header_times_out_without_an_answer(start_server):
    server = start_server(SUITE_APP, '--threads', '1', '--trust-proxy', '127.0.0.1',
                          '--proxy-protocol', '--header-timeout', '1', '--header-max-timeout', '1')
    mark = server.log_mark()
    assert closed_without_answer(server, b'PROXY TCP4 203.0.113.9 ')
    server.wait_for_log(r'PROXY header not complete in time', since=mark)


def test_proxy_protocol_from_an_untrusted_peer_is_closed(start_server):
    server = start_server(SUITE_APP, '--threads', '1', '--trust-proxy', '10.0.0.0/8',
                          '--proxy-protocol')
    mark = server.log_mark()
    assert closed_without_answer(server, b'PROXY TCP4 203.0.113.9 127.0.0.1 51000 80\r\n' +
                                 build_request('GET', '/env'))
    server.wait_for_log(r'127\.0\.0\.1:\d+: connection from a peer that is not a trusted proxy',
                        since=mark)


# ------------------------------------------------------------------ daemon mode

def test_daemon_mode_sees_the_forwarded_client(start_server):
    server = start_server(SUITE_APP, '--daemon', '--processes', '1', '--threads', '2',
                          '--trust-proxy', '127.0.0.1', '--trust-proxy-header', 'x-forwarded-for',
                          '--trust-proxy-header', 'x-forwarded-proto',
                          '--trust-proxy-header', 'x-forwarded-host')
    env = env_via(server, [('X-Forwarded-For', '203.0.113.5, 127.0.0.1'),
                           ('X-Forwarded-Proto', 'https'), ('X-Forwarded-Host', 'app.example')])
    assert env['REMOTE_ADDR'] == '203.0.113.5'
    assert env['wsgi.url_scheme'] == 'https'
    assert env['HTTP_HOST'] == 'app.example'
    assert env['HTTP_X_FORWARDED_FOR'] == '203.0.113.5, 127.0.0.1'


def test_daemon_mode_strips_untrusted_headers(start_server):
    server = start_server(SUITE_APP, '--daemon', '--processes', '1', '--threads', '2',
                          '--trust-proxy', '10.0.0.0/8')
    env = env_via(server, [('X-Forwarded-For', '203.0.113.5'), ('X-Forwarded-Proto', 'https')])
    assert env['REMOTE_ADDR'] == '127.0.0.1'
    assert env['wsgi.url_scheme'] == 'http'
    assert 'HTTP_X_FORWARDED_FOR' not in env


# ------------------------------------------------------------------ settings

@pytest.mark.parametrize('args, message', [
    (['--trust-proxy', '10.0.0.0/33'], "--trust-proxy"),
    (['--trust-proxy', 'proxy.example'], "--trust-proxy"),
    (['--trust-proxy', '127.0.0.1', '--trust-proxy-header', 'x-real-ip'], "--trust-proxy-header"),
    (['--proxy-protocol'], "--proxy-protocol needs --trust-proxy"),
])
def test_bad_settings_are_cli_errors(args, message):
    proc = subprocess.run([sys.executable, '-m', 'pywsgi', str(SUITE_APP), *args],
                          capture_output=True, text=True, timeout=60, cwd='/')
    assert proc.returncode == 2
    assert 'pywsgi: error:' in proc.stderr and message in proc.stderr, proc.stderr


# ------------------------------------------------------------------ the C parsers alone

@pytest.mark.skipif(shutil.which('gcc') is None, reason='gcc not installed')
def test_c_program_under_sanitizers(tmp_path):
    """tests/c/test_proxy.c: PROXY v1/v2 (every header also byte by byte), the trust list and
    the forwarding headers, under ASan + UBSan with exact-size buffers."""
    exe = tmp_path / 'test_proxy'
    csrc = REPO_ROOT / 'csrc'
    subprocess.run(
        ['gcc', '-std=c11', '-Wall', '-Wextra', '-Werror', '-g', '-O1',
         '-fsanitize=address,undefined', '-fno-sanitize-recover=all', '-fno-omit-frame-pointer',
         '-I', str(csrc), str(REPO_ROOT / 'tests' / 'c' / 'test_proxy.c'),
         str(csrc / 'proxy_protocol.c'), str(csrc / 'proxy_trust.c'), '-o', str(exe)],
        check=True)
    env = dict(os.environ, ASAN_OPTIONS='detect_leaks=1:abort_on_error=0',
               UBSAN_OPTIONS='print_stacktrace=1:halt_on_error=1')
    proc = subprocess.run([str(exe)], capture_output=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode(errors='replace')[-4000:]
    assert b' 0 failures' in proc.stdout


def test_settings_from_the_python_api():
    from pywsgi import config
    built = config.build(trust_proxy='10.1.2.3/8', trust_proxy_header=['Forwarded'])
    assert built.trust_proxy == ['10.0.0.0/8']
    assert built.trust_proxy_header == ['forwarded']
    assert config.build(trust_proxy=['::1', 'UNIX']).trust_proxy == ['::1/128', 'unix']
    with pytest.raises(config.ConfigError, match='trust_proxy'):
        config.build(trust_proxy=['10.0.0.0/8'] * 65)
    with pytest.raises(config.ConfigError, match='--proxy-protocol needs --trust-proxy'):
        config.build(proxy_protocol=True)


def _ipv6_loopback_ok():
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(('::1', 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback_ok(), reason='no IPv6 loopback')
def test_ipv6_peer_trusted(tmp_path):
    """A proxy on ::1 (ServerProcess listens on 127.0.0.1 only, so this one is started here)."""
    with socket.socket(socket.AF_INET6) as probe:
        probe.bind(('::1', 0))
        port = probe.getsockname()[1]
    stderr = open(tmp_path / 'stderr.log', 'wb')
    proc = subprocess.Popen([sys.executable, '-m', 'pywsgi', str(SUITE_APP), '--host', '::1',
                             '--port', str(port), '--threads', '1', '--trust-proxy', '::1'],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
                            cwd=str(tmp_path), start_new_session=True)

    def get_env(headers):
        with socket.create_connection(('::1', port), timeout=10) as sock:
            sock.sendall(build_request('GET', '/env', headers))
            data = b''
            while b'\r\n\r\n' not in data or len(data.split(b'\r\n\r\n', 1)[1]) < int(
                    data.split(b'Content-Length: ', 1)[1].split(b'\r\n', 1)[0]):
                chunk = sock.recv(65536)
                assert chunk, data
                data += chunk
        return json.loads(data.split(b'\r\n\r\n', 1)[1])

    def ready():
        try:
            socket.create_connection(('::1', port), timeout=0.5).close()
            return True
        except OSError:
            assert proc.poll() is None, (tmp_path / 'stderr.log').read_text()
            return False
    try:
        wait_until(ready, 30, message='server on [::1]:%d' % port)
        assert get_env([])['REMOTE_ADDR'] == '::1'
        env = get_env([('X-Forwarded-For', '2001:db8::42, ::1'), ('X-Forwarded-Proto', 'https')])
        assert env['REMOTE_ADDR'] == '2001:db8::42'
        assert env['wsgi.url_scheme'] == 'https'
    finally:
        stop_process(proc)
        stderr.close()
