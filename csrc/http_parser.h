/*
 * http_parser.h -- strict, incremental HTTP/1.1 request parser (RFC 9112).
 *
 * Plain C, no Python: it is fuzzed and sanitized on its own (tests/fuzz, tests/c).
 * The parser never copies: every result is a span (offset, length) into the caller's
 * buffer, so the caller may move or grow the buffer between calls as long as the bytes
 * already given keep their offsets.
 *
 * Usage (head):
 *   pw_request r; pw_header hdrs[100];
 *   pw_request_init(&r, hdrs, 100);
 *   for (;;) { append bytes to buf; rc = pw_parse_head(&r, buf, len, &limits);
 *              if (rc == PW_AGAIN) continue; if (rc == PW_ERROR) answer r.error_status; break; }
 *   r.head_len bytes of buf are the head; the body (if any) starts at buf + r.head_len.
 *
 * Usage (chunked body): see pw_chunked_decode.
 */
#ifndef PW_HTTP_PARSER_H
#define PW_HTTP_PARSER_H

#include <stddef.h>
#include <stdint.h>

#define PW_DONE 1       /* the head (or the whole chunked body) is complete */
#define PW_AGAIN 0      /* need more bytes; call again with the same prefix plus more */
#define PW_ERROR (-1)   /* malformed; error_status / error_reason say why; close after answering */
#define PW_CHUNK_DATA 2 /* pw_chunked_decode: a run of body bytes is available */

typedef struct {
    uint32_t off;
    uint32_t len;
} pw_span;
typedef struct {
    pw_span name;
    pw_span value;
} pw_header;

enum pw_body_kind { PW_BODY_NONE = 0, PW_BODY_LENGTH = 1, PW_BODY_CHUNKED = 2 };

typedef struct {
    uint32_t max_request_line; /* request-line longer than this -> 414 */
    uint32_t max_fields;       /* more header fields than this -> 431 */
    uint32_t max_field_size;   /* one field line longer than this -> 431 */
    uint32_t max_head_size;    /* whole head longer than this -> 431 */
    uint32_t max_chunk_ext;    /* chunk-ext longer than this -> 400 */
} pw_limits;

/* Defaults match mod_wsgi-express / Apache: 8190 / 100 / 8190 / 65536 / 1024. */
void pw_limits_default(pw_limits *lim);

typedef struct {
    /* ---- results, valid after PW_DONE ---- */
    pw_span method;
    pw_span target;    /* request-target as sent */
    pw_span path;      /* absolute path part of the target ("/..."), "*" for asterisk-form,
                                 the authority for CONNECT's authority-form; len 0 for an
                                 absolute-form target without a path ("http://h?q"): treat as "/" */
    pw_span query;     /* after '?', without it; valid when has_query */
    pw_span authority; /* host[:port] from an absolute-form target, else len 0 */
    pw_span host;      /* the Host header's value (len 0 when absent) */
    int has_query;
    int has_host; /* a Host header was present */
    int version_major, version_minor;
    pw_header *headers; /* caller-provided storage */
    uint32_t num_headers;
    uint32_t headers_cap;
    int body_kind;           /* enum pw_body_kind */
    uint64_t content_length; /* valid when body_kind == PW_BODY_LENGTH */
    int keep_alive;          /* from version and Connection tokens */
    int expect_continue;     /* Expect: 100-continue */
    uint32_t head_len;       /* bytes of the head, including the empty line */

    /* ---- error, valid after PW_ERROR ---- */
    int error_status;         /* 400, 414, 417, 431, 501, 505 */
    const char *error_reason; /* static string, for the error log */

    /* ---- internal resume state ---- */
    uint32_t pos; /* offset of the next unparsed line */
    int stage;
    int cl_seen, te_seen; /* Content-Length / Transfer-Encoding field lines seen */
    uint32_t scan_pos;    /* bytes before this offset hold no LF of the current line */
    uint32_t empty_lines; /* empty lines skipped before the request-line */
} pw_request;

/* Empty lines (CRLF) tolerated before the request-line (RFC 9112 section 2.2). */
#define PW_MAX_LEADING_EMPTY_LINES 8

void pw_request_init(pw_request *r, pw_header *storage, uint32_t cap);
int pw_parse_head(pw_request *r, const char *buf, size_t len, const pw_limits *lim);

/* Chunked request bodies (RFC 9112 section 7.1). */
typedef struct {
    int state;
    uint64_t remaining;   /* bytes left in the current chunk's data */
    uint32_t line_len;    /* bytes of the current size line / trailer line seen */
    uint32_t size_digits; /* HEXDIGs of the current chunk-size */
    uint32_t trailer_count;
    uint32_t trailer_bytes;
    int error_status;
    const char *error_reason;
} pw_chunked;

void pw_chunked_init(pw_chunked *c);
/*
 * Decode from buf[0..len). Sets *consumed to the bytes of buf used.
 * Returns PW_CHUNK_DATA with *data_off and *data_len marking a run of body bytes inside the
 * consumed part of buf (call again with buf + *consumed for the rest); PW_AGAIN when all of
 * buf was consumed and more is needed; PW_DONE when the last chunk and the trailer section
 * have been consumed (trailers are validated and bounded, never returned); PW_ERROR.
 */
int pw_chunked_decode(pw_chunked *c, const char *buf, size_t len, size_t *consumed,
                      size_t *data_off, size_t *data_len, const pw_limits *lim);

#endif
