#!/usr/bin/env python3
"""Replays the seed's benchmark table (wsgi-apache-modwsgi.md) on this machine.

The seed measured Apache configurations with `ab -n1000 -c100`: an old table (mod_cgi 10 req/s,
mod_python 400, mod_wsgi daemon 700, .htaccess/SetHandler 850, WSGIScriptAlias 900, static 1000)
and newer Apache figures (static 14000, mod_wsgi embedded 11000, daemon 7000). This script starts
pywsgi in each of those configurations, one at a time, on a free loopback port, serving the example
site in loadtests/site/, and drives it with:

  - Locust, headless, the row's User class from loadtests/locustfile.py, with --processes (one
    worker per core by default) so a single Python process is not the limit;
  - `ab -n1000 -c100`, the seed's exact command, and a longer ab run (`ab -t S -c100`);
  - `wrk -t2 -c100 -dS --latency` (keep-alive) when wrk is installed.

When Apache + mod_wsgi are installed (loadtests/install_apache.sh), the same rows run on Apache too,
from a configuration generated here (as loadtests/bench.py does), for a side-by-side on the same
machine. The report prints the seed's table with its published figures, ours and the ratios, then
every measurement with the CPU used by the load generator, the server and the rest of the machine:
a run whose generator used >= 85 % of the cores it can use is flagged "load generator" (the server
may be faster than the figure).

Output (--out, default loadtests/results/seed-table/): table.md, table.csv, table.png (matplotlib),
raw/ (every generator's output, every server's log).

    python loadtests/table.py --quick     # 5 s Locust, 3 s ab/wrk per row: a few minutes
    python loadtests/table.py             # 30 s Locust, 20 s ab/wrk per row
    python loadtests/table.py --rows static,embedded --servers pywsgi

Needs pywsgi importable by the Python running this (or --pywsgi-python), `pip install locust`, and
ab (Debian: apache2-utils). Standard library otherwise; matplotlib optional.
"""
import argparse
import csv
import datetime
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench  # noqa: E402  (the wrk/ab harness: /proc accounting, server start/stop, parsers)

SITE = HERE / 'site'
LOCUSTFILE = HERE / 'locustfile.py'
DEFAULT_OUT = HERE / 'results' / 'seed-table'
NPROC = bench.NPROC
HELLO_SIZE = len(b'mod_wsgi works!')
INDEX_SIZE = (SITE / 'htdocs' / 'index.html').stat().st_size
CLIENT_CONCURRENCY = 100   # the seed's -c100, also Locust's users and wrk's connections
# CPU times (of the load generator, the server, the machine) are sampled this often.
CPU_POLL_INTERVAL = 0.2
# Locust's log lines where the measured load starts and ends, and its CPU warnings.
LOCUST_MARKERS = ('All users spawned', 'run-time limit reached')
# All cores this busy (generator + server + the rest of the machine): they compete for CPU.
MACHINE_SATURATED = 0.9
LOCUST_CPU_WARNINGS = ('CPU usage above 90%', 'exceeded cpu threshold')


def log(message):
    print(message, flush=True)


# --------------------------------------------------------------------------- the seed's rows

@dataclass
class Row:
    key: str
    mechanism: str          # as the seed's table names it
    seed_old: int           # the seed's "WSGI Performance Estimates" table
    seed_apache: int        # the seed's later `ab -n1000 -c100` figure on Apache (0: none)
    user_class: str         # the Locust class in loadtests/locustfile.py ('' = not implemented)
    path: str
    expected_size: int
    pywsgi_args: list = field(default_factory=list)
    pywsgi_note: str = ''


