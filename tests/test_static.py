"""Static files (--document-root, --url-alias) served by the C core: real servers, real sockets.

Covers exact bytes (small files and a 1 MiB one through sendfile), HEAD, conditional requests
(304), ranges (206/416), traversal attempts (never a byte from outside the root), directory
index / 301 / 403, 405, precompressed siblings, keep-alive, and a file changed between requests.
"""
import email.utils
import gzip
import os
import threading
import time

import pytest

from httpraw import RawConnection

SECRET = b'TOP-SECRET-OUTSIDE-THE-ROOT'
SMALL = b'hello, static world\n'


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture(scope='module')
def tree(tmp_path_factory):
    base = tmp_path_factory.mktemp('static')
    root = base / 'root'
    outside = base / 'outside'
    _write(outside / 'secret.txt', SECRET + b'\n')
    _write(base / 'root-sibling' / 'secret.txt', SECRET + b' sibling\n')
    _write(root / 'small.txt', SMALL)
    _write(root / 'empty.txt', b'')
    _write(root / 'page.html', b'<!DOCTYPE html><p>page</p>\n')
    _write(root / 'image.png', b'\x89PNG\r\n\x1a\n' + bytes(range(256)))
    _write(root / 'data.unknownext', b'opaque')
    _write(root / 'big.bin', os.urandom(1 << 20))
    _write(root / 'with space.txt', b'space\n')
    _write(root / 'caf\xc3\xa9.txt'.encode('latin-1').decode('utf-8'), b'utf-8 name\n')
    _write(root / 'sub' / 'index.html', b'<p>sub index</p>\n')
    _write(root / 'sub' / 'deeper' / 'file.txt', b'deeper\n')
    (root / 'noindex').mkdir()
    (root / 'evil.example').mkdir()
    _write(root / 'noindex' / 'other.txt', b'other\n')
    _write(root / '.htaccess', b'Require all denied\n')
    _write(root / 'style.css', b'body { color: red; }\n' * 20)
    _write(root / 'style.css.gz', gzip.compress((root / 'style.css').read_bytes()))
    _write(root / 'both.js', b'console.log("identity");\n' * 10)
    _write(root / 'both.js.gz', gzip.compress((root / 'both.js').read_bytes()))
    _write(root / 'both.js.br', b'pretend-brotli-bytes')
    _write(root / 'stale.css', b'fresh content\n')
    _write(root / 'stale.css.gz', gzip.compress(b'old content\n'))
    old = time.time() - 3600
    os.utime(root / 'stale.css.gz', (old, old))
    _write(root / 'changing.txt', b'version one\n')
    os.symlink(outside / 'secret.txt', root / 'link-out.txt')
    os.symlink(outside, root / 'dir-out')
    os.symlink('small.txt', root / 'link-in.txt')
    os.symlink('../root-sibling', root / 'sibling-out')
    _write(base / 'alias' / 'a.txt', b'from the alias\n')
    _write(base / 'favicon.ico', b'\x00\x00\x01\x00icon')
    os.mkfifo(root / 'fifo')
    return base


@pytest.fixture(scope='module')
def server(start_module_server, tree):
    return start_module_server(
        '--document-root', tree / 'root',
        '--url-alias', '/alias', tree / 'alias',
        '--url-alias', '/favicon.ico', tree / 'favicon.ico',
        '--threads', '4', '--keep-alive-timeout', '30')


def raw(server, target, method='GET', headers=None, version='HTTP/1.1'):
    with RawConnection(server.port) as conn:
        return conn.request(method, target, headers=headers, version=version)


def assert_no_secret(response):
    assert SECRET not in response.raw


# ------------------------------------------------------------------ plain GET / HEAD

