"""Locust scenarios replaying the seed's benchmark table (docs/benchmarks.md, "The seed's table,
replayed") against a running pywsgi serving the example site in loadtests/site/.

One User class per row of the seed's table, each hammering one URL with no wait between requests
(FastHttpUser: the cheapest Locust client, for throughput), and checking every answer:

    row (the seed's mechanism)          class                 tags             URL
    static (DocumentRoot)               StaticUser            row, static      /index.html
    mod_wsgi (WSGIScriptAlias)          EmbeddedUser          row, embedded    /myapp/
    mod_wsgi (WSGIDaemonProcess)        DaemonUser            row, daemon      /myapp/ (daemon host)
    mod_wsgi (.htaccess/SetHandler)     HandlerScriptUser     row, handler     /handlers/app.wsgi
    mod_cgi (ScriptAlias)               CgiUser               row, cgi         /cgi-myapp/
    mod_python (PythonHandler)          ModPythonUser         row, mod_python  /mpapp/

and realistic mixes, with think time between requests (tag `mix`):

    PageWithAssetsUser (page): an HTML page, then every stylesheet, script and image it links to;
    UploadUser (upload): POSTs of 1 KiB - 256 KiB, checked against the SHA-256 the app returns;
    SlowEndpointUser (slow): an endpoint that takes 200 ms (an app waiting on a database);
    CgiBinUser (cgi-bin): a CGI program found in a ScriptAlias directory (/cgi-bin/myapp.cgi).

Serve every row at once (daemon mode is a second server: a daemon process group runs every
application of its server, so the embedded rows and the daemon row cannot share one):

    loadtests/site/serve.sh                  # :8000 everything but daemon mode, :8001 daemon mode
    locust -f loadtests/locustfile.py --host http://127.0.0.1:8000 --headless -u 100 -r 100 \
        -t 30s --tags static

`-f loadtests/` works too: Locust imports every .py file under the directory except those whose
name starts with '_' -- loadtests/apps/_hello_modpython.py, which imports mod_python (it exists
only inside Apache), is named so for that reason.

Pick rows with --tags (e.g. `--tags static embedded`) or by class name (`... StaticUser`).
DaemonUser talks to --daemon-host, by default --host with its port + 1 (serve.sh's arrangement).
`python loadtests/table.py` starts each configuration alone and drives it with these classes.
"""
import hashlib
import logging
import random
import re
from urllib.parse import urlsplit, urlunsplit

from locust import FastHttpUser, between, constant, events, tag, task

HELLO_BODY = b'mod_wsgi works!'
INDEX_BODY = b'<html><body><h1>It works!</h1></body></html>\n'
# Stylesheets, scripts and images a browser fetches after the HTML (not <a> links).
ASSET_PATTERN = re.compile(rb'<(?:link|script|img)\b[^>]*?\b(?:href|src)="(/[^"]*)"', re.I)
UPLOAD_SIZES = (1024, 16 * 1024, 64 * 1024, 256 * 1024)
# One buffer sliced for every upload: generating random bytes per request would cost Locust CPU.
UPLOAD_DATA = random.Random(8).randbytes(max(UPLOAD_SIZES))


@events.init_command_line_parser.add_listener
def add_arguments(parser):
    parser.add_argument('--daemon-host', default='', include_in_web_ui=True,
                        help='pywsgi in daemon mode (DaemonUser); default: --host with port + 1')


def daemon_host(environment):
    options = environment.parsed_options
    explicit = getattr(options, 'daemon_host', '') if options else ''
    if explicit:
        return explicit.rstrip('/')
    base = urlsplit(environment.host or 'http://127.0.0.1:8000')
    port = base.port or (443 if base.scheme == 'https' else 80)
    return urlunsplit((base.scheme, '%s:%d' % (base.hostname, port + 1), '', '', ''))


def expect(response, status=200, body=None):
    """Mark the request failed unless it answered `status` (and exactly `body`, if given)."""
    if response.status_code != status:
        response.failure('status %s, expected %d%s' % (
            response.status_code, status,
            ' (%s)' % response.error if response.status_code == 0 and response.error else ''))
    elif body is not None and response.content != body:
        response.failure('unexpected body (%d bytes): %r' % (
            len(response.content or b''), (response.content or b'')[:60]))
    else:
        response.success()


class RowUser(FastHttpUser):
    """One row of the seed's table: one URL, no wait between requests."""
    abstract = True
    wait_time = constant(0)
    path = '/'
    label = ''
    expected_body = HELLO_BODY

    def fetch(self):
        with self.client.get(self.path, name=self.label, catch_response=True) as response:
            expect(response, 200, self.expected_body)


class StaticUser(RowUser):
    """static (DocumentRoot): the seed's `ab -n1000 -c100 http://localhost/index.html`."""
    path = '/index.html'
    label = 'static /index.html'
    expected_body = INDEX_BODY

    @tag('row', 'static')
    @task
    def static_file(self):
        self.fetch()


