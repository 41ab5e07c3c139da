"""Responses held for the end of the reactor's turn (csrc/output.c, out_hold).

In inline mode (`--threads 1`) the reactor thread serves every request of a turn itself. A
small response complete in one write waits on its connection until the turn's requests are
served, and then the turn's responses go out together, so each client is woken once per batch
instead of once per response (docs/benchmarks.md, "Where the time goes"). In leader mode
(`--threads 5`, the default) a worker holds the same way the responses of requests that took
20 µs or more while it has queued requests of the same turn to serve next. Every test here runs
in both modes. What a user must never notice:

- a lost, cut or reordered byte, whatever mix of responses shares a turn (Content-Length,
  chunked, HEAD, 204, write(), Connection: close, pipelined requests, a slow reader);
- a streamed response whose first block waits for the application's next one;
- a fast response waiting behind slow requests: after a request that ran 1 ms or more the
  server holds nothing for a second.
"""
import select
import socket
import time

import pytest

from httpraw import RawConnection, build_request

CLIENTS = 40
ROUNDS = 4

APP = r'''
import time


def application(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/chunked':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return (b'part-%d;' % i for i in range(3))
    if path == '/write':
        write = start_response('200 OK', [('Content-Type', 'text/plain'),
                                          ('Content-Length', '10')])
        write(b'write;')
        return [b'iter']
    if path == '/empty':
        start_response('204 No Content', [])
        return []
    if path == '/stream':
        start_response('200 OK', [('Content-Type', 'text/plain')])

        def blocks():
            yield b'first;'
            time.sleep(float(environ['QUERY_STRING'] or '1'))
            yield b'second;'
        return blocks()
    if path == '/sleep':
        time.sleep(float(environ['QUERY_STRING']))
    if path.startswith('/k/'):
        # 50 µs of work: long enough that leader mode holds the response (20 µs)
        end = time.perf_counter() + 0.00005
        while time.perf_counter() < end:
            pass
    body = ('%s %s' % (environ['REQUEST_METHOD'], environ['PATH_INFO'] + '?' +
                       environ['QUERY_STRING'])).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]
'''


@pytest.fixture(params=['1', '5'], ids=['inline', 'leader'])
def server(request, start_server, app_file):
    return start_server(app_file(APP), '--threads', request.param, '--keep-alive-timeout', '30')


def expected(kind, i, r):
    """(request bytes, [(method, status, body)] of its responses) for client i in round r."""
    target = '/k/%d/%d' % (i, r)
    if kind == 0:
        return build_request('GET', target), [('GET', 200, b'GET ' + target.encode() + b'?')]
    if kind == 1:
        return build_request('HEAD', target), [('HEAD', 200, None)]
    if kind == 2:
        return build_request('GET', '/chunked'), [('GET', 200, b'part-0;part-1;part-2;')]
    if kind == 3:
        return build_request('GET', '/write'), [('GET', 200, b'write;iter')]
    if kind == 4:
        return build_request('GET', '/empty'), [('GET', 204, b'')]
    # two pipelined requests in one write
    return (build_request('GET', target + 'a') + build_request('GET', target + 'b'),
            [('GET', 200, b'GET ' + target.encode() + b'a?'),
             ('GET', 200, b'GET ' + target.encode() + b'b?')])


def test_every_response_of_a_crowded_turn_arrives_whole_and_in_order(server):
    """40 keep-alive connections send at once, round after round, a mix of every kind of
    response: each gets exactly its own responses, complete, in order.  The last round asks
    for Connection: close, which must still come after the whole response."""
    connections = [RawConnection(server.port) for _ in range(CLIENTS)]
    try:
        for r in range(ROUNDS):
            plan = [expected((i + r) % 6, i, r) for i in range(CLIENTS)]
            last_round = r == ROUNDS - 1
            for connection, (request, _) in zip(connections, plan):
                if last_round:
                    request = request.replace(b'\r\n\r\n', b'\r\nConnection: close\r\n\r\n', 1)
                connection.send(request)
            for i, (connection, (_, responses)) in enumerate(zip(connections, plan)):
                for method, status, body in responses:
                    response = connection.read_response(method)
                    assert response.status == status, (i, r, response.raw[:200])
                    if body is not None:
                        assert response.body == body, (i, r, response.raw[:200])
                    if last_round:
                        break   # Connection: close on the first request: nothing follows
                if last_round:
                    assert connection.read_until_eof() == b''
    finally:
        for connection in connections:
            connection.close()


def test_a_slow_reader_in_the_turn_gets_its_response_and_others_are_not_delayed(
        server):
    """A client that reads nothing shares the turn with others: they get their answers; it
    gets its own whole when it starts reading."""
    slow = socket.create_connection(('127.0.0.1', server.port))
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    others = [RawConnection(server.port) for _ in range(10)]
    try:
        slow.sendall(b''.join(build_request('GET', '/slow/%d' % n) for n in range(200)))
        for n, connection in enumerate(others):
            connection.send(build_request('GET', '/other/%d' % n))
        for n, connection in enumerate(others):
            assert connection.read_response().body == b'GET /other/%d?' % n
        reader = RawConnection.over(slow)
        for n in range(200):
            assert reader.read_response().body == b'GET /slow/%d?' % n
    finally:
        slow.close()
        for connection in others:
            connection.close()


def nothing_more_within(connection, seconds):
    """Nothing beyond what was parsed has come, or comes within `seconds`."""
    if connection.buffer:
        return False
    readable, _, _ = select.select([connection.sock], [], [], seconds)
    return not readable


def test_a_streamed_block_is_not_held_for_the_next_one(server):
    """A streamed (chunked) response's first block reaches the client while the
    application is still making the next (it sleeps 3 s in between)."""
    with RawConnection(server.port, timeout=30) as connection:
        connection.send(build_request('GET', '/stream?3'))
        assert connection.read_head()[1] == 200
        assert connection.read_line() == b'6\r\n'
        assert connection.read_exact(8) == b'first;\r\n'
        assert nothing_more_within(connection, 1.0)
        assert connection.read_line() == b'7\r\n'


def test_after_a_slow_request_a_fast_response_does_not_wait_for_the_next_slow_one(
        server):
    """Once a request has run 1 ms or more, nothing is held for a second.  While a slow
    request (0.5 s) runs, a fast one and another slow one (2 s) arrive; the next turn reads
    both: the fast one is answered while the second slow one still runs."""
    with RawConnection(server.port, timeout=30) as blocker, \
            RawConnection(server.port, timeout=30) as fast, \
            RawConnection(server.port, timeout=30) as slow:
        blocker.send(build_request('GET', '/sleep?0.5'))
        time.sleep(0.2)   # the blocker is being served: the next two wait for one turn
        fast.send(build_request('GET', '/fast'))
        slow.send(build_request('GET', '/sleep?2'))
        assert blocker.read_response().body == b'GET /sleep?0.5'
        assert fast.read_response().body == b'GET /fast?'
        assert nothing_more_within(slow, 0.5)   # the slow one is still running
        assert slow.read_response().body == b'GET /sleep?2'
