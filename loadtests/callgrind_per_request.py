"""Instructions per request of a pywsgi server process, counted by callgrind (valgrind).

    python loadtests/callgrind_per_request.py [--python PY] [--requests N] [--app APP] \
        [--path PATH] [--connections N] [--peer bjoern|fastwsgi|nginx] [--https] \
        [--functions N] -- [pywsgi flags]

Runs the server twice under callgrind - serving 200 and then 200 + N keep-alive GETs from one
sequential client - and prints (Ir of the second child - Ir of the first) / N: the user-space
instructions one request costs the server process, startup excluded. Unlike req/s this does not
depend on what else the machine is doing, so it compares two builds (or two commits: run it with
each one's Python) on a shared, noisy machine. Needs valgrind (Debian's package).

--https counts an HTTPS keep-alive request instead: the server gets an ECDSA P-256 certificate
(made by openssl, as bench.py's HTTPS rows) and --https-port, the client speaks TLS (Python's ssl,
TLS 1.3) on each keep-alive connection. Both runs make the same handshakes, so the difference is
the requests alone. --peer nginx counts nginx's `return 200` (one process, master_process off)
with the same body, over TLS with --https: the figure issue 20 compares against.

--functions N also prints the N functions that cost the most per request, inclusive of what
they call (callgrind_annotate --inclusive=yes on both runs, subtracted): where the time goes.
"""
import argparse
import collections
import glob
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(HERE, '..', 'examples', 'myapp.wsgi')
NGINX = shutil.which('nginx', path=os.environ.get('PATH', '') + ':/usr/sbin') or '/usr/sbin/nginx'
HELLO_BODY = 'mod_wsgi works!'  # examples/myapp.wsgi's and loadtests/apps/hello.py's


def certificate(scratch):
    """(cert, key) of a self-signed ECDSA P-256 certificate for 127.0.0.1 (bench.py's)."""
    cert, key = os.path.join(scratch, 'tls.crt'), os.path.join(scratch, 'tls.key')
    if not os.path.exists(cert):
        subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                        'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1',
                        '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert],
                       check=True, capture_output=True, timeout=60)
    return cert, key


def nginx_command(scratch, port, https):
    """nginx serving `return 200` on port in one process (bench.py's configuration)."""
    if not os.path.exists(NGINX):
        raise SystemExit('--peer nginx: nginx is not installed (loadtests/install_peers.sh)')
    conf = os.path.join(scratch, 'nginx.conf')
    tls = ''
    if https:
        cert, key = certificate(scratch)
        tls = 'ssl_certificate %s; ssl_certificate_key %s;' % (cert, key)
    with open(conf, 'w') as f:
        f.write('''daemon off;
master_process off;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    default_type text/plain;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:10m;
    client_body_temp_path %(dir)s/body;
    proxy_temp_path %(dir)s/proxy;
    fastcgi_temp_path %(dir)s/fastcgi;
    uwsgi_temp_path %(dir)s/uwsgi;
    scgi_temp_path %(dir)s/scgi;
    server {
        listen 127.0.0.1:%(port)d%(ssl)s;
        %(tls)s
        location / { return 200 "%(body)s"; }
    }
}
''' % {'dir': scratch, 'port': port, 'ssl': ' ssl' if https else '', 'tls': tls,
           'body': HELLO_BODY})
    return [NGINX, '-p', scratch, '-c', conf]


def free_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def read_response(client):
    """One response, framed by its Content-Length; raises if it is not a 200."""
    received = b''
    while b'\r\n\r\n' not in received:
        received += recv(client)
    head, _, body = received.partition(b'\r\n\r\n')
    if not head.startswith(b'HTTP/1.1 200 '):
        raise SystemExit('the server answered %r' % head.split(b'\r\n')[0])
    length = re.search(br'\r\ncontent-length: *(\d+)', head, re.I)
    if not length:
        raise SystemExit('the application must set Content-Length')
    while len(body) < int(length.group(1)):
        body += recv(client)


def recv(client):
    data = client.recv(65536)
    if not data:
        raise SystemExit('the server closed the connection')
    return data


