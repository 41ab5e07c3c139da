#!/usr/bin/env python3
"""Benchmark harness: pywsgi against the other WSGI servers (and Apache/nginx) on this machine.

Every server runs the same hello-world app (loadtests/apps/hello.py: the seed's mod_wsgi example,
15-byte body with Content-Length) on 127.0.0.1 and a free port. For each round, every selected
server
is started in its own session, waited for, warmed up, loaded with each tool in turn (wrk keep-alive,
wrk with `Connection: close`, ab -n20000 -c100, the seed's ab -n1000 -c100, and wrk -c4000 for the
one-process configurations), measured (req/s, p99,
errors, CPU of the load generator and of the server's processes, RSS of the server's processes at
idle and after load) and stopped by PID. Servers are rotated between rounds so none always runs
first; the report gives the median of the rounds.

Output (in --out, default loadtests/results/): results.md (the tables), results.csv (one row per
server and tool), runs.csv (every single run), results.png (if matplotlib is importable), raw/ (each
load generator's full output and each server's log).

Standard library only (matplotlib optional). Peers come from loadtests/install_peers.sh, which
installs them into a separate venv (default <repo>/.bench-venv); see loadtests/README.md.
"""
import argparse
import csv
import dataclasses
import datetime
import http.client
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
APPS_DIR = HERE / 'apps'
HELLO_APP = APPS_DIR / 'hello.py'
FLASK_APP = APPS_DIR / 'flask_app.py'
FLASK_PATH = '/user/abc'
PIPELINE_SCRIPT = HERE / 'wrk' / 'pipeline.lua'
PACED_SCRIPT = HERE / 'wrk' / 'paced.lua'
STATIC_HELLO = APPS_DIR / 'hello.txt'
PEER_RUNNER = APPS_DIR / 'run_peer.py'
DEFAULT_VENV = REPO_ROOT / '.bench-venv'
DEFAULT_OUT = HERE / 'results'
HELLO_BODY = b'mod_wsgi works!'
BIG_STATIC_SIZE = 100 * 1024

NPROC = os.cpu_count() or 1
PAGE_SIZE = os.sysconf('SC_PAGE_SIZE')
CLOCK_TICKS = os.sysconf('SC_CLK_TCK')
MIB = 1024 * 1024

STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
# A load generator using this share of the cores it can use is the limit, not the server.
LOADGEN_SATURATED = 0.85
# Above this many cores used by processes outside the benchmark, the run is flagged as noisy.
NOISY_OTHER_CORES = 0.25
# CPU time is counted in clock ticks (1/CLK_TCK s per process), so a share measured over a short
# window is coarse: over ab -n1000's ~50 ms one tick is 20 % of a core.  Shorter windows than this
# do not mark a run noisy.
MIN_CPU_WINDOW = 1.0


def log(message):
    print(message, flush=True)


# --------------------------------------------------------------------------- /proc helpers

