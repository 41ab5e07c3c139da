# cython: language_level=3
"""Thin wrapper of csrc/http_parser.c for tests and fuzzing (not used by the server core)."""

from libc.stdint cimport uint32_t, uint64_t
from cpython.mem cimport PyMem_Malloc, PyMem_Free


from pywsgi._http_parser cimport *


class ParseError(Exception):
    """The parser refused the bytes: .status is the HTTP status to answer, .reason why."""

    def __init__(self, status, reason):
        super().__init__(status, reason)
        self.status = status
        self.reason = reason

    def __str__(self):
        return f"{self.status} {self.reason}"


_BODY_KINDS = {PW_BODY_NONE: 'none', PW_BODY_LENGTH: 'length', PW_BODY_CHUNKED: 'chunked'}


cdef pw_limits _limits(max_request_line, max_fields, max_field_size, max_head_size,
                       max_chunk_ext=1024):
    cdef pw_limits lim
    pw_limits_default(&lim)
    lim.max_request_line = max_request_line
    lim.max_fields = max_fields
    lim.max_field_size = max_field_size
    lim.max_head_size = max_head_size
    lim.max_chunk_ext = max_chunk_ext
    return lim


cdef bytes _slice(bytes data, pw_span s):
    return data[s.off:s.off + s.len]


cdef dict _result(pw_request *r, bytes data):
    cdef uint32_t k
    headers = [(_slice(data, r.headers[k].name), _slice(data, r.headers[k].value))
               for k in range(r.num_headers)]
    return {
        'method': _slice(data, r.method),
        'target': _slice(data, r.target),
        'path': _slice(data, r.path),
        'query': _slice(data, r.query) if r.has_query else None,
        'authority': _slice(data, r.authority) if r.authority.len else None,
        'host': _slice(data, r.host) if r.has_host else None,
        'version': (r.version_major, r.version_minor),
        'headers': headers,
        'body_kind': _BODY_KINDS[r.body_kind],
        'content_length': r.content_length,
        'keep_alive': bool(r.keep_alive),
        'expect_continue': bool(r.expect_continue),
        'head_len': r.head_len,
    }


def parse_head_fragments(fragments, max_request_line=8190, max_fields=100,
                         max_field_size=8190, max_head_size=65536):
    """Feed growing prefixes (each a new bytes object) built from `fragments`.

    Returns the parse result dict, None when the head is still incomplete, or raises
    ParseError. The parser only keeps offsets, so each call gets a fresh buffer.
    """
    cdef pw_limits lim = _limits(max_request_line, max_fields, max_field_size, max_head_size)
    cdef pw_request r
    cdef uint32_t cap = max_fields if max_fields > 0 else 1
    cdef pw_header *storage = <pw_header *>PyMem_Malloc(cap * sizeof(pw_header))
    cdef int rc
    cdef bytes buf = b''
    if storage == NULL:
        raise MemoryError()
    try:
        pw_request_init(&r, storage, cap)
        for fragment in fragments:
            buf = buf + bytes(fragment)
            rc = pw_parse_head(&r, buf, len(buf), &lim)
            if rc == PW_DONE:
                return _result(&r, buf)
            if rc == PW_ERROR:
                raise ParseError(r.error_status, r.error_reason.decode('ascii'))
        return None
    finally:
        PyMem_Free(storage)


def parse_head(bytes data, max_request_line=8190, max_fields=100, max_field_size=8190,
               max_head_size=65536):
    """Parse a request head in one go (see parse_head_fragments)."""
    return parse_head_fragments([data], max_request_line, max_fields, max_field_size,
                                max_head_size)


def decode_chunked(bytes data, split_at=None, max_fields=100, max_field_size=8190,
                   max_head_size=65536, max_chunk_ext=1024):
    """Decode a chunked body at the start of `data`.

    `split_at`: an offset or a list of offsets where the bytes are cut into separate reads.
    Returns (body, consumed) once the last chunk and trailers are in, None when more bytes
    are needed, or raises ParseError.
    """
    cdef pw_limits lim = _limits(8190, max_fields, max_field_size, max_head_size, max_chunk_ext)
    cdef pw_chunked c
    cdef size_t consumed, data_off, data_len, pos
    cdef int rc
    cdef bytes piece
    if split_at is None:
        cuts = []
    elif isinstance(split_at, int):
        cuts = [split_at]
    else:
        cuts = sorted(split_at)
    bounds = [0] + [min(max(k, 0), len(data)) for k in cuts] + [len(data)]
    pw_chunked_init(&c)
    body = []
    for start, end in zip(bounds, bounds[1:]):
        piece = data[start:end]   # a fresh buffer per read, like a socket would give
        pos = 0
        while True:
            rc = pw_chunked_decode(&c, <const char *>piece + pos, len(piece) - pos,
                                   &consumed, &data_off, &data_len, &lim)
            if rc == PW_ERROR:
                raise ParseError(c.error_status, c.error_reason.decode('ascii'))
            if rc == PW_CHUNK_DATA:
                body.append(piece[pos + data_off:pos + data_off + data_len])
                pos += consumed
                continue
            if rc == PW_DONE:
                return b''.join(body), start + pos + consumed
            break   # PW_AGAIN: the whole piece was consumed
    return None
