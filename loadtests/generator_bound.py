"""Whose p99 is it: the server's, or the load generator's?

    python loadtests/generator_bound.py [--pywsgi-python PY] [--rounds N] [--seconds N]

On a machine where wrk shares the cores with the server, a p99 measured while wrk's own threads
are short of CPU is the time a response waits in wrk's socket for wrk to be scheduled. This
runs the hello world on four servers - pywsgi (`--processes 1 --threads 1`), the same pywsgi
serving apps/hello_spin.py (1 us of busy-waiting per request, so a little slower), bjoern and
fastwsgi (through apps/run_peer.py, with this script's Python) - under four placements:

  shared -t2   wrk -t2 -c100 and the server on any core (bench.py's wrk-keepalive row)
  pinned -t2   the server on core 0, wrk -t2 on core 1: wrk's two threads share one core
  pinned -t1   the server on core 0, wrk -t1 on core 1: nothing else on either core
  paced -t2    as shared, each connection waiting 1 ms between requests (wrk/paced.lua,
               bench.py's wrk-paced row): latency below saturation

and prints, per placement, the medians over the rounds of req/s, p99, and the CPU that wrk and
the serving process used (% of one core). Rounds interleave the servers. Needs wrk, bjoern and
fastwsgi (loadtests/install_peers.sh) and two cores; Linux (sched_setaffinity).
"""
import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from bench import python_executable
from callgrind_per_request import EXAMPLE, HERE, free_port
from cpu_split import server_command, serving_pid, wait_listening

PACED_SCRIPT = os.path.join(HERE, 'wrk', 'paced.lua')
SPIN_APP = os.path.join(HERE, 'apps', 'hello_spin.py')
PLACEMENTS = ('shared -t2', 'pinned -t2', 'pinned -t1', 'paced -t2')
SERVERS = ('pywsgi', 'pywsgi +1 us', 'bjoern', 'fastwsgi')
CLOCK_TICKS = os.sysconf('SC_CLK_TCK')


def server_argv(name, pywsgi_python, port):
    """pywsgi 1x1 (with pywsgi_python) or a peer (with this Python), as cpu_split.py runs them."""
    if name.startswith('pywsgi'):
        return server_command(pywsgi_python, None, SPIN_APP if name != 'pywsgi' else EXAMPLE,
                              port, [])
    return server_command(sys.executable, name, os.path.abspath(EXAMPLE), port, [])


def on_cores(cores):
    """A preexec_fn that confines the new process (and all it starts) to these cores."""
    return (lambda: os.sched_setaffinity(0, cores)) if cores else None


def cpu_seconds(pid):
    """utime + stime of one process, all its threads (/proc/PID/stat)."""
    with open('/proc/%d/stat' % pid) as stat:
        fields = stat.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def run_wrk(argv, cores, timeout):
    """(output, wrk's CPU seconds, wall seconds)."""
    with tempfile.TemporaryFile() as output:
        start = time.monotonic()
        proc = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT,
                                preexec_fn=on_cores(cores))
        _, status, rusage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
        output.seek(0)
        text = output.read().decode(errors='replace')
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit('%s failed:\n%s' % (' '.join(argv), text))
    return text, rusage.ru_utime + rusage.ru_stime, wall


def p99_ms(text):
    match = re.search(r'^\s+99%\s+([\d.]+)(us|ms|s)\b', text, re.M)
    return float(match.group(1)) * {'us': 0.001, 'ms': 1.0, 's': 1000.0}[match.group(2)]


class Servers:
    """The four servers, each on a port of its own, confined to `cores` (None: any core)."""

    def __init__(self, pywsgi_python, cores):
        self.procs, self.urls, self.pids = {}, {}, {}
        env = dict(os.environ, HELLO_SPIN_US='1')
        for name in SERVERS:
            port = free_port()
            self.procs[name] = subprocess.Popen(
                server_argv(name, pywsgi_python, port), stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, env=env, cwd=tempfile.gettempdir(),
                preexec_fn=on_cores(cores))
            self.urls[name] = 'http://127.0.0.1:%d/' % port

    def wait_ready(self):
        for name, proc in self.procs.items():
            wait_listening(self.urls[name], proc)
            self.pids[name] = serving_pid(proc, None if name.startswith('pywsgi') else name)

    def stop(self):
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def measure(servers, name, placement, seconds):
    threads = placement.split()[-1]
    argv = ['wrk', threads, '-c100', '-d%ds' % seconds, '--latency']
    if placement.startswith('paced'):
        argv += ['-s', PACED_SCRIPT]
    argv.append(servers.urls[name])
    cores = {1} if placement.startswith('pinned') else None
    run_wrk(argv[:3] + ['-d1s', servers.urls[name]], cores, 60)   # warm-up
    before = cpu_seconds(servers.pids[name])
    text, wrk_cpu, wall = run_wrk(argv, cores, seconds + 60)
    server_cpu = cpu_seconds(servers.pids[name]) - before
    rate = float(re.search(r'Requests/sec:\s+([\d.]+)', text).group(1))
    return rate, p99_ms(text), 100 * wrk_cpu / wall, 100 * server_cpu / wall


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--pywsgi-python', default=sys.executable, type=python_executable,
                        help='the Python with pywsgi installed (default: this one)')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--seconds', type=int, default=4, help='wrk duration of each run')
    args = parser.parse_args()
    if args.rounds < 1 or args.seconds < 1:
        parser.error('--rounds and --seconds must be at least 1')
    if len(os.sched_getaffinity(0)) < 2 or not {0, 1} <= os.sched_getaffinity(0):
        parser.error('needs cores 0 and 1')
    if shutil.which('wrk') is None:
        parser.error('wrk not installed (Debian: wrk)')
    results = {}
    for cores, placements in ((None, ('shared -t2', 'paced -t2')),
                              ({0}, ('pinned -t2', 'pinned -t1'))):
        servers = Servers(args.pywsgi_python, cores)
        try:
            servers.wait_ready()
            for round_number in range(args.rounds):
                for placement in placements:
                    for name in SERVERS:
                        row = measure(servers, name, placement, args.seconds)
                        results.setdefault((placement, name), []).append(row)
                        print('round %d, %s, %s: %.0f req/s, p99 %.2f ms, wrk %.0f %%, '
                              'server %.0f %%' % ((round_number + 1, placement, name) + row),
                              file=sys.stderr, flush=True)
        finally:
            servers.stop()
    print('| placement | server | req/s | p99 | wrk CPU | server CPU |')
    print('|---|---|---:|---:|---:|---:|')
    for placement in PLACEMENTS:
        for name in SERVERS:
            rows = results[(placement, name)]
            medians = [statistics.median(column) for column in zip(*rows)]
            rate, p99, wrk_cpu, server_cpu = medians
            print(f'| {placement} | {name} | {rate:,.0f} | {p99:.2f} ms | {wrk_cpu:.0f} % '
                  f'| {server_cpu:.0f} % |')


if __name__ == '__main__':
    main()
