"""site/routing.py: the one Python router and path normaliser (the core's rules)."""
import pytest

from pywsgi.site.mounts import LoadedMount, MountKind
from pywsgi.site.routing import Router, normalize_path, prefix_matches, request_host


@pytest.mark.parametrize('prefix, path, serves', [
    ('', '/', True), ('', '/anything/at/all', True),
    ('/app', '/app', True), ('/app', '/app/', True), ('/app', '/app/x/y', True),
    ('/app', '/appx', False), ('/app', '/ap', False), ('/app', '/', False),
    ('/a/b', '/a/b/c', True), ('/a/b', '/a/bc', False), ('/a/b', '/a', False),
])
def test_a_prefix_serves_on_a_segment_boundary(prefix, path, serves):
    assert prefix_matches(prefix, path) is serves


@pytest.mark.parametrize('raw, mode, expected', [
    ('/plain/path', 'off', '/plain/path'),
    ('/caf%C3%A9', 'off', '/caf\xc3\xa9'),          # WSGI strings: the bytes as latin-1
    ('/a/./b/../c', 'off', '/a/c'),
    ('/a/b/..', 'off', '/a/'),
    ('/a/.', 'off', '/a/'),
    ('/%2e%2e/etc/passwd', 'off', 400),              # decoded, then above the root
    ('/a/../../b', 'off', 400),
    ('/a%00b', 'off', 400),
    ('relative', 'off', 400),
    ('/a%2Fb', 'off', 404),                          # AllowEncodedSlashes Off
    ('/a%2fb', 'on', '/a/b'),                        # On: a slash like any other
    ('/a%2F..%2Fb', 'on', '/b'),
    ('/a%2Fb/%41', 'nodecode', '/a%2Fb/A'),          # NoDecode: kept as written, the rest decoded
    ('/a%2f..', 'nodecode', '/a%2f..'),              # ... and never a segment boundary
])
def test_normalize_path(raw, mode, expected):
    assert normalize_path(raw, mode) == expected


@pytest.mark.parametrize('host_header, host', [
    ('Example.COM', 'example.com'), ('example.com:8080', 'example.com'),
    ('example.com.', 'example.com'), ('[::1]:8000', '[::1]'), ('', ''), (None, ''),
])
def test_request_host_as_the_core_matches_it(host_header, host):
    environ = {} if host_header is None else {'HTTP_HOST': host_header}
    assert request_host(environ) == host


def mount(prefix, name, vhost=None, kind=MountKind.APP):
    return LoadedMount(prefix, name, {}, kind, virtual_host=vhost)


def test_the_longest_prefix_wins_whatever_the_order():
    router = Router([mount('', 'root'), mount('/a/b', 'ab'), mount('/a', 'a')])
    assert router.route('/a/b/c').app == 'ab'
    assert router.route('/a/bc').app == 'a'
    assert router.route('/x').app == 'root'
    assert Router([mount('/a', 'a')]).route('/b') is None


def test_virtual_hosts_route_within_the_request_host():
    first = (0, ('one.example',))
    second = (1, ('two.example', 'www.two.example'))
    router = Router([mount('', 'one-root', first), mount('/cgi', 'one-cgi', first),
                     mount('', 'two-root', second), mount('/app', 'two-app', second)])
    assert router.route('/app/x', 'two.example').app == 'two-app'
    assert router.route('/app/x', 'www.two.example').app == 'two-app'
    # the same path on the other host: that host's mounts only
    assert router.route('/app/x', 'one.example').app == 'one-root'
    assert router.route('/cgi/x', 'two.example').app == 'two-root'
    # no name matches (or no Host): the first host, Apache's default virtual host
    assert router.route('/cgi/x', 'other.example').app == 'one-cgi'
    assert router.route('/cgi/x').app == 'one-cgi'


def test_a_daemon_mount_answers_502_when_python_calls_it():
    group = object()
    loaded = LoadedMount('/app', group, {}, MountKind.DAEMON)
    calls = []
    body = loaded.wsgi_app({}, lambda status, headers: calls.append((status, headers)))
    assert calls[0][0] == '502 Bad Gateway'
    assert b''.join(body) == b'This URL is served by a pywsgi daemon process group.\n'
    app = object()
    assert LoadedMount('/s', app, {}, MountKind.STATIC).wsgi_app is app
