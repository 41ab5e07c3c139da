"""Handler scripts (issue 5, point 2): with --handler-scripts, every *.wsgi file under the document
root or an alias directory is an application (AddHandler wsgi-script .wsgi): the PATH_INFO split,
loading on first use, reloading when the file changes, a broken script answered with 500 while the
server lives on, a missing one with 404, and no way out of the root."""
import os
import textwrap

import pytest

SCRIPT = textwrap.dedent('''
    VERSION = 'VERSION_HERE'

    def application(environ, start_response):
        body = ('%s SCRIPT_NAME=%s PATH_INFO=%s FILE=%s' % (
            VERSION, environ['SCRIPT_NAME'], environ['PATH_INFO'],
            environ.get('SCRIPT_FILENAME'))).encode('latin-1')
        start_response('200 OK', [('Content-Type', 'text/plain'),
                                  ('Content-Length', str(len(body)))])
        return [body]
    ''')


def write_script(path, version):
    path.write_text(SCRIPT.replace('VERSION_HERE', version))


@pytest.fixture
def site(tmp_path):
    """A document root with scripts, a static file, a broken script; a script outside it."""
    root = tmp_path / 'htdocs'
    (root / 'dir').mkdir(parents=True)
    write_script(root / 'dir' / 'app.wsgi', 'v1')
    write_script(root / 'top.wsgi', 'top')
    (root / 'dir' / 'plain.txt').write_text('just a file\n')
    (root / 'index.html').write_text('<p>home</p>\n')
    (root / 'broken.wsgi').write_text('import no_such_module_for_pywsgi_tests\n')
    (root / 'no_callable.wsgi').write_text('x = 1\n')
    outside = tmp_path / 'outside'
    outside.mkdir()
    write_script(outside / 'secret.wsgi', 'secret')
    os.symlink(outside / 'secret.wsgi', root / 'link.wsgi')
    os.symlink(outside, root / 'linkdir')
    return root


def test_script_runs_with_script_name_and_path_info_split(start_server, site):
    server = start_server('--document-root', site, '--handler-scripts')

    response, body = server.get('/dir/app.wsgi/more/parts')
    assert response.status == 200, body
    assert body == ('v1 SCRIPT_NAME=/dir/app.wsgi PATH_INFO=/more/parts FILE=%s'
                    % (site / 'dir' / 'app.wsgi')).encode()

    response, body = server.get('/dir/app.wsgi')
    assert response.status == 200
    assert body.startswith(b'v1 SCRIPT_NAME=/dir/app.wsgi PATH_INFO= ')

    response, body = server.get('/dir/app.wsgi/')
    assert body.startswith(b'v1 SCRIPT_NAME=/dir/app.wsgi PATH_INFO=/ ')

    response, body = server.get('/top.wsgi/x')
    assert body.startswith(b'top SCRIPT_NAME=/top.wsgi PATH_INFO=/x ')


def test_other_paths_are_static_files_of_the_same_mount(start_server, site):
    server = start_server('--document-root', site, '--handler-scripts')
    response, body = server.get('/dir/plain.txt')
    assert (response.status, body) == (200, b'just a file\n')
    response, body = server.get('/')
    assert (response.status, body) == (200, b'<p>home</p>\n')


def test_url_alias_directory_prefixes_script_name(start_server, site):
    server = start_server('--url-alias', '/site', site, '--handler-scripts')
    response, body = server.get('/site/dir/app.wsgi/more')
    assert response.status == 200, body
    assert body.startswith(b'v1 SCRIPT_NAME=/site/dir/app.wsgi PATH_INFO=/more ')
    response, _ = server.get('/dir/app.wsgi')
    assert response.status == 404