def child_instructions(python, app, flags, requests, scratch, path='/', connections=1,
                       peer=None, https=False):
    """Ir of the server child after `requests` keep-alive GETs (then a SIGTERM), and the
    callgrind files counted.  With several connections, each round sends a request on every
    one and then reads every response, so the server finds them ready together.  peer: bjoern
    or fastwsgi instead of pywsgi (one process, one thread: all of it is counted), serving the
    module of loadtests/apps that app names, through apps/run_peer.py; nginx: its `return
    200`.  https: over TLS, each connection's handshake made before the first request."""
    port = free_port()
    out = os.path.join(scratch, 'callgrind.%d' % requests)
    if peer == 'nginx':
        server = nginx_command(scratch, port, https)
    elif peer:
        module = os.path.splitext(os.path.basename(app))[0]
        server = [python, os.path.join(HERE, 'apps', 'run_peer.py'), peer, '127.0.0.1',
                  str(port), 'hello' if app == EXAMPLE else module]
    else:
        server = [python, '-m', 'pywsgi', app, '--host', '127.0.0.1', '--processes', '1']
        if https:
            cert, key = certificate(scratch)
            server += ['--port', str(free_port()), '--https-port', str(port),
                       '--ssl-certificate-file', cert, '--ssl-certificate-key-file', key]
        else:
            server += ['--port', str(port)]
        server += flags
    master = subprocess.Popen(
        ['valgrind', '--tool=callgrind', '--separate-threads=yes',
         '--callgrind-out-file=' + out + '.%p', *server],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=scratch,
        env=dict(os.environ, PYTHONHASHSEED='0'))
    clients = []
    context = ssl._create_unverified_context() if https else None

    def connect():
        client = socket.create_connection(('127.0.0.1', port), timeout=60)
        return context.wrap_socket(client) if https else client

    try:
        deadline = time.monotonic() + 300
        while not clients:
            try:
                clients.append(connect())
            except OSError:
                if time.monotonic() > deadline or master.poll() is not None:
                    raise SystemExit('the server did not start under valgrind') from None
                time.sleep(0.5)
        while len(clients) < connections:
            clients.append(connect())
        request = b'GET %s HTTP/1.1\r\nHost: bench\r\n\r\n' % path.encode()
        for _ in range(requests // connections):
            for client in clients:
                client.sendall(request)
            for client in clients:
                read_response(client)
    finally:
        for client in clients:
            client.close()
        # the Python peers stop at Ctrl-C, nginx at SIGQUIT (graceful)
        master.send_signal({None: signal.SIGTERM, 'nginx': signal.SIGQUIT}.get(peer, signal.SIGINT))
        master.wait(300)
    total, counted = None, []
    for path in glob.glob(out + '.*'):
        pid, _, thread = path.rsplit('.', 1)[1].partition('-')
        # Not the master, nor the child's main thread: it wakes every 0.1 s, so what it spends
        # follows the run's wall-clock time, not the requests. (A file without a thread
        # number is empty.)
        if not thread or (not peer and (int(pid) == master.pid or int(thread) == 1)):
            continue
        with open(path) as f:
            for line in f:
                if line.startswith(('summary:', 'totals:')):
                    total = (total or 0) + int(line.split()[1])
                    counted.append(path)
                    break
    if total is None:
        raise SystemExit('no callgrind output for the server child')
    return total, counted


def readable(function):
    """A Cython function's C name as its Python name: __pyx_f_6pywsgi_5_core_7Request__check
    -> Request._check."""
    match = re.match(r'__pyx_(?:f|pw|pf)_6pywsgi_5_core_(.*)', function)
    if not match:
        return function
    rest = match.group(1)
    cls = re.match(r'(\d+)', rest)
    if cls:
        n = int(cls.group(1))
        start = len(cls.group(1))
        name = rest[start:start + n]
        rest = rest[start + n:]
        return name + '.' + re.sub(r'^_\d*', '', rest, count=1) if rest else name
    return rest


def inclusive(paths):
    """Instructions per function, inclusive, summed over the files (threads)."""
    costs = collections.Counter()
    for path in paths:
        listing = subprocess.run(['callgrind_annotate', '--inclusive=yes', '--threshold=100',
                                  path], capture_output=True, text=True, check=True).stdout
        for line in listing.splitlines():
            match = re.match(r'\s*([\d,]+) \([^)]*\)\s+(\S.*?)(?: \[.*\])?$', line)
            if not match or 'PROGRAM TOTALS' in line:
                continue
            where, _, function = match.group(2).rpartition(':')
            if where.endswith('.h'):
                continue  # an inlined header's share, already in its caller's line
            costs[readable(function)] += int(match.group(1).replace(',', ''))
    return costs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--python', default=sys.executable,
                        help='the Python whose pywsgi is measured (default: this one)')
    parser.add_argument('--requests', type=int, default=2000)
    parser.add_argument('--app', default=EXAMPLE,
                        help='the WSGI script served (default: examples/myapp.wsgi); its '
                             'answer must be a 200 with Content-Length')
    parser.add_argument('--path', default='/', help='the path requested (default /)')
    parser.add_argument('--connections', type=int, default=1, metavar='N',
                        help='keep-alive connections, a request in flight on each (default 1; '
                             'more lets the server find several requests ready at once, as '
                             'under load, but then the count moves a little from run to run)')
    parser.add_argument('--peer', choices=['bjoern', 'fastwsgi', 'nginx'],
                        help='count this peer instead: bjoern or fastwsgi (run by --python, '
                             'which must have it) serving hello.py or the --app of '
                             'loadtests/apps; nginx (%s) its return 200 with the same body' % NGINX)
    parser.add_argument('--https', action='store_true',
                        help='requests over TLS (--https-port, an ECDSA P-256 certificate), '
                             'the handshakes left out')
    parser.add_argument('--functions', type=int, default=0, metavar='N',
                        help='also list the N costliest functions per request (inclusive)')
    parser.add_argument('flags', nargs='*', help='pywsgi flags, after --; default --threads 1')
    args = parser.parse_args()
    flags = args.flags or ['--threads', '1']
    with tempfile.TemporaryDirectory() as scratch:
        app = EXAMPLE if args.app == EXAMPLE else os.path.abspath(args.app)
        base, base_files = child_instructions(args.python, app, flags, 200, scratch, args.path,
                                              args.connections, args.peer, args.https)
        more, more_files = child_instructions(args.python, app, flags, 200 + args.requests,
                                              scratch, args.path, args.connections, args.peer,
                                              args.https)
        print('%.0f instructions per %s request (%s)' % (
            (more - base) / args.requests, 'HTTPS' if args.https else 'HTTP',
            args.peer or ' '.join(flags)))
        if args.functions:
            before, after = inclusive(base_files), inclusive(more_files)
            rows = sorted(((after[f] - before[f]) / args.requests, f) for f in after)
            for cost, function in reversed(rows[-args.functions:]):
                print('%8.0f  %s' % (cost, function))


if __name__ == '__main__':
    main()
