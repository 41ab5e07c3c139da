"""Malformed requests and the status pywsgi answers them with (then it closes the connection).

CASES = [(name, raw_request_bytes, expected_status), ...]

Each raw request is complete: a lenient server would answer it, so a test over a real socket
can send it, expect `expected_status` and a close, and check that a pipelined second request
is never answered. The limit cases assume the default limits (mod_wsgi-express names):
--limit-request-line 8190 (-> 414), --limit-request-fields 100, --limit-request-field-size 8190
and a 64 KiB head (-> 431).

Choices documented here (see csrc/http_parser.c for the RFC text):
- bare LF as a line end -> 400 (RFC 9112 2.2 "MAY recognize a single LF": we do not);
- Content-Length together with Transfer-Encoding -> 400 and close;
- Transfer-Encoding whose final coding is not chunked -> 400 (RFC 9112 6.3 MUST), an unknown
  coding before a final chunked -> 501;
- an unknown expectation on HTTP/1.1 -> 417 (ignored on HTTP/1.0).
"""

HOST = b"Host: example.com\r\n"


def get(request_line=b"GET / HTTP/1.1", headers=HOST, body=b""):
    """A request from its request-line, raw header lines (each with its CRLF) and body."""
    return request_line + b"\r\n" + headers + b"\r\n" + body


def post(headers, body):
    return get(b"POST /submit HTTP/1.1", HOST + headers, body)


def chunked(body):
    return post(b"Transfer-Encoding: chunked\r\n", body)


