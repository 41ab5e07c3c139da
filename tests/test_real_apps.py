"""Real applications (issue 16): Django 5.2, Flask 3.1 and Trac 1.6 -- plus one request each to
Bottle, Falcon and Pyramid -- run under a real pywsgi process and driven over HTTP as a user
would, with `requests` or a raw socket.

The frameworks come from the `test` extra. The applications live in tests/apps/real/; what they
need on disk (Django's database and collected static files, a Trac environment, a 50 MB file) is
made in temporary directories by the fixtures, with each framework's own tools (manage.py,
trac-admin) run by this interpreter, so each run starts from nothing."""
import hashlib
import os
import re
import shutil
import subprocess
import sys

import pytest
import requests

from httpraw import RawConnection, build_request
from serverproc import APPS_DIR

REAL_APPS = APPS_DIR / 'real'
DJANGO_SITE = REAL_APPS / 'django_site'
FLASK_APP = REAL_APPS / 'flask_app.py'
TIMEOUT = 30  # per HTTP request: a bound, not a speed check
MiB = 1 << 20


def run_tool(argv, cwd=None, env=None):
    """Run a framework's command-line tool with this interpreter; fail with its output."""
    result = subprocess.run([str(arg) for arg in argv], cwd=cwd,
                            env=dict(os.environ, **(env or {})), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=120)
    assert result.returncode == 0, '%s failed (%d):\n%s' % (
        ' '.join(map(str, argv)), result.returncode, result.stdout[-4000:])
    return result.stdout


def sha256(data):
    return hashlib.sha256(data).hexdigest()


# Each Django, Flask and Trac test runs in embedded mode and in daemon mode (--daemon: the server
# process relays every request, body and response, over a UNIX socket to the daemon process that
# runs the application, as mod_wsgi's WSGIDaemonProcess does).
SERVER_MODES = {'embedded': [], 'daemon': ['--daemon']}


def send_tolerating_close(connection, data, piece=64 * 1024):
    """Send as much of `data` as the server takes: a server that has answered early (413) may
    stop reading and close; what counts is the response it sent, read afterwards."""
    try:
        for start in range(0, len(data), piece):
            connection.send(data[start:start + piece])
    except (BrokenPipeError, ConnectionResetError):
        pass


# --- Django 5.2: the admin, with a CSRF-protected login, static files from --url-alias -----------

DJANGO_USER, DJANGO_PASSWORD = 'admin', 'correct horse battery staple'


@pytest.fixture(scope='module', params=list(SERVER_MODES))
def django_server(request, tmp_path_factory, start_module_server):
    data = tmp_path_factory.mktemp('django')
    env = {'REALSITE_DB': str(data / 'db.sqlite3'), 'REALSITE_STATIC_ROOT': str(data / 'static'),
           'DJANGO_SETTINGS_MODULE': 'realsite.settings'}
    manage = [sys.executable, DJANGO_SITE / 'manage.py']
    run_tool(manage + ['migrate', '--noinput'], cwd=DJANGO_SITE, env=env)
    run_tool(manage + ['createsuperuser', '--noinput', '--username', DJANGO_USER,
                       '--email', 'admin@example.com'],
             cwd=DJANGO_SITE, env=dict(env, DJANGO_SUPERUSER_PASSWORD=DJANGO_PASSWORD))
    run_tool(manage + ['collectstatic', '--noinput'], cwd=DJANGO_SITE, env=env)
    # As under mod_wsgi: the project's wsgi.py as the script, the project directory importable
    # (pywsgi's working directory, like WSGIPythonPath), STATIC_ROOT served by the server.
    server = start_module_server(DJANGO_SITE / 'realsite' / 'wsgi.py',
                                 *SERVER_MODES[request.param],
                                 '--url-alias', '/static', data / 'static',
                                 cwd=DJANGO_SITE, env=env)
    server.static_root = data / 'static'
    return server


def csrf_token_in(html):
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, 'no csrfmiddlewaretoken in the form:\n' + html[:2000]
    return match.group(1)


