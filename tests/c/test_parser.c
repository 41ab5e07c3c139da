/*
 * test_parser.c -- plain-C tests of csrc/http_parser.c, meant to run under
 * AddressSanitizer + UndefinedBehaviorSanitizer (tests/test_parser.py builds and runs it):
 *
 *   gcc -std=c11 -g -fsanitize=address,undefined -Icsrc tests/c/test_parser.c \
 *       csrc/http_parser.c -o test_parser && ./test_parser [cases-file]
 *
 * Every buffer handed to the parser is a fresh malloc of exactly the bytes it may read, so
 * a read past the end is caught by ASan. The optional cases file (written by
 * tests/test_parser.py from tests/malformed_cases.py) holds records
 * "<status> <length>\n<length bytes>\n"; each is parsed in one go and at many splits and
 * must fail with that status.
 */
#include "http_parser.h"
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HEADERS 128

static int span_eq(const char *buf, pw_span s, const char *want)
{
    return s.len == strlen(want) && memcmp(buf + s.off, want, s.len) == 0;
}

/* ---- head ------------------------------------------------------------------------ */

typedef struct {
    int rc;
    pw_request r;
    pw_header headers[MAX_HEADERS];
} head_result;

/* Parse `req` fed as the growing prefixes ends[0] < ends[1] < ... (last one n). */
static void parse_in_steps(const char *req, size_t n, const size_t *ends, size_t nends,
                           const pw_limits *lim, head_result *out)
{
    size_t k;
    memset(out, 0, sizeof(*out));
    pw_request_init(&out->r, out->headers, MAX_HEADERS);
    out->rc = PW_AGAIN;
    for (k = 0; k < nends && out->rc == PW_AGAIN; k++) {
        char *buf = copy_exact(req, ends[k]);
        out->rc = pw_parse_head(&out->r, buf, ends[k], lim);
        free(buf);
    }
    (void)n;
}

static void parse_once(const char *req, size_t n, const pw_limits *lim, head_result *out)
{
    parse_in_steps(req, n, &n, 1, lim, out);
}

static int same_span(pw_span a, pw_span b) { return a.off == b.off && a.len == b.len; }

static int same_result(const head_result *a, const head_result *b)
{
    uint32_t k;
    if (a->rc != b->rc)
        return 0;
    if (a->rc == PW_ERROR)
        return a->r.error_status == b->r.error_status;
    if (a->rc != PW_DONE)
        return 1;
    if (!same_span(a->r.method, b->r.method) || !same_span(a->r.target, b->r.target) ||
        !same_span(a->r.path, b->r.path) || !same_span(a->r.query, b->r.query) ||
        !same_span(a->r.authority, b->r.authority) || !same_span(a->r.host, b->r.host) ||
        a->r.has_query != b->r.has_query || a->r.has_host != b->r.has_host ||
        a->r.version_major != b->r.version_major || a->r.version_minor != b->r.version_minor ||
        a->r.num_headers != b->r.num_headers || a->r.body_kind != b->r.body_kind ||
        a->r.content_length != b->r.content_length || a->r.keep_alive != b->r.keep_alive ||
        a->r.expect_continue != b->r.expect_continue || a->r.head_len != b->r.head_len)
        return 0;
    for (k = 0; k < a->r.num_headers; k++)
        if (!same_span(a->headers[k].name, b->headers[k].name) ||
            !same_span(a->headers[k].value, b->headers[k].value))
            return 0;
    return 1;
}

/* One-shot parse equals: every two-part split, byte-by-byte feeding (both for small input). */
static void check_resumption(const char *name, const char *req, size_t n, const pw_limits *lim,
                             const head_result *once)
{
    size_t split, stride = n > 3000 ? n / 97 + 1 : 1;
    head_result *step = malloc(sizeof(*step));
    for (split = 0; split <= n; split += stride) {
        size_t ends[2] = {split, n};
        parse_in_steps(req, n, ends, 2, lim, step);
        CHECK(same_result(once, step), "%s: split at %zu differs (rc %d/%d status %d/%d)", name,
              split, once->rc, step->rc, once->r.error_status, step->r.error_status);
    }
    if (n <= 3000) {
        size_t *ends = malloc(n * sizeof(size_t));
        for (split = 0; split < n; split++)
            ends[split] = split + 1;
        parse_in_steps(req, n, ends, n, lim, step);
        CHECK(same_result(once, step), "%s: byte-by-byte differs", name);
        free(ends);
    }
    free(step);
}

