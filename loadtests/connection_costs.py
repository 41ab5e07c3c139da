#!/usr/bin/env python3
"""What connections cost a pywsgi server process: the figures of docs/security.md
("Connection caps, eviction and running out of descriptors").

    python loadtests/connection_costs.py idle [--connections 10000]
        RSS of the server process before and after N keep-alive connections that made one
        request each and then stay idle (measured once they have been idle for a while).

    python loadtests/connection_costs.py out-of-fds [--nofile 1024] [--connections 2000]
                                                    [--max-clients 6000] [--app-holds-fds]
        The server under RLIMIT_NOFILE soft = hard = --nofile and more connections than that
        (silent ones; with --app-holds-fds the application first uses up the descriptors and the
        connections send part of a request, so accept() itself fails with EMFILE - then keep
        --connections under the listen backlog, 1024, e.g. 600).  Prints the
        server process's CPU share over 12 s, the error-log lines it wrote, and how long a new
        client then waits for its answer.

Runs pywsgi from the Python that runs this script (`/path/to/venv/bin/python loadtests/...`),
on 127.0.0.1 and a free port, and stops it by PID.  Standard library only.  Not a benchmark:
a few seconds of one server, no peers.
"""
import argparse
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time

CLOCK_TICKS = os.sysconf('SC_CLK_TCK')
REQUEST = b'GET / HTTP/1.1\r\nHost: h\r\n\r\n'
PARTIAL_HEAD = b'GET / HTTP/1.1\r\nHost: h\r\n'
# "/" answers "ok"; "/hold?leave=N" opens descriptors until none is left, then frees N: the
# application tests/test_connection_limits.py serves.
APP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'tests', 'apps',
                   'descriptors_app.py')


def free_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


class Server:
    def __init__(self, flags, nofile=None):
        self.dir = tempfile.mkdtemp(prefix='pywsgi-conncost-')
        self.port = free_port()
        self.log_path = os.path.join(self.dir, 'error.log')
        self._log = open(self.log_path, 'wb')

        def limit():
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'pywsgi', APP, '--host', '127.0.0.1', '--port', str(self.port)]
            + flags, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
            cwd=self.dir, start_new_session=True, preexec_fn=limit)
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(('127.0.0.1', self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit('the server did not start:\n' + self.log_text()) from None
                time.sleep(0.1)
        self.child = self._child()

    def _child(self):
        for name in os.listdir('/proc'):
            if name.isdigit():
                try:
                    with open('/proc/%s/stat' % name) as f:
                        stat = f.read()
                except OSError:
                    continue
                if int(stat[stat.rindex(')') + 2:].split()[1]) == self.proc.pid:
                    return int(name)
        raise SystemExit('no server process under the master %d' % self.proc.pid)

    def cpu_seconds(self):
        with open('/proc/%d/stat' % self.child) as f:
            fields = f.read().rsplit(')', 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def rss_kib(self):
        with open('/proc/%d/status' % self.child) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
        return 0

    def log_text(self):
        with open(self.log_path, errors='replace') as f:
            return f.read()

    def connect(self):
        return socket.create_connection(('127.0.0.1', self.port), timeout=15)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # quick stop
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: master and child
                self.proc.wait()
        self._log.close()


def read_answer(sock):
    data = b''
    while b'\r\n\r\n' not in data or not data.endswith(b'ok'):
        piece = sock.recv(4096)
        if not piece:
            break
        data += piece
    return data.split(b'\r\n', 1)[0].decode(errors='replace')


def raise_own_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


def idle(args):
    raise_own_limit(args.connections + 100)
    server = Server(['--keep-alive-timeout', '120'] + args.flags)
    socks = []
    try:
        time.sleep(0.5)
        before = server.rss_kib()
        for index in range(args.connections):
            sock = server.connect()
            sock.sendall(REQUEST)
            socks.append(sock)
            if len(socks) % 200 == 0 or index == args.connections - 1:
                for pending in socks[-(len(socks) % 200 or 200):]:
                    read_answer(pending)
        time.sleep(3.0)  # idle long enough for the server to shed their buffers
        after = server.rss_kib()
        print('%d idle keep-alive connections: server process RSS %d KiB -> %d KiB, '
              '+%.1f MiB, %.2f KiB per connection' % (
                  args.connections, before, after, (after - before) / 1024.0,
                  (after - before) / args.connections))
    finally:
        for sock in socks:
            sock.close()
        server.stop()


def out_of_fds(args):
    raise_own_limit(args.connections + 100)
    flags = ['--header-timeout', '60', '--header-max-timeout', '60',
             '--keep-alive-timeout', '60'] + args.flags
    if args.max_clients:
        flags += ['--max-clients', str(args.max_clients)]
    server = Server(flags, nofile=args.nofile)
    socks = []
    try:
        if args.app_holds_fds:
            with server.connect() as sock:
                sock.sendall(b'GET /hold?leave=10 HTTP/1.1\r\nHost: h\r\n\r\n')
                read_answer(sock)
        mark = len(server.log_text())
        for _ in range(args.connections):
            sock = server.connect()
            if args.app_holds_fds:
                sock.sendall(PARTIAL_HEAD)
            socks.append(sock)
        cpu, started = server.cpu_seconds(), time.monotonic()
        time.sleep(12.0)
        share = (server.cpu_seconds() - cpu) / (time.monotonic() - started)
        lines = server.log_text()[mark:].splitlines()
        print('%d connections, RLIMIT_NOFILE %d: the server process used %.1f %% of a core over '
              'the next 12 s and wrote %d error-log lines:' % (
                  args.connections, args.nofile, 100 * share, len(lines)))
        for line in lines[:10]:
            print('  ' + line)
        started = time.monotonic()
        newcomer = server.connect()
        if args.app_holds_fds:
            for sock in socks:
                sock.sendall(b'\r\n')  # their requests complete, are answered, go idle
        newcomer.sendall(REQUEST)
        status = read_answer(newcomer)
        print('a new client: %r after %.2f s' % (status, time.monotonic() - started))
        newcomer.close()
    finally:
        for sock in socks:
            sock.close()
        server.stop()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    one = sub.add_parser('idle', help='RSS per idle keep-alive connection')
    one.add_argument('--connections', type=int, default=10000)
    two = sub.add_parser('out-of-fds', help='more connections than descriptors')
    two.add_argument('--nofile', type=int, default=1024)
    two.add_argument('--connections', type=int, default=2000)
    two.add_argument('--max-clients', type=int, default=6000)
    two.add_argument('--app-holds-fds', action='store_true')
    for each in (one, two):
        each.add_argument('flags', nargs='*', help='more pywsgi flags (after --)')
    args = parser.parse_args(argv)
    if args.command == 'idle':
        idle(args)
    else:
        out_of_fds(args)


if __name__ == '__main__':
    main()
