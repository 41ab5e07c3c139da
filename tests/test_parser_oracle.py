"""Differential tests: whatever our C parser accepts, h11 accepts with the same meaning.

Hypothesis builds valid requests (methods, origin/absolute targets with queries, header
fields from the RFC alphabets, Content-Length or chunked bodies with extensions and trailers)
and random byte mutations of them. For every request our parser accepts, h11 must accept it
too and agree on method, target, header fields (names compared case-insensitively: h11
lowercases them) and body.

Known, intended difference: RFC 9112 2.2 asks servers to ignore empty lines before the
request-line, which we do and h11 does not; such lines are stripped before h11 sees them.
"""
import h11
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pywsgi._parser import ParseError, decode_chunked, parse_head

TCHAR = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
VCHAR = bytes(range(0x21, 0x7F))
OBS_TEXT = bytes(range(0x80, 0x100))
FIELD_VCHAR = VCHAR + OBS_TEXT
HOST_CHARS = b"abcdefghijklmnopqrstuvwxyz0123456789-."
# header names with a framing or connection meaning are generated on purpose, never at random
SPECIAL = {b"host", b"content-length", b"transfer-encoding", b"connection", b"expect",
           b"upgrade", b"te", b"trailer"}

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def chars(alphabet, min_size=1, max_size=12):
    return st.lists(st.sampled_from(list(alphabet)), min_size=min_size,
                    max_size=max_size).map(bytes)


tokens = chars(TCHAR)
methods = st.one_of(st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"PATCH",
                                     b"OPTIONS", b"HEAD"]),
                    tokens.filter(lambda m: m != b"CONNECT"))
path_chars = bytes(c for c in VCHAR if c != ord("?"))
paths = st.lists(chars(path_chars, 0, 8), min_size=1, max_size=4).map(
    lambda segments: b"".join(b"/" + s for s in segments))
queries = st.none() | chars(VCHAR, 0, 16)
hosts = st.tuples(chars(HOST_CHARS, 1, 12), st.none() | st.integers(1, 65535)).map(
    lambda hp: hp[0] + (b"" if hp[1] is None else b":%d" % hp[1]))
ows = st.sampled_from([b"", b" ", b"\t", b"  \t "])


@st.composite
def field_values(draw):
    words = draw(st.lists(chars(FIELD_VCHAR, 1, 8), max_size=4))
    value = words[0] if words else b""
    for word in words[1:]:
        value += draw(st.sampled_from([b" ", b"\t", b" \t "])) + word
    return value


@st.composite
def field_lines(draw):
    fields = []
    for _ in range(draw(st.integers(0, 6))):
        name = draw(tokens.filter(lambda n: n.lower() not in SPECIAL))
        fields.append((name, draw(field_values())))
    return fields