static head_result *parse_checked(const char *name, const char *req, const pw_limits *lim)
{
    static head_result res;
    size_t n = strlen(req);
    parse_once(req, n, lim, &res);
    check_resumption(name, req, n, lim, &res);
    return &res;
}

static void test_valid_heads(void)
{
    pw_limits lim;
    head_result *h;
    const char *req;
    pw_limits_default(&lim);

    req = "GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: example.com\r\nX-Empty:\r\n"
          "X-Pad: \t padded value \t\r\n\r\nGET /next HTTP/1.1\r\n";
    h = parse_checked("origin-form", req, &lim);
    CHECK(h->rc == PW_DONE, "origin-form rc %d (%s)", h->rc, h->r.error_reason);
    CHECK(span_eq(req, h->r.method, "GET"), "method");
    CHECK(span_eq(req, h->r.target, "/a/b?x=1&y=2"), "target");
    CHECK(span_eq(req, h->r.path, "/a/b"), "path");
    CHECK(h->r.has_query && span_eq(req, h->r.query, "x=1&y=2"), "query");
    CHECK(h->r.authority.len == 0, "no authority");
    CHECK(h->r.has_host && span_eq(req, h->r.host, "example.com"), "host");
    CHECK(h->r.version_major == 1 && h->r.version_minor == 1, "version");
    CHECK(h->r.num_headers == 3, "num_headers %u", h->r.num_headers);
    CHECK(span_eq(req, h->headers[1].name, "X-Empty") && h->headers[1].value.len == 0, "empty value");
    CHECK(span_eq(req, h->headers[2].value, "padded value"), "OWS trimmed");
    CHECK(h->r.keep_alive == 1 && h->r.body_kind == PW_BODY_NONE, "keep-alive, no body");
    CHECK(h->r.head_len == strlen(req) - strlen("GET /next HTTP/1.1\r\n"), "head_len %u", h->r.head_len);

    req = "\r\n\r\nPOST http://Example.COM:8080/p/q?z HTTP/1.1\r\nHost: ignored\r\n"
          "Content-Length: 5\r\nConnection: close\r\n\r\nhello";
    h = parse_checked("absolute-form", req, &lim);
    CHECK(h->rc == PW_DONE, "absolute-form rc %d (%s)", h->rc, h->r.error_reason);
    CHECK(span_eq(req, h->r.authority, "Example.COM:8080"), "authority");
    CHECK(span_eq(req, h->r.path, "/p/q") && span_eq(req, h->r.query, "z"), "path/query");
    CHECK(h->r.body_kind == PW_BODY_LENGTH && h->r.content_length == 5, "length body");
    CHECK(h->r.keep_alive == 0, "close");
    CHECK(h->r.head_len == strlen(req) - 5, "head_len");

    req = "GET http://example.com?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n";
    h = parse_checked("absolute-form without path", req, &lim);
    CHECK(h->rc == PW_DONE, "rc %d", h->rc);
    CHECK(h->r.path.len == 0 && span_eq(req, h->r.query, "q=1"), "empty path");

    req = "OPTIONS * HTTP/1.1\r\nHost: [::1]:8000\r\n\r\n";
    h = parse_checked("asterisk-form", req, &lim);
    CHECK(h->rc == PW_DONE && span_eq(req, h->r.path, "*"), "asterisk rc %d", h->rc);

    req = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";
    h = parse_checked("authority-form", req, &lim);
    CHECK(h->rc == PW_DONE && span_eq(req, h->r.path, "example.com:443"), "connect rc %d", h->rc);

    req = "PUT /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n"
          "Expect: 100-Continue\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    h = parse_checked("chunked", req, &lim);
    CHECK(h->rc == PW_DONE && h->r.body_kind == PW_BODY_CHUNKED, "chunked rc %d", h->rc);
    CHECK(h->r.expect_continue == 1, "expect");

    req = "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nExpect: whatever\r\n\r\n";
    h = parse_checked("http/1.0 keep-alive", req, &lim);
    CHECK(h->rc == PW_DONE && h->r.keep_alive == 1 && !h->r.has_host, "1.0 rc %d", h->rc);
    CHECK(h->r.expect_continue == 0, "1.0 expectations ignored");

    req = "GET / HTTP/1.0\r\n\r\n";
    h = parse_checked("http/1.0", req, &lim);
    CHECK(h->rc == PW_DONE && h->r.keep_alive == 0, "1.0 default close");

    req = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nContent-Length: 0, 0\r\n\r\n";
    h = parse_checked("repeated identical Content-Length", req, &lim);
    CHECK(h->rc == PW_DONE && h->r.body_kind == PW_BODY_NONE && h->r.content_length == 0,
          "CL 0 rc %d", h->rc);

    req = "GET / HTTP/1.1\r\nHost: h\r\nX-Bin: caf\xc3\xa9\r\n\r\n";
    h = parse_checked("obs-text value", req, &lim);
    CHECK(h->rc == PW_DONE, "obs-text rc %d", h->rc);

    req = "GET / HTTP/1.1\r\nHost: h\r\n";
    h = parse_checked("incomplete", req, &lim);
    CHECK(h->rc == PW_AGAIN, "incomplete rc %d", h->rc);
}

