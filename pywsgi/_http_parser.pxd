# The C API of csrc/http_parser.h, declared once for every Cython module that uses it
# (pywsgi/_core.pxd for the server core, pywsgi/_parser.pyx for tests and fuzzing).
from libc.stdint cimport uint32_t, uint64_t


cdef extern from "http_parser.h" nogil:
    int PW_DONE
    int PW_AGAIN
    int PW_ERROR
    int PW_CHUNK_DATA

    ctypedef struct pw_span:
        uint32_t off
        uint32_t len

    ctypedef struct pw_header:
        pw_span name
        pw_span value

    enum:
        PW_BODY_NONE
        PW_BODY_LENGTH
        PW_BODY_CHUNKED

    ctypedef struct pw_limits:
        uint32_t max_request_line
        uint32_t max_fields
        uint32_t max_field_size
        uint32_t max_head_size
        uint32_t max_chunk_ext

    ctypedef struct pw_request:
        pw_span method
        pw_span target
        pw_span path
        pw_span query
        pw_span authority
        pw_span host
        int has_query
        int has_host
        int version_major
        int version_minor
        pw_header *headers
        uint32_t num_headers
        uint32_t headers_cap
        int body_kind
        uint64_t content_length
        int keep_alive
        int expect_continue
        uint32_t head_len
        int error_status
        const char *error_reason

    ctypedef struct pw_chunked:
        int error_status
        const char *error_reason

    void pw_limits_default(pw_limits *lim)
    void pw_request_init(pw_request *r, pw_header *storage, uint32_t cap)
    int pw_parse_head(pw_request *r, const char *buf, size_t len, const pw_limits *lim)
    void pw_chunked_init(pw_chunked *c)
    int pw_chunked_decode(pw_chunked *c, const char *buf, size_t len, size_t *consumed,
                          size_t *data_off, size_t *data_len, const pw_limits *lim)
