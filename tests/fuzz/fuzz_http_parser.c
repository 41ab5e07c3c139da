/*
 * fuzz_http_parser.c -- libFuzzer harness for csrc/http_parser.c.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 *         -Icsrc tests/fuzz/fuzz_http_parser.c csrc/http_parser.c -o fuzz_http_parser
 *   ./fuzz_http_parser -max_total_time=60 tests/fuzz/corpus
 *
 * (tests/fuzz/run.sh does this.)  Input layout: byte 0 picks the target and the limits, byte 1
 * the number of cuts, then one byte per cut (distance to the next cut - 1), then the payload.
 * The payload is parsed as a request head and, from the end of a complete head (or from the
 * start when the selector says so), decoded as a chunked body.
 *
 * Invariants checked (a violation aborts, which libFuzzer reports as a crash):
 *   - no memory error (ASan) or undefined behaviour (UBSan): every buffer handed to the parser is
 *     a fresh malloc of exactly the bytes it may read;
 *   - after PW_DONE: head_len <= length, every span lies inside the head, the error fields are
 *     unused; after PW_ERROR: a status among the documented ones;
 *   - the parse resumed over growing prefixes (cut at the fuzzed points) ends exactly like the
 *     one-shot parse: same outcome, same status, same spans and fields;
 *   - chunked decoding: data runs lie inside the consumed bytes, consumed <= length, and feeding
 *     the body in pieces gives the same bytes, outcome and status as feeding it whole.
 */
#include "http_parser.h"
#include "fuzz.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CUTS 16

static void pick_limits(uint8_t selector, pw_limits *lim)
{
    pw_limits_default(lim);
    /* Small limits some of the time, so the limit paths are reached by short inputs. */
    if (selector & 0x10) {
        lim->max_request_line = 16 + (selector & 0x0f) * 4;
        lim->max_fields = 1 + (selector & 0x07);
        lim->max_field_size = 12 + (selector & 0x0f) * 3;
        lim->max_head_size = 64 + (selector & 0x0f) * 16;
        lim->max_chunk_ext = 4 + (selector & 0x07);
    }
}

static void check_span(pw_span s, uint32_t end)
{
    REQUIRE(s.off <= end);
    REQUIRE(s.len <= end - s.off);
}

static int valid_error_status(int status)
{
    switch (status) {
    case 400: case 408: case 413: case 414: case 417: case 431: case 501: case 505:
        return 1;
    default:
        return 0;
    }
}

static void check_done(const pw_request *r, size_t len)
{
    REQUIRE(r->head_len <= len);
    REQUIRE(r->head_len >= 4);   /* at least a CRLF CRLF after a request-line */
    uint32_t end = r->head_len;
    check_span(r->method, end);
    REQUIRE(r->method.len > 0);
    check_span(r->target, end);
    REQUIRE(r->target.len > 0);
    check_span(r->path, end);
    if (r->has_query)
        check_span(r->query, end);
    check_span(r->authority, end);
    if (r->has_host)
        check_span(r->host, end);
    REQUIRE(r->num_headers <= r->headers_cap);
    for (uint32_t i = 0; i < r->num_headers; i++) {
        check_span(r->headers[i].name, end);
        check_span(r->headers[i].value, end);
        REQUIRE(r->headers[i].name.len > 0);
    }
    REQUIRE(r->body_kind == PW_BODY_NONE || r->body_kind == PW_BODY_LENGTH ||
            r->body_kind == PW_BODY_CHUNKED);
    REQUIRE(r->version_major == 1);
    REQUIRE(r->version_minor >= 0 && r->version_minor <= 9);
}

static int spans_equal(pw_span a, pw_span b) { return a.off == b.off && a.len == b.len; }