CASES = [
    # ---- request-line -------------------------------------------------------------------
    ("method with a non-token char", get(b"GE(T / HTTP/1.1"), 400),
    ("method with a NUL", get(b"GE\x00T / HTTP/1.1"), 400),
    ("empty method", get(b" / HTTP/1.1"), 400),
    ("two SP after method", get(b"GET  / HTTP/1.1"), 400),
    ("two SP before version", get(b"GET /  HTTP/1.1"), 400),
    ("HTAB as separator", get(b"GET\t/ HTTP/1.1"), 400),
    ("HTAB inside the target", get(b"GET /a\tb HTTP/1.1"), 400),
    ("trailing SP after version", get(b"GET / HTTP/1.1 "), 400),
    ("HTTP/0.9 request line", b"GET /\r\n\r\n", 400),
    ("lowercase HTTP-name", get(b"GET / http/1.1"), 400),
    ("version without minor", get(b"GET / HTTP/1"), 400),
    ("two-digit minor version", get(b"GET / HTTP/1.10"), 400),
    ("version with letters", get(b"GET / HTTP/1.x"), 400),
    ("HTTP/2.0", get(b"GET / HTTP/2.0"), 505),
    ("HTTP/3.0", get(b"GET / HTTP/3.0"), 505),
    ("HTTP/0.9 with version", get(b"GET / HTTP/0.9"), 505),
    ("CTL in target", get(b"GET /a\x01b HTTP/1.1"), 400),
    ("NUL in target", get(b"GET /a\x00b HTTP/1.1"), 400),
    ("DEL in target", get(b"GET /a\x7fb HTTP/1.1"), 400),
    ("non-ASCII octet in target", get(b"GET /caf\xc3\xa9 HTTP/1.1"), 400),
    ("asterisk-form without OPTIONS", get(b"GET * HTTP/1.1"), 400),
    ("relative target", get(b"GET index.html HTTP/1.1"), 400),
    ("query-only target", get(b"GET ?a=1 HTTP/1.1"), 400),
    ("absolute-form with userinfo", get(b"GET http://user@example.com/ HTTP/1.1"), 400),
    ("absolute-form with empty host", get(b"GET http:///x HTTP/1.1"), 400),
    ("absolute-form with bad port", get(b"GET http://example.com:8x/ HTTP/1.1"), 400),
    ("absolute-form of another scheme", get(b"GET ftp://example.com/ HTTP/1.1"), 400),
    ("CONNECT with origin-form", get(b"CONNECT / HTTP/1.1"), 400),
    ("CONNECT without port", get(b"CONNECT example.com HTTP/1.1"), 400),
    ("bare LF after request-line", b"GET / HTTP/1.1\n" + HOST + b"\r\n", 400),
    ("bare CR in request-line", get(b"GET /\r HTTP/1.1"), 400),
    ("bare CR ending request-line", b"GET / HTTP/1.1\r" + HOST + b"\r\n", 400),
    ("too many empty lines before request", b"\r\n" * 9 + get(), 400),
    ("bare LF empty line before request", b"\n" + get(), 400),
    # ---- line ends ------------------------------------------------------------------------
    ("bare LF after header line", b"GET / HTTP/1.1\r\nHost: example.com\n\r\n", 400),
    ("bare LF as the empty line", b"GET / HTTP/1.1\r\nHost: example.com\r\n\n", 400),
    ("bare CR inside header value", get(headers=HOST + b"X-A: a\rb\r\n"), 400),
    ("bare CR line in header section", get(headers=HOST + b"\rX-A: b\r\n"), 400),
    # ---- field lines ----------------------------------------------------------------------
    ("SP between name and colon", get(headers=b"Host : example.com\r\n"), 400),
    ("HTAB between name and colon", get(headers=HOST + b"X-A\t: 1\r\n"), 400),
    ("obs-fold", get(headers=HOST + b"X-A: a\r\n b\r\n"), 400),
    ("obs-fold with HTAB", get(headers=HOST + b"X-A: a\r\n\tb\r\n"), 400),
    ("whitespace-led first header line", get(headers=b" " + HOST), 400),
    ("invalid char in field name", get(headers=HOST + b"X(A): 1\r\n"), 400),
    ("non-ASCII field name", get(headers=HOST + b"X-\xc3\xa9: 1\r\n"), 400),
    ("empty field name", get(headers=HOST + b": 1\r\n"), 400),
    ("field line without colon", get(headers=HOST + b"X-A\r\n"), 400),
    ("NUL in field value", get(headers=HOST + b"X-A: a\x00b\r\n"), 400),
    ("CTL in field value", get(headers=HOST + b"X-A: a\x01b\r\n"), 400),
    ("DEL in field value", get(headers=HOST + b"X-A: a\x7fb\r\n"), 400),
    ("VT in field value", get(headers=HOST + b"X-A: a\x0bb\r\n"), 400),
    # ---- Content-Length -------------------------------------------------------------------
    ("Content-Length +5", post(b"Content-Length: +5\r\n", b"hello"), 400),
    ("Content-Length -5", post(b"Content-Length: -5\r\n", b"hello"), 400),
    ("Content-Length 0x5", post(b"Content-Length: 0x5\r\n", b"hello"), 400),
    ("Content-Length 5 5", post(b"Content-Length: 5 5\r\n", b"hello"), 400),
    ("Content-Length empty", post(b"Content-Length: \r\n", b"hello"), 400),
    ("Content-Length with NUL", post(b"Content-Length: 5\x00\r\n", b"hello"), 400),
    ("Content-Length 5.0", post(b"Content-Length: 5.0\r\n", b"hello"), 400),
    ("Content-Length with parameter", post(b"Content-Length: 5;a=b\r\n", b"hello"), 400),
    ("Content-Length overflow", post(b"Content-Length: 18446744073709551621\r\n", b"hello"), 400),
    ("Content-Length above 2^63", post(b"Content-Length: 9223372036854775808\r\n", b"hello"), 400),
    ("Content-Length differing list", post(b"Content-Length: 5, 6\r\n", b"hello!"), 400),
    ("Content-Length list with empty element", post(b"Content-Length: 5,\r\n", b"hello"), 400),
    ("Content-Length differing fields",
     post(b"Content-Length: 5\r\nContent-Length: 6\r\n", b"hello!"), 400),
    ("Content-Length and Transfer-Encoding",
     post(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"), 400),
    ("Transfer-Encoding and Content-Length",
     post(b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", b"0\r\n\r\n"), 400),
    # ---- Transfer-Encoding ----------------------------------------------------------------
    ("TE with VT before chunked", post(b"Transfer-Encoding: \x0bchunked\r\n", b"0\r\n\r\n"), 400),
    ("TE xchunked", post(b"Transfer-Encoding: xchunked\r\n", b"0\r\n\r\n"), 400),
    ("TE chunked with trailing comma", post(b"Transfer-Encoding: chunked, \r\n", b"0\r\n\r\n"), 400),
    ("TE with leading comma", post(b"Transfer-Encoding: , chunked\r\n", b"0\r\n\r\n"), 400),
    ("TE chunked twice in a list",
     post(b"Transfer-Encoding: chunked, chunked\r\n", b"0\r\n\r\n"), 400),
    ("TE chunked in two fields",
     post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"), 400),
    ("TE chunked not last", post(b"Transfer-Encoding: chunked, gzip\r\n", b"0\r\n\r\n"), 400),
    ("TE gzip only", post(b"Transfer-Encoding: gzip\r\n", b""), 400),
    ("TE identity", post(b"Transfer-Encoding: identity\r\n", b""), 400),
    ("TE empty", post(b"Transfer-Encoding: \r\n", b""), 400),
    ("TE chunked with parameter", post(b"Transfer-Encoding: chunked;q=1\r\n", b"0\r\n\r\n"), 400),
    ("TE chunked with stray quote", post(b"Transfer-Encoding: \"chunked\"\r\n", b"0\r\n\r\n"), 400),
    ("TE unknown coding before chunked",
     post(b"Transfer-Encoding: gzip, chunked\r\n", b"0\r\n\r\n"), 501),
    ("TE unknown coding in its own field",
     post(b"Transfer-Encoding: br\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"), 501),
    ("TE on HTTP/1.0",
     get(b"POST / HTTP/1.0", b"Transfer-Encoding: chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"), 400),
    ("TE on HTTP/1.0 with Content-Length",
     get(b"POST / HTTP/1.0", b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", b"hello"), 400),
    # ---- Host -----------------------------------------------------------------------------
    ("HTTP/1.1 without Host", get(headers=b""), 400),
    ("absolute-form without Host", get(b"GET http://example.com/ HTTP/1.1", b""), 400),
    ("two Host fields", get(headers=HOST + b"Host: other.example\r\n"), 400),
    ("two identical Host fields", get(headers=HOST + HOST), 400),
    ("Host with a space", get(headers=b"Host: exa mple.com\r\n"), 400),
    ("Host with a slash", get(headers=b"Host: example.com/x\r\n"), 400),
    ("Host with userinfo", get(headers=b"Host: user@example.com\r\n"), 400),
    ("Host with a bad port", get(headers=b"Host: example.com:80x\r\n"), 400),
    ("Host with two colons", get(headers=b"Host: example.com:80:81\r\n"), 400),
    ("Host with an open IPv6 bracket", get(headers=b"Host: [::1\r\n"), 400),
    ("Host with a bad pct-encoding", get(headers=b"Host: exa%zzmple\r\n"), 400),
    # ---- Expect ---------------------------------------------------------------------------
    ("unknown expectation", get(headers=HOST + b"Expect: something\r\n"), 417),
    # ---- chunked bodies -------------------------------------------------------------------
    ("chunk-size not hex", chunked(b"zz\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size empty", chunked(b"\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size negative", chunked(b"-5\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size 0x prefix", chunked(b"0x5\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size with leading SP", chunked(b" 5\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size with trailing SP", chunked(b"5 \r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size overflow", chunked(b"fffffffffffffffff\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size above 2^63", chunked(b"8000000000000000\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size line with bare LF", chunked(b"5\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size line with bare CR", chunked(b"5\rhello\r\n0\r\n\r\n"), 400),
    ("chunk-data longer than chunk-size", chunked(b"3\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-data without CRLF", chunked(b"5\r\nhello0\r\n\r\n"), 400),
    ("chunk-data followed by bare LF", chunked(b"5\r\nhello\n0\r\n\r\n"), 400),
    ("chunk-ext without name", chunked(b"5;=x\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-ext with bad value", chunked(b"5;a=b c\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-ext with open quote", chunked(b"5;a=\"b\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-ext with CTL", chunked(b"5;a\x01\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-ext too long", chunked(b"5;a=" + b"x" * 2000 + b"\r\nhello\r\n0\r\n\r\n"), 400),
    ("trailer obs-fold", chunked(b"0\r\nX-T: a\r\n b\r\n\r\n"), 400),
    ("trailer SP before colon", chunked(b"0\r\nX-T : a\r\n\r\n"), 400),
    ("trailer without colon", chunked(b"0\r\nX-T\r\n\r\n"), 400),
    ("trailer NUL in value", chunked(b"0\r\nX-T: a\x00b\r\n\r\n"), 400),
    ("trailer bare LF", chunked(b"0\r\nX-T: a\n\r\n"), 400),
    ("last-chunk followed by bare LF", chunked(b"0\r\n\n"), 400),
    ("trailer field too long", chunked(b"0\r\nX-T: " + b"a" * 9000 + b"\r\n\r\n"), 431),
    ("too many trailer fields",
     chunked(b"0\r\n" + b"".join(b"X-T%d: a\r\n" % i for i in range(101)) + b"\r\n"), 431),
    # ---- limits (defaults) ----------------------------------------------------------------
    ("request-line too long", get(b"GET /" + b"a" * 9000 + b" HTTP/1.1"), 414),
    ("header field line too long", get(headers=HOST + b"X-A: " + b"a" * 9000 + b"\r\n"), 431),
    ("header field name too long", get(headers=HOST + b"X-" + b"a" * 9000 + b": 1\r\n"), 431),
    ("too many header fields",
     get(headers=HOST + b"".join(b"X-F%d: %d\r\n" % (i, i) for i in range(100))), 431),
    ("head too large",
     get(headers=HOST + b"".join(b"X-F%d: %s\r\n" % (i, b"v" * 8000) for i in range(9))), 431),
]