def django_login(server):
    session = requests.Session()
    login_url = server.url + '/admin/login/?next=/admin/'
    page = session.get(login_url, timeout=TIMEOUT)
    assert page.status_code == 200, page.text[:2000]
    assert 'csrftoken' in session.cookies
    response = session.post(login_url, timeout=TIMEOUT, data={
        'csrfmiddlewaretoken': csrf_token_in(page.text), 'username': DJANGO_USER,
        'password': DJANGO_PASSWORD, 'next': '/admin/'})
    return session, page, response


def test_django_admin_login_with_csrf_reaches_the_admin_index(django_server):
    session, _, response = django_login(django_server)
    assert response.status_code == 200, response.text[:2000]
    assert [step.status_code for step in response.history] == [302]
    assert response.url == django_server.url + '/admin/'
    assert 'Site administration' in response.text
    assert 'sessionid' in session.cookies
    assert 'Log out' in response.text and DJANGO_USER in response.text


def test_django_login_without_the_csrf_token_is_refused(django_server):
    session = requests.Session()
    session.get(django_server.url + '/admin/login/', timeout=TIMEOUT)
    response = session.post(django_server.url + '/admin/login/', timeout=TIMEOUT,
                            data={'username': DJANGO_USER, 'password': DJANGO_PASSWORD})
    assert response.status_code == 403
    assert 'CSRF verification failed' in response.text


def test_django_admin_form_post_after_login_saves(django_server):
    session, _, index = django_login(django_server)
    assert index.status_code == 200
    add_url = django_server.url + '/admin/auth/group/add/'
    form = session.get(add_url, timeout=TIMEOUT)
    assert form.status_code == 200, form.text[:2000]
    saved = session.post(add_url, timeout=TIMEOUT, data={
        'csrfmiddlewaretoken': csrf_token_in(form.text), 'name': 'editors', '_save': 'Save'})
    assert saved.status_code == 200, saved.text[:2000]
    assert saved.url == django_server.url + '/admin/auth/group/'
    assert 'editors' in saved.text and 'was added successfully' in saved.text


def test_django_admin_stylesheets_come_from_the_url_alias(django_server):
    # What a browser does next: fetch the stylesheets the login page links to.
    _, page, _ = django_login(django_server)
    stylesheets = re.findall(r'<link rel="stylesheet" href="([^"]+)"', page.text)
    assert '/static/admin/css/base.css' in stylesheets, stylesheets
    for href in stylesheets:
        response = requests.get(django_server.url + href, timeout=TIMEOUT)
        assert response.status_code == 200, href
        assert response.headers['Content-Type'].split(';')[0] == 'text/css', href
        on_disk = django_server.static_root / href[len('/static/'):]
        assert response.content == on_disk.read_bytes(), href
    missing = requests.get(django_server.url + '/static/admin/css/no-such.css', timeout=TIMEOUT)
    assert missing.status_code == 404


# --- Flask 3.1: streaming, send_file with ranges, uploads --------------------------------------

BIG_FILE_SIZE = 50 * MiB


@pytest.fixture(scope='module')
def big_file(tmp_path_factory):
    directory = tmp_path_factory.mktemp('flask-data')
    data = os.urandom(BIG_FILE_SIZE)
    (directory / 'big.bin').write_bytes(data)
    return directory, data



@pytest.fixture(scope='module', params=list(SERVER_MODES))
def flask_server(request, start_module_server, big_file):
    """Flask with pywsgi's default settings (no --limit-request-body given)."""
    directory, _ = big_file
    return start_module_server(FLASK_APP, *SERVER_MODES[request.param],
                               env={'REALAPP_DATA_DIR': str(directory)})


@pytest.fixture(scope='module', params=list(SERVER_MODES))
def flask_limited_server(request, start_module_server, big_file):
    directory, _ = big_file
    return start_module_server(FLASK_APP, *SERVER_MODES[request.param],
                               '--limit-request-body', '1M',
                               env={'REALAPP_DATA_DIR': str(directory)})


