"""A server process carries what it serves, not every subsystem pywsgi has.

Every module the master imports is in each server process it forks, so an import at the top of a
module that only some configurations need costs every process its memory (bench.py's idle
target: at most 15 MiB per server process). A hello-world server process, `--threads 1` as
bench.py's embedded-1x1 row runs it, must hold none of the modules below; each is imported where
its feature is set up (a static mount, a CGI mount, --apache-config, --pid-file, daemon mode...),
and the tests of those features run them. Modules the interpreter already holds once the core is
imported (an editable install's loader imports some) are not counted.
"""
import subprocess
import sys

# module -> the feature that imports it
OPTIONAL = {
    'email': 'HTTP dates: static files, mod_python (email.utils)',
    'mimetypes': 'Content-Type of static files',
    'html.entities': 'the welcome page (html)',
    'ctypes': 'nothing (csrc/process.c sets the parent-death signal and the title)',
    'tempfile': '--pid-file, --reload-on-changes, daemon mode',
    'shutil': 'tempfile',
    'subprocess': 'CGI',
    'json': 'TOML written back, --apache-config',
    'difflib': 'a misspelt setting\'s "did you mean"',
    'encodings.idna': 'a non-ASCII --host',
    'pywsgi.config.apache': '--apache-config',
    'pywsgi.handlers.cgi': 'CGI mounts',
}

REPORT_MODULES = '''
import sys


def application(environ, start_response):
    body = ' '.join(sorted(sys.modules)).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]
'''


def vm_rss(pid):
    with open('/proc/%d/status' % pid) as f:
        return next((line.split(':', 1)[1].strip() for line in f if line.startswith('VmRSS')),
                    '?')


def test_a_hello_world_server_process_imports_no_optional_subsystem(start_server, app_file,
                                                                    tmp_path):
    # (from tmp_path: in a checkout's root, `pywsgi` would be the uncompiled source tree)
    baseline = set(subprocess.run(
        [sys.executable, '-c', 'import sys, pywsgi._core; print(" ".join(sys.modules))'],
        capture_output=True, text=True, check=True, cwd=tmp_path).stdout.split())
    server = start_server(app_file(REPORT_MODULES), '--threads', '1')
    response, body = server.get('/')
    assert response.status == 200
    loaded = set(body.decode().split()) - baseline
    (child,) = server.children()
    carried = {name: OPTIONAL[name] for name in OPTIONAL if name in loaded}
    assert not carried, 'the server process (VmRSS %s) imported %s' % (
        vm_rss(child), carried)
