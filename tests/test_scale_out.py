"""Scale-out on one machine (issue 21): three pywsgi instances behind a real HAProxy (Debian's,
`loadtests/install_peers.sh --tools-only` installs it) that health-checks --ready-url, all on
loopback. Under continuous load from client threads:

1. a rolling restart - SIGTERM one instance, wait for it to exit, start its replacement on the
   same port, wait until HAProxy has it up again, next - and a graceful reload (SIGHUP) of each:
   zero failed requests and zero connection errors at the client;
2. SIGKILL of one whole instance (master and children): only the requests it had in flight may
   fail, and HAProxy marks it down within its check interval.

The figures in docs/deploying.md come from this test (`pytest -s tests/test_scale_out.py`
prints them). Bounded: the whole test takes about 30 s.
"""
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings

import pytest

from httpraw import recv_until_close
from serverproc import APPS_DIR, children_of, free_port, is_alive, stop_process, wait_until

APP = APPS_DIR / 'instance_app.py'
CHECK_INTERVAL = 0.25   # HAProxy's `inter`, with `fall 1 rise 1`
SHUTDOWN_DELAY = 1.0    # > CHECK_INTERVAL: HAProxy has seen the 503 before we stop accepting
CLIENTS = 4
WORK_MS = 10            # each request works this long, so some are always in flight

HAPROXY_CFG = """\
global
    stats socket {stats} mode 600 level admin
    log stdout format raw local0
defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch
listen web
    bind 127.0.0.1:{port}
    balance roundrobin
    option httpchk
    http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host localhost
    http-check expect status 200
    default-server inter {inter}ms fall 1 rise 1
{servers}
"""


class Instance:
    """One pywsgi instance on a fixed port, in its own session (killed by process group)."""

    def __init__(self, name, port, workdir):
        self.name, self.port, self.workdir = name, port, workdir
        self.proc = None

    def start(self):
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log = open(self.workdir / ('stderr-%d.log' % time.monotonic_ns()), 'wb')
        env = dict(os.environ, PYWSGI_TEST_INSTANCE=self.name, PYTHONUNBUFFERED='1')
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'pywsgi', APP, '--host', '127.0.0.1', '--port', str(self.port),
             '--processes', '2', '--threads', '4', '--health-url', '/healthz',
             '--ready-url', '/readyz', '--shutdown-delay', str(SHUTDOWN_DELAY),
             '--graceful-timeout', '10'],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, cwd=self.workdir,
            env=env, start_new_session=True)

    def children(self):
        return children_of(self.proc.pid)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # children left behind, if any
            except ProcessLookupError:
                pass
            self.log.close()