def test_flask_streamed_response_reaches_the_client_chunk_by_chunk(flask_server):
    # The generator holds chunk 1 back until the client, having read chunk 0, says so: a server
    # that buffered the response would deliver nothing until the app's 20 s wait ran out.
    url = flask_server.url + '/stream/first-chunk-test?chunks=50'
    with requests.get(url, stream=True, timeout=TIMEOUT) as response:
        assert response.status_code == 200
        assert response.headers.get('Transfer-Encoding') == 'chunked'
        pieces = response.iter_content(chunk_size=None)
        first = next(pieces)
        assert first == b'chunk 0\n'
        released = requests.post(flask_server.url + '/release/first-chunk-test', timeout=TIMEOUT)
        assert released.status_code == 200
        body = first + b''.join(pieces)
    assert body == b''.join(b'chunk %d\n' % index for index in range(50))


def test_flask_send_file_whole_50mb(flask_server, big_file):
    _, data = big_file
    response = requests.get(flask_server.url + '/files/big.bin', timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers['Content-Length'] == str(len(data))
    assert response.headers['Accept-Ranges'] == 'bytes'
    assert sha256(response.content) == sha256(data)


@pytest.mark.parametrize('range_header, start, end', [
    ('bytes=1000000-1999999', 1000000, 1999999),
    ('bytes=%d-' % (BIG_FILE_SIZE - 12345), BIG_FILE_SIZE - 12345, BIG_FILE_SIZE - 1),
    ('bytes=-100', BIG_FILE_SIZE - 100, BIG_FILE_SIZE - 1),
], ids=['middle', 'open-ended', 'suffix'])
def test_flask_send_file_range_request(flask_server, big_file, range_header, start, end):
    _, data = big_file
    response = requests.get(flask_server.url + '/files/big.bin', headers={'Range': range_header},
                            timeout=TIMEOUT)
    assert response.status_code == 206
    assert response.headers['Content-Range'] == 'bytes %d-%d/%d' % (start, end, len(data))
    assert response.headers['Content-Length'] == str(end - start + 1)
    assert response.content == data[start:end + 1]


def test_flask_send_file_conditional_get_is_304(flask_server):
    first = requests.get(flask_server.url + '/files/big.bin', stream=True, timeout=TIMEOUT)
    first.close()
    again = requests.get(flask_server.url + '/files/big.bin', timeout=TIMEOUT,
                         headers={'If-None-Match': first.headers['ETag']})
    assert again.status_code == 304
    assert again.content == b''


def test_flask_form_upload_of_50mb_with_default_settings(flask_server, big_file):
    # Needs a default --limit-request-body above 50 MB (issue 16 raises it to 1 GiB).
    _, data = big_file
    response = requests.post(flask_server.url + '/upload', timeout=TIMEOUT,
                             data={'note': 'fifty megabytes'},
                             files={'file': ('big.bin', data, 'application/octet-stream')})
    assert response.status_code == 200, response.text[:500]
    assert response.json() == {'size': len(data), 'sha256': sha256(data), 'filename': 'big.bin',
                               'note': 'fifty megabytes'}


def test_flask_chunked_upload(flask_server, big_file):
    _, data = big_file
    body = data[:8 * MiB + 777]

    def pieces():  # a generator body: requests sends it with Transfer-Encoding: chunked
        for start in range(0, len(body), 300 * 1024):
            yield body[start:start + 300 * 1024]
    response = requests.post(flask_server.url + '/raw', data=pieces(), timeout=TIMEOUT)
    assert response.status_code == 200, response.text[:500]
    assert response.json() == {'size': len(body), 'sha256': sha256(body)}


def test_flask_upload_with_expect_100_continue(flask_server, big_file):
    _, data = big_file
    body = data[:5 * MiB]
    with RawConnection(flask_server.port, timeout=TIMEOUT) as connection:
        connection.send(build_request('PUT', '/raw', [
            ('Content-Length', str(len(body))), ('Expect', '100-continue')]))
        # The body goes only after the interim response, as curl and browsers-with-Expect do.
        version, status, _, _, _ = connection.read_head()
        assert status == 100
        connection.send(body)
        response = connection.read_response('PUT')
    assert response.status == 200, response.raw[:500]
    assert response.json() == {'size': len(body), 'sha256': sha256(body)}


def test_flask_upload_with_curl_expect_100_continue(flask_server, big_file, tmp_path):
    curl = shutil.which('curl')
    if curl is None:
        pytest.skip('curl is not installed')
    _, data = big_file
    body = data[:3 * MiB]
    upload = tmp_path / 'upload.bin'
    upload.write_bytes(body)
    result = subprocess.run(
        [curl, '-sS', '-v', '--max-time', str(TIMEOUT), '-H', 'Expect: 100-continue',
         '-T', str(upload), flask_server.url + '/raw'],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT + 10)
    assert result.returncode == 0, result.stderr[-3000:]
    assert '< HTTP/1.1 100 Continue' in result.stderr
    assert '< HTTP/1.1 200' in result.stderr
    assert '"sha256":"%s"' % sha256(body) in result.stdout.replace(' ', '')


def test_flask_over_limit_content_length_is_413(flask_limited_server, big_file):
    _, data = big_file
    body = data[:2 * MiB]
    with RawConnection(flask_limited_server.port, timeout=TIMEOUT) as connection:
        connection.send(build_request('POST', '/raw', [('Content-Length', str(len(body)))]))
        send_tolerating_close(connection, body)
        response = connection.read_response('POST')
    assert response.status == 413, response.raw[:500]


def test_flask_over_limit_content_length_with_requests_is_413(flask_limited_server, big_file):
    # The same as a user's client sees it: requests sends the whole body, then reads the answer;
    # a server that closes without draining the unread body resets the connection instead.
    _, data = big_file
    response = requests.post(flask_limited_server.url + '/raw', data=data[:2 * MiB],
                             timeout=TIMEOUT)
    assert response.status_code == 413


def test_flask_over_limit_with_expect_100_continue_is_413_without_continue(flask_limited_server):
    with RawConnection(flask_limited_server.port, timeout=TIMEOUT) as connection:
        connection.send(build_request('POST', '/raw', [
            ('Content-Length', str(2 * MiB)), ('Expect', '100-continue')]))
        response = connection.read_response('POST')
    assert response.status == 413
    assert response.informational == []


def test_flask_over_limit_chunked_upload_is_413(flask_limited_server, big_file):
    # Chunked: no length up front, so the limit is found while the app reads; the client must
    # still get 413 -- not a 500 from the framework, not a reset.
    _, data = big_file
    body = data[:2 * MiB]

    def pieces():
        for start in range(0, len(body), 64 * 1024):
            yield body[start:start + 64 * 1024]
    response = requests.post(flask_limited_server.url + '/raw', data=pieces(), timeout=TIMEOUT)
    assert response.status_code == 413, response.text[:500]


def test_flask_over_limit_chunked_form_upload_is_413(flask_limited_server, big_file):
    # A multipart form sent chunked: werkzeug's form parser is the one reading past the limit.
    _, data = big_file
    prepared = requests.Request('POST', flask_limited_server.url + '/upload',
                                files={'file': ('big.bin', data[:2 * MiB])}).prepare()
    content_type, body = prepared.headers['Content-Type'], prepared.body

    def pieces():
        for start in range(0, len(body), 64 * 1024):
            yield body[start:start + 64 * 1024]
    response = requests.post(flask_limited_server.url + '/upload', data=pieces(),
                             headers={'Content-Type': content_type}, timeout=TIMEOUT)
    assert response.status_code == 413, response.text[:500]


def test_flask_under_limit_chunked_upload_still_works(flask_limited_server, big_file):
    _, data = big_file
    body = data[:MiB - 1]
    response = requests.post(flask_limited_server.url + '/raw', timeout=TIMEOUT,
                             data=iter([body[:1000], body[1000:]]))  # chunked
    assert response.status_code == 200, response.text[:500]
    assert response.json() == {'size': len(body), 'sha256': sha256(body)}


# --- Trac 1.6: a mod_wsgi-era application ------------------------------------------------------

TRAC_PROJECT = 'Real Apps Trac'

# The script from Trac's mod_wsgi guide (TracModWSGI): the environment named in os.environ.
TRAC_WSGI = '''\
import os

os.environ['TRAC_ENV'] = %(env)r
os.environ['PYTHON_EGG_CACHE'] = %(eggs)r

import trac.web.main
application = trac.web.main.dispatch_request
'''


def trac_admin(*args):
    # trac-admin's entry point, run by this interpreter (its script may not be on PATH).
    return run_tool([sys.executable, '-m', 'trac.admin.console'] + [str(arg) for arg in args])


@pytest.fixture(scope='module', params=list(SERVER_MODES))
def trac_server(request, tmp_path_factory, start_module_server):
    data = tmp_path_factory.mktemp('trac')
    env_dir, deploy_dir = data / 'env', data / 'deploy'
    trac_admin(env_dir, 'initenv', TRAC_PROJECT, 'sqlite:db/trac.db')
    trac_admin(env_dir, 'permission', 'add', 'anonymous', 'TICKET_CREATE', 'TICKET_APPEND')
    # `deploy` writes cgi-bin/trac.wsgi and copies the static files to htdocs/, for Apache's
    # Alias /chrome -- here --url-alias.
    trac_admin(env_dir, 'deploy', deploy_dir)
    script = data / 'trac.wsgi'
    script.write_text(TRAC_WSGI % {'env': str(env_dir), 'eggs': str(data / 'eggs')})
    # The deployed script is mounted without an alias for its /chrome: Trac sends those files
    # itself, through wsgi.file_wrapper.
    server = start_module_server(
        script, *SERVER_MODES[request.param], '--url-alias', '/chrome', deploy_dir / 'htdocs',
        '--script-alias', '/deployed=%s' % (deploy_dir / 'cgi-bin' / 'trac.wsgi'))
    server.htdocs = deploy_dir / 'htdocs'
    return server


def assert_trac_page(response, title=None):
    """A whole Trac page; `title` (a regex) is the page's part of <title>, which the start page
    does not have."""
    assert response.status_code == 200, response.text[:2000]
    assert response.headers['Content-Type'].startswith('text/html')
    page_title = r'%s\s*\u2013\s*' % title if title else ''
    assert re.search(r'<title>\s*%s%s\s*</title>' % (page_title, TRAC_PROJECT), response.text), \
        response.text[:1000]
    assert 'Powered by' in response.text
    assert response.text.rstrip().endswith('</html>'), response.text[-500:]  # the body is whole


def test_trac_wiki_start_page(trac_server):
    response = requests.get(trac_server.url + '/wiki', timeout=TIMEOUT)
    assert_trac_page(response)
    assert 'Welcome to Trac' in response.text


def test_trac_timeline_and_ticket_query(trac_server):
    assert_trac_page(requests.get(trac_server.url + '/timeline', timeout=TIMEOUT), 'Timeline')
    assert_trac_page(requests.get(trac_server.url + '/query?status=!closed', timeout=TIMEOUT),
                     'Custom Query')


def trac_form_token(session, page):
    token = re.search(r'name="__FORM_TOKEN" value="([^"]+)"', page.text).group(1)
    assert session.cookies.get('trac_form_token') == token
    return token


def test_trac_new_ticket_and_attachment_form_posts(trac_server):
    session = requests.Session()
    form = session.get(trac_server.url + '/newticket', timeout=TIMEOUT)
    assert_trac_page(form, 'New Ticket')
    created = session.post(trac_server.url + '/newticket', timeout=TIMEOUT, data={
        '__FORM_TOKEN': trac_form_token(session, form), 'field_summary': 'Served by pywsgi',
        'field_description': 'Filed through the **real** Trac.', 'field_type': 'defect',
        'submit': 'Create ticket'})
    assert [step.status_code for step in created.history] == [303], created.text[:2000]
    match = re.fullmatch(re.escape(trac_server.url) + r'/ticket/(\d+)(#.*)?', created.url)
    assert match, created.url
    assert_trac_page(created, r'#\d+ \(Served by pywsgi\)')
    assert '<strong>real</strong>' in created.text

    # A file attached to it (a multipart form, parsed by Trac), then downloaded as Trac sends
    # it (through wsgi.file_wrapper).
    ticket = match.group(1)
    attach_url = '%s/attachment/ticket/%s/' % (trac_server.url, ticket)
    attach_form = session.get(attach_url + '?action=new', timeout=TIMEOUT)
    assert attach_form.status_code == 200, attach_form.text[:2000]
    content = os.urandom(200 * 1024)  # under Trac's default [attachment] max_size, 256 KiB
    attached = session.post(attach_url, timeout=TIMEOUT, data={
        '__FORM_TOKEN': trac_form_token(session, attach_form), 'action': 'new',
        'realm': 'ticket', 'id': ticket, 'description': 'random bytes'},
        files={'attachment': ('random.bin', content, 'application/octet-stream')})
    assert [step.status_code for step in attached.history] == [303], attached.text[:2000]
    assert 'random.bin' in attached.text
    raw = session.get('%s/raw-attachment/ticket/%s/random.bin' % (trac_server.url, ticket),
                      timeout=TIMEOUT)
    assert raw.status_code == 200
    assert raw.content == content


def test_trac_static_chrome_via_url_alias(trac_server):
    page = requests.get(trac_server.url + '/wiki', timeout=TIMEOUT)
    assert '/chrome/common/css/trac.css' in page.text
    response = requests.get(trac_server.url + '/chrome/common/css/trac.css', timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers['Content-Type'].split(';')[0] == 'text/css'
    assert response.content == (trac_server.htdocs / 'common' / 'css' / 'trac.css').read_bytes()


def test_trac_deployed_wsgi_script_under_a_mount_point(trac_server):
    # The trac.wsgi that `trac-admin deploy` writes, at /deployed (WSGIScriptAlias /deployed ...).
    response = requests.get(trac_server.url + '/deployed/wiki/WikiStart', timeout=TIMEOUT)
    assert_trac_page(response)
    assert 'href="/deployed/timeline"' in response.text  # Trac saw SCRIPT_NAME=/deployed
    css = requests.get(trac_server.url + '/deployed/chrome/common/css/trac.css', timeout=TIMEOUT)
    assert css.status_code == 200
    assert css.headers['Content-Type'].split(';')[0] == 'text/css'
    assert css.content == (trac_server.htdocs / 'common' / 'css' / 'trac.css').read_bytes()
    # A larger one, sent by Trac in 4 KiB blocks of its file wrapper
    jquery = requests.get(trac_server.url + '/deployed/chrome/common/js/jquery.js', timeout=TIMEOUT)
    assert jquery.status_code == 200
    assert jquery.content == (trac_server.htdocs / 'common' / 'js' / 'jquery.js').read_bytes()


# --- Bottle, Falcon, Pyramid: one request each -------------------------------------------------

MICRO_FRAMEWORKS = ['bottle', 'falcon', 'pyramid']


@pytest.fixture(scope='module')
def micro_server(start_module_server):
    mounts = []
    for name in MICRO_FRAMEWORKS:
        mounts += ['--script-alias', '/%s=%s' % (name, REAL_APPS / ('%s_app.wsgi' % name))]
    return start_module_server(*mounts)


@pytest.mark.parametrize('framework', MICRO_FRAMEWORKS)
def test_micro_framework_get_and_form_post(micro_server, framework):
    url = '%s/%s/hello/w%%C3%%B6rld' % (micro_server.url, framework)
    got = requests.get(url, params={'greeting': 'hi'}, timeout=TIMEOUT)
    assert got.status_code == 200, got.text[:1000]
    assert got.json() == {'framework': framework, 'text': 'hi w\u00f6rld',
                          'script_name': '/' + framework}
    posted = requests.post(url, data={'greeting': 'gr\u00fc\u00df dich'}, timeout=TIMEOUT)
    assert posted.status_code == 200, posted.text[:1000]
    assert posted.json()['text'] == 'gr\u00fc\u00df dich w\u00f6rld'