static void require_same_request(const pw_request *a, const pw_request *b)
{
    REQUIRE(spans_equal(a->method, b->method));
    REQUIRE(spans_equal(a->target, b->target));
    REQUIRE(spans_equal(a->path, b->path));
    REQUIRE(a->has_query == b->has_query);
    if (a->has_query)
        REQUIRE(spans_equal(a->query, b->query));
    REQUIRE(spans_equal(a->authority, b->authority));
    REQUIRE(a->has_host == b->has_host);
    if (a->has_host)
        REQUIRE(spans_equal(a->host, b->host));
    REQUIRE(a->version_major == b->version_major && a->version_minor == b->version_minor);
    REQUIRE(a->num_headers == b->num_headers);
    for (uint32_t i = 0; i < a->num_headers; i++) {
        REQUIRE(spans_equal(a->headers[i].name, b->headers[i].name));
        REQUIRE(spans_equal(a->headers[i].value, b->headers[i].value));
    }
    REQUIRE(a->body_kind == b->body_kind);
    if (a->body_kind == PW_BODY_LENGTH)
        REQUIRE(a->content_length == b->content_length);
    REQUIRE(a->keep_alive == b->keep_alive);
    REQUIRE(a->expect_continue == b->expect_continue);
    REQUIRE(a->head_len == b->head_len);
}

/* Parse the head in one go; returns the outcome and fills *r. */
static int parse_whole(pw_request *r, pw_header *storage, const uint8_t *data, size_t len,
                       const pw_limits *lim)
{
    char *buf = copy_exact(data, len);
    pw_request_init(r, storage, lim->max_fields);
    int rc = pw_parse_head(r, buf, len, lim);
    if (rc == PW_DONE)
        check_done(r, len);
    else if (rc == PW_ERROR)
        REQUIRE(valid_error_status(r->error_status) && r->error_reason != NULL);
    else
        REQUIRE(rc == PW_AGAIN);
    free(buf);
    return rc;
}

/* Parse the head over growing prefixes ending at the cuts, then the whole payload. */
static int parse_resumed(pw_request *r, pw_header *storage, const uint8_t *data, size_t len,
                         const size_t *cuts, int ncuts, const pw_limits *lim)
{
    pw_request_init(r, storage, lim->max_fields);
    int rc = PW_AGAIN;
    for (int k = 0; k <= ncuts; k++) {
        size_t end = k < ncuts ? cuts[k] : len;
        char *buf = copy_exact(data, end);
        rc = pw_parse_head(r, buf, end, lim);
        free(buf);
        if (rc != PW_AGAIN) {
            if (rc == PW_DONE)
                check_done(r, end);
            return rc;
        }
    }
    return rc;
}

/* Decode a chunked body fed as pieces [bounds[k], bounds[k+1]); appends data to out. */
static int decode_pieces(const uint8_t *data, size_t len, const size_t *bounds, int nbounds,
                         const pw_limits *lim, uint8_t *out, size_t *out_len, size_t *used,
                         int *status)
{
    pw_chunked c;
    pw_chunked_init(&c);
    *out_len = 0;
    *used = 0;
    *status = 0;
    for (int k = 0; k + 1 < nbounds; k++) {
        size_t start = bounds[k], end = bounds[k + 1];
        REQUIRE(start <= end && end <= len);
        size_t piece_len = end - start;
        char *piece = copy_exact(data + start, piece_len);
        size_t pos = 0;
        for (;;) {
            size_t consumed = 0, off = 0, dlen = 0;
            int rc = pw_chunked_decode(&c, piece + pos, piece_len - pos, &consumed, &off, &dlen,
                                       lim);
            REQUIRE(consumed <= piece_len - pos);
            if (rc == PW_CHUNK_DATA) {
                REQUIRE(dlen > 0);
                REQUIRE(off <= consumed && dlen <= consumed - off);
                memcpy(out + *out_len, piece + pos + off, dlen);
                *out_len += dlen;
                REQUIRE(*out_len <= len);
                pos += consumed;
                continue;
            }
            if (rc == PW_DONE) {
                *used = start + pos + consumed;
                free(piece);
                return rc;
            }
            if (rc == PW_ERROR) {
                REQUIRE(valid_error_status(c.error_status) && c.error_reason != NULL);
                *status = c.error_status;
                free(piece);
                return rc;
            }
            REQUIRE(rc == PW_AGAIN);
            REQUIRE(pos + consumed == piece_len);  /* AGAIN: the whole piece was consumed */
            break;
        }
        free(piece);
    }
    return PW_AGAIN;
}