def test_small_file_exact_bytes_and_headers(server, tree):
    r = raw(server, '/small.txt')
    assert r.status == 200
    assert r.body == SMALL
    assert r.header('Content-Length') == str(len(SMALL))
    assert r.header('Content-Type') == 'text/plain; charset=utf-8'
    assert r.header('Accept-Ranges') == 'bytes'
    st = os.stat(tree / 'root' / 'small.txt')
    assert r.header('Last-Modified') == email.utils.formatdate(int(st.st_mtime), usegmt=True)
    assert r.header('ETag') == '"%x-%x"' % (st.st_size, st.st_mtime_ns)
    assert r.header('Date') and r.header('Server', '').startswith('pywsgi')


def test_one_mebibyte_file_exact_bytes(server, tree):
    expected = (tree / 'root' / 'big.bin').read_bytes()
    r = raw(server, '/big.bin')
    assert r.status == 200
    assert r.header('Content-Type') == 'application/octet-stream'
    assert r.header('Content-Length') == str(1 << 20)
    assert r.body == expected


def test_empty_file(server):
    r = raw(server, '/empty.txt')
    assert r.status == 200 and r.body == b'' and r.header('Content-Length') == '0'


@pytest.mark.parametrize('target,ctype', [
    ('/page.html', 'text/html; charset=utf-8'),
    ('/image.png', 'image/png'),
    ('/data.unknownext', 'application/octet-stream'),
    ('/style.css', 'text/css; charset=utf-8'),
])
def test_content_type_from_mimetypes(server, target, ctype):
    r = raw(server, target)
    assert r.status == 200 and r.header('Content-Type') == ctype


def test_percent_encoded_names(server):
    assert raw(server, '/with%20space.txt').body == b'space\n'
    assert raw(server, '/caf%C3%A9.txt').body == b'utf-8 name\n'


def test_head_sends_headers_only(server):
    with RawConnection(server.port) as conn:
        head = conn.request('HEAD', '/big.bin')
        assert head.status == 200 and head.body == b''
        assert head.header('Content-Length') == str(1 << 20)
        # The next response on the connection comes right after the head: no body was sent.
        after = conn.request('GET', '/small.txt')
        assert after.status == 200 and after.body == SMALL


def test_missing_file_404(server):
    r = raw(server, '/no-such-file.txt')
    assert r.status == 404
    assert r.header('Content-Type') == 'text/html; charset=utf-8'
    assert b'Not Found' in r.body


def test_file_with_trailing_slash_404(server):
    assert raw(server, '/small.txt/').status == 404
    assert raw(server, '/small.txt/more').status == 404


def test_method_not_allowed(server):
    with RawConnection(server.port) as conn:
        r = conn.request('POST', '/small.txt', body=b'x=1')
        assert r.status == 405
        assert r.header('Allow') == 'GET, HEAD'
        for method in ('PUT', 'DELETE', 'OPTIONS'):
            r = conn.request(method, '/small.txt')
            assert r.status == 405
        # The request body was drained: the connection still serves.
        assert conn.request('GET', '/small.txt').body == SMALL


def test_htaccess_refused(server):
    r = raw(server, '/.htaccess')
    assert r.status == 403 and b'Require' not in r.body


def test_fifo_refused(server):
    assert raw(server, '/fifo').status == 403


# ------------------------------------------------------------------ conditional requests

def _validators(server, target='/small.txt'):
    r = raw(server, target)
    return r.header('ETag'), r.header('Last-Modified')


def test_if_none_match_304(server):
    etag, modified = _validators(server)
    for value in (etag, '"nope", ' + etag, 'W/' + etag, '*'):
        r = raw(server, '/small.txt', headers=[('If-None-Match', value)])
        assert r.status == 304, value
        assert r.body == b''
        assert r.header('ETag') == etag and r.header('Last-Modified') == modified
        assert r.header('Content-Length') is None
    assert raw(server, '/small.txt', headers=[('If-None-Match', '"other"')]).status == 200


