"""Write the seed corpus tests/fuzz/corpus/ from tests/malformed_cases.py and valid requests.

    python tests/fuzz/make_corpus.py

Every seed uses the harnesses' input layout: a selector byte (0x00: parse a head with the default
limits, 0x10-0x1f: with small limits, 0x80: the payload is a chunked body), a cut-count byte, the
cut distances, then the payload. Seeds are small (the large limit cases are left out: the
fuzzer reaches the limits with the small-limit selector). Files named crash-* are inputs that
once broke an invariant; this script leaves them alone.
"""
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from malformed_cases import CASES  # noqa: E402

CORPUS = HERE / 'corpus'
MAX_SEED = 600

VALID = [
    b'GET / HTTP/1.1\r\nHost: example.com\r\n\r\n',
    b'GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: example.com:8080\r\nAccept: */*\r\n'
    b'Cookie: a=1\r\nConnection: keep-alive\r\n\r\n',
    b'GET / HTTP/1.0\r\n\r\n',
    b'\r\n\r\nGET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n',
    b'GET http://example.org:81/p?q HTTP/1.1\r\nHost: other\r\n\r\n',
    b'GET http://[::1]:8080 HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n',
    b'OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n',
    b'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n',
    b'POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello',
    b'POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\nExpect: 100-continue\r\n\r\nhello',
    b'POST /s HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n'
    b'5\r\nhello\r\n0\r\n\r\n',
    b'POST /s HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n',
    b'PUT /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n'
    b'3;ext=1\r\nabc\r\nA;q="a \\" b"\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n',
    b'GET / HTTP/1.1\r\nHost:h\r\nX-Empty:\r\nX-Ows: \t v \t\r\n\r\n'
    b'GET /pipelined HTTP/1.1\r\nHost: h\r\n\r\n',
]

VALID_CHUNKED = [
    b'5\r\nhello\r\n0\r\n\r\n',
    b'1;a=b\r\nx\r\n10\r\n0123456789abcdef\r\n0\r\nTrailer-A: 1\r\nTrailer-B: 2\r\n\r\n',
    b'0;last="yes"\r\n\r\n',
    b'FFFFFFFFFFFFFFFF\r\nx\r\n',
]


def slug(text):
    return re.sub(r'[^a-z0-9]+', '-', text.lower()).strip('-')[:60]


def seed(selector, payload, cuts=()):
    return bytes([selector, len(cuts)]) + bytes(cuts) + payload


def seeds():
    # Every third malformed case keeps the corpus to a few dozen files; the mutator finds the
    # neighbours of each from there.
    for name, raw, status in CASES[::3]:
        if len(raw) > MAX_SEED:
            continue
        yield 'malformed-%d-%s' % (status, slug(name)), seed(0x00, raw)
    for index, raw in enumerate(VALID):
        yield 'valid-%02d' % index, seed(0x00, raw)
        # The same request cut into reads of 7 bytes, to exercise the resumed parse.
        yield 'valid-%02d-cut' % index, seed(0x00, raw, [6] * min(16, len(raw) // 7))
    for index, raw in enumerate(VALID_CHUNKED):
        yield 'chunked-%02d' % index, seed(0x80, raw, [2, 2, 2])
    # Small limits (selector 0x15: request-line 36, 6 fields, field 27, head 144, chunk-ext 9).
    yield 'small-limits-ok', seed(0x15, b'GET /x HTTP/1.1\r\nHost: h\r\nA: b\r\n\r\n')
    yield 'small-limits-long-line', seed(0x15, b'GET /' + b'a' * 40 + b' HTTP/1.1\r\nHost: h\r\n\r\n')


def main():
    CORPUS.mkdir(exist_ok=True)
    for old in CORPUS.iterdir():
        if not old.name.startswith('crash-'):
            old.unlink()
    count = 0
    for name, data in seeds():
        (CORPUS / name).write_bytes(data)
        count += 1
    print('wrote %d seeds to %s' % (count, CORPUS))


if __name__ == '__main__':
    main()