class EmbeddedUser(RowUser):
    """mod_wsgi (WSGIScriptAlias), embedded mode: `ab -n1000 -c100 http://localhost/myapp/`."""
    path = '/myapp/'
    label = 'embedded /myapp/'

    @tag('row', 'embedded')
    @task
    def script_alias(self):
        self.fetch()


class DaemonUser(RowUser):
    """mod_wsgi (WSGIDaemonProcess processes=2 threads=15): the same URL, daemon-mode server."""
    path = '/myapp/'
    label = 'daemon /myapp/'

    def __init__(self, environment):
        # The runner sets every class's host to --host before spawning; this row has its own server.
        self.host = daemon_host(environment)
        super().__init__(environment)

    @tag('row', 'daemon')
    @task
    def daemon_process(self):
        self.fetch()


class HandlerScriptUser(RowUser):
    """mod_wsgi (.htaccess/SetHandler): a .wsgi file in a handler-scripts directory."""
    path = '/handlers/app.wsgi'
    label = 'handler /handlers/app.wsgi'

    @tag('row', 'handler')
    @task
    def handler_script(self):
        self.fetch()


class CgiUser(RowUser):
    """mod_cgi (ScriptAlias): myapp.wsgi run as CGI, a new Python process per request."""
    path = '/cgi-myapp/'
    label = 'cgi /cgi-myapp/'

    @tag('row', 'cgi')
    @task
    def cgi(self):
        self.fetch()


class ModPythonUser(RowUser):
    """mod_python (PythonHandler): the hello world as a mod_python handler (site/modpython/)."""
    path = '/mpapp/'
    label = 'mod_python /mpapp/'

    @tag('row', 'mod_python')
    @task
    def python_handler(self):
        self.fetch()


class PageWithAssetsUser(FastHttpUser):
    """A browser without a cache: the page, then each asset it links to, then a pause to read."""
    wait_time = between(0.5, 2.0)

    @tag('mix', 'page')
    @task
    def page_with_assets(self):
        with self.client.get('/page.html', name='page /page.html', catch_response=True) as page:
            expect(page, 200)
            assets = ASSET_PATTERN.findall(page.content or b'')
            if page.status_code == 200 and not assets:
                page.failure('no assets found in /page.html')
        for asset in assets:
            path = asset.decode('ascii')
            with self.client.get(path, name='page asset ' + path, catch_response=True) as response:
                expect(response, 200)


class UploadUser(FastHttpUser):
    """Form-less uploads of various sizes; the application reads every byte and returns a digest."""
    wait_time = between(0.2, 1.0)

    @tag('mix', 'upload')
    @task
    def upload(self):
        size = random.choice(UPLOAD_SIZES)
        body = UPLOAD_DATA[:size]
        expected = b'%d %s' % (size, hashlib.sha256(body).hexdigest().encode())
        with self.client.post('/mix/upload', data=body, name='upload /mix/upload',
                              headers={'Content-Type': 'application/octet-stream'},
                              catch_response=True) as response:
            expect(response, 200, expected)


class SlowEndpointUser(FastHttpUser):
    """An endpoint that takes 200 ms: it holds an application thread while the reactor keeps
    serving the other connections."""
    wait_time = between(0.2, 1.0)

    @tag('mix', 'slow')
    @task
    def slow(self):
        with self.client.get('/mix/slow?ms=200', name='slow /mix/slow?ms=200',
                             catch_response=True) as response:
            expect(response, 200, b'slept 200 ms')


class CgiBinUser(FastHttpUser):
    """A CGI program in a ScriptAlias directory (/cgi-bin/), requested now and then."""
    wait_time = between(0.5, 2.0)

    @tag('mix', 'cgi-bin')
    @task
    def cgi_bin(self):
        with self.client.get('/cgi-bin/myapp.cgi', name='cgi-bin /cgi-bin/myapp.cgi',
                             catch_response=True) as response:
            expect(response, 200, HELLO_BODY)



@events.init.add_listener
def drop_users_without_tasks(environment, **_kwargs):
    """With --tags, Locust keeps the classes whose tasks were all filtered out, then fails to run
    them ("No tasks defined"): filter now (Locust filters only once) and drop the empty classes,
    before the runner distributes users over the classes."""
    options = environment.parsed_options
    if options is None or not (getattr(options, 'tags', None) or
                               getattr(options, 'exclude_tags', None)):
        return
    # Its warning that each emptied class "will fail" is moot here: they are dropped.
    root_logger = logging.getLogger()
    level = root_logger.level
    root_logger.setLevel(logging.ERROR)
    try:
        environment._filter_tasks_by_tags()
    finally:
        root_logger.setLevel(level)
    kept = [user_class for user_class in environment.user_classes if user_class.tasks]
    if kept:
        environment.user_classes[:] = kept
