"""Tests of the C request parser (csrc/http_parser.c).

Two ways in: the plain-C test program tests/c/test_parser.c, built here with
AddressSanitizer + UndefinedBehaviorSanitizer, and the pywsgi._parser Cython wrapper.
"""
import os
import re
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from malformed_cases import CASES  # noqa: E402
from pywsgi._parser import ParseError, decode_chunked, parse_head, parse_head_fragments  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def status_of(raw):
    """The status the parser answers `raw` with: an error status, or 200 when it is valid."""
    try:
        head = parse_head(raw)
        assert head is not None, "incomplete"
        if head["body_kind"] == "chunked":
            assert decode_chunked(raw[head["head_len"]:]) is not None, "incomplete body"
    except ParseError as exc:
        return exc.status
    return 200


# ---- the C program under sanitizers ---------------------------------------------------------

@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
def test_c_program_under_sanitizers(tmp_path):
    exe = tmp_path / "test_parser"
    subprocess.run(
        ["gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-g", "-O1",
         "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer",
         "-I", os.path.join(ROOT, "csrc"),
         os.path.join(ROOT, "tests", "c", "test_parser.c"),
         os.path.join(ROOT, "csrc", "http_parser.c"),
         "-o", str(exe)],
        check=True)
    cases = tmp_path / "cases.txt"
    with open(cases, "wb") as f:
        for _name, raw, status in CASES:
            f.write(b"%d %d\n" % (status, len(raw)) + raw + b"\n")
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    proc = subprocess.run([str(exe), str(cases)], capture_output=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-4000:]
    assert b"%d malformed cases" % len(CASES) in proc.stdout
    assert b" 0 failures" in proc.stdout


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
def test_parser_compiles_cleanly(tmp_path):
    subprocess.run(["gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-O2", "-c",
                    os.path.join(ROOT, "csrc", "http_parser.c"), "-o", str(tmp_path / "p.o")],
                   check=True)


# ---- valid requests ---------------------------------------------------------------------------

def test_origin_form():
    raw = (b"GET /a/b?x=1&y= HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: t\r\n"
           b"X-Pad:  \t spaced  out \t\r\nX-Empty:\r\n\r\n")
    r = parse_head(raw)
    assert r["method"] == b"GET"
    assert r["target"] == b"/a/b?x=1&y="
    assert r["path"] == b"/a/b"
    assert r["query"] == b"x=1&y="
    assert r["authority"] is None
    assert r["host"] == b"example.com:8080"
    assert r["version"] == (1, 1)
    assert r["headers"] == [(b"Host", b"example.com:8080"), (b"User-Agent", b"t"),
                            (b"X-Pad", b"spaced  out"), (b"X-Empty", b"")]
    assert r["body_kind"] == "none"
    assert r["keep_alive"] is True
    assert r["expect_continue"] is False
    assert r["head_len"] == len(raw)


def test_query_absent_and_empty():
    assert parse_head(b"GET /p HTTP/1.1\r\nHost: h\r\n\r\n")["query"] is None
    r = parse_head(b"GET /p? HTTP/1.1\r\nHost: h\r\n\r\n")
    assert r["path"] == b"/p" and r["query"] == b""


@pytest.mark.parametrize("target,authority,path,query", [
    (b"http://example.com/a?b=c", b"example.com", b"/a", b"b=c"),
    (b"HTTP://Example.com:81/", b"Example.com:81", b"/", None),
    (b"https://[::1]:8443/x/y", b"[::1]:8443", b"/x/y", None),
    (b"http://10.0.0.1", b"10.0.0.1", b"", None),
    (b"http://h?q", b"h", b"", b"q"),
    (b"http://h:/p", b"h:", b"/p", None),
])
def test_absolute_form(target, authority, path, query):
    raw = b"GET " + target + b" HTTP/1.1\r\nHost: other\r\n\r\n"
    r = parse_head(raw)
    assert (r["authority"], r["path"], r["query"]) == (authority, path, query)
    assert r["host"] == b"other"  # the lead uses authority when present: the target wins


