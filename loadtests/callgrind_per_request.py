"""Instructions per request of a pywsgi server process, counted by callgrind (valgrind).

    python loadtests/callgrind_per_request.py [--python PY] [--requests N] [--app APP] \
        -- [pywsgi flags]

Runs the server twice under callgrind - serving 200 and then 200 + N keep-alive GETs from one
sequential client - and prints (Ir of the second child - Ir of the first) / N: the user-space
instructions one request costs the server process, startup excluded. Unlike req/s this does not
depend on what else the machine is doing, so it compares two builds (or two commits: run it with
each one's Python) on a shared, noisy machine. Needs valgrind (Debian's package).
"""
import argparse
import glob
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(HERE, '..', 'examples', 'myapp.wsgi')


def free_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def child_instructions(python, app, flags, requests, scratch):
    """Ir of the server child after `requests` keep-alive GETs (then a SIGTERM)."""
    port = free_port()
    out = os.path.join(scratch, 'callgrind.%d' % requests)
    master = subprocess.Popen(
        ['valgrind', '--tool=callgrind', '--callgrind-out-file=' + out + '.%p', python, '-m',
         'pywsgi', app, '--host', '127.0.0.1', '--port', str(port), '--processes', '1', *flags],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=scratch)
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                client = socket.create_connection(('127.0.0.1', port), timeout=60)
                break
            except OSError:
                if time.monotonic() > deadline or master.poll() is not None:
                    raise SystemExit('the server did not start under valgrind') from None
                time.sleep(0.5)
        request = b'GET / HTTP/1.1\r\nHost: bench\r\n\r\n'
        with client:
            for _ in range(requests):
                client.sendall(request)
                received = b''
                while b'\r\n\r\n' not in received or not received.endswith(b'!'):
                    data = client.recv(65536)
                    if not data:
                        raise SystemExit('the server closed the connection')
                    received += data
    finally:
        master.send_signal(signal.SIGTERM)
        master.wait(300)
    for path in glob.glob(out + '.*'):
        if int(path.rsplit('.', 1)[1]) == master.pid:
            continue
        with open(path) as f:
            for line in f:
                if line.startswith('summary:'):
                    return int(line.split()[1])
    raise SystemExit('no callgrind output for the server child')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--python', default=sys.executable,
                        help='the Python whose pywsgi is measured (default: this one)')
    parser.add_argument('--requests', type=int, default=2000)
    parser.add_argument('--app', default=EXAMPLE,
                        help='a script whose body ends with "!" (default: examples/myapp.wsgi)')
    parser.add_argument('flags', nargs='*', help='pywsgi flags, after --; default --threads 1')
    args = parser.parse_args()
    flags = args.flags or ['--threads', '1']
    with tempfile.TemporaryDirectory() as scratch:
        base = child_instructions(args.python, os.path.abspath(args.app), flags, 200, scratch)
        more = child_instructions(args.python, os.path.abspath(args.app), flags,
                                  200 + args.requests, scratch)
    print('%.0f instructions per request (%s)' % ((more - base) / args.requests, ' '.join(flags)))


if __name__ == '__main__':
    main()