@st.composite
def requests(draw):
    """(raw bytes, expected dict) of a valid request."""
    method = draw(methods)
    version = draw(st.sampled_from([b"1.1", b"1.0"]))
    path = draw(paths)
    query = draw(queries)
    host = draw(hosts)
    if draw(st.booleans()):
        target = draw(st.sampled_from([b"http://", b"HTTP://", b"https://"])) + host + path
    else:
        target = path
    if query is not None:
        target += b"?" + query
    fields = draw(field_lines())
    if version == b"1.1" or draw(st.booleans()):
        fields.insert(draw(st.integers(0, len(fields))), (b"Host", host))
    if draw(st.booleans()):
        fields.append((b"Connection", draw(st.sampled_from([b"close", b"keep-alive", b"Close"]))))

    body_kind = draw(st.sampled_from(["none", "length", "chunked"] if version == b"1.1"
                                     else ["none", "length"]))
    body = b""
    wire_body = b""
    if body_kind == "length":
        body = draw(st.binary(max_size=40))
        fields.append((draw(st.sampled_from([b"Content-Length", b"content-length"])),
                       b"%d" % len(body)))
        wire_body = body
    elif body_kind == "chunked":
        fields.append((b"Transfer-Encoding", draw(st.sampled_from([b"chunked", b"Chunked"]))))
        chunks = draw(st.lists(st.binary(min_size=1, max_size=20), max_size=4))
        for chunk in chunks + [b""]:
            size = b"%x" % len(chunk)
            if draw(st.booleans()):
                size = size.upper()
            size = b"0" * draw(st.integers(0, 3)) + size
            ext = b""
            for _ in range(draw(st.integers(0, 2))):
                ext += b";" + draw(tokens)
                kind = draw(st.sampled_from(["bare", "token", "quoted"]))
                if kind == "token":
                    ext += b"=" + draw(tokens)
                elif kind == "quoted":
                    ext += b'="' + draw(chars(b"abc xyz,;=\t\\\"", 0, 8)).replace(
                        b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
            wire_body += size + ext + b"\r\n" + chunk + (b"\r\n" if chunk else b"")
        for name, value in draw(field_lines()):
            wire_body += name + b":" + draw(ows) + value + draw(ows) + b"\r\n"
        wire_body += b"\r\n"
        body = b"".join(chunks)

    head = method + b" " + target + b" HTTP/" + version + b"\r\n"
    for name, value in fields:
        head += name + b":" + draw(ows) + value + draw(ows) + b"\r\n"
    head += b"\r\n"
    expected = {"method": method, "target": target, "headers": fields, "body": body}
    return head + wire_body, expected


def ours(raw):
    """Our reading of raw: (method, target, [(name, value)], body) or None if rejected."""
    try:
        head = parse_head(raw)
        if head is None:
            return None
        rest = raw[head["head_len"]:]
        if head["body_kind"] == "chunked":
            decoded = decode_chunked(rest)
            if decoded is None:
                return None
            body = decoded[0]
        elif head["body_kind"] == "length":
            if len(rest) < head["content_length"]:
                return None
            body = rest[:head["content_length"]]
        else:
            body = b""
    except ParseError:
        return None
    return head["method"], head["target"], head["headers"], body


def h11_reading(raw):
    """h11's reading of raw, same shape as ours(); raises if h11 rejects it."""
    while raw.startswith(b"\r\n"):
        raw = raw[2:]  # see the module docstring
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(raw)
    event = conn.next_event()
    assert isinstance(event, h11.Request), event
    body = b""
    while True:
        ev = conn.next_event()
        if isinstance(ev, h11.Data):
            body += ev.data
        elif isinstance(ev, h11.EndOfMessage):
            break
        else:
            raise AssertionError(f"h11 did not finish the body: {ev!r}")
    headers = [(name, value) for name, value in event.headers.raw_items()]
    return event.method, event.target, headers, body


def as_h11_stores(headers):
    """Our header list rewritten the way h11 stores it: names lowercased, Content-Length
    lists and repeats collapsed into one field, Transfer-Encoding lowercased."""
    out = []
    seen_length = False
    for name, value in headers:
        name = name.lower()
        if name == b"content-length":
            if seen_length:
                continue
            seen_length = True
            value = value.split(b",")[0].strip()
        elif name == b"transfer-encoding":
            value = value.lower()
        out.append((name, value))
    return out


def same_meaning(mine, theirs):
    m_method, m_target, m_headers, m_body = mine
    t_method, t_target, t_headers, t_body = theirs
    assert m_method == t_method
    assert m_target == t_target
    assert as_h11_stores(m_headers) == [(n.lower(), v) for n, v in t_headers]
    assert m_body == t_body


@SETTINGS
@given(requests())
def test_valid_requests_agree_with_h11(request):
    raw, expected = request
    mine = ours(raw)
    assert mine is not None, raw  # every generated request is valid: we must accept it
    assert mine[0] == expected["method"]
    assert mine[1] == expected["target"]
    assert [(n, v) for n, v in mine[2]] == expected["headers"]
    assert mine[3] == expected["body"]
    same_meaning(mine, h11_reading(raw))


@SETTINGS
@given(requests(), st.data())
def test_whatever_we_accept_h11_accepts(request, data):
    raw, _expected = request
    raw = bytearray(raw)
    interesting = list(b"\r\n \t:;,=\"\\/?*#@0123456789abcdefxX-\x00\x0b\x7f\x80\xff")
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        op = data.draw(st.sampled_from(["replace", "insert", "delete"]))
        byte = data.draw(st.sampled_from(interesting) | st.integers(0, 255))
        if op == "replace":
            raw[at] = byte
        elif op == "insert":
            raw.insert(at, byte)
        elif len(raw) > 1:
            del raw[at]
    raw = bytes(raw)
    mine = ours(raw)
    if mine is None:
        return
    try:
        theirs = h11_reading(raw)
    except h11.RemoteProtocolError as exc:
        raise AssertionError(f"we accept what h11 rejects ({exc}): {raw!r}") from exc
    same_meaning(mine, theirs)