def test_if_modified_since_304(server):
    etag, modified = _validators(server)
    assert raw(server, '/small.txt', headers=[('If-Modified-Since', modified)]).status == 304
    later = email.utils.formatdate(time.time() + 3600, usegmt=True)
    assert raw(server, '/small.txt', headers=[('If-Modified-Since', later)]).status == 304
    earlier = email.utils.formatdate(
        email.utils.parsedate_to_datetime(modified).timestamp() - 10, usegmt=True)
    r = raw(server, '/small.txt', headers=[('If-Modified-Since', earlier)])
    assert r.status == 200 and r.body == SMALL
    # obsolete date forms are accepted (RFC 9110 5.6.7)
    dt = email.utils.parsedate_to_datetime(modified)
    asctime = dt.strftime('%a %b ') + ('%2d' % dt.day) + dt.strftime(' %H:%M:%S %Y')
    rfc850 = dt.strftime('%A, %d-%b-%y %H:%M:%S GMT')
    for value in (asctime, rfc850):
        assert raw(server, '/small.txt', headers=[('If-Modified-Since', value)]).status == 304
    # garbage is ignored
    assert raw(server, '/small.txt', headers=[('If-Modified-Since', 'yesterday')]).status == 200


def test_if_none_match_takes_precedence_over_if_modified_since(server):
    etag, modified = _validators(server)
    r = raw(server, '/small.txt', headers=[('If-None-Match', '"other"'),
                                           ('If-Modified-Since', modified)])
    assert r.status == 200


def test_if_match_412(server):
    etag, _ = _validators(server)
    assert raw(server, '/small.txt', headers=[('If-Match', etag)]).status == 200
    assert raw(server, '/small.txt', headers=[('If-Match', '"other"')]).status == 412


# ------------------------------------------------------------------ ranges

@pytest.mark.parametrize('spec,first,last', [
    ('bytes=0-4', 0, 4), ('bytes=7-', 7, len(SMALL) - 1), ('bytes=-6', len(SMALL) - 6,
                                                           len(SMALL) - 1),
    ('bytes=3-1000', 3, len(SMALL) - 1), ('bytes=-1000', 0, len(SMALL) - 1),
])
def test_single_range_206(server, spec, first, last):
    r = raw(server, '/small.txt', headers=[('Range', spec)])
    assert r.status == 206
    assert r.body == SMALL[first:last + 1]
    assert r.header('Content-Range') == 'bytes %d-%d/%d' % (first, last, len(SMALL))
    assert r.header('Content-Length') == str(last - first + 1)


def test_range_in_big_file(server, tree):
    data = (tree / 'root' / 'big.bin').read_bytes()
    r = raw(server, '/big.bin', headers=[('Range', 'bytes=100000-899999')])
    assert r.status == 206 and r.body == data[100000:900000]


@pytest.mark.parametrize('spec', ['bytes=1000-', 'bytes=%d-' % len(SMALL), 'bytes=-0'])
def test_unsatisfiable_range_416(server, spec):
    r = raw(server, '/small.txt', headers=[('Range', spec)])
    assert r.status == 416
    assert r.header('Content-Range') == 'bytes */%d' % len(SMALL)
    assert SMALL not in r.body


@pytest.mark.parametrize('spec', ['bytes=0-1,4-5', 'items=0-3', 'bytes=5-2', 'bytes=x-y'])
def test_multiple_or_invalid_ranges_give_the_whole_file(server, spec):
    r = raw(server, '/small.txt', headers=[('Range', spec)])
    assert r.status == 200 and r.body == SMALL


def test_if_range(server):
    etag, modified = _validators(server)
    r = raw(server, '/small.txt', headers=[('Range', 'bytes=0-4'), ('If-Range', etag)])
    assert r.status == 206 and r.body == SMALL[:5]
    r = raw(server, '/small.txt', headers=[('Range', 'bytes=0-4'), ('If-Range', modified)])
    assert r.status == 206
    r = raw(server, '/small.txt', headers=[('Range', 'bytes=0-4'), ('If-Range', '"stale"')])
    assert r.status == 200 and r.body == SMALL


def test_head_ignores_range(server):
    r = raw(server, '/small.txt', method='HEAD', headers=[('Range', 'bytes=0-4')])
    assert r.status == 200 and r.header('Content-Length') == str(len(SMALL))


