"""Where a server process's CPU time goes under wrk: kernel or user space, by library.

    python loadtests/cpu_split.py [--peer bjoern|fastwsgi] [--app APP] [--path PATH] \
        [--seconds N] [--symbols N] [-- pywsgi flags]

Starts one server (pywsgi `--processes 1 --threads 1` by default, or a peer through
apps/run_peer.py), warms it up, then samples its serving process with `perf record -e cpu-clock`
while `wrk -t2 -c100` loads it, and prints the share of each shared object ([kernel.kallsyms],
libpython, the server's extension, ...) and the costliest kernel symbols. callgrind
(callgrind_per_request.py) counts user-space instructions only; this shows the kernel's part,
e.g. the wake-ups of the client that each response's sendmsg causes (docs/benchmarks.md). Needs
Debian's linux-perf and wrk; software sampling (cpu-clock) works in a VM without counters.
"""
import argparse
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from callgrind_per_request import EXAMPLE, HERE, free_port


def server_command(python, peer, app, port, flags):
    if peer:
        module = os.path.splitext(os.path.basename(app))[0]
        if app == os.path.abspath(EXAMPLE):
            module = 'hello'   # the example's hello world, as apps/hello.py has it
        return [python, os.path.join(HERE, 'apps', 'run_peer.py'), peer, '127.0.0.1', str(port),
                module]
    return [python, '-m', 'pywsgi', app, '--host', '127.0.0.1', '--port', str(port),
            '--processes', '1', '--threads', '1', '--log-level', 'warn', *flags]


def serving_pid(proc, peer):
    """The process that serves: a peer itself, pywsgi's one child."""
    if peer:
        return proc.pid
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = subprocess.run(['pgrep', '-P', str(proc.pid)], capture_output=True,
                                  text=True).stdout.split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise SystemExit('pywsgi started no server process')


def wait_listening(url, proc):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit('the server exited with status %d' % proc.returncode)
        if subprocess.run(['wrk', '-t1', '-c1', '-d1s', url], capture_output=True).returncode == 0:
            return
        time.sleep(0.2)
    raise SystemExit('the server does not answer %s' % url)


def report(data, sort):
    out = subprocess.run(['perf', 'report', '-i', data, '--sort', sort, '--stdio'],
                         capture_output=True, text=True, check=True).stdout
    return [line.strip() for line in out.splitlines() if re.match(r'\s*\d+\.\d+%', line)]


def server_arguments(parser):
    """The options that say which server to load (this tool's and sched_delays.py's)."""
    parser.add_argument('--peer', choices=('bjoern', 'fastwsgi'))
    parser.add_argument('--app', default=EXAMPLE, help='WSGI script (default: the hello world)')
    parser.add_argument('--path', default='/')
    parser.add_argument('flags', nargs='*', help='pywsgi flags (after --)')


def require_tools(parser, *tools):
    """Exit 2 with a message when a tool is not installed."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        parser.error('%s not installed (Debian: linux-perf, wrk)' % ', '.join(missing))


@contextlib.contextmanager
def serving(args, scratch):
    """The server that args name, started in scratch (the app's path made absolute for it) and
    answering: yields (url, pid of the serving process); stopped with SIGTERM afterwards."""
    port = free_port()
    url = 'http://127.0.0.1:%d%s' % (port, args.path)
    proc = subprocess.Popen(server_command(sys.executable, args.peer, os.path.abspath(args.app),
                                           port, args.flags),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=scratch)
    try:
        wait_listening(url, proc)
        yield url, serving_pid(proc, args.peer)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seconds', type=float, default=4.0, help='sampled seconds')
    parser.add_argument('--symbols', type=int, default=8, help='kernel symbols to list')
    server_arguments(parser)
    args = parser.parse_args()
    require_tools(parser, 'perf', 'wrk')
    with tempfile.TemporaryDirectory() as scratch, serving(args, scratch) as (url, pid):
        load = subprocess.Popen(['wrk', '-t2', '-c100', '-d%ds' % (args.seconds + 2), url],
                                stdout=subprocess.PIPE, text=True)
        time.sleep(1)  # the load is steady before sampling starts
        data = os.path.join(scratch, 'perf.data')
        subprocess.run(['perf', 'record', '-q', '-e', 'cpu-clock', '-F', '2000', '-o', data,
                        '-p', str(pid), '--', 'sleep', str(args.seconds)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        rate = re.search(r'Requests/sec:\s*([\d.]+)', load.communicate(timeout=60)[0])
        print('%s: %s req/s under wrk -t2 -c100 %s' % (
            args.peer or 'pywsgi', rate.group(1) if rate else '?', args.path))
        print('CPU time of the serving process by shared object:')
        for line in report(data, 'dso')[:8]:
            print('   ', line)
        print('costliest kernel symbols:')
        for line in [row for row in report(data, 'sym') if '[k]' in row][:args.symbols]:
            print('   ', line)


if __name__ == '__main__':
    main()