static void test_limits_early(void)
{
    /* An endless line is refused before it ends. */
    pw_limits lim;
    head_result *res = malloc(sizeof(*res));
    size_t n = 300;
    char *line = malloc(n);
    pw_limits_default(&lim);
    lim.max_request_line = 100;
    lim.max_field_size = 100;
    lim.max_head_size = 250;

    memset(line, 'a', n);
    memcpy(line, "GET /", 5);
    parse_once(line, 102, &lim, res);
    CHECK(res->rc == PW_ERROR && res->r.error_status == 414, "endless request-line rc %d", res->rc);
    parse_once(line, 101, &lim, res);
    CHECK(res->rc == PW_AGAIN, "101 bytes could still end in CR: rc %d", res->rc);

    memcpy(line, "GET / HTTP/1.1\r\nX: ", 19);
    parse_once(line, 16 + 102, &lim, res);
    CHECK(res->rc == PW_ERROR && res->r.error_status == 431, "endless field line rc %d", res->rc);

    {
        char head[400];
        size_t i, len = 0;
        len += (size_t)sprintf(head, "GET / HTTP/1.1\r\n");
        for (i = 0; len < 260; i++)
            len += (size_t)sprintf(head + len, "X-%zu: v\r\n", i);
        parse_once(head, len, &lim, res);
        CHECK(res->rc == PW_ERROR && res->r.error_status == 431, "endless head rc %d", res->rc);
    }
    {
        /* exactly at the limits is fine */
        char req[200];
        pw_limits small;
        pw_limits_default(&small);
        strcpy(req, "GET /abc HTTP/1.1\r\nHost: h\r\n\r\n");
        small.max_request_line = 17;
        small.max_field_size = 7;
        small.max_head_size = (uint32_t)strlen(req);
        small.max_fields = 1;
        parse_once(req, strlen(req), &small, res);
        CHECK(res->rc == PW_DONE, "at the limits rc %d (%s)", res->rc, res->r.error_reason);
        small.max_request_line = 16;
        parse_once(req, strlen(req), &small, res);
        CHECK(res->rc == PW_ERROR && res->r.error_status == 414, "line limit");
        small.max_request_line = 17;
        small.max_field_size = 6;
        parse_once(req, strlen(req), &small, res);
        CHECK(res->rc == PW_ERROR && res->r.error_status == 431, "field limit");
        small.max_field_size = 7;
        small.max_head_size--;
        parse_once(req, strlen(req), &small, res);
        CHECK(res->rc == PW_ERROR && res->r.error_status == 431, "head limit");
        small.max_head_size++;
        small.max_fields = 0;
        parse_once(req, strlen(req), &small, res);
        CHECK(res->rc == PW_ERROR && res->r.error_status == 431, "fields limit");
    }
    free(line);
    free(res);
}