def pywsgi_rows():
    site = SITE
    nproc = str(NPROC)
    return [
        Row('cgi', 'mod_cgi (ScriptAlias)', 10, 0, 'CgiUser', '/cgi-myapp/', HELLO_SIZE,
            ['--cgi-script', '/cgi-myapp=%s' % (site / 'myapp.wsgi'), '--processes', nproc]),
        Row('mod_python', 'mod_python (PythonHandler)', 400, 0, 'ModPythonUser', '/mpapp/',
            HELLO_SIZE, ['--python-path', str(site / 'modpython'), '--mod-python-shim',
                         '--python-handler', '/mpapp=_hello', '--processes', nproc]),
        Row('daemon', 'mod_wsgi (WSGIDaemonProcess)', 700, 7000, 'DaemonUser', '/myapp/',
            HELLO_SIZE, [str(site / 'myapp.wsgi'), '--mount-point', '/myapp', '--daemon',
                         '--processes', '2', '--threads', '15']),
        Row('handler', 'mod_wsgi (.htaccess/SetHandler)', 850, 0, 'HandlerScriptUser',
            '/handlers/app.wsgi', HELLO_SIZE,
            ['--url-alias', '/handlers', str(site / 'handlers'), '--handler-scripts',
             '--processes', nproc]),
        Row('embedded', 'mod_wsgi (WSGIScriptAlias)', 900, 11000, 'EmbeddedUser', '/myapp/',
            HELLO_SIZE, ['--script-alias', '/myapp=%s' % (site / 'myapp.wsgi'),
                         '--processes', nproc]),
        Row('static', 'static (DocumentRoot)', 1000, 14000, 'StaticUser', '/index.html',
            INDEX_SIZE, ['--document-root', str(site / 'htdocs'), '--processes', nproc,
                         '--threads', '1']),
    ]


def pywsgi_spec(row):
    def launch(machine, port, workdir):
        return bench.Launch([machine.pywsgi_python, '-m', 'pywsgi'] + row.pywsgi_args + [
            '--host', '127.0.0.1', '--port', str(port), '--log-level', 'warn'],
            # Not the repository root: `-m` would import the uncompiled source tree.
            cwd=str(workdir), env=bench.python_env(), path=row.path,
            expected_size=row.expected_size)
    return bench.ServerSpec('pywsgi-' + row.key, 'pywsgi', 'pywsgi ' + ' '.join(
        shlex.quote(a) for a in row.pywsgi_args).replace(str(SITE), 'loadtests/site'),
        True, launch)


APACHE_CONFIG = {
    'static': 'DocumentRoot "%(site)s/htdocs"\n',
    'embedded': ('%(wsgi)s'
                 'WSGIScriptAlias /myapp "%(site)s/myapp.wsgi"\n'),
    'daemon': ('%(wsgi)s'
               'WSGIDaemonProcess example.com processes=2 threads=15 display-name=%%{GROUP}\n'
               'WSGIProcessGroup example.com\n'
               'WSGIScriptAlias /myapp "%(site)s/myapp.wsgi"\n'),
    # The seed's row: handlers enabled by an .htaccess file, which Apache reads on every request.
    'handler': ('%(wsgi)s'
                'LoadModule alias_module %(modules)s/mod_alias.so\n'
                'Alias /handlers "%(site)s/handlers"\n'
                '<Directory "%(site)s/handlers">\n'
                '    AllowOverride FileInfo Options\n'
                '</Directory>\n'),
    'mod_python': ('LoadModule python_module %(modules)s/mod_python.so\n'
                   '<Location /mpapp>\n'
                   '    SetHandler mod_python\n'
                   '    PythonPath "sys.path + [\'%(site)s/modpython\']"\n'
                   '    PythonHandler _hello\n'
                   '</Location>\n'),
    'cgi': ('LoadModule alias_module %(modules)s/mod_alias.so\n'
            'LoadModule cgid_module %(modules)s/mod_cgid.so\n'
            'ScriptSock "%(dir)s/cgid.sock"\n'
            'ScriptAlias /cgi-myapp "%(site)s/cgi-bin/myapp.cgi"\n'),
}
APACHE_DESCRIPTION = {
    'static': 'DocumentRoot',
    'embedded': 'WSGIScriptAlias /myapp myapp.wsgi (embedded)',
    'daemon': 'WSGIDaemonProcess example.com processes=2 threads=15 + WSGIProcessGroup',
    'handler': 'Alias /handlers + .htaccess: Options +ExecCGI, AddHandler wsgi-script .wsgi',
    'cgi': 'ScriptAlias /cgi-myapp cgi-bin/myapp.cgi (mod_cgid; myapp.wsgi through wsgiref)',
    'mod_python': '<Location /mpapp> SetHandler mod_python, PythonHandler _hello',
}


def apache_missing(row, machine):
    if not machine.apache or not machine.apache_modules:
        return 'apache2 not installed (loadtests/install_apache.sh)'
    if row.key in ('embedded', 'daemon', 'handler') and not machine.mod_wsgi:
        return 'mod_wsgi not installed (loadtests/install_apache.sh)'
    if row.key == 'cgi' and not (machine.apache_modules / 'mod_cgid.so').exists():
        return 'mod_cgid not found in %s' % machine.apache_modules
    if row.key == 'mod_python' and not (machine.apache_modules / 'mod_python.so').exists():
        return 'mod_python not installed (loadtests/install_apache.sh)'
    return ''