# ------------------------------------------------------------------ traversal

@pytest.mark.parametrize('target', [
    '/../outside/secret.txt',
    '/../../../../etc/passwd',
    '/%2e%2e/outside/secret.txt',
    '/%2E%2E/%2e%2e/etc/passwd',
    '/sub/../../outside/secret.txt',
    '/sub/%2e%2e/%2e%2e/outside/secret.txt',
    '/..%2foutside%2fsecret.txt',
    '/sub%2f..%2f..%2foutside/secret.txt',
    '/small.txt%00.html',
    '/%00',
    '/alias/../../outside/secret.txt',
    '/alias/%2e%2e/%2e%2e/outside/secret.txt',
    '/favicon.ico/../../outside/secret.txt',
])
def test_traversal_refused(server, target):
    r = raw(server, target)
    assert r.status in (400, 403, 404), (target, r.status)
    assert_no_secret(r)


def test_backslash_refused(server):
    with RawConnection(server.port) as conn:
        conn.send(b'GET /sub\\..\\..\\outside\\secret.txt HTTP/1.1\r\nHost: x\r\n\r\n')
        r = conn.read_response()
    assert r.status in (400, 404)
    assert_no_secret(r)


@pytest.mark.parametrize('target', ['/link-out.txt', '/dir-out/secret.txt', '/dir-out/',
                                    '/sibling-out/secret.txt'])
def test_symlink_out_of_root_refused(server, target):
    r = raw(server, target)
    assert r.status in (403, 404), (target, r.status)
    assert_no_secret(r)
    r = raw(server, target, method='GET', headers=[('Range', 'bytes=0-5')])
    assert r.status in (403, 404)
    assert_no_secret(r)


def test_symlink_inside_root_served(server):
    r = raw(server, '/link-in.txt')
    assert r.status == 200 and r.body == SMALL


def test_follow_symlinks_serves_links_out(start_server, tree):
    srv = start_server('--document-root', tree / 'root', '--follow-symlinks')
    r = raw(srv, '/link-out.txt')
    assert r.status == 200 and r.body == SECRET + b'\n'
    assert raw(srv, '/dir-out/secret.txt').body == SECRET + b'\n'
    # ...but dot-segments still cannot climb out.
    assert_no_secret(raw(srv, '/%2e%2e/outside/secret.txt'))


# ------------------------------------------------------------------ directories

def test_directory_index(server):
    r = raw(server, '/sub/')
    assert r.status == 200 and r.body == b'<p>sub index</p>\n'
    assert r.header('Content-Type') == 'text/html; charset=utf-8'
    r = raw(server, '/')
    assert r.status == 403  # the root has no index.html: no listing


def test_directory_without_slash_redirects(server):
    r = raw(server, '/sub')
    assert r.status == 301 and r.header('Location') == '/sub/'
    r = raw(server, '/sub/deeper?x=1&y=2')
    assert r.status == 301 and r.header('Location') == '/sub/deeper/?x=1&y=2'
    r = raw(server, '/alias')
    assert r.status == 301 and r.header('Location') == '/alias/'


def test_redirect_never_leaves_the_host(server):
    for target in ('//evil.example', '///evil.example'):
        r = raw(server, target)
        assert r.status == 301
        assert r.header('Location') == '/evil.example/', target


def test_directory_without_index_403(server):
    r = raw(server, '/noindex/')
    assert r.status == 403 and b'other.txt' not in r.body


def test_directory_index_option(start_server, tree):
    srv = start_server('--document-root', tree / 'root', '--directory-index', 'other.txt')
    assert raw(srv, '/noindex/').body == b'other\n'
    assert raw(srv, '/sub/').status == 403


# ------------------------------------------------------------------ aliases