def test_asterisk_and_authority_forms():
    r = parse_head(b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n")
    assert r["path"] == b"*" and r["target"] == b"*"
    r = parse_head(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
    assert r["path"] == b"example.com:443" and r["authority"] is None


def test_methods_are_case_sensitive_tokens():
    assert parse_head(b"get / HTTP/1.1\r\nHost: h\r\n\r\n")["method"] == b"get"
    assert parse_head(b"M-SEARCH! / HTTP/1.1\r\nHost: h\r\n\r\n")["method"] == b"M-SEARCH!"


def test_pipelined_bytes_are_left_alone():
    first = b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n"
    raw = first + b"helloGET /b HTTP/1.1\r\nHost: h\r\n\r\n"
    r = parse_head(raw)
    assert r["head_len"] == len(first)
    assert r["body_kind"] == "length" and r["content_length"] == 5
    rest = raw[r["head_len"] + 5:]
    assert parse_head(rest)["path"] == b"/b"


def test_leading_empty_lines_are_skipped():
    raw = b"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"
    r = parse_head(raw)
    assert r["method"] == b"GET" and r["head_len"] == len(raw)


@pytest.mark.parametrize("version,connection,keep_alive", [
    (b"1.1", None, True),
    (b"1.1", b"close", False),
    (b"1.1", b"Keep-Alive, CLOSE", False),
    (b"1.1", b"upgrade, ,keep-alive", True),
    (b"1.0", None, False),
    (b"1.0", b"keep-alive", True),
    (b"1.0", b"foo, Keep-Alive", True),
])
def test_keep_alive(version, connection, keep_alive):
    raw = b"GET / HTTP/" + version + b"\r\nHost: h\r\n"
    if connection is not None:
        raw += b"Connection: " + connection + b"\r\n"
    assert parse_head(raw + b"\r\n")["keep_alive"] is keep_alive


def test_expect():
    head = b"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nExpect: 100-CONTINUE\r\n\r\n"
    assert parse_head(head)["expect_continue"] is True
    # HTTP/1.0: expectations are ignored (RFC 9110 10.1.1)
    head = b"PUT / HTTP/1.0\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\n"
    assert parse_head(head)["expect_continue"] is False
    assert parse_head(b"GET / HTTP/1.0\r\nExpect: foo\r\n\r\n")["expect_continue"] is False


@pytest.mark.parametrize("headers,kind,length", [
    (b"", "none", 0),
    (b"Content-Length: 0\r\n", "none", 0),
    (b"Content-Length: 00042\r\n", "length", 42),
    (b"Content-Length: 7, 7\r\nContent-Length: 7\r\n", "length", 7),
    (b"Content-Length: 9223372036854775807\r\n", "length", 2**63 - 1),
    (b"Transfer-Encoding: chunked\r\n", "chunked", 0),
    (b"Transfer-Encoding: CHUNKED \r\n", "chunked", 0),
])
def test_body_kind(headers, kind, length):
    r = parse_head(b"POST / HTTP/1.1\r\nHost: h\r\n" + headers + b"\r\n")
    assert (r["body_kind"], r["content_length"] if kind == "length" else 0) == (kind, length)


@pytest.mark.parametrize("host", [b"", b"h", b"h:80", b"h:", b"[::1]", b"[v1.x:y]:1",
                                  b"a-b.c_d~e", b"%41b", b"!$&'()*+,;=", b"1.2.3.4:65535"])
def test_valid_host_values(host):
    assert parse_head(b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")["host"] == host


def test_obs_text_allowed_in_values():
    r = parse_head(b"GET / HTTP/1.1\r\nHost: h\r\nX-Name: caf\xc3\xa9 \xff\r\n\r\n")
    assert r["headers"][1] == (b"X-Name", b"caf\xc3\xa9 \xff")


def test_incomplete_returns_none():
    full = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"
    for n in range(len(full)):
        assert parse_head(full[:n]) is None


# ---- resumption -----------------------------------------------------------------------------

VALID = [
    b"GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n",
    b"\r\nPOST http://h:8/x?y HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET",
    b"OPTIONS * HTTP/1.0\r\nConnection: keep-alive\r\nX: \t v \t\r\n\r\n",
    b"PUT /u HTTP/1.1\r\nHost: [::1]:80\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    b"PUT /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n",
]


@pytest.mark.parametrize("raw", VALID + [raw for _n, raw, _s in CASES if len(raw) < 400])
def test_every_split_equals_one_shot(raw):
    def outcome(fragments):
        try:
            return parse_head_fragments(fragments)
        except ParseError as exc:
            return ("error", exc.status)
    once = outcome([raw])
    for split in range(len(raw) + 1):
        assert outcome([raw[:split], raw[split:]]) == once, split
    assert outcome([raw[i:i + 1] for i in range(len(raw))]) == once


def test_limits_apply_before_the_line_ends():
    with pytest.raises(ParseError) as exc:
        parse_head(b"GET /" + b"a" * 9000)
    assert exc.value.status == 414
    with pytest.raises(ParseError) as exc:
        parse_head(b"GET / HTTP/1.1\r\nX: " + b"a" * 9000)
    assert exc.value.status == 431
    with pytest.raises(ParseError) as exc:
        parse_head(b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 50, max_head_size=200)
    assert exc.value.status == 431


def test_explicit_limits():
    raw = b"GET /abc HTTP/1.1\r\nHost: h\r\nX: 1\r\n\r\n"
    assert parse_head(raw, max_request_line=17, max_fields=2, max_field_size=7,
                      max_head_size=len(raw))
    for kwargs, status in [({"max_request_line": 16}, 414), ({"max_fields": 1}, 431),
                           ({"max_field_size": 6}, 431), ({"max_head_size": len(raw) - 1}, 431)]:
        with pytest.raises(ParseError) as exc:
            parse_head(raw, **kwargs)
        assert exc.value.status == status, kwargs


# ---- malformed table ------------------------------------------------------------------------

@pytest.mark.parametrize("name,raw,status", CASES, ids=[c[0] for c in CASES])
def test_malformed(name, raw, status):
    assert status_of(raw) == status


def test_malformed_table_is_complete_requests():
    # complete for a lenient reader too: some empty line ends the head
    for name, raw, _status in CASES:
        assert re.search(rb"\n\r?\n", raw), name
    assert len({name for name, _r, _s in CASES}) == len(CASES)


def test_error_has_reason():
    with pytest.raises(ParseError) as exc:
        parse_head(b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
    assert exc.value.status == 400
    assert exc.value.reason == "differing Content-Length values"


# ---- chunked bodies -------------------------------------------------------------------------

CHUNKED_VALID = [
    (b"0\r\n\r\n", b""),
    (b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
    (b"5;a=b;c;d=\"q \\\" x\"\r\n12345\r\nA ; x = y\r\n0123456789\r\n000\r\n\r\n",
     b"123450123456789"),
    (b"3\r\nabc\r\n0\r\nX-Trailer: 1\r\nY:\r\n\r\n", b"abc"),
    (b"f\r\n" + b"x" * 15 + b"\r\nF\r\n" + b"y" * 15 + b"\r\n0;last=1\r\n\r\n",
     b"x" * 15 + b"y" * 15),
]


@pytest.mark.parametrize("data,body", CHUNKED_VALID)
def test_chunked_every_split(data, body):
    tail = b"GET / HTTP/1.1\r\n"
    assert decode_chunked(data + tail) == (body, len(data))
    for split in range(len(data) + 1):
        assert decode_chunked(data + tail, split_at=split) == (body, len(data)), split
    assert decode_chunked(data + tail, split_at=list(range(len(data)))) == (body, len(data))


def test_chunked_incomplete():
    data = b"5\r\nhello\r\n0\r\nX: y\r\n\r\n"
    for n in range(len(data)):
        assert decode_chunked(data[:n]) is None


def test_chunk_ext_cap():
    assert decode_chunked(b"1;" + b"a" * 99 + b"\r\nx\r\n0\r\n\r\n", max_chunk_ext=100)
    with pytest.raises(ParseError) as exc:
        decode_chunked(b"1;" + b"a" * 100 + b"\r\nx\r\n0\r\n\r\n", max_chunk_ext=100)
    assert exc.value.status == 400
    with pytest.raises(ParseError):  # refused before the line ends
        decode_chunked(b"1;" + b"a" * 5000)


def test_large_chunk_size_is_fine_until_overflow():
    assert decode_chunked(b"7fffffffffffffff\r\nabc") is None
    with pytest.raises(ParseError):
        decode_chunked(b"8000000000000000\r\n")