def apache_spec(row, machine):
    def launch(machine, port, workdir):
        site = workdir / 'site'
        shutil.copytree(SITE, site)
        if row.key == 'handler':
            (site / 'handlers' / '.htaccess').write_text(
                'Options +ExecCGI\nAddHandler wsgi-script .wsgi\n')
        user = 'User www-data\nGroup www-data' if os.geteuid() == 0 else ''
        conf = bench.APACHE_COMMON % {'dir': workdir, 'port': port, 'user': user,
                                      'modules': machine.apache_modules}
        wsgi = ''
        if machine.mod_wsgi:
            wsgi = ('LoadModule wsgi_module %s\nWSGISocketPrefix %s/wsgi\n'
                    % (machine.mod_wsgi, workdir))
        conf += APACHE_CONFIG[row.key] % {'site': site, 'dir': workdir, 'wsgi': wsgi,
                                          'modules': machine.apache_modules}
        (workdir / 'httpd.conf').write_text(conf)
        # Workers run as www-data when started as root: every file readable, the CGI executable.
        bench.make_world_readable(workdir)
        os.chmod(site / 'cgi-bin' / 'myapp.cgi', 0o755)
        return bench.Launch([machine.apache, '-f', str(workdir / 'httpd.conf'), '-DFOREGROUND'],
                            cwd=str(workdir), path=row.path, expected_size=row.expected_size)
    spec = bench.ServerSpec('apache-' + row.key, 'apache', APACHE_DESCRIPTION[row.key], True,
                            launch)
    spec.missing = apache_missing(row, machine)
    return spec


# --------------------------------------------------------------------------- load generators

@dataclass
class Tool:
    name: str
    capacity: int     # cores the generator can use (its threads or processes)
    description: str


def tools_for(machine, locust_command, args):
    tools = []
    if locust_command:
        tools.append(Tool('locust', args.locust_processes,
                          'locust --headless -u %d -r %d -t %ds --processes %d (FastHttpUser, '
                          'no wait)' % (CLIENT_CONCURRENCY, CLIENT_CONCURRENCY, args.locust_seconds,
                                        args.locust_processes)))
    if machine.ab:
        tools.append(Tool('ab-1000', 1, "ab -n1000 -c100 (the seed's command)"))
        tools.append(Tool('ab-long', 1, 'ab -t %d -n 500000 -c100 (no keep-alive)' % args.seconds))
    if machine.wrk:
        tools.append(Tool('wrk', 2, 'wrk -t2 -c100 -d%ds --latency --timeout 30s (keep-alive)'
                          % args.seconds))
    return tools


def tool_argv(tool, machine, locust_command, url, row, args, csv_prefix):
    if tool.name == 'locust':
        host = url[:url.index('/', len('http://'))]
        argv = locust_command + [
            '-f', str(LOCUSTFILE), '--headless', '-u', str(CLIENT_CONCURRENCY),
            '-r', str(CLIENT_CONCURRENCY), '-t', '%ds' % args.locust_seconds,
            '--host', host, '--daemon-host', host, '--only-summary', '--reset-stats',
            '--csv', str(csv_prefix), '--exit-code-on-error', '0', '--stop-timeout', '5']
        if args.locust_processes > 1:
            argv += ['--processes', str(args.locust_processes)]
        return argv + [row.user_class]
    if tool.name == 'ab-1000':
        return [machine.ab, '-n1000', '-c100', url]
    if tool.name == 'ab-long':
        # -t before -n: -t alone caps the run at 50000 requests.
        return [machine.ab, '-q', '-r', '-s', '60', '-t', str(args.seconds), '-n', '500000',
                '-c', '100', url]
    if tool.name == 'wrk':
        return [machine.wrk, '-t2', '-c100', '-d%ds' % args.seconds, '--latency',
                '--timeout', '30s', url]
    raise ValueError(tool.name)


def session_cpu(session):
    """CPU seconds of a session's live processes, including the children each has reaped
    (cutime/cstime): a CGI program that ran and exited between two samples still counts."""
    total = 0
    for pid in bench.session_pids(session):
        fields = bench.read_stat(pid)
        if fields:
            total += sum(int(value) for value in fields[11:15])
    return total / bench.CLOCK_TICKS


