"""Acceptance (issue 2): 20 concurrent requests to an app that sleeps 200 ms all succeed, and are
served in parallel, with --threads 20, with --processes 4 --threads 5 and in daemon mode (2x10).
Workers wake each other lazily (a queued request waits for the running worker first), so this
also checks that requests stuck behind a sleeping one still get their own threads.

"Finish in well under 1 s" is asserted as behaviour, not time: the app reports its own start/end
times, and with 20 threads of capacity (20x1 or 4x5) the server must run (nearly) all 20 at once.
A few late starters are tolerated (a loaded machine may start a client thread late), so the bound
is three quarters. Speed itself is for the benchmarks."""
import http.client
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from serverproc import SUITE_APP

CLIENTS = 20


def max_overlap(intervals):
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
                    key=lambda event: (event[0], event[1]))
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return peak


def concurrent_sleeps(port):
    barrier = threading.Barrier(CLIENTS)

    def one_request(_):
        connection = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
        try:
            barrier.wait(timeout=10)
            connection.request('GET', '/sleep?ms=200')
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(one_request, range(CLIENTS)))


@pytest.mark.parametrize('args', [('--threads', '20'), ('--processes', '4', '--threads', '5'),
                                  ('--daemon', '--processes', '2', '--threads', '10')],
                         ids=['threads20', 'processes4x5', 'daemon2x10'])
def test_twenty_concurrent_sleeping_requests(start_server, args):
    server = start_server(SUITE_APP, *args)
    results = concurrent_sleeps(server.port)
    assert [status for status, _ in results] == [200] * CLIENTS
    timings = [json.loads(body) for _, body in results]
    overlap = max_overlap([(timing['start'], timing['end']) for timing in timings])
    per_process = {}
    for timing in timings:
        per_process[timing['pid']] = per_process.get(timing['pid'], 0) + 1
    assert overlap >= CLIENTS * 3 // 4, (
        'only %d of %d requests ran at once (requests per process: %s): requests waited while '
        'the server had idle threads' % (overlap, CLIENTS, sorted(per_process.values())))