static void fuzz_chunked(const uint8_t *data, size_t len, const size_t *cuts, int ncuts,
                         const pw_limits *lim)
{
    size_t whole_bounds[2] = {0, len};
    size_t cut_bounds[MAX_CUTS + 2];
    int nb = 0;
    cut_bounds[nb++] = 0;
    for (int k = 0; k < ncuts; k++)
        if (cuts[k] <= len)
            cut_bounds[nb++] = cuts[k];
    cut_bounds[nb++] = len;

    uint8_t *out_whole = malloc(len + 1), *out_cut = malloc(len + 1);
    if (!out_whole || !out_cut)
        abort();
    size_t whole_len, cut_len, whole_used, cut_used;
    int whole_status, cut_status;
    int rc_whole = decode_pieces(data, len, whole_bounds, 2, lim, out_whole, &whole_len,
                                 &whole_used, &whole_status);
    int rc_cut = decode_pieces(data, len, cut_bounds, nb, lim, out_cut, &cut_len, &cut_used,
                               &cut_status);
    REQUIRE(rc_whole == rc_cut);
    if (rc_whole == PW_ERROR) {
#ifndef PW_FUZZ_LENIENT_STATUS
        REQUIRE(whole_status == cut_status);
#endif
    } else {
        /* AGAIN (incomplete) or DONE: the same body bytes either way. */
        REQUIRE(whole_len == cut_len);
        REQUIRE(whole_len == 0 || memcmp(out_whole, out_cut, whole_len) == 0);
        if (rc_whole == PW_DONE) {
            REQUIRE(whole_used == cut_used);
            REQUIRE(whole_used <= len && whole_len < whole_used);
        }
    }
    free(out_whole);
    free(out_cut);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t selector = data[0];
    int ncuts = data[1] % (MAX_CUTS + 1);
    if (size < 2 + (size_t)ncuts)
        return 0;
    const uint8_t *payload = data + 2 + ncuts;
    size_t len = size - 2 - ncuts;
    size_t cuts[MAX_CUTS];
    size_t at = 0;
    int used_cuts = 0;
    for (int k = 0; k < ncuts; k++) {
        at += (size_t)data[2 + k] + 1;
        if (at >= len)
            break;
        cuts[used_cuts++] = at;
    }

    pw_limits lim;
    pick_limits(selector, &lim);

    if (selector & 0x80) {
        /* The payload is a chunked body on its own. */
        fuzz_chunked(payload, len, cuts, used_cuts, &lim);
        return 0;
    }

    pw_header *storage_a = calloc(lim.max_fields, sizeof(pw_header));
    pw_header *storage_b = calloc(lim.max_fields, sizeof(pw_header));
    if (!storage_a || !storage_b)
        abort();
    pw_request whole, resumed;
    int rc_whole = parse_whole(&whole, storage_a, payload, len, &lim);
    int rc_resumed = parse_resumed(&resumed, storage_b, payload, len, cuts, used_cuts, &lim);
    REQUIRE(rc_whole == rc_resumed);
#ifndef PW_FUZZ_LENIENT_STATUS
    /* The status must not depend on how the bytes were split into reads. Build with
     * -DPW_FUZZ_LENIENT_STATUS to look past a known mismatch for other bugs. */
    if (rc_whole == PW_ERROR)
        REQUIRE(whole.error_status == resumed.error_status);
#endif
    if (rc_whole == PW_DONE) {
        require_same_request(&whole, &resumed);
        if (whole.body_kind == PW_BODY_CHUNKED) {
            /* The body follows the head: cuts are shifted to be relative to it. */
            size_t body_cuts[MAX_CUTS];
            int nbody = 0;
            for (int k = 0; k < used_cuts; k++)
                if (cuts[k] > whole.head_len)
                    body_cuts[nbody++] = cuts[k] - whole.head_len;
            fuzz_chunked(payload + whole.head_len, len - whole.head_len, body_cuts, nbody, &lim);
        }
    }
    free(storage_a);
    free(storage_b);
    return 0;
}