@dataclass
class Sample:
    at: float
    client_cpu: float
    server_cpu: float
    busy: float


def run_client(argv, timeout, cwd, server_session=None, markers=()):
    """Run a load generator to completion in its own session. Returns (output, exit status,
    {marker: Sample when it first appeared in the output}, first Sample, last Sample): Locust
    prints when all users are spawned and when the run time is up, so its CPU is counted over the
    load alone, not its start-up."""
    def sample(client_cpu):
        return Sample(time.monotonic(), client_cpu,
                      session_cpu(server_session) if server_session else 0.0,
                      bench.machine_busy_seconds())

    seen = {}
    with tempfile.TemporaryFile() as output:
        first = sample(0.0)
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=output,
                                stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True)
        client_cpu = 0.0
        while True:
            pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - first.at > timeout:
                os.killpg(proc.pid, signal.SIGKILL)
                pid, status, rusage = os.wait4(proc.pid, 0)
                break
            # Locust's workers are forked processes of its session: /proc sees them while they
            # run (with what they reaped); wait4 counts them once the master has reaped them.
            client_cpu = max(client_cpu, session_cpu(proc.pid))
            if len(seen) < len(markers):
                output.seek(0)
                text = output.read().decode(errors='replace')
                for marker in markers:
                    if marker not in seen and marker in text:
                        seen[marker] = sample(client_cpu)
            time.sleep(CPU_POLL_INTERVAL)
        last = sample(max(client_cpu, rusage.ru_utime + rusage.ru_stime))
        # Anything the generator left behind in its session (a Locust worker) is stopped by PID.
        for leftover in bench.session_pids(proc.pid):
            try:
                os.kill(leftover, signal.SIGKILL)
            except ProcessLookupError:
                pass
        output.seek(0)
        text = output.read().decode(errors='replace')
    return text, os.waitstatus_to_exitcode(status), seen, first, last


def parse_locust(csv_prefix):
    """The Aggregated line of Locust's --csv stats: rps, p99, requests, failures."""
    path = Path('%s_stats.csv' % csv_prefix)
    if not path.exists():
        return {}
    with open(path, newline='') as f:
        for line in csv.DictReader(f):
            if line.get('Name') == 'Aggregated':
                result = {'rps': float(line['Requests/s']),
                          'requests': int(line['Request Count']),
                          'errors': int(line['Failure Count'])}
                if line.get('99%') not in (None, '', 'N/A'):
                    result['p99_ms'] = float(line['99%'])
                return result
    return {}


@dataclass
class Result:
    server: str
    row: str
    tool: str
    rps: float = 0.0
    p99_ms: float = None
    requests: int = 0
    errors: int = 0
    client_cores: float = 0.0
    server_cores: float = 0.0
    other_cores: float = 0.0
    bottleneck: str = ''
    failure: str = ''
    command: str = ''


def measure(tool, machine, locust_command, server, row, args, raw_dir):
    name = '%s-%s' % (server.spec.name, tool.name)
    csv_prefix = raw_dir / (name + '-locust')
    argv = tool_argv(tool, machine, locust_command, server.url, row, args, csv_prefix)
    duration = args.locust_seconds if tool.name == 'locust' else args.seconds
    result = Result(server.spec.server, row.key, tool.name,
                    command=' '.join(shlex.quote(a) for a in argv))
    markers = LOCUST_MARKERS if tool.name == 'locust' else ()
    text, status, seen, first, last = run_client(argv, duration + 300, str(raw_dir),
                                                 server.session, markers)
    if markers and len(seen) == len(markers):
        # Locust: from all users spawned (where --reset-stats restarts its counts) to the end.
        first, last = seen[markers[0]], seen[markers[1]]
    wall = max(1e-6, last.at - first.at)
    client_cpu = last.client_cpu - first.client_cpu
    server_cpu = last.server_cpu - first.server_cpu
    busy = last.busy - first.busy
    (raw_dir / (name + '.txt')).write_text('$ %s\n%s' % (result.command, text))
    if tool.name == 'locust':
        parsed = parse_locust(csv_prefix)
        if any(warning in text for warning in LOCUST_CPU_WARNINGS):
            parsed['locust_cpu_warning'] = True
    elif tool.name == 'wrk':
        parsed = bench.parse_wrk(text)
    else:
        parsed = bench.parse_ab(text)
    if status == 0 and 'rps' in parsed and not parsed['rps']:
        result.failure = 'no request completed in %d s' % duration
        return result
    if status != 0 or not parsed.get('rps'):
        result.failure = 'exit %s: %s' % (status, ' | '.join(text.strip().splitlines()[-3:]))
        return result
    result.rps = parsed['rps']
    result.p99_ms = parsed.get('p99_ms')
    result.requests = parsed.get('requests', 0)
    result.errors = parsed.get('errors', 0)
    result.client_cores = client_cpu / wall
    # Never below 0: a server process that exits mid-run takes its CPU time out of the sum.
    result.server_cores = max(0.0, server_cpu / wall)
    result.other_cores = max(0.0, busy / wall - result.client_cores - result.server_cores)
    result.bottleneck = bottleneck(tool, result, parsed.get('locust_cpu_warning'))
    return result