/* ---- chunked --------------------------------------------------------------------- */

typedef struct {
    int rc;
    int status;
    size_t consumed;
    size_t body_len;
    char body[4096];
} chunk_result;

/* Decode `data` delivered in reads cut at ends[] (ascending, last == n). */
static void decode_in_steps(const char *data, size_t n, const size_t *ends, size_t nends,
                            const pw_limits *lim, chunk_result *out)
{
    pw_chunked c;
    size_t k, start = 0;
    memset(out, 0, sizeof(*out));
    pw_chunked_init(&c);
    out->rc = PW_AGAIN;
    for (k = 0; k < nends && out->rc == PW_AGAIN; k++) {
        size_t piece_len = ends[k] - start, pos = 0;
        char *piece = copy_exact(data + start, piece_len);
        for (;;) {
            size_t consumed, off, len;
            int rc = pw_chunked_decode(&c, piece + pos, piece_len - pos, &consumed, &off, &len, lim);
            CHECK(consumed <= piece_len - pos, "consumed beyond the buffer");
            if (rc == PW_CHUNK_DATA) {
                CHECK(off + len <= consumed && len > 0, "data run outside consumed bytes");
                if (out->body_len + len <= sizeof(out->body))
                    memcpy(out->body + out->body_len, piece + pos + off, len);
                out->body_len += len;
                pos += consumed;
                continue;
            }
            out->rc = rc;
            if (rc == PW_DONE)
                out->consumed = start + pos + consumed;
            if (rc == PW_ERROR)
                out->status = c.error_status;
            if (rc == PW_AGAIN)
                CHECK(pos + consumed == piece_len, "AGAIN without consuming everything");
            break;
        }
        free(piece);
        start = ends[k];
    }
    (void)n;
}

static int same_chunks(const chunk_result *a, const chunk_result *b)
{
    if (a->rc != b->rc)
        return 0;
    if (a->rc == PW_ERROR)
        return a->status == b->status;
    return a->consumed == b->consumed && a->body_len == b->body_len &&
           memcmp(a->body, b->body, a->body_len < sizeof(a->body) ? a->body_len : sizeof(a->body)) == 0;
}

static void check_chunked(const char *name, const char *data, size_t n, const pw_limits *lim,
                          chunk_result *once)
{
    size_t split, *ends;
    chunk_result *step = malloc(sizeof(*step));
    decode_in_steps(data, n, &n, 1, lim, once);
    for (split = 0; split <= n; split++) {
        size_t two[2] = {split, n};
        decode_in_steps(data, n, two, 2, lim, step);
        CHECK(same_chunks(once, step), "%s: split at %zu differs (rc %d/%d)", name, split,
              once->rc, step->rc);
    }
    ends = malloc((n ? n : 1) * sizeof(size_t));
    for (split = 0; split < n; split++)
        ends[split] = split + 1;
    decode_in_steps(data, n, ends, n, lim, step);
    CHECK(same_chunks(once, step), "%s: byte-by-byte differs", name);
    free(ends);
    free(step);
}