def read_stat(pid):
    """Fields of /proc/PID/stat after the command name (index 0 is field 3, `state`), or None."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            text = f.read()
    except OSError:
        return None
    return text[text.rindex(')') + 2:].split()


def session_pids(session_id):
    """Live processes of a session: the server we started (as session leader) and every process it
    forked, wherever they were re-parented."""
    found = []
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        fields = read_stat(int(name))
        if fields and int(fields[3]) == session_id and fields[0] != 'Z':
            found.append(int(name))
    return found


def processes_usage(session_id):
    """(cpu seconds, rss bytes summed, largest rss of one server process, process count) of a
    session. A server that forks serving processes is led by a process that only supervises
    them (pywsgi's master, gunicorn's arbiter, Apache's parent): the largest is then that of the
    others; a server of one process is its own."""
    cpu_ticks = rss_pages = largest_pages = leader_pages = count = 0
    for pid in session_pids(session_id):
        fields = read_stat(pid)
        if not fields:
            continue
        cpu_ticks += int(fields[11]) + int(fields[12])
        rss_pages += int(fields[21])
        if pid == session_id:
            leader_pages = int(fields[21])
        else:
            largest_pages = max(largest_pages, int(fields[21]))
        count += 1
    largest_pages = largest_pages or leader_pages
    return cpu_ticks / CLOCK_TICKS, rss_pages * PAGE_SIZE, largest_pages * PAGE_SIZE, count


def machine_busy_seconds():
    """CPU seconds all cores spent on anything but idle/iowait since boot (the first line of
    /proc/stat)."""
    with open('/proc/stat') as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / CLOCK_TICKS


def machine_description():
    model = 'unknown'
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    model = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    memory = 'unknown'
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemTotal:'):
                    memory = '%.1f GiB' % (int(line.split()[1]) / 1024 / 1024)
                    break
    except OSError:
        pass
    distro = ''
    try:
        with open('/etc/os-release') as f:
            for line in f:
                if line.startswith('PRETTY_NAME='):
                    distro = line.split('=', 1)[1].strip().strip('"')
    except OSError:
        pass
    return {'cores': NPROC, 'cpu': model, 'memory': memory,
            'kernel': platform.release(), 'os': distro}


# --------------------------------------------------------------------------- tools on the machine

def find_executable(name, venv=None):
    if venv is not None:
        candidate = Path(venv) / 'bin' / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    for directory in ('/usr/sbin', '/usr/local/sbin', '/sbin'):
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def python_executable(value):
    """argparse type for --pywsgi-python: an executable, made absolute (not resolved: a venv's
    python is a symlink that must stay the venv's), since servers and checks run elsewhere."""
    path = os.path.abspath(os.path.expanduser(value))
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise argparse.ArgumentTypeError('%s: no such executable' % value)
    return path


def run_quietly(argv, timeout, cwd=None):
    """The finished process of argv, its output captured as text; None when it could not run or
    ran out of time."""
    try:
        return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None


def python_has_modules(python, modules):
    """Which of `modules` `python` can import (from a neutral directory, so a source tree in the
    current directory cannot shadow an installed package)."""
    script = ('import importlib.util, sys\n'
              'for name in sys.argv[1:]:\n'
              '    try:\n'
              '        __import__(name); print(name)\n'
              '    except BaseException:\n'
              '        pass\n')
    result = run_quietly([python, '-c', script] + list(modules), 120, cwd='/')
    return set(result.stdout.split()) if result is not None else set()


def module_versions(python, distributions):
    script = ('import importlib.metadata as m, sys\n'
              'for name in sys.argv[1:]:\n'
              '    try: print(name, m.version(name))\n'
              '    except Exception: pass\n')
    result = run_quietly([python, '-c', script] + list(distributions), 60, cwd='/')
    if result is None:
        return {}
    return dict(line.split(None, 1) for line in result.stdout.splitlines() if ' ' in line)


def tool_version(argv):
    result = run_quietly(argv, 20)
    if result is None:
        return ''
    text = (result.stdout + result.stderr).strip().splitlines()
    return text[0].strip() if text else ''


class Machine:
    """What is installed: the load generators, the Python that runs pywsgi, the bench venv's Python
    and which peers it can run."""

    def __init__(self, venv, pywsgi_python):
        self.venv = Path(venv)
        venv_python = self.venv / 'bin' / 'python'
        self.peer_python = str(venv_python) if venv_python.exists() else None
        self.wrk = find_executable('wrk')
        self.ab = find_executable('ab')
        self.openssl = find_executable('openssl')   # the HTTPS rows' test certificate
        self.nginx = find_executable('nginx')
        self.apache = find_executable('apache2') or find_executable('httpd')
        self.apache_modules = self._apache_modules_dir()
        self.gunicorn = find_executable('gunicorn', self.venv)
        self.granian = find_executable('granian', self.venv)
        self.uwsgi = find_executable('uwsgi', self.venv)
        self.waitress = find_executable('waitress-serve', self.venv)
        self.peer_modules = (python_has_modules(self.peer_python, [
            'gunicorn', 'bjoern', 'fastwsgi', 'meinheld', 'waitress', 'granian', 'flask',
            'pywsgi._core']) if self.peer_python else set())
        # pywsgi runs under the Python that runs this script when it can import pywsgi (so a
        # developer's editable install measures the working tree), else under the bench venv's.
        if pywsgi_python:
            self.pywsgi_python = pywsgi_python
        elif 'pywsgi._core' in python_has_modules(sys.executable, ['pywsgi._core']):
            self.pywsgi_python = sys.executable
        elif self.peer_python and 'pywsgi._core' in self.peer_modules:
            self.pywsgi_python = self.peer_python
        else:
            self.pywsgi_python = sys.executable
        self.somaxconn = 1024
        try:
            with open('/proc/sys/net/core/somaxconn') as f:
                self.somaxconn = int(f.read())
        except (OSError, ValueError):
            pass

    def _apache_modules_dir(self):
        for directory in ('/usr/lib/apache2/modules', '/usr/lib64/httpd/modules',
                          '/usr/lib/httpd/modules'):
            if Path(directory, 'mod_mpm_event.so').exists():
                return Path(directory)
        return None

    @property
    def mod_wsgi(self):
        if self.apache_modules and (self.apache_modules / 'mod_wsgi.so').exists():
            return self.apache_modules / 'mod_wsgi.so'
        return None

    def versions(self):
        found = {}
        if self.wrk:
            found['wrk'] = tool_version([self.wrk, '-v'])
        if self.ab:
            found['ab'] = tool_version([self.ab, '-V'])
        if self.nginx:
            found['nginx'] = tool_version([self.nginx, '-v'])
        if self.apache:
            found['apache'] = tool_version([self.apache, '-v'])
        found['pywsgi python'] = '%s (%s)' % (
            self.pywsgi_python, tool_version([self.pywsgi_python, '-V']))
        if self.peer_python:
            found['peers python'] = '%s (%s)' % (
                self.peer_python, tool_version([self.peer_python, '-V']))
            for name, version in sorted(module_versions(self.peer_python, [
                    'gunicorn', 'bjoern', 'fastwsgi', 'meinheld', 'waitress', 'granian', 'uWSGI',
                    'flask', 'pywsgi']).items()):
                found[name] = version
        return found


# --------------------------------------------------------------------------- servers

@dataclass
class Launch:
    argv: list
    cwd: str
    path: str = '/'
    env: dict = field(default_factory=dict)
    expected_size: int = len(HELLO_BODY)  # None: any body (the Flask app's JSON)
    scheme: str = 'http'


@dataclass
class ServerSpec:
    name: str          # unique, used by --servers: 'embedded-1x1', 'gunicorn-sync', ...
    server: str        # the family shown in the table: 'pywsgi', 'gunicorn', ...
    config: str        # a human description of the configuration
    quick: bool        # part of the --quick selection
    launch: object     # (machine, port, workdir: Path) -> Launch
    missing: str = ''  # why it cannot run here ('' = it can)
    flask: bool = False  # serves the Flask app (apps/flask_app.py): measured by wrk-flask only
    tools: tuple = ()  # the only tools that measure it (empty: every tool)


# --------------------------------------------------------------------------- HTTPS rows
# Issue 20: hello world over TLS, pywsgi (1 process) against nginx's `return 200` (1 worker) and
# gunicorn with --certfile/--keyfile, all with the same certificate (ECDSA P-256, made by
# openssl once per run) and measured by wrk over TLS (keep-alive, and a new connection and full
# handshake per request).
TLS_TOOLS = ('wrk-keepalive', 'wrk-close')


def tls_certificate(machine, workdir):
    """(cert, key) of a self-signed certificate for 127.0.0.1 in workdir."""
    cert, key = workdir / 'tls.crt', workdir / 'tls.key'
    if not cert.exists():
        subprocess.run([machine.openssl, 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                        'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1',
                        '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', str(key),
                        '-out', str(cert)], check=True, capture_output=True, timeout=60)
    return cert, key


def pywsgi_tls_spec(processes, threads, quick):
    def launch(machine, port, workdir):
        cert, key = tls_certificate(machine, workdir)
        return Launch([machine.pywsgi_python, '-m', 'pywsgi', str(HELLO_APP),
                       '--host', '127.0.0.1', '--port', str(free_port()),
                       '--https-port', str(port), '--ssl-certificate-file', str(cert),
                       '--ssl-certificate-key-file', str(key),
                       '--processes', str(processes), '--threads', str(threads),
                       '--log-level', 'warn'],
                      cwd=str(workdir), env=python_env(), scheme='https')
    return ServerSpec('embedded-%dx%d-tls' % (processes, threads), 'pywsgi',
                      'HTTPS, --processes %d --threads %d' % (processes, threads), quick, launch,
                      tools=TLS_TOOLS)


# nginx.conf of an nginx row: the frame they share, with the row's own http settings and server.
NGINX_CONF = '''%(user)s
worker_processes %(workers)d;
daemon off;
master_process on;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 5s;
    default_type text/plain;
%(http)s
    client_body_temp_path %(dir)s/body;
    proxy_temp_path %(dir)s/proxy;
    fastcgi_temp_path %(dir)s/fastcgi;
    uwsgi_temp_path %(dir)s/uwsgi;
    scgi_temp_path %(dir)s/scgi;
    server {
        listen 127.0.0.1:%(listen)s;
%(server)s
    }
}
'''


def nginx_launch(machine, workdir, workers, listen, http, server, **launch_args):
    """Writes an nginx row's nginx.conf (NGINX_CONF with its settings) into workdir; its
    Launch."""
    conf = workdir / 'nginx.conf'
    conf.write_text(NGINX_CONF % {
        'user': 'user nobody nogroup;' if os.geteuid() == 0 else '', 'workers': workers,
        'dir': workdir, 'listen': listen, 'http': http, 'server': server})
    make_world_readable(workdir)
    return Launch([machine.nginx, '-p', str(workdir), '-c', str(conf)], cwd=str(workdir),
                  **launch_args)


def nginx_tls_spec(quick):
    def launch(machine, port, workdir):
        cert, key = tls_certificate(machine, workdir)
        return nginx_launch(
            machine, workdir, 1, '%d ssl' % port,
            '    ssl_protocols TLSv1.2 TLSv1.3;\n'
            '    ssl_session_cache shared:SSL:10m;',
            '        ssl_certificate %s;\n'
            '        ssl_certificate_key %s;\n'
            '        location / { return 200 "%s"; }' % (cert, key, HELLO_BODY.decode()),
            scheme='https')
    return ServerSpec('nginx-return200-tls', 'nginx', 'HTTPS, return 200, 1 worker', quick,
                      launch, tools=TLS_TOOLS)


def gunicorn_tls_spec(quick):
    workers = str(NPROC)

    def launch(machine, port, workdir):
        cert, key = tls_certificate(machine, workdir)
        return Launch([machine.gunicorn, '-k', 'sync', '-w', workers,
                       '-b', '127.0.0.1:%d' % port, '--backlog', '1024',
                       '--certfile', str(cert), '--keyfile', str(key), 'hello:application'],
                      cwd=str(APPS_DIR), env=python_env(), scheme='https')
    return ServerSpec('gunicorn-sync-tls', 'gunicorn', 'HTTPS, -k sync -w %s --certfile '
                      '--keyfile' % workers, quick, launch, tools=TLS_TOOLS)


def python_env():
    # PYTHONPATH lets every Python server import `hello` (and no one's source tree by accident).
    return {'PYTHONPATH': str(APPS_DIR), 'PYTHONUNBUFFERED': '1', 'PYTHONDONTWRITEBYTECODE': '1'}


def pywsgi_spec(processes, threads, quick, access_log=False):
    def launch(machine, port, workdir):
        extra = ['--access-log', str(workdir / 'access.log')] if access_log else []
        return Launch([machine.pywsgi_python, '-m', 'pywsgi', str(HELLO_APP),
                       '--host', '127.0.0.1', '--port', str(port),
                       '--processes', str(processes), '--threads', str(threads),
                       '--log-level', 'warn'] + extra,
                      # Not the repository root: `-m` would import the uncompiled source tree.
                      cwd=str(workdir), env=python_env())
    return ServerSpec('embedded-%dx%d%s' % (processes, threads, '-log' if access_log else ''),
                      'pywsgi', '--processes %d --threads %d%s' % (
                          processes, threads, ' --access-log FILE' if access_log else ''),
                      quick, launch)


def pywsgi_flask_spec(processes, threads, quick):
    """The Flask row (issue 19): a small Flask app, GET /user/abc answering JSON."""
    def launch(machine, port, workdir):
        return Launch([machine.pywsgi_python, '-m', 'pywsgi', str(FLASK_APP),
                       '--host', '127.0.0.1', '--port', str(port),
                       '--processes', str(processes), '--threads', str(threads),
                       '--log-level', 'warn'],
                      cwd=str(workdir), env=python_env(), path=FLASK_PATH, expected_size=None)
    return ServerSpec('flask-embedded-%dx%d' % (processes, threads), 'pywsgi',
                      'Flask app, --processes %d --threads %d' % (processes, threads), quick,
                      launch, flask=True)


def pywsgi_daemon_spec(processes, threads, quick):
    """The seed's daemon configuration: WSGIDaemonProcess processes=2 threads=15."""
    def launch(machine, port, workdir):
        return Launch([machine.pywsgi_python, '-m', 'pywsgi', str(HELLO_APP),
                       '--host', '127.0.0.1', '--port', str(port), '--daemon',
                       '--processes', str(processes), '--threads', str(threads),
                       '--log-level', 'warn'],
                      cwd=str(workdir), env=python_env())
    return ServerSpec('daemon-%dx%d' % (processes, threads), 'pywsgi',
                      '--daemon --processes %d --threads %d (1 server process)'
                      % (processes, threads), quick, launch)


def pywsgi_modpython_spec(processes, threads, quick):
    """The seed's mod_python row: the same hello world as a PythonHandler."""
    def launch(machine, port, workdir):
        return Launch([machine.pywsgi_python, '-m', 'pywsgi', '--python-path', str(APPS_DIR),
                       '--mod-python-shim', '--python-handler', '/=_hello_modpython',
                       '--host', '127.0.0.1', '--port', str(port),
                       '--processes', str(processes), '--threads', str(threads),
                       '--log-level', 'warn'],
                      cwd=str(workdir), env=python_env())
    return ServerSpec('modpython-%dx%d' % (processes, threads), 'pywsgi',
                      'mod_python PythonHandler, --processes %d --threads %d'
                      % (processes, threads), quick, launch)


def pywsgi_static_spec(name, path, size, quick):
    """Static files from the C core (DocumentRoot), one process per CPU like nginx's workers."""
    def launch(machine, port, workdir):
        root = write_static_root(workdir)
        return Launch([machine.pywsgi_python, '-m', 'pywsgi', '--document-root', str(root),
                       '--host', '127.0.0.1', '--port', str(port),
                       '--processes', str(NPROC), '--threads', '1', '--log-level', 'warn'],
                      cwd=str(workdir), env=python_env(), path=path, expected_size=size)
    return ServerSpec(name, 'pywsgi', 'static file %s, --document-root, --processes %d '
                      '--threads 1' % (path, NPROC), quick, launch)


def write_static_root(workdir):
    root = workdir / 'htdocs'
    root.mkdir(exist_ok=True)
    shutil.copyfile(STATIC_HELLO, root / 'hello.txt')
    # Incompressible-looking but deterministic content for the 100 KiB file.
    (root / '100k.bin').write_bytes(bytes((i * 7919) % 251 for i in range(BIG_STATIC_SIZE)))
    return root


def make_world_readable(workdir):
    """Servers started as root drop to www-data/nobody for their workers, which must read the
    generated files (tempfile.mkdtemp makes 0700 directories)."""
    for directory, _, files in os.walk(workdir):
        os.chmod(directory, 0o755)
        for name in files:
            os.chmod(os.path.join(directory, name), 0o644)


def nginx_spec(name, path, size, quick):
    def launch(machine, port, workdir):
        root = write_static_root(workdir)
        return nginx_launch(
            machine, workdir, NPROC, str(port),
            '    sendfile on;\n'
            '    tcp_nopush on;\n'
            '    tcp_nodelay on;',
            '        root %s;' % root,
            path=path, expected_size=size)
    return ServerSpec(name, 'nginx', 'static file %s, sendfile on, %d workers' % (path, NPROC),
                      quick, launch)


APACHE_COMMON = '''ServerRoot "%(dir)s"
Listen 127.0.0.1:%(port)d
ServerName 127.0.0.1
PidFile "%(dir)s/httpd.pid"
DefaultRuntimeDir "%(dir)s"
Mutex file:%(dir)s default
ErrorLog "%(dir)s/error.log"
LogLevel warn
%(user)s
LoadModule mpm_event_module %(modules)s/mod_mpm_event.so
LoadModule authz_core_module %(modules)s/mod_authz_core.so
LoadModule mime_module %(modules)s/mod_mime.so
TypesConfig /etc/mime.types
# The modules Debian builds in (unixd, log_config, ...) need no LoadModule.
# 4 x 25 threads from the start = wrk's 100 connections: with fewer, mpm_event closes keep-alive
# connections while it is still spawning children (wrk counts those as read errors).
StartServers 4
ServerLimit 16
ThreadsPerChild 25
MaxRequestWorkers 400
MinSpareThreads 25
MaxSpareThreads 400
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 5
<Directory />
    Require all granted
</Directory>
'''


def apache_spec(name, mode, quick):
    """mode: 'embedded' (WSGIScriptAlias in the Apache workers), 'daemon' (the seed's
    WSGIDaemonProcess processes=2 threads=15) or 'static' (DocumentRoot, the seed's 14000 req/s)."""
    def launch(machine, port, workdir):
        root = write_static_root(workdir)
        shutil.copyfile(HELLO_APP, workdir / 'hello.wsgi')
        user = 'User www-data\nGroup www-data' if os.geteuid() == 0 else ''
        conf = APACHE_COMMON % {'dir': workdir, 'port': port, 'user': user,
                                'modules': machine.apache_modules}
        path = '/'
        if mode == 'static':
            conf += 'DocumentRoot "%s"\n' % root
            path = '/hello.txt'
        else:
            conf += 'LoadModule wsgi_module %s\n' % machine.mod_wsgi
            conf += 'WSGISocketPrefix %s/wsgi\n' % workdir
            if mode == 'daemon':
                conf += ('WSGIDaemonProcess bench processes=2 threads=15 display-name=%{GROUP}\n'
                         'WSGIProcessGroup bench\n')
            conf += 'WSGIApplicationGroup %{GLOBAL}\n'
            conf += 'WSGIScriptAlias / "%s/hello.wsgi"\n' % workdir
        (workdir / 'httpd.conf').write_text(conf)
        make_world_readable(workdir)
        return Launch([machine.apache, '-f', str(workdir / 'httpd.conf'), '-DFOREGROUND'],
                      cwd=str(workdir), path=path)
    config = {'embedded': 'mod_wsgi embedded (WSGIScriptAlias), mpm_event',
              'daemon': 'mod_wsgi WSGIDaemonProcess processes=2 threads=15, mpm_event',
              'static': 'static file /hello.txt, mpm_event'}[mode]
    return ServerSpec(name, 'apache', config, quick, launch)


def peer_python_spec(name, server, config, quick, argv_of, flask=False):
    def launch(machine, port, workdir):
        if flask:
            return Launch(argv_of(machine, port), cwd=str(APPS_DIR), env=python_env(),
                          path=FLASK_PATH, expected_size=None)
        return Launch(argv_of(machine, port), cwd=str(APPS_DIR), env=python_env())
    return ServerSpec(name, server, config, quick, launch, flask=flask)


def catalog(machine):
    """Every configuration the harness knows, each marked with why it cannot run here, if so."""
    specs = [
        pywsgi_spec(1, 1, True),
        pywsgi_spec(1, 1, False, access_log=True),
        pywsgi_spec(1, 5, False),
        pywsgi_spec(1, 15, True),
        pywsgi_spec(2, 1, False),
        pywsgi_spec(2, 15, True),
        pywsgi_daemon_spec(2, 15, True),
        pywsgi_modpython_spec(1, 1, False),
        pywsgi_static_spec('pywsgi-static', '/hello.txt', len(HELLO_BODY), False),
        pywsgi_static_spec('pywsgi-static-100k', '/100k.bin', BIG_STATIC_SIZE, False),
        pywsgi_flask_spec(1, 1, True),
        pywsgi_flask_spec(1, 5, False),
        pywsgi_tls_spec(1, 1, True),
    ]
    pywsgi_modules = python_has_modules(machine.pywsgi_python, ['pywsgi', 'flask']) \
        if machine.pywsgi_python else set()
    for spec in specs:
        if 'pywsgi' not in pywsgi_modules:
            spec.missing = 'pywsgi not importable by %s' % machine.pywsgi_python
        elif spec.flask and 'flask' not in pywsgi_modules:
            spec.missing = ('flask not importable by %s (pip install "flask>=3,<4" there)'
                            % machine.pywsgi_python)
    workers = str(NPROC)
    peers = [
        peer_python_spec('gunicorn-sync', 'gunicorn', '-k sync -w %s' % workers, True,
                         lambda m, port: [m.gunicorn, '-k', 'sync', '-w', workers,
                                          '-b', '127.0.0.1:%d' % port, '--backlog', '1024',
                                          'hello:application']),
        peer_python_spec('gunicorn-gthread', 'gunicorn', '-k gthread -w %s --threads 15' % workers,
                         False,
                         lambda m, port: [m.gunicorn, '-k', 'gthread', '-w', workers,
                                          '--threads', '15', '-b', '127.0.0.1:%d' % port,
                                          '--backlog', '1024', 'hello:application']),
        peer_python_spec('gunicorn-meinheld', 'gunicorn+meinheld',
                         '-k meinheld.gmeinheld.MeinheldWorker -w %s' % workers, False,
                         lambda m, port: [m.gunicorn, '-k', 'meinheld.gmeinheld.MeinheldWorker',
                                          '-w', workers, '-b', '127.0.0.1:%d' % port,
                                          'hello:application']),
        peer_python_spec('bjoern', 'bjoern', '1 process', True,
                         lambda m, port: [m.peer_python, str(PEER_RUNNER), 'bjoern', '127.0.0.1',
                                          str(port)]),
        peer_python_spec('fastwsgi', 'fastwsgi', '1 process', True,
                         lambda m, port: [m.peer_python, str(PEER_RUNNER), 'fastwsgi',
                                          '127.0.0.1', str(port)]),
        peer_python_spec('flask-bjoern', 'bjoern', 'Flask app, 1 process', True,
                         lambda m, port: [m.peer_python, str(PEER_RUNNER), 'bjoern', '127.0.0.1',
                                          str(port), 'flask_app'], flask=True),
        peer_python_spec('flask-fastwsgi', 'fastwsgi', 'Flask app, 1 process', True,
                         lambda m, port: [m.peer_python, str(PEER_RUNNER), 'fastwsgi',
                                          '127.0.0.1', str(port), 'flask_app'], flask=True),
        peer_python_spec('granian', 'granian', '--interface wsgi --workers 1', True,
                         lambda m, port: [m.granian, '--interface', 'wsgi', '--host', '127.0.0.1',
                                          '--port', str(port), '--workers', '1',
                                          '--log-level', 'warning', 'hello:application']),
        peer_python_spec('uwsgi', 'uWSGI', '--http11-socket, 1 process, 1 thread', True,
                         lambda m, port: [m.uwsgi, '--http11-socket', '127.0.0.1:%d' % port,
                                          '--wsgi-file', str(HELLO_APP), '--master',
                                          '--processes', '1', '--threads', '1',
                                          '--listen', str(min(1024, m.somaxconn)),
                                          '--disable-logging', '--die-on-term', '--need-app']),
        peer_python_spec('waitress', 'waitress', '--threads 4 (its default)', False,
                         lambda m, port: [m.waitress, '--listen=127.0.0.1:%d' % port,
                                          '--threads=4', 'hello:application']),
        apache_spec('apache-modwsgi-embedded', 'embedded', True),
        apache_spec('apache-modwsgi-daemon', 'daemon', False),
        apache_spec('apache-static', 'static', False),
        nginx_spec('nginx-static', '/hello.txt', len(HELLO_BODY), False),
        nginx_spec('nginx-static-100k', '/100k.bin', BIG_STATIC_SIZE, False),
        nginx_tls_spec(True),
        gunicorn_tls_spec(True),
    ]
    # The Python module each venv-run peer needs (gunicorn+meinheld needs both).
    python_needs = {'gunicorn-sync': ['gunicorn'], 'gunicorn-sync-tls': ['gunicorn'],
                    'gunicorn-gthread': ['gunicorn'],
                    'gunicorn-meinheld': ['gunicorn', 'meinheld'], 'bjoern': ['bjoern'],
                    'fastwsgi': ['fastwsgi'], 'flask-bjoern': ['bjoern', 'flask'],
                    'flask-fastwsgi': ['fastwsgi', 'flask']}
    executables = {'granian': machine.granian, 'uwsgi': machine.uwsgi,
                   'waitress': machine.waitress}
    for spec in peers:
        if spec.name in python_needs:
            absent = [name for name in python_needs[spec.name]
                      if name not in machine.peer_modules]
            if not machine.peer_python:
                spec.missing = 'no bench venv at %s (run loadtests/install_peers.sh)' % machine.venv
            elif absent or (spec.server.startswith('gunicorn') and not machine.gunicorn):
                spec.missing = '%s not installed in %s' % (
                    ', '.join(absent) or 'gunicorn', machine.venv)
        elif spec.name in executables:
            if not executables[spec.name]:
                spec.missing = '%s not installed (no %s in %s/bin or on PATH)' % (
                    spec.name, spec.name if spec.name != 'waitress' else 'waitress-serve',
                    machine.venv)
        elif spec.name.startswith('apache'):
            if not machine.apache or not machine.apache_modules:
                spec.missing = 'apache2 not installed (install_peers.sh --with-apache)'
            elif spec.name != 'apache-static' and not machine.mod_wsgi:
                spec.missing = 'mod_wsgi not installed (install_peers.sh --with-apache)'
        elif spec.name.startswith('nginx') and not machine.nginx:
            spec.missing = 'nginx not installed'
    for spec in specs + peers:
        if spec.name.endswith('-tls') and not spec.missing and not machine.openssl:
            spec.missing = 'openssl not installed (it makes the HTTPS rows\' certificate)'
    return specs + peers


def free_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


class RunningServer:
    """One server process started in a new session (so every process it forks can be found through
    /proc and stopped by PID, even after re-parenting)."""

    def __init__(self, spec, machine, workdir):
        self.spec = spec
        self.port = free_port()
        self.workdir = workdir
        self.launch = spec.launch(machine, self.port, workdir)
        self.url = '%s://127.0.0.1:%d%s' % (self.launch.scheme, self.port, self.launch.path)
        self.log_path = workdir / 'server.log'
        env = dict(os.environ)
        env.update(self.launch.env)
        self._log = open(self.log_path, 'wb')
        self.proc = subprocess.Popen(self.launch.argv, cwd=self.launch.cwd, env=env,
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.session = self.proc.pid

    def log_tail(self, lines=15):
        try:
            text = self.log_path.read_text(errors='replace')
        except OSError:
            return ''
        return '\n'.join(text.splitlines()[-lines:])

    def wait_ready(self, timeout=STARTUP_TIMEOUT):
        """Until a GET answers 200 with the expected body size; raises if the server exits, or
        keeps answering something else (a misconfiguration, not a slow start)."""
        deadline = time.monotonic() + timeout
        wrong_answer_deadline = None
        last_error = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError('exited with status %s before serving; its output:\n%s'
                                   % (self.proc.returncode, self.log_tail()))
            if self.launch.scheme == 'https':
                import ssl
                connection = http.client.HTTPSConnection(
                    '127.0.0.1', self.port, timeout=2, context=ssl._create_unverified_context())
            else:
                connection = http.client.HTTPConnection('127.0.0.1', self.port, timeout=2)
            try:
                connection.request('GET', self.launch.path)
                response = connection.getresponse()
                body = response.read()
                if response.status == 200 and (self.launch.expected_size is None and body
                                               or len(body) == self.launch.expected_size):
                    return
                last_error = 'answered %d with %d bytes' % (response.status, len(body))
                if wrong_answer_deadline is None:
                    wrong_answer_deadline = time.monotonic() + 3.0
                elif time.monotonic() > wrong_answer_deadline:
                    break
            except (OSError, http.client.HTTPException) as error:
                last_error = repr(error)
            finally:
                connection.close()
            time.sleep(0.1)
        raise RuntimeError('not serving the hello page (%s); its output:\n%s'
                           % (last_error, self.log_tail()))

    def usage(self):
        return processes_usage(self.session)

    def stop(self):
        """SIGTERM to the process we started, then SIGKILL to whatever is left of its session."""
        try:
            self.proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + STOP_TIMEOUT
        while True:
            leftovers = [pid for pid in session_pids(self.session)]
            if not leftovers:
                break
            for pid in leftovers:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if time.monotonic() > deadline:
                log('  warning: processes %s of %s would not die' % (leftovers, self.spec.name))
                break
            time.sleep(0.1)
        if self.proc.poll() is None:
            self.proc.wait(timeout=STOP_TIMEOUT)
        self._log.close()


# --------------------------------------------------------------------------- load generators

@dataclass
class Tool:
    name: str
    program: str       # 'wrk' or 'ab'
    threads: int       # threads the generator runs (its CPU capacity in cores)
    description: str
    # Configurations it runs against unless --tools names it (empty: all of them)
    only: tuple = ()
    flask: bool = False  # measures the Flask configurations (and only they are measured by it)

    def applies_to(self, spec):
        # (a --baseline-python copy of a configuration is measured as the configuration is)
        name = spec.name[len('baseline-'):] if spec.name.startswith('baseline-') else spec.name
        return self.flask == spec.flask and (not self.only or name in self.only) and \
            (not spec.tools or self.name in spec.tools)

    def argv(self, machine, url, duration):
        if self.name in ('wrk-keepalive', 'wrk-flask'):
            return [machine.wrk, '-t2', '-c100', '-d%gs' % duration, '--latency', url]
        if self.name == 'wrk-keepalive-t1':
            return [machine.wrk, '-t1', '-c100', '-d%gs' % duration, '--latency', url]
        if self.name == 'wrk-pipelined':
            return [machine.wrk, '-t2', '-c100', '-d%gs' % duration, '--latency',
                    '-s', str(PIPELINE_SCRIPT), url]
        if self.name == 'wrk-paced':
            return [machine.wrk, '-t2', '-c100', '-d%gs' % duration, '--latency',
                    '-s', str(PACED_SCRIPT), url]
        if self.name == 'wrk-c4000':
            return [machine.wrk, '-t2', '-c4000', '-d%gs' % duration, '--latency', url]
        if self.name == 'wrk-close':
            return [machine.wrk, '-t2', '-c100', '-d%gs' % duration, '--latency',
                    '-H', 'Connection: close', url]
        if self.name == 'ab-20000':
            return [machine.ab, '-q', '-r', '-s', '30', '-n', '20000', '-c', '100', url]
        if self.name == 'ab-1000':
            return [machine.ab, '-q', '-r', '-s', '30', '-n', '1000', '-c', '100', url]
        raise ValueError(self.name)


# Issue 19: the one-process configurations against the fastest one-process peers, unless
# --tools asks for them (then against every selected server).
ONE_PROCESS = ('embedded-1x1', 'embedded-1x5', 'bjoern', 'fastwsgi')

TOOLS = [
    Tool('wrk-keepalive', 'wrk', 2, 'wrk -t2 -c100 -dDs --latency (keep-alive)'),
    Tool('wrk-keepalive-t1', 'wrk', 1, 'wrk -t1 -c100 -dDs --latency (keep-alive, one wrk '
         'thread)', only=ONE_PROCESS),
    Tool('wrk-pipelined', 'wrk', 2, 'wrk -t2 -c100 -dDs --latency -s loadtests/wrk/pipeline.lua '
         '(keep-alive, 16 requests pipelined per write)', only=ONE_PROCESS),
    # Latency below saturation: with wrk's threads short of CPU, a p99 is wrk's own wait for
    # a core (docs/benchmarks.md, "Whose p99"; loadtests/generator_bound.py).
    Tool('wrk-paced', 'wrk', 2, 'wrk -t2 -c100 -dDs --latency -s loadtests/wrk/paced.lua '
         '(keep-alive, each connection waits 1 ms between requests)', only=ONE_PROCESS),
    Tool('wrk-flask', 'wrk', 2, 'wrk -t2 -c100 -dDs --latency, GET %s of apps/flask_app.py '
         '(keep-alive)' % FLASK_PATH, flask=True),
    Tool('wrk-close', 'wrk', 2, "wrk -t2 -c100 -dDs --latency -H 'Connection: close'"),
    Tool('ab-20000', 'ab', 1, 'ab -n20000 -c100 (a new connection per request)'),
    Tool('ab-1000', 'ab', 1, "ab -n1000 -c100 (the seed's command)"),
    # Issue 17 point 4: many concurrent keep-alive clients on one process.  Against the
    # one-process pywsgi configurations and the fastest one-process peers only, unless
    # --tools asks for it (then against every selected server).
    Tool('wrk-c4000', 'wrk', 2, 'wrk -t2 -c4000 -dDs --latency (keep-alive, 4,000 connections)',
         only=('embedded-1x1', 'embedded-1x5', 'bjoern', 'fastwsgi')),
]
C4000_CONNECTIONS = 4000

WRK_TIME = re.compile(r'([\d.]+)(us|ms|s|m)\b')
WRK_UNITS = {'us': 0.001, 'ms': 1.0, 's': 1000.0, 'm': 60000.0}


def parse_wrk(text):
    result = {}
    match = re.search(r'Requests/sec:\s+([\d.]+)', text)
    if match:
        result['rps'] = float(match.group(1))
    match = re.search(r'^\s+99(?:\.000)?%\s+(\S+)', text, re.M)
    if match:
        time_match = WRK_TIME.match(match.group(1))
        if time_match:
            result['p99_ms'] = float(time_match.group(1)) * WRK_UNITS[time_match.group(2)]
    errors = 0
    match = re.search(r'Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)', text)
    if match:
        errors += sum(int(value) for value in match.groups())
    match = re.search(r'Non-2xx or 3xx responses: (\d+)', text)
    if match:
        errors += int(match.group(1))
    match = re.search(r'(\d+) requests in', text)
    if match:
        result['requests'] = int(match.group(1))
    result['errors'] = errors
    return result


def parse_ab(text):
    result = {}
    match = re.search(r'Requests per second:\s+([\d.]+)', text)
    if match:
        result['rps'] = float(match.group(1))
    match = re.search(r'^\s+99%\s+(\d+)', text, re.M)
    if match:
        result['p99_ms'] = float(match.group(1))
    errors = 0
    for pattern in (r'Failed requests:\s+(\d+)', r'Non-2xx responses:\s+(\d+)'):
        match = re.search(pattern, text)
        if match:
            errors += int(match.group(1))
    match = re.search(r'Complete requests:\s+(\d+)', text)
    if match:
        result['requests'] = int(match.group(1))
    result['errors'] = errors
    return result


def run_generator(argv, timeout):
    """Run a load generator to completion; returns (output, exit status, its CPU seconds, wall
    seconds). CPU comes from wait4's rusage, which covers all of the generator's threads."""
    with tempfile.TemporaryFile() as output:
        start = time.monotonic()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=output,
                                stderr=subprocess.STDOUT)
        deadline = start + timeout
        while True:
            pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, rusage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        wall = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped by wait4
        output.seek(0)
        text = output.read().decode(errors='replace')
    return text, proc.returncode, rusage.ru_utime + rusage.ru_stime, wall


@dataclass
class Measurement:
    server: str
    name: str
    tool: str
    round: int
    rps: float = 0.0
    p99_ms: float = None
    errors: int = 0
    client_cores: float = 0.0
    server_cores: float = 0.0
    other_cores: float = 0.0
    wall: float = 0.0  # seconds the load generator ran: the window of the CPU shares
    bottleneck: str = ''
    rss_idle: int = 0
    rss_after: int = 0
    rss_largest_idle: int = 0
    processes: int = 0
    failure: str = ''


def measure(tool, machine, server, duration, round_number, raw_dir):
    argv = tool.argv(machine, server.url, duration)
    cpu_before = server.usage()[0]
    busy_before = machine_busy_seconds()
    timeout = (duration + 30) if tool.program == 'wrk' else 300
    text, status, client_cpu, wall = run_generator(argv, timeout)
    busy = machine_busy_seconds() - busy_before
    server_cpu = server.usage()[0] - cpu_before
    (raw_dir / ('r%d-%s-%s.txt' % (round_number, server.spec.name, tool.name))).write_text(
        '$ %s\n%s' % (' '.join(shlex.quote(a) for a in argv), text))
    parsed = parse_wrk(text) if tool.program == 'wrk' else parse_ab(text)
    result = Measurement(server.spec.server, server.spec.name, tool.name, round_number)
    if status != 0 or 'rps' not in parsed:
        result.failure = 'exit %s: %s' % (status, ' | '.join(text.strip().splitlines()[-3:]))
        return result
    result.rps = parsed['rps']
    result.p99_ms = parsed.get('p99_ms')
    result.errors = parsed['errors']
    result.wall = wall
    result.client_cores = client_cpu / wall
    result.server_cores = server_cpu / wall
    result.other_cores = max(0.0, busy / wall - result.client_cores - result.server_cores)
    capacity = min(tool.threads, NPROC)
    if result.client_cores >= LOADGEN_SATURATED * capacity:
        result.bottleneck = 'load generator'
    elif result.client_cores + result.server_cores >= 0.9 * NPROC:
        result.bottleneck = 'CPU (shared)'
    return result


# --------------------------------------------------------------------------- the run

def run_benchmark(specs, tools, machine, rounds, duration, warmup, raw_dir):
    measurements = []
    base = Path(tempfile.mkdtemp(prefix='pywsgi-bench-'))
    # Apache and nginx workers (www-data/nobody when started as root) must reach their files.
    os.chmod(base, 0o755)
    try:
        for round_number in range(1, rounds + 1):
            # Rotate the order so no server always runs first (or last, on a warmer machine).
            shift = (round_number - 1) % len(specs)
            order = specs[shift:] + specs[:shift]
            log('== round %d/%d' % (round_number, rounds))
            for spec in order:
                workdir = base / ('%s-r%d' % (spec.name, round_number))
                workdir.mkdir()
                measurements.extend(run_one_server(spec, tools, machine, workdir, duration,
                                                   warmup, round_number, raw_dir))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return measurements


def run_one_server(spec, tools, machine, workdir, duration, warmup, round_number, raw_dir):
    log('-- %s (%s)' % (spec.name, spec.config))
    tools = [tool for tool in tools if tool.applies_to(spec)]
    if not tools:
        return []
    try:
        server = RunningServer(spec, machine, workdir)
    except OSError as error:
        return [Measurement(spec.server, spec.name, tool.name, round_number,
                            failure='cannot start: %s' % error) for tool in tools]
    results = []
    try:
        try:
            server.wait_ready()
        except RuntimeError as error:
            log('   FAILED to start: %s' % error)
            return [Measurement(spec.server, spec.name, tool.name, round_number,
                                failure='did not start: %s' % str(error).splitlines()[0])
                    for tool in tools]
        time.sleep(0.5)
        _, rss_idle, rss_largest, processes = server.usage()
        if warmup > 0 and machine.wrk:
            run_generator([machine.wrk, '-t2', '-c100', '-d%gs' % warmup, server.url],
                          warmup + 30)
        for tool in tools:
            if server.proc.poll() is not None:
                results.append(Measurement(spec.server, spec.name, tool.name, round_number,
                                           failure='server died: %s' % server.log_tail(3)))
                continue
            result = measure(tool, machine, server, duration, round_number, raw_dir)
            result.rss_idle, result.rss_largest_idle, result.processes = (
                rss_idle, rss_largest, processes)
            results.append(result)
            if result.failure:
                log('   %-14s FAILED %s' % (tool.name, result.failure))
            else:
                log('   %-14s %10.0f req/s  p99 %s  errors %d  client %.0f%% server %.0f%% '
                    'other %.0f%% of a core%s' % (
                        tool.name, result.rps, format_ms(result.p99_ms), result.errors,
                        100 * result.client_cores, 100 * result.server_cores,
                        100 * result.other_cores,
                        ('  [bottleneck: %s]' % result.bottleneck) if result.bottleneck else ''))
        rss_after = server.usage()[1]
        for result in results:
            result.rss_after = rss_after
        log('   RSS idle %.1f MiB, after load %.1f MiB, %d processes' % (
            rss_idle / MIB, rss_after / MIB, processes))
    finally:
        server.stop()
        # The server's own output (error log), kept beside the generators' for diagnosis.
        shutil.copyfile(server.log_path,
                        raw_dir / ('r%d-%s.server.log' % (round_number, spec.name)))
    return results


# --------------------------------------------------------------------------- report

def format_ms(value):
    if value is None:
        return '-'
    return '%.2f ms' % value if value < 10 else '%.0f ms' % value


def summarise(measurements, specs, tools):
    """One row per (server config, tool): medians over the rounds that succeeded."""
    rows = []
    for tool in tools:
        for spec in specs:
            runs = [m for m in measurements if m.name == spec.name and m.tool == tool.name]
            good = [m for m in runs if not m.failure]
            if not runs:
                continue
            row = {'server': spec.server, 'config': spec.name, 'description': spec.config,
                   'tool': tool.name, 'rounds': len(good), 'failures': len(runs) - len(good),
                   'failure': next((m.failure for m in runs if m.failure), '')}
            if good:
                p99s = [m.p99_ms for m in good if m.p99_ms is not None]
                flags = Counter(m.bottleneck for m in good)
                flag, count = flags.most_common(1)[0]
                row.update({
                    'rps': statistics.median(m.rps for m in good),
                    'rps_min': min(m.rps for m in good), 'rps_max': max(m.rps for m in good),
                    'p99_ms': statistics.median(p99s) if p99s else None,
                    'errors': sum(m.errors for m in good),
                    'client_cores': statistics.median(m.client_cores for m in good),
                    'server_cores': statistics.median(m.server_cores for m in good),
                    'other_cores': max(m.other_cores for m in good),
                    'other_cores_measurable': max(
                        (m.other_cores for m in good if m.wall >= MIN_CPU_WINDOW), default=0.0),
                    'bottleneck': flag if count * 2 > len(good) else '',
                    'rss_idle_mib': statistics.median(m.rss_idle for m in good) / MIB,
                    'rss_after_mib': statistics.median(m.rss_after for m in good) / MIB,
                    'rss_largest_idle_mib': statistics.median(
                        m.rss_largest_idle for m in good) / MIB,
                    'processes': max(m.processes for m in good),
                })
            else:
                row['rps'] = 0.0
            rows.append(row)
    for tool in tools:
        tool_rows = [row for row in rows if row['tool'] == tool.name]
        best = max((row['rps'] for row in tool_rows if row['server'] == 'pywsgi'), default=0)
        for row in tool_rows:
            row['vs_pywsgi_best'] = (row['rps'] / best) if best and row['rps'] else None
    return rows


CSV_FIELDS = ['server', 'config', 'tool', 'rps', 'p99_ms', 'rss_idle_mib', 'rss_after_mib',
              'vs_pywsgi_best', 'rps_min', 'rps_max', 'errors', 'processes',
              'rss_largest_idle_mib', 'client_cores', 'server_cores', 'other_cores', 'bottleneck',
              'rounds', 'failures', 'failure', 'description']


def write_csv(path, rows):
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction='ignore')
        writer.writeheader()
        for row in rows:
            writer.writerow({key: ('%.3f' % value if isinstance(value, float) else value)
                             for key, value in row.items()})


def write_runs_csv(path, measurements):
    names = list(Measurement.__dataclass_fields__)
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(names)
        for m in measurements:
            writer.writerow([getattr(m, name) for name in names])


def target_checks(rows):
    """The issue's targets that this run can decide: (target, measured, verdict)."""
    def rps(config, tool):
        return next((row.get('rps') for row in rows
                     if row['config'] == config and row['tool'] == tool and row.get('rps')), None)

    def best_pywsgi(tool):
        candidates = [row for row in rows if row['server'] == 'pywsgi' and row['tool'] == tool
                      and row.get('rps') and 'static' not in row['config']
                      and not row['config'].endswith(('-log', '-tls'))
                      and not row['config'].startswith('modpython')]
        return max(candidates, key=lambda row: row['rps']) if candidates else None

    checks = []

    def ratio(label, numerator, denominator, target, numerator_name, denominator_name):
        if numerator and denominator:
            value = numerator / denominator
            checks.append((label, '%.2f× (%s %.0f / %s %.0f req/s)' % (
                value, numerator_name, numerator, denominator_name, denominator),
                'met' if value >= target else 'MISSED'))
        else:
            checks.append((label, 'not measured', '-'))

    keep = 'wrk-keepalive'
    best = best_pywsgi(keep)
    best_rps = best['rps'] if best else None
    best_name = best['config'] if best else 'pywsgi'
    ratio('keep-alive, 1 process 1 thread ≥ 1.0× fastwsgi', rps('embedded-1x1', keep),
          rps('fastwsgi', keep), 1.0, 'embedded-1x1', 'fastwsgi')
    ratio('keep-alive, 1 process 1 thread ≥ 1.2× bjoern', rps('embedded-1x1', keep),
          rps('bjoern', keep), 1.2, 'embedded-1x1', 'bjoern')
    ratio('keep-alive, best ≥ 5× Apache mod_wsgi embedded', best_rps,
          rps('apache-modwsgi-embedded', keep), 5.0, best_name, 'apache-modwsgi-embedded')
    ratio('keep-alive, best ≥ 10× gunicorn sync', best_rps, rps('gunicorn-sync', keep), 10.0,
          best_name, 'gunicorn-sync')
    close_best = best_pywsgi('wrk-close')
    ratio('Connection: close (wrk), best ≥ 1.0× bjoern', close_best and close_best['rps'],
          rps('bjoern', 'wrk-close'), 1.0, close_best['config'] if close_best else 'pywsgi',
          'bjoern')
    ab_best = best_pywsgi('ab-20000')
    ratio('new connection per request (ab -n20000), best ≥ 1.0× bjoern',
          ab_best and ab_best['rps'], rps('bjoern', 'ab-20000'), 1.0,
          ab_best['config'] if ab_best else 'pywsgi', 'bjoern')
    ratio('--threads 15 ≥ 0.7× one thread (keep-alive)', rps('embedded-1x15', keep),
          rps('embedded-1x1', keep), 0.7, 'embedded-1x15', 'embedded-1x1')
    ratio('access log on ≥ 0.85× off (1x1, keep-alive)', rps('embedded-1x1-log', keep),
          rps('embedded-1x1', keep), 0.85, 'embedded-1x1-log', 'embedded-1x1')
    ratio('daemon mode 2x15 ≥ 0.6× embedded 2x15 (keep-alive)', rps('daemon-2x15', keep),
          rps('embedded-2x15', keep), 0.6, 'daemon-2x15', 'embedded-2x15')
    ratio('daemon mode 2x15 ≥ 4× Apache mod_wsgi daemon (keep-alive)', rps('daemon-2x15', keep),
          rps('apache-modwsgi-daemon', keep), 4.0, 'daemon-2x15', 'apache-modwsgi-daemon')
    ratio('static 15 B ≥ 1.0× nginx (keep-alive)', rps('pywsgi-static', keep),
          rps('nginx-static', keep), 1.0, 'pywsgi-static', 'nginx-static')
    ratio('static 100 KiB ≥ 1.0× nginx (keep-alive)', rps('pywsgi-static-100k', keep),
          rps('nginx-static-100k', keep), 1.0, 'pywsgi-static-100k', 'nginx-static-100k')
    ratio('HTTPS keep-alive, 1 process ≥ 0.8× nginx return 200 over TLS',
          rps('embedded-1x1-tls', keep), rps('nginx-return200-tls', keep), 0.8,
          'embedded-1x1-tls', 'nginx-return200-tls')
    ratio('HTTPS keep-alive, 1 process ≥ 3× gunicorn --certfile', rps('embedded-1x1-tls', keep),
          rps('gunicorn-sync-tls', keep), 3.0, 'embedded-1x1-tls', 'gunicorn-sync-tls')
    many = 'wrk-c4000'
    one_process = [row for row in rows if row['tool'] == many and row.get('rps')
                   and row['config'] in ('embedded-1x5', 'embedded-1x1')]
    default_row = next((row for row in one_process if row['config'] == 'embedded-1x5'),
                       one_process[0] if one_process else None)
    bjoern_row = next((row for row in rows if row['tool'] == many and row['config'] == 'bjoern'
                       and row.get('rps')), None)
    if default_row and bjoern_row:
        name = default_row['config']
        checks.append(('4,000 keep-alive clients, 1 process: no errors',
                       '%s: %d errors (bjoern %d)' % (name, default_row['errors'],
                                                       bjoern_row['errors']),
                       'met' if default_row['errors'] == 0 else 'MISSED'))
        ratio('4,000 keep-alive clients, 1 process ≥ 0.8× bjoern (within 1.25×)',
              default_row['rps'], bjoern_row['rps'], 0.8, name, 'bjoern')
        if default_row.get('p99_ms') is not None and bjoern_row.get('p99_ms') is not None:
            checks.append(('4,000 keep-alive clients, 1 process: p99 ≤ 1.25× bjoern\'s',
                           '%s %s vs bjoern %s' % (name, format_ms(default_row['p99_ms']),
                                                   format_ms(bjoern_row['p99_ms'])),
                           'met' if default_row['p99_ms'] <= 1.25 * bjoern_row['p99_ms']
                           else 'MISSED'))
    else:
        checks.append(('4,000 keep-alive clients, 1 process (wrk-c4000) vs bjoern',
                       'not measured', '-'))
    peers = [row for row in rows if row['tool'] == keep
             and row['server'] not in ('pywsgi', 'pywsgi-baseline')   # (an older pywsgi)
             and row.get('rps') and row.get('p99_ms') is not None
             and not row['config'].endswith('-tls')]
    if best and best.get('p99_ms') is not None and peers:
        fastest = max(peers, key=lambda row: row['rps'])
        checks.append(('p99 at c=100 ≤ the fastest peer\'s (keep-alive)',
                       '%s %s vs %s %s' % (best_name, format_ms(best['p99_ms']),
                                           fastest['config'], format_ms(fastest['p99_ms'])),
                       'met' if best['p99_ms'] <= fastest['p99_ms'] else 'MISSED'))
    else:
        checks.append(('p99 at c=100 ≤ the fastest peer\'s (keep-alive)', 'not measured', '-'))
    # Issue 19, the per-request cost: one process against the fastest one-process peers.
    for tool, wrk_threads in (('wrk-keepalive', '-t2'), ('wrk-keepalive-t1', '-t1')):
        ratio('issue 19: keep-alive wrk %s, 1 process 1 thread ≥ 1.0× fastwsgi' % wrk_threads,
              rps('embedded-1x1', tool), rps('fastwsgi', tool), 1.0, 'embedded-1x1', 'fastwsgi')
        ratio('issue 19: keep-alive wrk %s, 1 process 1 thread ≥ 1.1× bjoern' % wrk_threads,
              rps('embedded-1x1', tool), rps('bjoern', tool), 1.1, 'embedded-1x1', 'bjoern')

    def row_of(config, tool):
        return next((row for row in rows if row['config'] == config and row['tool'] == tool
                     and row.get('rps') and row.get('p99_ms') is not None), None)

    for tool, how in (('wrk-keepalive', 'keep-alive wrk -t2'),
                      ('wrk-keepalive-t1', 'keep-alive wrk -t1'),
                      ('wrk-paced', 'below saturation (wrk-paced)')):
        label = 'issue 19: p99 %s, 1 process 1 thread ≤ the best peer\'s' % how
        own = row_of('embedded-1x1', tool)
        peers = [row for row in (row_of('bjoern', tool), row_of('fastwsgi', tool)) if row]
        if not own or not peers:
            checks.append((label, 'not measured', '-'))
            continue
        peer = min(peers, key=lambda row: row['p99_ms'])
        measured = 'embedded-1x1 %s vs %s %s' % (format_ms(own['p99_ms']), peer['config'],
                                                 format_ms(peer['p99_ms']))
        # A p99 taken while wrk's threads were short of CPU is wrk's wait for a core, not the
        # server's latency (docs/benchmarks.md, "Whose p99"): said beside the verdict.
        why = ''
        if own['bottleneck'] == 'load generator' and peer['bottleneck'] != 'load generator':
            why = 'wrk saturated: %.0f %% of a core' % (100 * own['client_cores'])
        elif own['rps'] > peer['rps'] and own['server_cores'] < peer['server_cores'] - 0.05:
            # more answers with CPU to spare: wrk could not keep the server busy
            why = 'server CPU %.0f %% vs %.0f %%: wrk could not keep it busy' % (
                100 * own['server_cores'], 100 * peer['server_cores'])
        if own['p99_ms'] <= peer['p99_ms']:
            checks.append((label, measured, 'met'))
        else:
            checks.append((label, measured + (' (%s)' % why if why else ''),
                           'MISSED (wrk-bound)' if why else 'MISSED'))

    def faster_peer(tool, names):
        measured = [(rps(name, tool), name) for name in names if rps(name, tool)]
        return max(measured) if measured else (None, 'bjoern/fastwsgi')

    peer_rps, peer_name = faster_peer('wrk-flask', ('flask-bjoern', 'flask-fastwsgi'))
    ratio('issue 19: Flask app, 1 process 1 thread ≥ 1.0× the faster of bjoern and fastwsgi',
          rps('flask-embedded-1x1', 'wrk-flask'), peer_rps, 1.0, 'flask-embedded-1x1', peer_name)
    peer_rps, peer_name = faster_peer('wrk-pipelined', ('bjoern', 'fastwsgi'))
    ratio('issue 19: 16 pipelined requests, 1 process 1 thread ≥ 2× the faster of bjoern and '
          'fastwsgi', rps('embedded-1x1', 'wrk-pipelined'), peer_rps, 2.0, 'embedded-1x1',
          peer_name)
    ratio('issue 19: access log on ≥ 0.9× off (1x1, keep-alive)', rps('embedded-1x1-log', keep),
          rps('embedded-1x1', keep), 0.9, 'embedded-1x1-log', 'embedded-1x1')
    idle = next((row for row in rows if row['config'] == 'embedded-1x1'
                 and row.get('rss_largest_idle_mib') is not None), None)
    if idle:
        checks.append(('≤ 15 MiB RSS per server process at idle',
                       'largest server process %.1f MiB (%d processes: %.1f MiB in all)' % (
                           idle['rss_largest_idle_mib'], idle['processes'], idle['rss_idle_mib']),
                       'met' if idle['rss_largest_idle_mib'] <= 15 else 'MISSED'))
    else:
        checks.append(('≤ 15 MiB RSS per server process at idle', 'not measured', '-'))
    return checks


def markdown_report(rows, tools, specs, machine, args, started, measurements):
    lines = []
    info = machine_description()
    lines.append('# pywsgi benchmark results')
    lines.append('')
    lines.append('Run %s, %s: %d round(s), wrk runs of %g s, warm-up %g s. Medians of the rounds.'
                 % (started.strftime('%Y-%m-%d %H:%M'), 'SMOKE (proves the harness only)'
                    if args.smoke else ('quick' if args.quick else 'full'),
                    args.rounds, args.duration, args.warmup))
    lines.append('')
    lines.append('Machine: %d cores, %s, %s memory, Linux %s, %s. The load generator runs on the '
                 'same machine and shares its cores with the server.' % (
                     info['cores'], info['cpu'], info['memory'], info['kernel'], info['os']))
    lines.append('')
    lines.append('Command: `%s`' % ' '.join(shlex.quote(a) for a in [
        'python', 'loadtests/bench.py'] + sys.argv[1:]))
    lines.append('')
    noisy = [row for row in rows if row.get('other_cores_measurable', 0) > NOISY_OTHER_CORES]
    if noisy:
        lines.append('**Noisy run**: other processes on the machine used up to %.0f%% of a core '
                     'during some measurements (column "other CPU"); do not publish these figures.'
                     % (100 * max(row['other_cores_measurable'] for row in noisy)))
        lines.append('')
    for tool in tools:
        tool_rows = sorted((row for row in rows if row['tool'] == tool.name),
                           key=lambda row: -row.get('rps', 0))
        if not tool_rows:
            continue
        lines.append('## %s' % tool.name)
        lines.append('')
        lines.append('`%s`' % tool.description.replace('-dDs', '-d%gs' % args.duration))
        lines.append('')
        lines.append('| server | config | req/s (median) | p99 | errors | RSS idle → after load '
                     '(MiB, procs) | × pywsgi best | client / server / other CPU | bottleneck |')
        lines.append('|---|---|---:|---:|---:|---:|---:|---:|---|')
        for row in tool_rows:
            if not row.get('rounds'):
                lines.append('| %s | %s | failed | | | | | | %s |' % (
                    row['server'], row['config'], row['failure'].replace('|', '/')[:120]))
                continue
            ratio = row.get('vs_pywsgi_best')
            lines.append('| %s | %s | %.0f | %s | %d | %.1f → %.1f (%d) | %s '
                         '| %.0f / %.0f / %.0f %% | %s |' % (
                             row['server'], row['config'], row['rps'], format_ms(row['p99_ms']),
                             row['errors'], row['rss_idle_mib'], row['rss_after_mib'],
                             row['processes'], '%.2f' % ratio if ratio else '-',
                             100 * row['client_cores'], 100 * row['server_cores'],
                             100 * row['other_cores'], row['bottleneck'] or ''))
        lines.append('')
    lines.append('Columns: req/s is the median over the rounds; p99 from wrk --latency or ab\'s '
                 'percentile table; errors are socket errors plus non-2xx answers summed over the '
                 'rounds; RSS is summed over every process of the server (a forked process\'s '
                 'shared pages count again in each); "× pywsgi best" is req/s divided by the best '
                 'pywsgi configuration\'s req/s with the same tool; CPU is in %% of one core '
                 '(client = the load generator, other = the rest of the machine); '
                 '"load generator" as bottleneck means it used ≥ %d%% of the cores its threads '
                 'can use, so the server may be faster than the figure; "CPU (shared)" means '
                 'client and server together used ≥ 90%% of the machine. CPU shares are counted '
                 'in clock ticks, so over a run shorter than %g s (ab -n1000) they are coarse '
                 '(one tick of 1/%d s is %.0f%% of a core over 50 ms) and do not mark the run as '
                 'noisy.' % (100 * LOADGEN_SATURATED, MIN_CPU_WINDOW, CLOCK_TICKS,
                             100 / CLOCK_TICKS / 0.05))
    lines.append('')
    lines.append('## Targets (issues 4 and 19) this run can decide')
    lines.append('')
    lines.append('| target | measured | verdict |')
    lines.append('|---|---|---|')
    for label, measured, verdict in target_checks(rows):
        lines.append('| %s | %s | %s |' % (label, measured, verdict))
    lines.append('')
    lines.append('## Configurations')
    lines.append('')
    for spec in specs:
        lines.append('- `%s` (%s): %s' % (spec.name, spec.server, spec.config))
    lines.append('')
    lines.append('## Versions')
    lines.append('')
    for name, version in machine.versions().items():
        lines.append('- %s: %s' % (name, version))
    lines.append('')
    return '\n'.join(lines)


def write_chart(path, rows, tools):
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        log('matplotlib is not importable: no chart (pip install matplotlib for results.png)')
        return False
    tools = [tool for tool in tools if any(row['tool'] == tool.name and row.get('rps')
                                          for row in rows)]
    if not tools:
        return False
    figure, axes = plt.subplots(len(tools), 1, figsize=(9, 0.6 + 2.6 * len(tools)), squeeze=False)
    for axis, tool in zip(axes[:, 0], tools):
        tool_rows = sorted((row for row in rows if row['tool'] == tool.name and row.get('rps')),
                           key=lambda row: row['rps'])
        labels = [row['config'] for row in tool_rows]
        values = [row['rps'] for row in tool_rows]
        colours = ['tab:blue' if row['server'] == 'pywsgi' else 'tab:gray' for row in tool_rows]
        axis.barh(labels, values, color=colours)
        for index, value in enumerate(values):
            axis.text(value, index, ' %.0f' % value, va='center', fontsize=7)
        axis.set_title(tool.name, fontsize=9)
        axis.set_xlabel('requests/s (median)', fontsize=8)
        axis.tick_params(labelsize=7)
        axis.set_xlim(0, max(values) * 1.18)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


# --------------------------------------------------------------------------- main

def parse_args(argv):
    parser = argparse.ArgumentParser(
        description='Benchmark pywsgi against the other WSGI servers installed on this machine.')
    parser.add_argument('--quick', action='store_true',
                        help='1 round, 3 s wrk runs, a few servers (the ones marked quick)')
    parser.add_argument('--smoke', action='store_true',
                        help='tiny run proving the harness works: one pywsgi configuration, '
                             '1 s, no warm-up; no thresholds')
    parser.add_argument('--servers', help='comma-separated configuration names or server families '
                                          '(e.g. embedded-1x1,bjoern,gunicorn); see --list')
    parser.add_argument('--tools', help='comma-separated subset of: %s' % ','.join(
        tool.name for tool in TOOLS))
    parser.add_argument('--rounds', type=int, help='rounds per server (default 3)')
    parser.add_argument('--duration', type=float, help='seconds per wrk run (default 10)')
    parser.add_argument('--warmup', type=float, help='seconds of wrk before measuring (default 1)')
    parser.add_argument('--out', help='output directory (default loadtests/results)')
    parser.add_argument('--venv', default=os.environ.get('BENCH_VENV', str(DEFAULT_VENV)),
                        help='the peers\' venv made by install_peers.sh (default .bench-venv)')
    parser.add_argument('--pywsgi-python', type=python_executable,
                        help='Python that runs pywsgi (default: the one running this script if '
                             'it can import pywsgi, else the bench venv\'s)')
    parser.add_argument('--baseline-python', type=python_executable,
                        help='another build of pywsgi to measure beside this one, interleaved in '
                             'the same run (a venv of an older commit): each pywsgi configuration '
                             'chosen also runs as baseline-NAME under this Python')
    parser.add_argument('--list', action='store_true', help='list the configurations and exit')
    args = parser.parse_args(argv)
    if args.smoke:
        defaults = {'rounds': 1, 'duration': 1.0, 'warmup': 0.0}
    elif args.quick:
        defaults = {'rounds': 1, 'duration': 3.0, 'warmup': 0.5}
    else:
        defaults = {'rounds': 3, 'duration': 10.0, 'warmup': 1.0}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.rounds < 1 or args.duration <= 0:
        parser.error('--rounds must be ≥ 1 and --duration > 0')
    return args


def select(specs, args):
    if args.servers:
        wanted = [name.strip() for name in args.servers.split(',') if name.strip()]
        chosen = []
        for name in wanted:
            matches = [spec for spec in specs if name in (spec.name, spec.server)]
            if not matches:
                raise SystemExit('unknown server %r; known: %s' % (
                    name, ', '.join(spec.name for spec in specs)))
            chosen.extend(spec for spec in matches if spec not in chosen)
        return chosen
    if args.smoke:
        return [spec for spec in specs if spec.name == 'embedded-1x1']
    if args.quick:
        return [spec for spec in specs if spec.quick]
    return list(specs)


def with_baselines(chosen, python):
    """Each pywsgi configuration, followed by the same one under another build's Python (family
    'pywsgi-baseline'), so two builds are compared in one run, round by round."""
    out = []
    for spec in chosen:
        out.append(spec)
        if spec.server != 'pywsgi':
            continue

        def launch(machine, port, workdir, original=spec.launch):
            return original(_Rebased(machine, python), port, workdir)
        out.append(dataclasses.replace(spec, name='baseline-' + spec.name,
                                       server='pywsgi-baseline',
                                       config=spec.config + ' (%s)' % python, launch=launch))
    return out


class _Rebased:
    """The machine as seen by a baseline configuration: pywsgi runs under another Python."""

    def __init__(self, machine, python):
        self._machine = machine
        self.pywsgi_python = python

    def __getattr__(self, name):
        return getattr(self._machine, name)


def raise_open_file_limit():
    """wrk -c4000 (and the servers, which inherit it) need more descriptors than a soft limit
    of 1024: raise it to the hard limit."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < C4000_CONNECTIONS + 100:
        log('open-file limit %d: wrk-c4000 needs about %d (ulimit -Hn)' % (
            soft, C4000_CONNECTIONS + 100))


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    raise_open_file_limit()
    machine = Machine(args.venv, args.pywsgi_python)
    specs = catalog(machine)
    if args.list:
        for spec in specs:
            log('%-26s %-18s %-50s %s' % (spec.name, spec.server, spec.config,
                                           ('unavailable: ' + spec.missing) if spec.missing
                                           else ('available' + (' (quick)' if spec.quick else ''))))
        return 0
    chosen = select(specs, args)
    if args.baseline_python:
        chosen = with_baselines(chosen, args.baseline_python)
    for spec in chosen:
        if spec.missing:
            log('skipping %s: %s' % (spec.name, spec.missing))
    chosen = [spec for spec in chosen if not spec.missing]
    tools = [tool for tool in TOOLS if getattr(machine, tool.program)]
    for program in ('wrk', 'ab'):
        if not getattr(machine, program):
            log('%s not found: its measurements are skipped (loadtests/install_peers.sh installs '
                'it)' % program)
    if args.tools:
        wanted = set(name.strip() for name in args.tools.split(','))
        unknown = wanted - set(tool.name for tool in TOOLS)
        if unknown:
            raise SystemExit('unknown tool(s): %s' % ', '.join(sorted(unknown)))
        # named explicitly: measured against every selected server
        tools = [replace(tool, only=()) for tool in tools if tool.name in wanted]
    elif args.smoke:
        tools = [tool for tool in tools if tool.name in ('wrk-keepalive', 'wrk-pipelined',
                                                         'ab-1000')]
    if not tools:
        log('no load generator available (need wrk or ab)')
        return 2
    if not chosen:
        log('no server to benchmark')
        return 2
    out = Path(args.out) if args.out else DEFAULT_OUT
    out.mkdir(parents=True, exist_ok=True)
    if not args.out:
        # Generated figures are not committed; this keeps them out of git without a root rule.
        (out / '.gitignore').write_text('*\n')
    log('pywsgi runs under %s; peers under %s' % (machine.pywsgi_python,
                                                    machine.peer_python or '(no bench venv)'))
    log('servers: %s' % ', '.join(spec.name for spec in chosen))
    log('tools: %s' % ', '.join(tool.name for tool in tools))
    started = datetime.datetime.now()
    raw_dir = out / 'raw'
    if raw_dir.exists():
        shutil.rmtree(raw_dir)
    raw_dir.mkdir()
    measurements = run_benchmark(chosen, tools, machine, args.rounds, args.duration, args.warmup,
                                 raw_dir)
    rows = summarise(measurements, chosen, tools)
    write_csv(out / 'results.csv', rows)
    write_runs_csv(out / 'runs.csv', measurements)
    report = markdown_report(rows, tools, chosen, machine, args, started, measurements)
    (out / 'results.md').write_text(report)
    chart = write_chart(out / 'results.png', rows, tools)
    log('')
    log(report)
    log('written: %s' % ', '.join(str(out / name) for name in (
        ['results.md', 'results.csv', 'runs.csv'] + (['results.png'] if chart else []) +
        ['raw/'])))
    worked = any(row.get('rps') for row in rows if row['server'] == 'pywsgi')
    return 0 if worked or not any(spec.server == 'pywsgi' for spec in chosen) else 1


if __name__ == '__main__':
    sys.exit(main())