def bottleneck(tool, result, locust_warned):
    """'load generator' when it used (nearly) all the cores it can use, or when the machine's
    cores were all busy and the generator took more of them than the server did; 'CPU (shared)'
    when they were all busy and the server took more."""
    if result.client_cores >= bench.LOADGEN_SATURATED * min(tool.capacity, NPROC) or locust_warned:
        return 'load generator'
    if result.client_cores + result.server_cores + result.other_cores >= MACHINE_SATURATED * NPROC:
        return 'load generator' if result.client_cores > result.server_cores else 'CPU (shared)'
    return ''


def run_server(spec, row, tools, machine, locust_command, args, workdir, raw_dir):
    log('-- %s %s (%s)' % (spec.server, row.key, spec.config))
    if spec.missing:
        log('   skipped: %s' % spec.missing)
        return [Result(spec.server, row.key, tool.name, failure='skipped: ' + spec.missing)
                for tool in tools]
    try:
        server = bench.RunningServer(spec, machine, workdir)
    except OSError as error:
        return [Result(spec.server, row.key, tool.name, failure='cannot start: %s' % error)
                for tool in tools]
    results = []
    try:
        try:
            server.wait_ready()
        except RuntimeError as error:
            log('   FAILED to start: %s' % error)
            return [Result(spec.server, row.key, tool.name,
                           failure='did not start: %s' % str(error).splitlines()[0])
                    for tool in tools]
        if row.key != 'cgi' and machine.ab:
            # Warm-up: every server process has loaded the application and opened its files.
            run_client([machine.ab, '-q', '-n', '500', '-c', '10', server.url], 60,
                       str(workdir))
        for tool in tools:
            if server.proc.poll() is not None:
                results.append(Result(spec.server, row.key, tool.name,
                                      failure='server died: %s' % server.log_tail(3)))
                continue
            result = measure(tool, machine, locust_command, server, row, args, raw_dir)
            results.append(result)
            if result.failure:
                log('   %-8s FAILED %s' % (tool.name, result.failure[:300]))
            else:
                log('   %-8s %9.0f req/s  p99 %-8s errors %-4d client %3.0f%% server %3.0f%% '
                    'other %3.0f%% of a core%s' % (
                        tool.name, result.rps, bench.format_ms(result.p99_ms), result.errors,
                        100 * result.client_cores, 100 * result.server_cores,
                        100 * result.other_cores,
                        ('  [bottleneck: %s]' % result.bottleneck) if result.bottleneck else ''))
    finally:
        server.stop()
        shutil.copyfile(server.log_path, raw_dir / ('%s.server.log' % spec.name))
    return results


# --------------------------------------------------------------------------- report

def lookup(results, server, row, tool):
    return next((r for r in results if r.server == server and r.row == row and r.tool == tool
                 and not r.failure), None)


def figure(value):
    return '%.0f' % value if value else '-'


def times(numerator, denominator):
    if not numerator or not denominator:
        return '-'
    value = numerator / denominator
    return '%.1f×' % value if value < 100 else '%.0f×' % value


def seed_table(rows, results):
    lines = ['| the seed\'s row | seed: old table | seed: Apache, `ab -n1000 -c100` | pywsgi here, '
             '`ab -n1000 -c100` | × old | × seed\'s Apache | Apache here, `ab -n1000 -c100` '
             '| pywsgi ÷ Apache here |',
             '|---|---:|---:|---:|---:|---:|---:|---:|']
    for row in rows:
        ours = lookup(results, 'pywsgi', row.key, 'ab-1000')
        apache = lookup(results, 'apache', row.key, 'ab-1000')
        if not row.user_class:
            lines.append('| %s | %d | - | %s | - | - | - | - |' % (
                row.mechanism, row.seed_old, row.pywsgi_note))
            continue
        lines.append('| %s | %d | %s | %s | %s | %s | %s | %s |' % (
            row.mechanism, row.seed_old, figure(row.seed_apache), figure(ours and ours.rps),
            times(ours and ours.rps, row.seed_old), times(ours and ours.rps, row.seed_apache),
            figure(apache and apache.rps), times(ours and ours.rps, apache and apache.rps)))
    return lines