class HAProxy:
    def __init__(self, workdir, instances):
        self.port = free_port()
        self.workdir = workdir
        self.stats = workdir / 'haproxy.sock'
        config = workdir / 'haproxy.cfg'
        config.write_text(HAPROXY_CFG.format(
            stats=self.stats, port=self.port, inter=int(CHECK_INTERVAL * 1000),
            servers='\n'.join('    server %s 127.0.0.1:%d check' % (i.name, i.port)
                              for i in instances)))
        self.log = open(workdir / 'haproxy.log', 'wb')
        self.proc = subprocess.Popen(['haproxy', '-db', '-f', str(config)],
                                     stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def states(self):
        """{server name: 'UP' / 'DOWN' / ...} from the stats socket."""
        return {name: row['status'].split()[0] for name, row in self.stat().items()
                if name not in ('FRONTEND', 'BACKEND')}

    def stat(self):
        """{server name: its row of `show stat`} (FRONTEND and BACKEND too)."""
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(5)
                sock.connect(str(self.stats))
                sock.sendall(b'show stat\n')
                data = recv_until_close(sock)
        except OSError:
            return {}
        lines = data.decode().splitlines()
        header = lines[0].lstrip('# ').split(',')
        rows = [dict(zip(header, line.split(','))) for line in lines[1:] if line]
        return {row['svname']: row for row in rows}

    def wait_state(self, name, state, timeout=30):
        wait_until(lambda: self.states().get(name) == state, timeout, interval=0.02,
                   message='HAProxy to see %s %s' % (name, state))
        return time.monotonic()

    def retried(self):
        """{server: (wretr, wredis)}: how often HAProxy retried a connection to it, or sent
        the request to another server instead, because connecting (or reusing an idle
        connection) failed."""
        return {name: (int(row['wretr'] or 0), int(row['wredis'] or 0))
                for name, row in self.stat().items() if name not in ('FRONTEND', 'BACKEND')}

    def retried_requests(self):
        """The log lines (option httplog) of the requests HAProxy retried or redispatched:
        after the termination state (`----`), the last of the five connection counts, `retries`,
        is not 0 (`+N` if redispatched)."""
        self.log.flush()
        lines = (self.workdir / 'haproxy.log').read_text(errors='replace').splitlines()
        retried = [line for line in lines
                   if re.search(r' [-A-Za-z]{4} \d+/\d+/\d+/\d+/\+?[1-9]\d* ', line)]
        return list(dict.fromkeys(retried))   # (each line comes twice with -db)

    def stop(self):
        stop_process(self.proc, timeout=10)
        self.log.close()


class Load:
    """Client threads sending request after request through HAProxy, each on its own
    keep-alive connection (http.client reconnects after a Connection: close by itself); every
    request is recorded as (start, end, outcome, instance)."""

    def __init__(self, port):
        self.port = port
        self.records = []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(CLIENTS)]

    def start(self):
        for thread in self.threads:
            thread.start()

    def _run(self):
        connection = http.client.HTTPConnection('127.0.0.1', self.port, timeout=30)
        give_up = time.monotonic() + 120
        while not self.stopping.is_set() and time.monotonic() < give_up:
            started = time.monotonic()
            try:
                connection.request('GET', '/work?ms=%d' % WORK_MS)
                response = connection.getresponse()
                body = response.read()
                outcome = (response.status if body.startswith(b'instance ')
                           else 'bad body: %d %r' % (response.status, body[:80]))
                instance = response.getheader('X-Instance')
            except (OSError, http.client.HTTPException) as error:
                outcome, instance = repr(error), None
                connection.close()
                connection = http.client.HTTPConnection('127.0.0.1', self.port, timeout=30)
            self.records.append((started, time.monotonic(), outcome, instance))
        connection.close()

    def stop(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join(60)

    def between(self, start, end):
        return [r for r in self.records if start <= r[0] < end]


def failures(records):
    return [r for r in records if r[2] != 200]


@pytest.mark.timeout(240)
def test_rolling_restart_reload_and_kill_behind_haproxy(tmp_path):
    if shutil.which('haproxy') is None:
        pytest.skip('haproxy is not installed: `loadtests/install_peers.sh --tools-only` (CI '
                    'installs it)')
    instances = [Instance('s%d' % i, free_port(), tmp_path / ('s%d' % i)) for i in (1, 2, 3)]
    haproxy = HAProxy(tmp_path, instances)
    load = Load(haproxy.port)
    figures = []
    down_after = {}     # instance: seconds from its SIGTERM until HAProxy had it down
    try:
        for instance in instances:
            instance.start()
        for instance in instances:
            haproxy.wait_state(instance.name, 'UP', timeout=60)
        load.start()
        wait_until(lambda: len(load.records) >= 50, 30, message='load')

        # 1. rolling restart
        phase = time.monotonic()
        for instance in instances:
            sigterm_at = time.monotonic()
            instance.proc.send_signal(signal.SIGTERM)
            down_at = haproxy.wait_state(instance.name, 'DOWN', timeout=10)
            assert instance.proc.wait(timeout=30) == 0
            exited_at = time.monotonic()
            served = {r[3] for r in load.between(down_at + CHECK_INTERVAL, exited_at)}
            assert instance.name not in served  # HAProxy sent it nothing once down
            instance.log.close()
            instance.start()
            up_at = haproxy.wait_state(instance.name, 'UP', timeout=60)
            down_after[instance.name] = down_at - sigterm_at
            figures.append('%s: down %.2f s after SIGTERM, exited after %.2f s, replacement '
                           'up after %.2f s' % (instance.name, down_at - sigterm_at,
                                                exited_at - sigterm_at, up_at - sigterm_at))
        rolling = load.between(phase, time.monotonic())
        retried_rolling = haproxy.retried()

        # 2. graceful reload of each
        phase = time.monotonic()
        for instance in instances:
            old = set(instance.children())
            instance.proc.send_signal(signal.SIGHUP)
            wait_until(lambda old=old, instance=instance: not old & set(instance.children())
                       and len(instance.children()) == 2, 60, message='the reload')
            assert haproxy.states()[instance.name] == 'UP'
            time.sleep(0.3)  # load on the new generation before the next one
        reloads = load.between(phase, time.monotonic())
        retried_reloads = haproxy.retried()
        retried_requests = haproxy.retried_requests()

        # 3. SIGKILL of a whole instance
        victim = instances[1]
        pids = [victim.proc.pid] + victim.children()
        os.killpg(victim.proc.pid, signal.SIGKILL)
        victim.proc.wait()
        wait_until(lambda: not any(is_alive(pid) for pid in pids), 10, interval=0.001,
                   message='the killed processes to be gone')
        killed_at = time.monotonic()   # (a request that started before may have reached it)
        down_at = haproxy.wait_state(victim.name, 'DOWN', timeout=10)
        time.sleep(1.0)  # load on the two that are left
        load.stop()
        around_kill = load.between(killed_at - 10, time.monotonic())
    finally:
        load.stop()
        haproxy.stop()
        for instance in instances:
            instance.kill()

    assert len(rolling) > 100 and len(reloads) > 50, (len(rolling), len(reloads))
    assert failures(rolling) == [], failures(rolling)[:5]
    assert failures(reloads) == [], failures(reloads)[:5]
    # What the clients never see: how often HAProxy had to retry or redispatch a request
    # because a connection to an instance failed (its `retries` and `option redispatch` are
    # there for the SIGKILL below).  On this machine both counters stay 0 in both phases; one
    # CI run saw 15 redispatches, cause unknown.  Reported, with HAProxy's log lines of those
    # requests, as a warning in pytest's summary rather than asserted: the acceptance is the
    # clients' zero failures above.
    redispatched = {'rolling restart': retried_rolling,
                    'reloads': {name: (count[0] - retried_rolling[name][0],
                                       count[1] - retried_rolling[name][1])
                                for name, count in retried_reloads.items()}}
    if any(count != (0, 0) for phase in redispatched.values() for count in phase.values()):
        warnings.warn('HAProxy retried/redispatched (wretr, wredis) %r; HAProxy down after '
                      'SIGTERM: %r; the requests:\n%s'
                      % (redispatched, {k: round(v, 2) for k, v in down_after.items()},
                         '\n'.join(retried_requests[:20])), stacklevel=1)
    # only the requests HAProxy gave the killed instance may fail: those it had in flight, and
    # one HAProxy forwarded on a connection it still held to it in the moment before it saw
    # that connection close (one CI run: started 0.1 ms after the processes were gone) - so
    # each started before HAProxy marked it down, at most one per client; and HAProxy took it
    # out within its check interval
    failed = failures(around_kill)
    assert all(r[0] < down_at for r in failed), (killed_at, down_at, failed)
    assert len(failed) <= CLIENTS
    detection = down_at - killed_at
    assert detection <= CHECK_INTERVAL + 0.5, detection   # + the stats poll, a loaded machine
    print('\nscale-out behind HAProxy (%d client threads, %d ms per request, inter %d ms, '
          '--shutdown-delay %g):' % (CLIENTS, WORK_MS, CHECK_INTERVAL * 1000, SHUTDOWN_DELAY))
    for line in figures:
        print('  rolling restart ' + line)
    print('  rolling restart: %d requests, %d failed; HAProxy retried/redispatched %d'
          % (len(rolling), len(failures(rolling)), sum(map(sum, retried_rolling.values()))))
    print('  reload (SIGHUP) of each: %d requests, %d failed; HAProxy retried/redispatched %d'
          % (len(reloads), len(failures(reloads)),
             sum(map(sum, redispatched['reloads'].values()))))
    print('  SIGKILL of %s: %d requests failed (HAProxy had sent them to it), HAProxy down after '
          '%.2f s' % (victim.name, len(failed), detection))
