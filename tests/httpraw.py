"""A small, strict HTTP/1.1 client over a raw socket, for byte-level checks of the server's output.

Unlike http.client or requests it never hides anything: the exact bytes are available, the chunked
framing is checked (sizes, CRLFs, the terminating 0-chunk), and an early close is reported as
IncompleteResponse instead of being papered over.
"""
import json
import socket
from dataclasses import dataclass, field


class IncompleteResponse(Exception):
    """The connection ended (or stalled) before the response was complete."""


@dataclass
class Response:
    version: str
    status: int
    reason: str
    headers: list  # [(name, value)] in wire order, names as sent
    body: bytes = b''
    raw: bytes = b''  # head and body bytes exactly as received
    chunked: bool = False
    informational: list = field(default_factory=list)  # 1xx responses seen before this one

    def header(self, name, default=None):
        values = self.header_values(name)
        return ', '.join(values) if values else default

    def header_values(self, name):
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def has_token(self, name, token):
        """True if the comma-separated header `name` contains `token` (case-insensitive)."""
        values = ','.join(self.header_values(name)).lower().split(',')
        return token.lower() in [value.strip() for value in values]

    def json(self):
        return json.loads(self.body)


def assert_items(mapping, expected):
    """`mapping` (the environ a test app answered with, say) holds every key of `expected` with
    its value: one assertion, which names every difference."""
    got = {key: mapping.get(key, '<missing>') for key in expected}
    wrong = {key for key in expected if got[key] != expected[key]}
    assert not wrong, 'got %r, expected %r' % ({key: got[key] for key in wrong},
                                               {key: expected[key] for key in wrong})


def build_request(method='GET', target='/', headers=None, body=b'', version='HTTP/1.1',
                  host='127.0.0.1'):
    """Request bytes; Host is added unless given; Content-Length is added for a non-empty body
    unless a Content-Length or Transfer-Encoding header is given."""
    headers = list(headers or [])
    names = {name.lower() for name, _ in headers}
    if 'host' not in names and version == 'HTTP/1.1':
        headers.insert(0, ('Host', host))
    if body and not names & {'content-length', 'transfer-encoding'}:
        headers.append(('Content-Length', str(len(body))))
    head = '%s %s %s\r\n' % (method, target, version)
    head += ''.join('%s: %s\r\n' % (name, value) for name, value in headers)
    return head.encode('latin-1') + b'\r\n' + body


def assert_closed_or_reusable(connection, response):
    """After `response` on `connection` (to the test suite app, tests/apps/suite.py): if it said
    Connection: close the server closes the connection; if not, the connection answers the next
    request, in order (/env echoes its query string)."""
    if response.has_token('Connection', 'close'):
        assert connection.closed_by_server(), 'open after Connection: close'
    else:
        after = connection.request('GET', '/env?after')
        assert after.json()['QUERY_STRING'] == 'after', after.raw[:300]


def chunked(*pieces, trailer=b''):
    """A chunked request body from byte pieces (empty pieces are skipped)."""
    out = b''.join(b'%x\r\n%s\r\n' % (len(piece), piece) for piece in pieces if piece)
    return out + b'0\r\n' + trailer + b'\r\n'


def recv_until_close(sock, complete=None):
    """Every byte `sock` receives until the peer closes it - or, given `complete`, until
    complete(the bytes so far) is true (a response whole on a connection kept alive)."""
    data = bytearray()
    while True:
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
        if complete is not None and complete(data):
            break
    return bytes(data)


# Ports that speak HTTPS (a test server's --https-port): port -> ssl.SSLContext.  A
# RawConnection to one of them does TLS first, so the byte-level suites run over TLS too.
TLS_PORTS = {}