def measurements_table(rows, results):
    lines = ['| row | server | tool | req/s | p99 | failed | client / server / other CPU '
             '(% of a core) | bottleneck |', '|---|---|---|---:|---:|---:|---:|---|']
    order = {row.key: index for index, row in enumerate(rows)}
    for result in sorted(results, key=lambda r: (order[r.row], r.server != 'pywsgi')):
        if result.failure:
            if result.failure.startswith('skipped'):
                continue
            lines.append('| %s | %s | %s | failed | | | | %s |' % (
                result.row, result.server, result.tool, result.failure.replace('|', '/')[:140]))
            continue
        lines.append('| %s | %s | %s | %.0f | %s | %d | %.0f / %.0f / %.0f | %s |' % (
            result.row, result.server, result.tool, result.rps, bench.format_ms(result.p99_ms),
            result.errors, 100 * result.client_cores, 100 * result.server_cores,
            100 * result.other_cores, result.bottleneck))
    return lines


def report(rows, results, tools, specs, machine, args, started):
    info = bench.machine_description()
    mode = 'quick' if args.quick else 'full'
    lines = ['# The seed\'s table, replayed', '',
             'Run %s (%s): Locust %d s per row, ab/wrk %d s, %d concurrent clients.' % (
                 started.strftime('%Y-%m-%d %H:%M'), mode, args.locust_seconds, args.seconds,
                 CLIENT_CONCURRENCY), '',
             'Machine: %d cores, %s, %s memory, Linux %s, %s; the load generators run on the same '
             'cores as the server.' % (info['cores'], info['cpu'], info['memory'],
                                      info['kernel'], info['os']), '',
             'Command: `%s`' % ' '.join(shlex.quote(a) for a in
                                        ['python', 'loadtests/table.py'] + sys.argv[1:]), '']
    measured = [r for r in results if not r.failure]
    # CGI rows are left out: their programs' CPU lands in "other" when the server does not reap
    # them inside its own session (Apache's mod_cgid).
    noisy = [r for r in measured if r.other_cores > bench.NOISY_OTHER_CORES and r.row != 'cgi']
    if noisy:
        lines += ['**Noisy run**: other processes on the machine used up to %.0f%% of a core '
                  'during some measurements ("other" CPU below): figures to read as rough.' % (
                      100 * max(r.other_cores for r in noisy)), '']
    lines += seed_table(rows, results) + ['']
    lines += ['"× old" and "× seed\'s Apache" divide our `ab -n1000 -c100` figure by the '
              'seed\'s; '
              'the seed\'s machine is unknown, so only the "Apache here" column compares like with '
              'like.', '']
    limited = [r for r in measured if r.bottleneck == 'load generator']
    locust_limited = [r for r in limited if r.tool == 'locust']
    lines += ['## Every measurement', ''] + measurements_table(rows, results) + ['']
    lines.append('Tools: ' + '; '.join('%s = `%s`' % (t.name, t.description) for t in tools) + '.')
    lines.append('')
    lines.append('CPU is in % of one core over the measured load (for Locust: from all users '
                 'spawned to the end of the run): client = the load generator (every process), '
                 'server = its processes and the children they reaped, other = the rest of the '
                 'machine. In the CGI rows "other" includes the CGI programs a server does not '
                 'reap in its own session (Apache\'s mod_cgid). `ab -n1000 -c100` lasts a '
                 'fraction of a second on the fast rows: the longer ab run is the steadier '
                 'figure.')
    lines.append('')
    if locust_limited:
        lines.append('**Locust was the bottleneck** in %d of %d Locust runs (%s): its processes '
                     'used ≥ %d%% of the cores they can use, or Locust warned about its CPU, or '
                     'the machine\'s cores were all busy and Locust used more of them than the '
                     'server. Those figures measure Locust, not the server; ab and wrk (C) load '
                     'the server harder.' % (
                         len(locust_limited), len([r for r in measured if r.tool == 'locust']),
                         ', '.join('%s %s' % (r.server, r.row) for r in locust_limited),
                         100 * bench.LOADGEN_SATURATED))
        lines.append('')
    if limited and len(limited) != len(locust_limited):
        lines.append('The load generator was the limit in %d other run(s) (ab is one thread).'
                     % (len(limited) - len(locust_limited)))
        lines.append('')
    lines += ['## Configurations', '']
    for spec in specs:
        lines.append('- %s %s: `%s`%s' % (spec.server, spec.name, spec.config,
                                          (' (skipped: %s)' % spec.missing) if spec.missing
                                          else ''))
    lines += ['', '## Versions', '']
    versions = {name: version for name, version in machine.versions().items()
                if name in ('wrk', 'ab', 'apache', 'pywsgi python')}
    versions.update(bench.module_versions(machine.pywsgi_python, ['pywsgi']))
    versions.update(bench.module_versions(sys.executable, ['locust']))
    for name, version in versions.items():
        lines.append('- %s: %s' % (name, version))
    lines.append('')
    return '\n'.join(lines)