def test_url_alias_directory_and_file(server):
    assert raw(server, '/alias/a.txt').body == b'from the alias\n'
    r = raw(server, '/favicon.ico')
    assert r.status == 200 and r.body == b'\x00\x00\x01\x00icon'
    assert r.header('Content-Type') in ('image/vnd.microsoft.icon', 'image/x-icon')
    assert raw(server, '/favicon.ico/x').status == 404
    assert raw(server, '/alias/small.txt').status == 404


# ------------------------------------------------------------------ precompressed

def test_gzip_sibling(server, tree):
    original = (tree / 'root' / 'style.css').read_bytes()
    r = raw(server, '/style.css', headers=[('Accept-Encoding', 'gzip, deflate')])
    assert r.status == 200
    assert r.header('Content-Encoding') == 'gzip'
    assert r.has_token('Vary', 'Accept-Encoding')
    assert r.header('Content-Type') == 'text/css; charset=utf-8'
    assert gzip.decompress(r.body) == original
    identity = raw(server, '/style.css')
    assert identity.header('Content-Encoding') is None and identity.body == original
    assert identity.has_token('Vary', 'Accept-Encoding')
    assert identity.header('ETag') != r.header('ETag')


def test_gzip_sibling_conditional(server):
    r = raw(server, '/style.css', headers=[('Accept-Encoding', 'gzip')])
    again = raw(server, '/style.css', headers=[('Accept-Encoding', 'gzip'),
                                               ('If-None-Match', r.header('ETag'))])
    assert again.status == 304 and again.has_token('Vary', 'Accept-Encoding')


def test_brotli_preferred_and_q_values(server, tree):
    r = raw(server, '/both.js', headers=[('Accept-Encoding', 'gzip, br')])
    assert r.header('Content-Encoding') == 'br' and r.body == b'pretend-brotli-bytes'
    r = raw(server, '/both.js', headers=[('Accept-Encoding', 'br;q=0.5, gzip')])
    assert r.header('Content-Encoding') == 'gzip'
    r = raw(server, '/both.js', headers=[('Accept-Encoding', 'gzip;q=0, br;q=0')])
    assert r.header('Content-Encoding') is None
    assert r.body == (tree / 'root' / 'both.js').read_bytes()
    r = raw(server, '/both.js', headers=[('Accept-Encoding', '*')])
    assert r.header('Content-Encoding') in ('br', 'gzip')


def test_no_encoding_with_range(server, tree):
    original = (tree / 'root' / 'style.css').read_bytes()
    r = raw(server, '/style.css', headers=[('Accept-Encoding', 'gzip'), ('Range', 'bytes=0-9')])
    assert r.status == 206 and r.header('Content-Encoding') is None
    assert r.body == original[:10]


def test_stale_sibling_not_served(server):
    r = raw(server, '/stale.css', headers=[('Accept-Encoding', 'gzip')])
    assert r.header('Content-Encoding') is None and r.body == b'fresh content\n'


def test_no_precompressed_option(start_server, tree):
    srv = start_server('--document-root', tree / 'root', '--no-precompressed')
    r = raw(srv, '/style.css', headers=[('Accept-Encoding', 'gzip')])
    assert r.header('Content-Encoding') is None and r.header('Vary') is None


def test_cache_control_option(start_server, tree):
    srv = start_server('--document-root', tree / 'root', '--cache-control', 'public, max-age=60')
    r = raw(srv, '/small.txt')
    assert r.header('Cache-Control') == 'public, max-age=60'
    r = raw(srv, '/small.txt', headers=[('If-None-Match', r.header('ETag'))])
    assert r.status == 304 and r.header('Cache-Control') == 'public, max-age=60'


# ------------------------------------------------------------------ connections