def test_script_is_reloaded_when_the_file_changes(start_server, site):
    server = start_server('--document-root', site, '--handler-scripts')
    script = site / 'dir' / 'app.wsgi'
    _, body = server.get('/dir/app.wsgi/x')
    assert body.startswith(b'v1 ')

    write_script(script, 'v2')
    stat = script.stat()
    os.utime(script, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    mark = server.log_mark()
    response, body = server.get('/dir/app.wsgi/x')
    assert response.status == 200
    assert body.startswith(b'v2 SCRIPT_NAME=/dir/app.wsgi PATH_INFO=/x ')
    server.wait_for_log(r'reloaded handler script .*app\.wsgi', since=mark)

    # unchanged file: the loaded module is kept (no reload line)
    mark = server.log_mark()
    _, body = server.get('/dir/app.wsgi/x')
    assert body.startswith(b'v2 ')
    assert 'reloaded' not in server.stderr_text()[mark:]


def test_broken_script_is_500_with_a_log_line_and_the_server_lives_on(start_server, site):
    server = start_server('--document-root', site, '--handler-scripts')
    mark = server.log_mark()
    response, _ = server.get('/broken.wsgi/x')
    assert response.status == 500
    server.wait_for_log(r'\[pywsgi:error\].*cannot load handler script .*broken\.wsgi.*'
                        r'no_such_module_for_pywsgi_tests', since=mark)

    response, _ = server.get('/no_callable.wsgi')
    assert response.status == 500
    server.wait_for_log(r"no_callable\.wsgi.*no WSGI callable named 'application'", since=mark)

    response, body = server.get('/dir/app.wsgi/still')
    assert response.status == 200
    assert body.startswith(b'v1 ')

    # fixing the script makes it work without a restart
    broken = site / 'broken.wsgi'
    write_script(broken, 'fixed')
    stat = broken.stat()
    os.utime(broken, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    response, body = server.get('/broken.wsgi/x')
    assert response.status == 200
    assert body.startswith(b'fixed SCRIPT_NAME=/broken.wsgi PATH_INFO=/x ')


def test_missing_script_is_404(start_server, site):
    server = start_server('--document-root', site, '--handler-scripts')
    for path in ('/nope.wsgi', '/nope.wsgi/more', '/dir/nope.wsgi/x', '/nodir/app.wsgi'):
        response, _ = server.get(path)
        assert response.status == 404, path


@pytest.fixture(scope='module')
def traversal_server(start_module_server, tmp_path_factory):
    base = tmp_path_factory.mktemp('traversal')
    root = base / 'htdocs'
    (root / 'dir').mkdir(parents=True)
    write_script(root / 'dir' / 'app.wsgi', 'v1')
    outside = base / 'outside'
    outside.mkdir()
    write_script(outside / 'secret.wsgi', 'secret')
    os.symlink(outside / 'secret.wsgi', root / 'link.wsgi')
    os.symlink(outside, root / 'linkdir')
    return start_module_server('--document-root', root, '--handler-scripts')


@pytest.mark.parametrize('path', [
    '/../outside/secret.wsgi',
    '/dir/../../outside/secret.wsgi/x',
    '/%2e%2e/outside/secret.wsgi',
    '/dir/%2e%2e/%2e%2e/outside/secret.wsgi',
    '/dir%2f..%2f..%2foutside/secret.wsgi',
    '/dir/app.wsgi%00/x',
    '/link.wsgi',
    '/link.wsgi/x',
    '/linkdir/secret.wsgi',
])
def test_scripts_outside_the_root_never_run(traversal_server, path):
    response, body = traversal_server.get(path)
    assert response.status in (400, 403, 404), (path, response.status)
    assert b'secret' not in body


def test_follow_symlinks_allows_a_linked_script(start_server, site):
    server = start_server('--document-root', site, '--handler-scripts', '--follow-symlinks')
    response, body = server.get('/link.wsgi/x')
    assert response.status == 200
    assert body.startswith(b'secret SCRIPT_NAME=/link.wsgi PATH_INFO=/x ')


def test_without_the_flag_scripts_do_not_run(start_server, site):
    server = start_server('--document-root', site)
    response, body = server.get('/dir/app.wsgi/x')
    assert response.status == 404  # a file with more path after it is no static file
    assert b'SCRIPT_NAME' not in body


def test_document_root_files_win_over_an_app_at_the_root(start_server, site):
    from serverproc import APPS_DIR
    server = start_server(APPS_DIR / 'other.wsgi', '--document-root', site, '--handler-scripts')
    response, body = server.get('/dir/plain.txt')
    assert (response.status, body) == (200, b'just a file\n')
    response, body = server.get('/dir/app.wsgi/p')
    assert body.startswith(b'v1 SCRIPT_NAME=/dir/app.wsgi PATH_INFO=/p ')
    response, body = server.get('/no/such/file')
    assert (response.status, body) == (200, b'other app SCRIPT_NAME= PATH_INFO=/no/such/file')
