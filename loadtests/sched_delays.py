"""Who waits for a CPU under wrk: the scheduling delays of the load generator and the server.

    python loadtests/sched_delays.py [--peer bjoern|fastwsgi] [--app APP] [--path PATH] \
        [--seconds N] [--wrk-threads N] [-- pywsgi flags]

Starts one server (pywsgi `--processes 1 --threads 1` by default, or a peer through
apps/run_peer.py), warms it up, then runs `wrk -tN -c100 --latency` under `perf sched record` and
prints wrk's req/s and p99, and for wrk's threads and the server's: the time they ran, how often
and how long they sat runnable without a CPU (runqueue delays over 1 ms and over 3 ms), and each
CPU's idle time. With two cores and `wrk -t2`, three busy threads share two CPUs: a wrk thread
that waits a scheduler tick (4 ms at 250 Hz) for a core delays its 50 connections' requests by
as much, which is what a p99 of 3-4 ms is made of (docs/benchmarks.md). Needs Debian's
linux-perf and wrk, and the right to trace scheduler events (root, or perf_event_paranoid <= 1).
"""
import argparse
import collections
import os
import re
import subprocess
import tempfile

from cpu_split import require_tools, server_arguments, serving

# perf sched timehist: time, [cpu], task[tid/pid], wait time, sch delay, run time (ms)
TIMEHIST_ROW = re.compile(r'^\s*([\d.]+)\s+\[(\d+)\]\s+(\S+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)')


def summarize(timehist, server_pid):
    """{group: {'run', 'delay', 'over_1ms', 'over_3ms', 'max'}} for 'wrk' and 'server',
    {cpu: idle ms}, and {group: ms} of who ran on the CPU while a wrk thread waited > 3 ms for
    it ('server', 'wrk' (its other thread) or 'other')."""
    groups = collections.defaultdict(lambda: collections.Counter(max=0.0))
    idle = collections.Counter()
    behind = collections.Counter()
    runs = []   # (cpu, started, ended, group), in the order they ended
    for line in timehist.splitlines():
        row = TIMEHIST_ROW.match(line)
        if not row:
            continue
        ended, cpu, task, _, delay, run = row.groups()
        ended, cpu, delay, run = float(ended), int(cpu), float(delay), float(run)
        if task == '<idle>':
            idle[cpu] += run
            continue
        ids = re.search(r'\[(\d+)(?:/(\d+))?\]$', task)
        pid = int(ids.group(2) or ids.group(1)) if ids else None
        group = 'wrk' if task.startswith('wrk[') else 'server' if pid == server_pid else None
        started = ended - run / 1000
        if group == 'wrk' and delay > 3:
            # the wait is [started - delay, started): the runs on this CPU that ended in it
            waited_from = started - delay / 1000
            for other_cpu, other_start, other_end, other_group in reversed(runs):
                if other_end <= waited_from:
                    break
                if other_cpu == cpu and other_end <= started + 1e-6:
                    behind[other_group] += (other_end - max(other_start, waited_from)) * 1000
        runs.append((cpu, started, ended, group or 'other'))
        if group is None:
            continue
        g = groups[group]
        g['run'] += run
        g['cpu%s' % cpu] += run
        g['delay'] += delay
        g['over_1ms'] += delay > 1
        g['over_3ms'] += delay > 3
        g['max'] = max(g['max'], delay)
    return groups, idle, behind


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seconds', type=int, default=3, help='traced seconds of load')
    parser.add_argument('--wrk-threads', type=int, default=2)
    server_arguments(parser)
    args = parser.parse_args()
    if args.seconds < 1 or args.wrk_threads < 1:
        parser.error('--seconds and --wrk-threads must be at least 1')
    require_tools(parser, 'perf', 'wrk')
    with tempfile.TemporaryDirectory() as scratch, serving(args, scratch) as (url, pid):
        subprocess.run(['wrk', '-t%d' % args.wrk_threads, '-c100', '-d1s', url],
                       capture_output=True, timeout=60)  # warm-up
        data = os.path.join(scratch, 'sched.data')
        done = subprocess.run(['perf', 'sched', 'record', '-o', data, '--', 'wrk',
                               '-t%d' % args.wrk_threads, '-c100', '-d%ds' % args.seconds,
                               '--latency', url],
                              capture_output=True, text=True, timeout=args.seconds + 60)
        if done.returncode != 0:
            raise SystemExit('perf sched record failed: %s' % done.stderr.strip()[-500:])
        timehist = subprocess.run(['perf', 'sched', 'timehist', '-i', data],
                                  capture_output=True, text=True, check=True).stdout
    rate = re.search(r'Requests/sec:\s*([\d.]+)', done.stdout)
    p99 = re.search(r'99%\s+(\S+)', done.stdout)
    print('%s: %s req/s, p99 %s (wrk -t%d -c100 -d%ds %s)' % (
        args.peer or 'pywsgi', rate.group(1) if rate else '?', p99.group(1) if p99 else '?',
        args.wrk_threads, args.seconds, args.path))
    groups, idle, behind = summarize(timehist, pid)
    for name in ('wrk', 'server'):
        g = groups[name]
        print('  %-6s ran %7.1f ms; waited for a CPU %6.1f ms in all, %4d times > 1 ms, '
              '%4d times > 3 ms, longest %.2f ms; ran on %s' % (
                  name, g['run'], g['delay'], g['over_1ms'], g['over_3ms'], g['max'],
                  ', '.join('CPU %d %.0f ms' % (int(key[3:]), g[key])
                            for key in sorted(g) if key.startswith('cpu'))))
    print('  idle: %s' % ', '.join('CPU %d %.1f ms' % (cpu, ms)
                                   for cpu, ms in sorted(idle.items())))
    print('  while a wrk thread waited > 3 ms, its CPU ran: %s' % (', '.join(
        '%s %.1f ms' % (name, ms) for name, ms in behind.most_common()) or 'nothing'))


if __name__ == '__main__':
    main()