def test_keep_alive_across_static_requests(server, tree):
    big = (tree / 'root' / 'big.bin').read_bytes()
    with RawConnection(server.port) as conn:
        etag = None
        for _ in range(3):
            r = conn.request('GET', '/small.txt')
            assert r.status == 200 and r.body == SMALL
            assert r.header('Connection') is None
            etag = r.header('ETag')
            assert conn.request('GET', '/big.bin').body == big
            assert conn.request('GET', '/missing').status == 404
            assert conn.request('GET', '/small.txt',
                                headers=[('If-None-Match', etag)]).status == 304
            assert conn.request('HEAD', '/page.html').status == 200
            assert conn.request('GET', '/small.txt',
                                headers=[('Range', 'bytes=0-1')]).body == SMALL[:2]
            assert conn.request('GET', '/sub').status == 301
            assert conn.request('GET', '/link-out.txt').status in (403, 404)
        assert not conn.closed_by_server(timeout=0.5)


def test_pipelined_static_requests(server):
    with RawConnection(server.port) as conn:
        conn.send(b'GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n'
                  b'GET /page.html HTTP/1.1\r\nHost: x\r\n\r\n'
                  b'GET /small.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-2\r\n\r\n')
        assert conn.read_response().body == SMALL
        assert conn.read_response().body == b'<!DOCTYPE html><p>page</p>\n'
        assert conn.read_response().body == SMALL[:3]


def test_http10_keep_alive(server):
    with RawConnection(server.port) as conn:
        r = conn.request('GET', '/small.txt', headers=[('Connection', 'keep-alive')],
                         version='HTTP/1.0')
        assert r.body == SMALL and r.header('Connection', '').lower() == 'keep-alive'
        r = conn.request('GET', '/small.txt', version='HTTP/1.0')
        assert r.body == SMALL
        assert conn.closed_by_server()


def test_connection_close(server):
    with RawConnection(server.port) as conn:
        r = conn.request('GET', '/small.txt', headers=[('Connection', 'close')])
        assert r.body == SMALL and r.header('Connection') == 'close'
        assert conn.closed_by_server()


def test_concurrent_requests(server, tree):
    big = (tree / 'root' / 'big.bin').read_bytes()
    failures = []

    def client(n):
        try:
            with RawConnection(server.port) as conn:
                for i in range(10):
                    target, expected = (('/big.bin', big) if (i + n) % 3 == 0
                                        else ('/small.txt', SMALL))
                    r = conn.request('GET', target)
                    if r.status != 200 or r.body != expected:
                        failures.append((n, i, r.status))
        except Exception as exc:  # reported below
            failures.append((n, repr(exc)))
    threads = [threading.Thread(target=client, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures


# ------------------------------------------------------------------ freshness

def test_changed_file_served_fresh(server, tree):
    path = tree / 'root' / 'changing.txt'
    with RawConnection(server.port) as conn:
        first = conn.request('GET', '/changing.txt')
        assert first.body == b'version one\n'
        # rewritten in place, longer
        path.write_bytes(b'version two, longer\n')
        second = conn.request('GET', '/changing.txt')
        assert second.body == b'version two, longer\n'
        assert second.header('ETag') != first.header('ETag')
        # rewritten in place, same size: the mtime (ns) / ctime change is enough
        path.write_bytes(b'version 3, longer!!\n')
        third = conn.request('GET', '/changing.txt')
        assert third.body == b'version 3, longer!!\n'
        # an old validator no longer matches
        assert conn.request('GET', '/changing.txt',
                            headers=[('If-None-Match', first.header('ETag'))]).status == 200
        # replaced by rename (a new inode)
        tmp = path.with_name('changing.tmp')
        tmp.write_bytes(b'four\n')
        os.replace(tmp, path)
        assert conn.request('GET', '/changing.txt').body == b'four\n'
        # replaced by a symlink leading out of the root
        path.unlink()
        os.symlink(tree / 'outside' / 'secret.txt', path)
        r = conn.request('GET', '/changing.txt')
        assert r.status in (403, 404)
        assert SECRET not in r.raw
        # deleted
        path.unlink()
        assert conn.request('GET', '/changing.txt').status == 404
        path.write_bytes(b'back\n')
        assert conn.request('GET', '/changing.txt').body == b'back\n'


# ------------------------------------------------------------------ startup and the WSGI fallback

def test_missing_document_root_fails_at_startup(tmp_path):
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, '-m', 'pywsgi', '--document-root',
                           str(tmp_path / 'nope'), '--port', '0'],
                          capture_output=True, timeout=60, cwd=str(tmp_path))
    assert proc.returncode != 0
    assert b'nope' in proc.stderr