CSV_FIELDS = ['server', 'row', 'tool', 'rps', 'p99_ms', 'requests', 'errors', 'client_cores',
              'server_cores', 'other_cores', 'bottleneck', 'failure', 'seed_old', 'seed_apache',
              'command']


def write_csv(path, rows, results):
    seeds = {row.key: row for row in rows}
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for result in results:
            values = dict(vars(result))
            values['seed_old'] = seeds[result.row].seed_old
            values['seed_apache'] = seeds[result.row].seed_apache or ''
            writer.writerow({key: ('%.3f' % value if isinstance(value, float) else
                                   ('' if value is None else value))
                             for key, value in values.items()})


def write_chart(path, rows, results):
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        log('matplotlib is not importable: no chart (pip install matplotlib for table.png)')
        return False
    series = [('seed: old table', lambda row: row.seed_old, 'tab:gray'),
              ("seed: Apache", lambda row: row.seed_apache, 'silver'),
              ('Apache here (ab -n1000)', lambda row: getattr(
                  lookup(results, 'apache', row.key, 'ab-1000'), 'rps', 0), 'tab:orange'),
              ('pywsgi (ab -n1000)', lambda row: getattr(
                  lookup(results, 'pywsgi', row.key, 'ab-1000'), 'rps', 0), 'tab:blue'),
              ('pywsgi (Locust)', lambda row: getattr(
                  lookup(results, 'pywsgi', row.key, 'locust'), 'rps', 0), 'lightsteelblue')]
    series = [s for s in series if any(s[1](row) for row in rows)]
    figure_, axis = plt.subplots(figsize=(9, 1 + 0.9 * len(rows)))
    height = 0.8 / len(series)
    for index, (label, value_of, colour) in enumerate(series):
        positions = [r + index * height for r in range(len(rows))]
        values = [value_of(row) or 0 for row in rows]
        axis.barh(positions, values, height=height, label=label, color=colour)
        for position, value in zip(positions, values):
            if value:
                axis.text(value, position, ' %.0f' % value, va='center', fontsize=6)
    axis.set_yticks([r + 0.4 - height / 2 for r in range(len(rows))])
    axis.set_yticklabels([row.mechanism for row in rows], fontsize=8)
    axis.invert_yaxis()
    axis.set_xscale('log')
    axis.set_xlabel('requests/s (log scale)', fontsize=8)
    axis.set_title("The seed's table, replayed", fontsize=10)
    largest = max(value_of(row) or 0 for _, value_of, _ in series for row in rows)
    axis.set_xlim(right=largest * 2.5)   # room for the figures printed after the bars
    axis.legend(fontsize=7, loc='upper center', bbox_to_anchor=(0.5, -0.09), ncol=3)
    figure_.tight_layout()
    figure_.savefig(path, dpi=110)
    plt.close(figure_)
    return True


# --------------------------------------------------------------------------- main

