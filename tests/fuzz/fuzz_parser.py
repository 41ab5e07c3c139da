"""atheris harness for the parser as Python sees it (pywsgi._parser, a thin wrapper of
csrc/http_parser.c).

    /work/venv/bin/python tests/fuzz/fuzz_parser.py -max_total_time=60 tests/fuzz/corpus

Same input layout as fuzz_http_parser.c, so both share tests/fuzz/corpus: byte 0 selects the
target and the limits, byte 1 the number of cuts, then one byte per cut (distance to the next
cut - 1), then the payload. Invariants (a violation raises, which atheris reports as a crash):

- parse_head / decode_chunked never raise anything but ParseError, with a documented status;
- an accepted head is well-formed: head_len <= len(input); the method, the target and every
  header name/value are substrings of the head, method and names are tokens, values hold no
  CR, LF or NUL; a Content-Length body has a length, a chunked one none;
- the parse resumed over growing prefixes (parse_head_fragments at the cuts) ends exactly like
  the one-shot parse (same result dict, or the same error status);
- decode_chunked fed in pieces gives the same body and consumed count as fed whole, and the
  body is shorter than what was consumed.

Note: the C extension is not built with coverage instrumentation, so atheris only sees the
Python-level coverage of this harness; the coverage-guided fuzzing of the C code is
fuzz_http_parser.c (libFuzzer). This harness adds the Python wrapper and the dict-level
invariants on top.
"""
import os
import sys

import atheris

from pywsgi import _parser

ERROR_STATUSES = {400, 413, 414, 417, 431, 501, 505}
TCHAR = set(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
LENIENT_STATUS = bool(os.environ.get('PW_FUZZ_LENIENT_STATUS'))


def limits_for(selector):
    """Small limits some of the time, as fuzz_http_parser.c picks them."""
    if selector & 0x10:
        low = selector & 0x0F
        return dict(max_request_line=16 + low * 4, max_fields=1 + (selector & 0x07),
                    max_field_size=12 + low * 3, max_head_size=64 + low * 16)
    return dict(max_request_line=8190, max_fields=100, max_field_size=8190, max_head_size=65536)


def chunk_limits_for(selector):
    limits = limits_for(selector)
    del limits['max_request_line']
    limits['max_chunk_ext'] = 4 + (selector & 0x07) if selector & 0x10 else 1024
    return limits


@atheris.instrument_func
def split(data):
    """(selector, cut offsets, payload) from a fuzz input, or None if it is too short."""
    if len(data) < 2:
        return None
    selector = data[0]
    ncuts = data[1] % 17
    if len(data) < 2 + ncuts:
        return None
    payload = data[2 + ncuts:]
    cuts = []
    at = 0
    for distance in data[2:2 + ncuts]:
        at += distance + 1
        if at >= len(payload):
            break
        cuts.append(at)
    return selector, cuts, payload


@atheris.instrument_func
def outcome(call, *args, **kwargs):
    try:
        return 'ok', call(*args, **kwargs)
    except _parser.ParseError as exc:
        if exc.status not in ERROR_STATUSES or not exc.reason:
            raise AssertionError('ParseError with an undocumented status: %r' % (exc,)) from exc
        return 'error', exc.status


@atheris.instrument_func
def check_head(result, payload):
    head_len = result['head_len']
    assert 0 < head_len <= len(payload), (head_len, len(payload))
    head = payload[:head_len]
    assert head.endswith(b'\r\n\r\n'), head[-8:]
    method, target = result['method'], result['target']
    assert method and set(method) <= TCHAR, method
    assert target and target in head, target
    assert head.lstrip(b'\r\n').startswith(method + b' ' + target + b' HTTP/'), head[:100]
    for name, value in result['headers']:
        assert name and set(name) <= TCHAR, name
        assert name + b':' in head, name
        assert value in head, value
        assert not set(value) & {0, 10, 13}, value
        assert value == value.strip(b' \t'), value
    kind = result['body_kind']
    assert kind in ('none', 'length', 'chunked'), kind
    if kind == 'chunked':
        assert result['version'] >= (1, 1), result['version']
    if result['version'] >= (1, 1):
        assert result['host'] is not None, 'HTTP/1.1 accepted without Host'


@atheris.instrument_func
def fuzz_head(selector, cuts, payload):
    limits = limits_for(selector)
    whole = outcome(_parser.parse_head, payload, **limits)
    fragments = [payload[a:b] for a, b in zip([0] + cuts, cuts + [len(payload)])]
    resumed = outcome(_parser.parse_head_fragments, fragments, **limits)
    if whole[0] == 'ok' and whole[1] is not None:
        check_head(whole[1], payload)
        if whole[1]['body_kind'] == 'chunked':
            head_len = whole[1]['head_len']
            body_cuts = [cut - head_len for cut in cuts if cut > head_len]
            fuzz_chunked(selector, body_cuts, payload[head_len:])
    if LENIENT_STATUS and whole[0] == resumed[0] == 'error':
        return
    assert whole == resumed, ('one-shot and resumed parses differ', whole, resumed, cuts)


@atheris.instrument_func
def fuzz_chunked(selector, cuts, payload):
    limits = chunk_limits_for(selector)
    whole = outcome(_parser.decode_chunked, payload, **limits)
    pieces = outcome(_parser.decode_chunked, payload, split_at=cuts, **limits)
    if whole[0] == 'ok' and whole[1] is not None:
        body, consumed = whole[1]
        assert len(body) < consumed <= len(payload), (len(body), consumed, len(payload))
    if LENIENT_STATUS and whole[0] == pieces[0] == 'error':
        return
    assert whole == pieces, ('whole and piecewise chunked decoding differ', whole, pieces, cuts)


@atheris.instrument_func
def test_one_input(data):
    parts = split(data)
    if parts is None:
        return
    selector, cuts, payload = parts
    if selector & 0x80:
        fuzz_chunked(selector, cuts, payload)
    else:
        fuzz_head(selector, cuts, payload)


def main():
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == '__main__':
    main()