def test_static_files_constructor_validates(tmp_path):
    from pywsgi.static import StaticFiles
    with pytest.raises(ValueError, match='does not exist'):
        StaticFiles(tmp_path / 'missing')
    (tmp_path / 'f.txt').write_bytes(b'x')
    assert StaticFiles(tmp_path / 'f.txt').is_file
    assert not StaticFiles(tmp_path).is_file
    with pytest.raises(ValueError):
        StaticFiles(tmp_path, is_file=True)


FALLBACK_APP = '''
from pywsgi.static import StaticFiles
files = StaticFiles(%r)
def application(environ, start_response):
    # a plain callable in front: the core runs it as an application, so StaticFiles.__call__
    # (the WSGI fallback) answers
    return files(environ, start_response)
'''


def test_wsgi_fallback(start_server, server, tree, tmp_path):
    script = tmp_path / 'fallback.wsgi'
    script.write_text(FALLBACK_APP % str(tree / 'root'))
    srv = start_server(script)
    r = raw(srv, '/small.txt')
    assert r.status == 200 and r.body == SMALL
    assert r.header('Content-Type') == 'text/plain; charset=utf-8'
    assert raw(srv, '/small.txt', headers=[('If-None-Match', r.header('ETag'))]).status == 304
    assert raw(srv, '/big.bin').body == (tree / 'root' / 'big.bin').read_bytes()
    assert raw(srv, '/sub/').body == b'<p>sub index</p>\n'
    assert raw(srv, '/sub').header('Location') == '/sub/'
    assert raw(srv, '//evil.example').header('Location') == '/evil.example/'
    assert raw(srv, '/missing').status == 404
    assert raw(srv, '/small.txt', method='POST').status == 405
    for target in ('/link-out.txt', '/dir-out/secret.txt', '/%2e%2e/outside/secret.txt',
                   '/.htaccess'):
        r = raw(srv, target)
        assert r.status in (400, 403, 404)
        assert_no_secret(r)
    etag = raw(srv, '/small.txt').header('ETag')
    assert raw(srv, '/small.txt', headers=[('If-Match', '"other"')]).status == 412
    r = raw(srv, '/small.txt', headers=[('Range', 'bytes=2-5')])
    assert r.status == 206 and r.body == SMALL[2:6]
    assert r.header('Content-Range') == 'bytes 2-5/%d' % len(SMALL)
    assert raw(srv, '/small.txt', headers=[('Range', 'bytes=-3')]).body == SMALL[-3:]
    assert raw(srv, '/small.txt', headers=[('Range', 'bytes=999-')]).status == 416
    assert raw(srv, '/small.txt', headers=[('Range', 'bytes=0-1'),
                                           ('If-Range', '"old"')]).status == 200
    assert raw(srv, '/small.txt', headers=[('Range', 'bytes=0-1'),
                                           ('If-Range', etag)]).status == 206
    head = raw(srv, '/big.bin', method='HEAD')
    assert head.status == 200 and head.header('Content-Length') == str(1 << 20)
    r = raw(srv, '/style.css', headers=[('Accept-Encoding', 'gzip')])
    assert r.header('Content-Encoding') == 'gzip' and r.has_token('Vary', 'Accept-Encoding')
    assert gzip.decompress(r.body) == (tree / 'root' / 'style.css').read_bytes()
    r = raw(srv, '/both.js', headers=[('Accept-Encoding', 'gzip, br')])
    assert r.header('Content-Encoding') == 'br'
    assert raw(srv, '/stale.css', headers=[('Accept-Encoding', 'gzip')]).body == b'fresh content\n'
    # the same validators as the C path, so caches see one resource either way
    assert etag == raw(server, '/small.txt').header('ETag')