class RawConnection:
    def __init__(self, port, host='127.0.0.1', timeout=10.0, source=None, sock=None):
        """source: the client's own address (another loopback address, e.g. 127.0.0.2)."""
        if sock is None:
            sock = socket.create_connection((host, port), timeout=timeout,
                                            source_address=(source, 0) if source else None)
            if port in TLS_PORTS:
                try:
                    sock = TLS_PORTS[port].wrap_socket(sock, server_hostname='localhost')
                except BaseException:
                    sock.close()
                    raise
        self.sock = sock
        self.buffer = bytearray()
        self.received = bytearray()  # everything ever received, for diagnostics
        self.eof = False

    @classmethod
    def over(cls, sock):
        """A RawConnection over a socket already connected (a TLS one, say)."""
        return cls(None, sock=sock)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def request(self, method='GET', target='/', headers=None, body=b'', version='HTTP/1.1'):
        """Send one request and read its response."""
        self.send(build_request(method, target, headers, body, version))
        return self.read_response(method)

    def _fill(self):
        if self.eof:
            raise IncompleteResponse('connection closed; unparsed: %r' % bytes(self.buffer[:200]))
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b''
        except socket.timeout:
            raise IncompleteResponse('timed out waiting for data; buffered: %r'
                                     % bytes(self.buffer[:200])) from None
        if not data:
            self.eof = True
            raise IncompleteResponse('connection closed; unparsed: %r' % bytes(self.buffer[:200]))
        self.buffer += data
        self.received += data

    def _take(self, count):
        taken = bytes(self.buffer[:count])
        del self.buffer[:count]
        return taken

    def read_line(self):
        """One CRLF-terminated line, CRLF included."""
        while True:
            end = self.buffer.find(b'\r\n')
            if end >= 0:
                line = self._take(end + 2)
                if b'\n' in line[:-1] or b'\r' in line[:-2]:
                    raise AssertionError('bare CR or LF in line %r' % line)
                return line
            self._fill()

    def read_exact(self, count):
        while len(self.buffer) < count:
            self._fill()
        return self._take(count)

    def read_until_eof(self):
        """Everything until the server closes (a reset counts as a close)."""
        while True:
            try:
                self._fill()
            except IncompleteResponse:
                if self.eof:
                    return self._take(len(self.buffer))
                raise

    def read_head(self):
        raw = self.read_line()
        status_line = raw[:-2].decode('latin-1')
        version, _, rest = status_line.partition(' ')
        code, _, reason = rest.partition(' ')
        if not (version.startswith('HTTP/1.') and len(code) == 3 and code.isdigit()):
            raise AssertionError('malformed status line %r' % raw)
        headers = []
        while True:
            line = self.read_line()
            raw += line
            if line == b'\r\n':
                break
            name, colon, value = line[:-2].decode('latin-1').partition(':')
            if not colon or not name or name != name.strip():
                raise AssertionError('malformed header line %r' % line)
            headers.append((name, value.strip(' \t')))
        return version, int(code), reason, headers, raw

    def read_response(self, method='GET'):
        informational = []
        while True:
            version, status, reason, headers, raw = self.read_head()
            response = Response(version, status, reason, headers, raw=raw)
            if 100 <= status < 200 and status != 101:
                informational.append(response)
                continue
            break
        response.informational = informational
        transfer_encoding = response.header('Transfer-Encoding')
        content_length = response.header('Content-Length')
        if method == 'HEAD' or status in (204, 304):
            return response
        if transfer_encoding is not None:
            if transfer_encoding.strip().lower() != 'chunked':
                raise AssertionError('unexpected Transfer-Encoding %r' % transfer_encoding)
            response.chunked = True
            response.body = self._read_chunked(response)
        elif content_length is not None:
            if not content_length.isdigit():
                raise AssertionError('bad Content-Length %r' % content_length)
            response.body = self.read_exact(int(content_length))
            response.raw += response.body
        else:
            response.body = self.read_until_eof()
            response.raw += response.body
        return response

    def _read_chunked(self, response):
        body = b''
        while True:
            size_line = self.read_line()
            response.raw += size_line
            size_text = size_line[:-2].split(b';', 1)[0].strip()
            size = int(size_text, 16)
            if size == 0:
                break
            data = self.read_exact(size + 2)
            response.raw += data
            if data[-2:] != b'\r\n':
                raise AssertionError('chunk not followed by CRLF: %r' % data[-10:])
            body += data[:-2]
        while True:  # trailer section
            line = self.read_line()
            response.raw += line
            if line == b'\r\n':
                return body

    def closed_by_server(self, timeout=3.0):
        """True if the server closes the connection within `timeout` without sending more bytes.
        Any unexpected byte is an AssertionError (the server sent something after the response)."""
        if self.buffer:
            raise AssertionError('unexpected bytes after the response: %r' % bytes(self.buffer[:200]))
        if self.eof:
            return True
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        if data:
            raise AssertionError('unexpected bytes after the response: %r' % data[:200])
        self.eof = True
        return True