def parse_args(argv):
    parser = argparse.ArgumentParser(description="Replay the seed's benchmark table on this "
                                                 "machine (pywsgi, and Apache when installed).")
    parser.add_argument('--quick', action='store_true', help='short runs: Locust 5 s, ab/wrk 3 s')
    parser.add_argument('--rows', help='comma-separated subset of: cgi, mod_python, daemon, '
                                       'handler, embedded, static')
    parser.add_argument('--servers', default='pywsgi,apache',
                        help='pywsgi, apache or both (default; Apache only if installed)')
    parser.add_argument('--seconds', type=int, help='seconds of ab -t and wrk (default 20)')
    parser.add_argument('--locust-seconds', type=int, help='seconds of Locust (default 30)')
    parser.add_argument('--locust-processes', type=int, default=NPROC,
                        help='Locust worker processes (default: one per core, %d)' % NPROC)
    parser.add_argument('--out', help='output directory (default loadtests/results/seed-table)')
    parser.add_argument('--pywsgi-python', type=bench.python_executable,
                        help='Python that runs pywsgi (default: this one if it can import pywsgi)')
    args = parser.parse_args(argv)
    defaults = {'seconds': 3, 'locust_seconds': 5} if args.quick else {
        'seconds': 20, 'locust_seconds': 30}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def find_locust():
    """`python -m locust` with this Python when it can import locust, else `locust` on PATH."""
    if 'locust' in bench.python_has_modules(sys.executable, ['locust']):
        return [sys.executable, '-m', 'locust']
    found = shutil.which('locust')
    return [found] if found else None


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    machine = bench.Machine(bench.DEFAULT_VENV, args.pywsgi_python)
    rows = pywsgi_rows()
    if args.rows:
        wanted = [key.strip() for key in args.rows.split(',') if key.strip()]
        unknown = set(wanted) - set(row.key for row in rows)
        if unknown:
            raise SystemExit('unknown row(s) %s; known: %s' % (
                ', '.join(sorted(unknown)), ', '.join(row.key for row in rows)))
        rows = [row for row in rows if row.key in wanted]
    servers = [name.strip() for name in args.servers.split(',') if name.strip()]
    locust_command = find_locust()
    if not locust_command:
        log('locust is not installed: no Locust measurements (pip install locust)')
    if not machine.ab:
        log('ab not found: no ab measurements (Debian: apt-get install apache2-utils)')
    if not machine.wrk:
        log('wrk not found: no wrk measurements (Debian: apt-get install wrk)')
    tools = tools_for(machine, locust_command, args)
    if not tools:
        log('no load generator available (need locust, ab or wrk)')
        return 2
    if 'pywsgi' not in bench.python_has_modules(machine.pywsgi_python, ['pywsgi']):
        log('pywsgi is not importable by %s (pip install . or --pywsgi-python)'
            % machine.pywsgi_python)
        return 2
    specs = []
    plan = []
    for row in rows:
        if not row.user_class:
            log('-- %s: %s' % (row.mechanism, row.pywsgi_note))
            continue
        if 'pywsgi' in servers:
            plan.append((pywsgi_spec(row), row))
        if 'apache' in servers:
            plan.append((apache_spec(row, machine), row))
    specs = [spec for spec, _ in plan]
    apache_missing_reasons = sorted(set(spec.missing for spec in specs
                                        if spec.server == 'apache' and spec.missing))
    for reason in apache_missing_reasons:
        log('Apache side-by-side: %s' % reason)
    out = Path(args.out) if args.out else DEFAULT_OUT
    out.mkdir(parents=True, exist_ok=True)
    if not args.out:
        # Generated figures are not committed (bench.py keeps loadtests/results/ out of git too).
        (out.parent / '.gitignore').write_text('*\n')
    raw_dir = out / 'raw'
    shutil.rmtree(raw_dir, ignore_errors=True)
    raw_dir.mkdir()
    log('pywsgi runs under %s; tools: %s' % (machine.pywsgi_python,
                                           ', '.join(tool.name for tool in tools)))
    started = datetime.datetime.now()
    results = []
    base = Path(tempfile.mkdtemp(prefix='pywsgi-seed-table-'))
    os.chmod(base, 0o755)   # Apache's workers (www-data) must reach their copy of the site
    try:
        for spec, row in plan:
            workdir = base / spec.name
            workdir.mkdir()
            results += run_server(spec, row, tools, machine, locust_command, args, workdir,
                                  raw_dir)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    text = report(rows, results, tools, specs, machine, args, started)
    (out / 'table.md').write_text(text)
    write_csv(out / 'table.csv', rows, results)
    chart = write_chart(out / 'table.png', rows, results)
    log('')
    log(text)
    log('written: %s' % ', '.join(str(out / name) for name in (
        ['table.md', 'table.csv'] + (['table.png'] if chart else []) + ['raw/'])))
    return 0 if any(r.server == 'pywsgi' and not r.failure for r in results) else 1


if __name__ == '__main__':
    sys.exit(main())