static void test_chunked(void)
{
    pw_limits lim;
    chunk_result *res = malloc(sizeof(*res));
    const char *data;
    pw_limits_default(&lim);

    data = "5\r\nhello\r\n6;name=value;flag ; q=\"a \\\" b\"\r\n world\r\n"
           "00000000000000000000\r\nX-Trailer: yes\r\nY: \r\n\r\nNEXT";
    check_chunked("valid", data, strlen(data), &lim, res);
    CHECK(res->rc == PW_DONE, "valid rc %d status %d", res->rc, res->status);
    CHECK(res->body_len == 11 && memcmp(res->body, "hello world", 11) == 0, "body");
    CHECK(res->consumed == strlen(data) - 4, "consumed %zu", res->consumed);

    data = "A\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n";
    check_chunked("hex sizes", data, strlen(data), &lim, res);
    CHECK(res->rc == PW_DONE && res->body_len == 20, "hex rc %d len %zu", res->rc, res->body_len);

    data = "5\r\nhel";
    check_chunked("incomplete", data, strlen(data), &lim, res);
    CHECK(res->rc == PW_AGAIN && res->body_len == 3, "incomplete rc %d", res->rc);

    {
        struct { const char *data; int status; } bad[] = {
            {"g\r\n", 400}, {"\r\n", 400}, {"5 \r\nhello\r\n0\r\n\r\n", 400},
            {"5\r\nhelloX", 400}, {"5\r\nhello\rX", 400}, {"5\n", 400},
            {"10000000000000000\r\n", 400}, {"000000000000000000005\r\n", 400},
            {"5;\r\n", 400}, {"5;a=\r\n", 400}, {"5;a=\"x\r\n", 400},
            {"0\r\n X: y\r\n\r\n", 400}, {"0\r\nX : y\r\n\r\n", 400}, {"0\r\nX: \x7f\r\n\r\n", 400},
            {"0\r\n\rX", 400},
        };
        size_t k;
        for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
            check_chunked(bad[k].data, bad[k].data, strlen(bad[k].data), &lim, res);
            CHECK(res->rc == PW_ERROR && res->status == bad[k].status, "bad chunk %zu rc %d status %d",
                  k, res->rc, res->status);
        }
    }
    {
        /* chunk-ext cap: exactly max_chunk_ext bytes pass, one more fails */
        char buf[64];
        pw_limits small = lim;
        small.max_chunk_ext = 6; /* ";a=bcd" */
        strcpy(buf, "3;a=bcd\r\nabc\r\n0\r\n\r\n");
        check_chunked("ext at cap", buf, strlen(buf), &small, res);
        CHECK(res->rc == PW_DONE, "ext at cap rc %d", res->rc);
        strcpy(buf, "3;a=bcde\r\nabc\r\n0\r\n\r\n");
        check_chunked("ext over cap", buf, strlen(buf), &small, res);
        CHECK(res->rc == PW_ERROR && res->status == 400, "ext over cap rc %d", res->rc);
        small.max_fields = 1;
        strcpy(buf, "0\r\nA: 1\r\nB: 2\r\n\r\n");
        check_chunked("too many trailers", buf, strlen(buf), &small, res);
        CHECK(res->rc == PW_ERROR && res->status == 431, "trailer count rc %d", res->rc);
    }
    free(res);
}

/* ---- malformed cases file -------------------------------------------------------- */

static int status_of(const char *req, size_t n, const size_t *ends, size_t nends,
                     const pw_limits *lim)
{
    head_result *h = malloc(sizeof(*h));
    int status = 0;
    parse_in_steps(req, n, ends, nends, lim, h);
    if (h->rc == PW_ERROR) {
        status = h->r.error_status;
    } else if (h->rc == PW_DONE && h->r.body_kind == PW_BODY_CHUNKED) {
        chunk_result *c = malloc(sizeof(*c));
        size_t rest = n - h->r.head_len;
        decode_in_steps(req + h->r.head_len, rest, &rest, 1, lim, c);
        status = c->rc == PW_ERROR ? c->status : (c->rc == PW_DONE ? 200 : 0);
        free(c);
    } else if (h->rc == PW_DONE) {
        status = 200;
    }
    free(h);
    return status;
}

static void test_cases_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    pw_limits lim;
    int want, count = 0;
    size_t n;
    pw_limits_default(&lim);
    if (!f) {
        perror(path);
        exit(2);
    }
    while (fscanf(f, "%d %zu", &want, &n) == 2) {
        char *req = malloc(n ? n : 1);
        size_t split, stride;
        int got;
        fgetc(f); /* the newline after the length */
        if (fread(req, 1, n, f) != n) {
            fprintf(stderr, "short cases file\n");
            exit(2);
        }
        fgetc(f);
        count++;
        got = status_of(req, n, &n, 1, &lim);
        CHECK(got == want, "case %d: status %d, want %d", count, got, want);
        stride = n > 3000 ? n / 53 + 1 : 1;
        for (split = 0; split <= n; split += stride) {
            size_t ends[2] = {split, n};
            got = status_of(req, n, ends, 2, &lim);
            CHECK(got == want, "case %d split at %zu: status %d, want %d", count, split, got, want);
        }
        free(req);
    }
    fclose(f);
    printf("%d malformed cases\n", count);
}

/* ---- mutation smoke test: no crash, spans stay inside the head ------------------- */

static uint32_t rng_state = 12345;
static uint32_t rng(void)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return rng_state >> 8;
}

static void test_mutations(void)
{
    static const char *seeds[] = {
        "GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nX-A: 1\r\nContent-Length: 3\r\n\r\nabc",
        "POST http://h:80/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3;e=\"q\"\r\nabc\r\n0\r\nT: v\r\n\r\n",
        "OPTIONS * HTTP/1.0\r\nConnection: keep-alive, close\r\nExpect: 100-continue\r\n\r\n",
    };
    static const char alphabet[] = "\r\n \t:;,\"\\/?*0123456789aAfFxX-=\x00\x7f\x80\xff";
    pw_limits lim;
    int iter;
    pw_limits_default(&lim);
    lim.max_request_line = 40;
    lim.max_field_size = 30;
    lim.max_head_size = 120;
    lim.max_fields = 4;
    lim.max_chunk_ext = 8;
    for (iter = 0; iter < 20000; iter++) {
        const char *seed = seeds[rng() % 3];
        size_t n = strlen(seed), i, edits = 1 + rng() % 4;
        char work[256];
        head_result *h;
        memcpy(work, seed, n);
        for (i = 0; i < edits; i++) {
            size_t at = rng() % n;
            switch (rng() % 3) {
            case 0:
                work[at] = alphabet[rng() % (sizeof(alphabet) - 1)];
                break;
            case 1:
                if (n < sizeof(work) - 1) {
                    memmove(work + at + 1, work + at, n - at);
                    work[at] = alphabet[rng() % (sizeof(alphabet) - 1)];
                    n++;
                }
                break;
            default:
                if (n > 1) {
                    memmove(work + at, work + at + 1, n - at - 1);
                    n--;
                }
            }
        }
        h = malloc(sizeof(*h));
        {
            size_t ends[3] = {n / 3, 2 * n / 3, n};
            parse_in_steps(work, n, ends, 3, &lim, h);
        }
        if (h->rc == PW_DONE) {
            uint32_t k;
            CHECK(h->r.head_len <= n, "head_len beyond input");
            CHECK(h->r.method.off + h->r.method.len <= h->r.head_len, "method outside head");
            CHECK(h->r.target.off + h->r.target.len <= h->r.head_len, "target outside head");
            for (k = 0; k < h->r.num_headers; k++)
                CHECK(h->headers[k].value.off + h->headers[k].value.len <= h->r.head_len,
                      "header outside head");
            if (h->r.body_kind == PW_BODY_CHUNKED) {
                chunk_result *c = malloc(sizeof(*c));
                size_t rest = n - h->r.head_len, ends[2] = {rest / 2, rest};
                decode_in_steps(work + h->r.head_len, rest, ends, 2, &lim, c);
                free(c);
            }
        } else if (h->rc == PW_ERROR) {
            CHECK(h->r.error_reason != NULL && h->r.error_status >= 400, "error without reason");
        }
        free(h);
    }
}

int main(int argc, char **argv)
{
    test_valid_heads();
    test_limits_early();
    test_chunked();
    test_mutations();
    if (argc > 1)
        test_cases_file(argv[1]);
    return check_summary();
}
