/*
 * http_parser.c -- strict, incremental HTTP/1.1 request parser (RFC 9112, RFC 9110).
 *
 * Policy: anything the RFCs call invalid, and anything two implementations could frame
 * differently, is an error; the caller answers error_status and closes the connection.
 * Every rule is quoted from the RFC beside the code that enforces it.
 *
 * Resumption: pw_parse_head keeps r->pos at the start of the first unparsed line and
 * r->scan_pos at the first byte not yet searched for LF, so each byte is searched once and
 * each complete line is parsed once, whatever the split of the input.
 */
#include "http_parser.h"

#include <string.h>

/* ------------------------------------------------------------------------------------ */
/* Character classes, as data (generated once; one bit per ABNF rule).                  */

enum {
    /* RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
     *                         "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
    CC_TCHAR = 0x01,
    /* RFC 5234: VCHAR = %x21-7E (the request-target alphabet) */
    CC_VCHAR = 0x02,
    /* RFC 9110 5.5: field-vchar = VCHAR / obs-text, plus SP / HTAB inside a field-value */
    CC_FIELD = 0x04,
    CC_DIGIT = 0x08,
    CC_HEXDIG = 0x10,
    /* RFC 3986: reg-name = *( unreserved / pct-encoded / sub-delims ) -- '%' checked apart */
    CC_HOST = 0x20,
    /* RFC 9110 5.6.4: qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text */
    CC_QDTEXT = 0x40,
    /* RFC 9110 5.6.3: OWS = *( SP / HTAB ) */
    CC_OWS = 0x80,
};

static const unsigned char char_class[256] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0xc4, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 00-0f ................ */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 10-1f ................ */
    0xc4, 0x67, 0x06, 0x47, 0x67, 0x67, 0x67, 0x67,
    0x66, 0x66, 0x67, 0x67, 0x66, 0x67, 0x67, 0x46, /* 20-2f .!"#$%&'()*+,-./ */
    0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f,
    0x7f, 0x7f, 0x46, 0x66, 0x46, 0x66, 0x46, 0x46, /* 30-3f 0123456789:;<=>? */
    0x46, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x67,
    0x67, 0x67, 0x67, 0x67, 0x67, 0x67, 0x67, 0x67, /* 40-4f @ABCDEFGHIJKLMNO */
    0x67, 0x67, 0x67, 0x67, 0x67, 0x67, 0x67, 0x67,
    0x67, 0x67, 0x67, 0x46, 0x06, 0x46, 0x47, 0x67, /* 50-5f PQRSTUVWXYZ[.]^_ */
    0x47, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x67,
    0x67, 0x67, 0x67, 0x67, 0x67, 0x67, 0x67, 0x67, /* 60-6f `abcdefghijklmno */
    0x67, 0x67, 0x67, 0x67, 0x67, 0x67, 0x67, 0x67,
    0x67, 0x67, 0x67, 0x46, 0x47, 0x46, 0x67, 0x00, /* 70-7f pqrstuvwxyz{|}~. */
    0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44,
    0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, /* 80-8f ................ */
    0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44,
    0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, /* 90-9f ................ */
    0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44,
    0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, /* a0-af ................ */
    0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44,
    0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, /* b0-bf ................ */
    0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44,
    0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, /* c0-cf ................ */
    0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44,
    0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, /* d0-df ................ */
    0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44,
    0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, /* e0-ef ................ */
    0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44,
    0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, /* f0-ff ................ */
};

#define IS(cls, ch) (char_class[(unsigned char)(ch)] & (cls))

/* ------------------------------------------------------------------------------------ */
/* Small helpers                                                                        */

enum { ST_REQUEST_LINE = 0, ST_FIELDS = 1, ST_DONE = 2, ST_ERROR = 3 };

static int fail(pw_request *r, int status, const char *reason)
{
    r->stage = ST_ERROR;
    r->error_status = status;
    r->error_reason = reason;
    return PW_ERROR;
}

static pw_span span(size_t off, size_t len)
{
    pw_span s;
    s.off = (uint32_t)off;
    s.len = (uint32_t)len;
    return s;
}

static int lower_ascii(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') ? ch + 32 : ch;
}

/* Case-insensitive compare of s[0..n) with a lowercase literal. */
static int equals_nocase(const unsigned char *s, size_t n, const char *lit)
{
    size_t i;
    if (strlen(lit) != n)
        return 0;
    for (i = 0; i < n; i++)
        if (lower_ascii(s[i]) != (unsigned char)lit[i])
            return 0;
    return 1;
}

static int equals_exact(const unsigned char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

static size_t token_length(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n && IS(CC_TCHAR, s[i]))
        i++;
    return i;
}

/*
 * Comma-separated list iteration (RFC 9110 5.6.1: #element => [ element ] *( OWS "," OWS
 * [ element ] )). Sets *el / *el_len to the next element with OWS trimmed; returns 0 at the end.
 */
typedef struct {
    const unsigned char *s;
    size_t n, i;
    int done;
} list_iter;

static int list_next(list_iter *it, const unsigned char **el, size_t *el_len)
{
    size_t start, end;
    if (it->done)
        return 0;
    start = it->i;
    while (it->i < it->n && it->s[it->i] != ',')
        it->i++;
    end = it->i;
    if (it->i < it->n)
        it->i++; /* skip the comma; an element (maybe empty) follows */
    else
        it->done = 1;
    while (start < end && IS(CC_OWS, it->s[start]))
        start++;
    while (end > start && IS(CC_OWS, it->s[end - 1]))
        end--;
    *el = it->s + start;
    *el_len = end - start;
    return 1;
}

/*
 * RFC 3986 3.2.2 / 3.2.3 (via RFC 9110 4.2.1 and 7.2):
 *   authority (without userinfo) = uri-host [ ":" port ]
 *   uri-host    = IP-literal / IPv4address / reg-name
 *   IP-literal  = "[" ( IPv6address / IPvFuture ) "]"
 *   reg-name    = *( unreserved / pct-encoded / sub-delims )
 *   port        = *DIGIT
 * IPv4address is a subset of reg-name. IPv6 is checked for its alphabet only.
 */
static int valid_host_port(const unsigned char *s, size_t n, int allow_empty_host, int require_port)
{
    size_t i = 0, host_len;
    if (n > 0 && s[0] == '[') {
        size_t j = 1;
        if (n > 1 && (s[1] == 'v' || s[1] == 'V')) {
            /* IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" ) */
            j = 2;
            while (j < n && IS(CC_HEXDIG, s[j]))
                j++;
            if (j == 2 || j >= n || s[j] != '.')
                return 0;
            j++;
            if (j >= n || s[j] == ']')
                return 0;
            while (j < n && s[j] != ']') {
                if (s[j] == '%' || !(IS(CC_HOST, s[j]) || s[j] == ':'))
                    return 0;
                j++;
            }
        } else {
            while (j < n && s[j] != ']') {
                if (!(IS(CC_HEXDIG, s[j]) || s[j] == ':' || s[j] == '.'))
                    return 0;
                j++;
            }
            if (j == 1)
                return 0;
        }
        if (j >= n)
            return 0; /* no closing bracket */
        i = j + 1;
        host_len = i;
    } else {
        while (i < n && s[i] != ':') {
            if (s[i] == '%') {
                /* pct-encoded = "%" HEXDIG HEXDIG */
                if (i + 2 >= n || !IS(CC_HEXDIG, s[i + 1]) || !IS(CC_HEXDIG, s[i + 2]))
                    return 0;
                i += 3;
                continue;
            }
            if (!IS(CC_HOST, s[i]))
                return 0;
            i++;
        }
        host_len = i;
    }
    if (host_len == 0 && !allow_empty_host)
        return 0;
    if (i == n)
        return !require_port;
    if (s[i] != ':')
        return 0;
    i++;
    if (require_port && i == n)
        return 0;
    for (; i < n; i++)
        if (!IS(CC_DIGIT, s[i]))
            return 0;
    return 1;
}

void pw_limits_default(pw_limits *lim)
{
    lim->max_request_line = 8190;
    lim->max_fields = 100;
    lim->max_field_size = 8190;
    lim->max_head_size = 65536;
    lim->max_chunk_ext = 1024;
}

void pw_request_init(pw_request *r, pw_header *storage, uint32_t cap)
{
    memset(r, 0, sizeof(*r));
    r->headers = storage;
    r->headers_cap = cap;
    r->stage = ST_REQUEST_LINE;
}

/* ------------------------------------------------------------------------------------ */
/* Request-line                                                                         */

/*
 * Splits an origin-form or absolute-path at the first '?':
 * RFC 9112 3.2.1: origin-form = absolute-path [ "?" query ]
 */
static void split_query(pw_request *r, const unsigned char *buf, size_t off, size_t end)
{
    const unsigned char *q = memchr(buf + off, '?', end - off);
    if (q) {
        size_t qoff = (size_t)(q - buf);
        r->path = span(off, qoff - off);
        r->query = span(qoff + 1, end - qoff - 1);
        r->has_query = 1;
    } else {
        r->path = span(off, end - off);
    }
}

static int parse_target(pw_request *r, const unsigned char *buf, size_t off, size_t end)
{
    const unsigned char *t = buf + off;
    size_t n = end - off;
    int is_connect = equals_exact(buf + r->method.off, r->method.len, "CONNECT");

    /* RFC 9112 3.2.3: "The authority-form of request-target is only used for CONNECT
     * requests ... authority-form = uri-host ":" port" -- and CONNECT uses only it. */
    if (is_connect) {
        if (!valid_host_port(t, n, 0, 1))
            return fail(r, 400, "CONNECT needs an authority-form request-target");
        r->path = span(off, n);
        return PW_DONE;
    }

    /* RFC 9112 3.2.1: origin-form = absolute-path [ "?" query ] */
    if (t[0] == '/') {
        split_query(r, buf, off, end);
        return PW_DONE;
    }

    /* RFC 9112 3.2.4: asterisk-form = "*" -- "only used for a server-wide OPTIONS request" */
    if (n == 1 && t[0] == '*') {
        if (!equals_exact(buf + r->method.off, r->method.len, "OPTIONS"))
            return fail(r, 400, "asterisk-form request-target used without OPTIONS");
        r->path = span(off, 1);
        return PW_DONE;
    }

    /* RFC 9112 3.2.2: absolute-form = absolute-URI. We serve "http" and "https" URIs only:
     * RFC 9110 4.2.1: http-URI = "http" "://" authority path-abempty [ "?" query ]
     * "A sender MUST NOT generate an "http" URI with an empty host identifier. A recipient
     * that processes such a URI reference MUST reject it as invalid."
     * RFC 9110 4.2.4: "A sender MUST NOT generate the userinfo subcomponent" -- rejected. */
    {
        size_t i, auth_off, auth_end;
        if (n >= 7 && equals_nocase(t, 7, "http://"))
            i = 7;
        else if (n >= 8 && equals_nocase(t, 8, "https://"))
            i = 8;
        else
            return fail(r, 400, "invalid request-target");
        auth_off = off + i;
        auth_end = auth_off;
        while (auth_end < end && buf[auth_end] != '/' && buf[auth_end] != '?')
            auth_end++;
        if (!valid_host_port(buf + auth_off, auth_end - auth_off, 0, 0))
            return fail(r, 400, "invalid authority in absolute-form request-target");
        r->authority = span(auth_off, auth_end - auth_off);
        if (auth_end < end && buf[auth_end] == '?') {
            r->path = span(auth_end, 0); /* path-abempty is empty: means "/" */
            r->query = span(auth_end + 1, end - auth_end - 1);
            r->has_query = 1;
        } else {
            split_query(r, buf, auth_end, end);
        }
        return PW_DONE;
    }
}

/*
 * RFC 9112 3: request-line = method SP request-target SP HTTP-version
 * RFC 9112 3.1: method = token ("The request method is case-sensitive.")
 * RFC 9112 2.3: HTTP-version = HTTP-name "/" DIGIT "." DIGIT ; HTTP-name = %s"HTTP"
 */
static int parse_request_line(pw_request *r, const unsigned char *buf, size_t off, size_t n)
{
    const unsigned char *c = buf + off;
    size_t i, target_start, v;

    i = token_length(c, n);
    if (i == 0)
        return fail(r, 400, "invalid method");
    if (i == n)
        return fail(r, 400, "request-line has no request-target");
    if (c[i] != ' ')
        return fail(r, 400, "invalid character in method");
    r->method = span(off, i);
    i++;

    /* RFC 9112 3.2: request-target is a URI reference without whitespace; we accept its
     * visible-ASCII alphabet only (no CTL, SP, DEL, no octet >= 0x80). RFC 9112 3:
     * "a recipient SHOULD NOT attempt to autocorrect and then process the request without a
     * redirect, since the invalid request-line might be deliberately crafted to bypass
     * security filters along the request chain." */
    target_start = i;
    while (i < n && IS(CC_VCHAR, c[i]))
        i++;
    if (i == target_start)
        return fail(r, 400,
                    (i < n && c[i] == ' ') ? "more than one SP after method"
                                           : "invalid request-target");
    if (i == n)
        return fail(r, 400, "request-line has no HTTP-version (HTTP/0.9 is not supported)");
    if (c[i] != ' ')
        return fail(r, 400, "invalid character in request-target");
    r->target = span(off + target_start, i - target_start);
    i++;

    v = i;
    if (n - v != 8 || memcmp(c + v, "HTTP/", 5) != 0 || !IS(CC_DIGIT, c[v + 5]) ||
        c[v + 6] != '.' || !IS(CC_DIGIT, c[v + 7]))
        return fail(r, 400, "invalid HTTP-version");
    r->version_major = c[v + 5] - '0';
    r->version_minor = c[v + 7] - '0';
    /* RFC 9110 15.6.6: 505 "the server does not support, or refuses to support, the major
     * version of HTTP that was used in the request message." */
    if (r->version_major != 1)
        return fail(r, 505, "unsupported HTTP major version");

    return parse_target(r, buf, off + target_start, off + i - 1);
}

/* ------------------------------------------------------------------------------------ */
/* Field lines                                                                          */

/*
 * RFC 9112 5: field-line = field-name ":" OWS field-value OWS
 * RFC 9110 5.1: field-name = token
 * RFC 9110 5.5: field-value = *field-content ; field-content = field-vchar
 *               [ 1*( SP / HTAB / field-vchar ) field-vchar ]
 */
static int parse_field_line(pw_request *r, const unsigned char *buf, size_t off, size_t n,
                            const pw_limits *lim)
{
    const unsigned char *c = buf + off;
    size_t i, vstart, vend;
    pw_header *h;

    if (IS(CC_OWS, c[0])) {
        /* RFC 9112 5.2: "A server that receives an obs-fold in a request message that is not
         * within a "message/http" container MUST either reject the message by sending a 400
         * (Bad Request) ..." -- we reject.
         * RFC 9112 2.2: "A recipient that receives whitespace between the start-line and the
         * first header field MUST either reject the message as invalid or ..." -- we reject. */
        return fail(r, 400,
                    r->num_headers ? "obs-fold in header section"
                                   : "whitespace before the first header field");
    }
    i = token_length(c, n);
    if (i == 0)
        return fail(r, 400, "invalid header field name");
    if (i == n)
        return fail(r, 400, "header field line without colon");
    if (IS(CC_OWS, c[i])) {
        /* RFC 9112 5.1: "No whitespace is allowed between the field name and colon. ...
         * A server MUST reject, with a response status code of 400 (Bad Request), any received
         * request message that contains whitespace between a header field name and colon." */
        return fail(r, 400, "whitespace between header field name and colon");
    }
    if (c[i] != ':')
        return fail(r, 400, "invalid character in header field name");

    vstart = i + 1;
    vend = n;
    /* RFC 9112 5.1: "... OWS occurring before the first non-whitespace octet of the field
     * line value, or after the last non-whitespace octet of the field line value, is excluded" */
    while (vstart < vend && IS(CC_OWS, c[vstart]))
        vstart++;
    while (vend > vstart && IS(CC_OWS, c[vend - 1]))
        vend--;
    for (i = vstart; i < vend; i++) {
        if (!IS(CC_FIELD, c[i])) {
            /* RFC 9110 5.5: "Field values containing CR, LF, or NUL characters are invalid and
             * dangerous ... a recipient of CR, LF, or NUL within a field value MUST either
             * reject the message or replace each of those characters with SP". We reject,
             * as we do any other CTL (not in field-vchar). */
            return fail(r, 400,
                        c[i] == 0 ? "NUL in header field value"
                                  : "control character in header field value");
        }
    }

    if (r->num_headers >= lim->max_fields || r->num_headers >= r->headers_cap)
        return fail(r, 431, "too many header fields");
    h = &r->headers[r->num_headers++];
    h->name = span(off, token_length(c, n));
    h->value = span(off + vstart, vend - vstart);
    return PW_AGAIN;
}

/* ------------------------------------------------------------------------------------ */
/* Header semantics, once the whole section is in                                       */

/* Leading zeros aside, 2^63 - 1 has 19 digits; like h11 we refuse more than 20 digits. */
#define PW_MAX_CONTENT_LENGTH_DIGITS 20

/* RFC 9112 6.3 / RFC 9110 8.6: Content-Length = 1*DIGIT */
static int parse_content_length(const unsigned char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    size_t i;
    if (n == 0 || n > PW_MAX_CONTENT_LENGTH_DIGITS)
        return 0;
    for (i = 0; i < n; i++) {
        if (!IS(CC_DIGIT, s[i]))
            return 0;
        uint64_t digit = (uint64_t)(s[i] - '0');
        if (v > ((uint64_t)INT64_MAX - digit) / 10)
            return 0; /* above 2^63 - 1: would overflow a signed 64-bit length */
        v = v * 10 + digit;
    }
    *out = v;
    return 1;
}

static int finish_head(pw_request *r, const unsigned char *buf)
{
    uint32_t k;
    int is_11 = r->version_minor >= 1; /* HTTP/1.x, x >= 1: the 1.1 rules apply */
    int host_count = 0, conn_close = 0, conn_keep_alive = 0;
    int chunked = 0, unknown_coding = 0;
    const unsigned char *cl_first = NULL;
    size_t cl_first_len = 0;
    uint64_t content_length = 0;

    for (k = 0; k < r->num_headers; k++) {
        const unsigned char *name = buf + r->headers[k].name.off;
        size_t name_len = r->headers[k].name.len;
        const unsigned char *val = buf + r->headers[k].value.off;
        size_t val_len = r->headers[k].value.len;
        list_iter it;
        const unsigned char *el;
        size_t el_len;

        if (equals_nocase(name, name_len, "content-length")) {
            /* RFC 9110 8.6: "a recipient of a Content-Length header field value consisting of
             * the same decimal value repeated as a list (e.g. "Content-Length: 42, 42") MAY
             * either reject the message as invalid or replace that invalid field value with a
             * single instance of the decimal value". We accept byte-identical repeats only.
             * RFC 9112 6.3 (5): "If a message is received without Transfer-Encoding and with
             * an invalid Content-Length header field, then the message framing is invalid and
             * the recipient MUST treat it as an unrecoverable error ... the server MUST
             * respond with a 400 (Bad Request) status code and then close the connection." */
            r->cl_seen++;
            it = (list_iter){val, val_len, 0, 0};
            while (list_next(&it, &el, &el_len)) {
                if (!parse_content_length(el, el_len, &content_length))
                    return fail(r, 400, "invalid Content-Length");
                if (cl_first == NULL) {
                    cl_first = el;
                    cl_first_len = el_len;
                } else if (el_len != cl_first_len || memcmp(el, cl_first, el_len) != 0) {
                    return fail(r, 400, "differing Content-Length values");
                }
            }
        } else if (equals_nocase(name, name_len, "transfer-encoding")) {
            /* RFC 9112 6.1: Transfer-Encoding = #transfer-coding ;
             * transfer-coding = token *( OWS ";" OWS transfer-parameter ).
             * Several TE field lines form one list (RFC 9110 5.3). Empty list elements and
             * stray octets are rejected here: they are how smuggling payloads hide "chunked". */
            r->te_seen++;
            it = (list_iter){val, val_len, 0, 0};
            while (list_next(&it, &el, &el_len)) {
                size_t tl = token_length(el, el_len);
                if (tl == 0)
                    return fail(r, 400, "invalid Transfer-Encoding");
                if (chunked) {
                    /* RFC 9112 6.1: "A sender MUST NOT apply the chunked transfer coding more
                     * than once to a message body" and chunked must be final (below). */
                    return fail(r, 400, "chunked is not the final transfer coding");
                }
                if (equals_nocase(el, tl, "chunked")) {
                    if (tl != el_len)
                        return fail(r, 400, "invalid Transfer-Encoding");
                    chunked = 1;
                } else {
                    /* parameters of a coding we do not know: only their syntax start is checked;
                     * the request is refused with 501 anyway. */
                    size_t j = tl;
                    while (j < el_len && IS(CC_OWS, el[j]))
                        j++;
                    if (j != el_len && el[j] != ';')
                        return fail(r, 400, "invalid Transfer-Encoding");
                    unknown_coding = 1;
                }
            }
        } else if (equals_nocase(name, name_len, "host")) {
            /* RFC 9110 7.2: Host = uri-host [ ":" port ] */
            host_count++;
            r->host = r->headers[k].value;
            r->has_host = 1;
            if (!valid_host_port(val, val_len, 1, 0))
                return fail(r, 400, "invalid Host");
        } else if (equals_nocase(name, name_len, "connection")) {
            /* RFC 9110 7.6.1: Connection = #connection-option ; connection-option = token
             * "Connection options are case-insensitive." */
            it = (list_iter){val, val_len, 0, 0};
            while (list_next(&it, &el, &el_len)) {
                if (el_len == 0)
                    continue;
                if (token_length(el, el_len) != el_len)
                    return fail(r, 400, "invalid Connection");
                if (equals_nocase(el, el_len, "close"))
                    conn_close = 1;
                else if (equals_nocase(el, el_len, "keep-alive"))
                    conn_keep_alive = 1;
            }
        } else if (equals_nocase(name, name_len, "expect")) {
            /* RFC 9110 10.1.1: "A server that receives a 100-continue expectation in an HTTP/1.0
             * request MUST ignore that expectation." and "A server that receives an Expect
             * field value containing a member other than 100-continue MAY respond with a 417
             * (Expectation Failed) status code to indicate that the unexpected expectation
             * cannot be met." -- we do, for HTTP/1.1; HTTP/1.0 expectations are ignored. */
            if (!is_11)
                continue;
            it = (list_iter){val, val_len, 0, 0};
            while (list_next(&it, &el, &el_len)) {
                if (el_len == 0)
                    continue;
                if (!equals_nocase(el, el_len, "100-continue"))
                    return fail(r, 417, "unsupported expectation");
                r->expect_continue = 1;
            }
        }
    }

    /* RFC 9110 7.2: "A server MUST respond with a 400 (Bad Request) status code to any
     * HTTP/1.1 request message that lacks a Host header field and to any request message
     * that contains more than one Host header field line or a Host header field with an
     * invalid field value." */
    if (host_count > 1)
        return fail(r, 400, "more than one Host header field");
    if (is_11 && host_count == 0)
        return fail(r, 400, "HTTP/1.1 request without Host");

    if (r->te_seen) {
        /* RFC 9112 6.1: "A server or client that receives an HTTP/1.0 message containing a
         * Transfer-Encoding header field MUST treat the message as if the framing is faulty,
         * even if a Content-Length is present, and close the connection after processing
         * the message." */
        if (!is_11)
            return fail(r, 400, "Transfer-Encoding in an HTTP/1.0 request");
        /* RFC 9112 6.1: "A server MAY reject a request that contains both Content-Length and
         * Transfer-Encoding or process such a request in accordance with the
         * Transfer-Encoding alone. Regardless, the server MUST close the connection after
         * responding to such a request". We reject: no guess about the framing. */
        if (r->cl_seen)
            return fail(r, 400, "both Content-Length and Transfer-Encoding");
        /* RFC 9112 6.3 (4): "If a Transfer-Encoding header field is present in a request and
         * the chunked transfer coding is not the final encoding, the message body length
         * cannot be determined reliably; the server MUST respond with the 400 (Bad Request)
         * status code and then close the connection." */
        if (!chunked)
            return fail(r, 400, "chunked is not the final transfer coding");
        /* RFC 9112 6.1: "A server that receives a request message with a transfer coding it
         * does not understand SHOULD respond with 501 (Not Implemented)." */
        if (unknown_coding)
            return fail(r, 501, "unsupported transfer coding");
        r->body_kind = PW_BODY_CHUNKED;
    } else if (r->cl_seen) {
        r->content_length = content_length;
        r->body_kind = content_length ? PW_BODY_LENGTH : PW_BODY_NONE;
    } else {
        /* RFC 9112 6.3 (7): "If this is a request message and none of the above are true,
         * then the message body length is zero (no message body is present)." */
        r->body_kind = PW_BODY_NONE;
    }

    /* RFC 9112 9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with "keep-alive". */
    r->keep_alive = conn_close ? 0 : (is_11 ? 1 : conn_keep_alive);
    return PW_DONE;
}

/* ------------------------------------------------------------------------------------ */
/* The head                                                                             */

int pw_parse_head(pw_request *r, const char *buf_, size_t len, const pw_limits *lim)
{
    const unsigned char *buf = (const unsigned char *)buf_;

    if (r->stage == ST_DONE)
        return PW_DONE;
    if (r->stage == ST_ERROR)
        return PW_ERROR;

    for (;;) {
        size_t start = r->pos;
        size_t scan = r->scan_pos > start ? r->scan_pos : start;
        const unsigned char *lf;
        size_t lf_off, line_len, next;

        if (start > len)
            return PW_AGAIN; /* caller bug: fewer bytes than already parsed; read nothing */
        if (scan > len)
            scan = len;
        lf = memchr(buf + scan, '\n', len - scan);
        if (lf == NULL) {
            /* Incomplete line: apply the limits to what we have, so that an endless line
             * or head is refused as soon as it is too long, not when (if ever) it ends.
             * The line may still end with a CR whose LF has not arrived: allow one byte. */
            size_t seen = len - start;
            r->scan_pos = (uint32_t)(len > UINT32_MAX ? UINT32_MAX : len);
            if (r->stage == ST_REQUEST_LINE) {
                if (seen > (size_t)lim->max_request_line + 1)
                    return fail(r, 414, "request-line too long");
            } else if (seen > (size_t)lim->max_field_size + 1) {
                return fail(r, 431, "header field line too long");
            }
            if (len > lim->max_head_size)
                return fail(r, 431, "request head too large");
            return PW_AGAIN;
        }
        lf_off = (size_t)(lf - buf);
        next = lf_off + 1;

        /* The limits first, exactly as the incomplete-line branch above applies them to the
         * bytes before the LF: the answer must not depend on how the bytes arrived. */
        if (r->stage == ST_REQUEST_LINE) {
            if (lf_off - start > (size_t)lim->max_request_line + 1)
                return fail(r, 414, "request-line too long");
        } else if (lf_off - start > (size_t)lim->max_field_size + 1) {
            return fail(r, 431, "header field line too long");
        }
        if (lf_off > lim->max_head_size)
            return fail(r, 431, "request head too large");

        /* RFC 9112 2.2: "Although the line terminator for the start-line and fields is the
         * sequence CRLF, a recipient MAY recognize a single LF as a line terminator".
         * We do not: a bare LF is read as a line end by some parsers and not by others,
         * which is what request smuggling feeds on. Bare LF -> 400. */
        if (lf_off == start || buf[lf_off - 1] != '\r')
            return fail(r, 400,
                        r->stage == ST_REQUEST_LINE ? "bare LF in request-line"
                                                    : "bare LF in header section");
        line_len = lf_off - 1 - start;

        if (r->stage == ST_REQUEST_LINE) {
            if (line_len > lim->max_request_line)
                return fail(r, 414, "request-line too long");
        } else if (line_len > lim->max_field_size) {
            return fail(r, 431, "header field line too long");
        }
        if (next > lim->max_head_size)
            return fail(r, 431, "request head too large");

        /* RFC 9112 2.2: "A sender MUST NOT generate a bare CR (a CR character not immediately
         * followed by LF) within any protocol elements other than the content. A recipient of
         * such a bare CR MUST consider that element to be invalid or replace each bare CR with
         * SP before processing the element or forwarding the message." -- we reject. */
        if (memchr(buf + start, '\r', line_len) != NULL)
            return fail(r, 400, "bare CR");

        if (r->stage == ST_REQUEST_LINE) {
            if (line_len == 0) {
                /* RFC 9112 2.2: "a server that is expecting to receive and parse a
                 * request-line SHOULD ignore at least one empty line (CRLF) received prior
                 * to the request-line." -- a few, not an endless stream of them. */
                if (++r->empty_lines > PW_MAX_LEADING_EMPTY_LINES)
                    return fail(r, 400, "too many empty lines before the request-line");
            } else {
                if (parse_request_line(r, buf, start, line_len) == PW_ERROR)
                    return PW_ERROR;
                r->stage = ST_FIELDS;
            }
        } else if (line_len == 0) {
            /* RFC 9112 2.1: HTTP-message = start-line CRLF *( field-line CRLF ) CRLF */
            r->pos = r->scan_pos = (uint32_t)next;
            if (finish_head(r, buf) == PW_ERROR)
                return PW_ERROR;
            r->head_len = (uint32_t)next;
            r->stage = ST_DONE;
            return PW_DONE;
        } else if (parse_field_line(r, buf, start, line_len, lim) == PW_ERROR) {
            return PW_ERROR;
        }
        r->pos = r->scan_pos = (uint32_t)next;
    }
}

/* ------------------------------------------------------------------------------------ */
/* Chunked bodies                                                                       */

/*
 * RFC 9112 7.1:
 *   chunked-body   = *chunk last-chunk trailer-section CRLF
 *   chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   chunk-size     = 1*HEXDIG
 *   last-chunk     = 1*("0") [ chunk-ext ] CRLF
 * RFC 9112 7.1.1:
 *   chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
 *   chunk-ext-name = token
 *   chunk-ext-val  = token / quoted-string
 * RFC 9112 7.1.2:
 *   trailer-section = *( field-line CRLF )
 */
enum {
    CK_SIZE = 0,         /* in chunk-size (no digit yet when size_digits == 0) */
    CK_EXT_BWS_SEMI,     /* BWS seen after size / ext: only more BWS or ";" may follow */
    CK_EXT_BWS_NAME,     /* after ";": BWS then chunk-ext-name */
    CK_EXT_NAME,         /* in chunk-ext-name */
    CK_EXT_BWS_EQ,       /* BWS after the name: "=", ";" or more BWS */
    CK_EXT_BWS_VAL,      /* after "=": BWS then token or quoted-string */
    CK_EXT_TOKEN,        /* in a token chunk-ext-val */
    CK_EXT_QUOTED,       /* in a quoted-string */
    CK_EXT_QUOTED_PAIR,  /* after a backslash */
    CK_EXT_AFTER_QUOTED, /* after the closing quote */
    CK_SIZE_LF,          /* CR of the size line seen */
    CK_DATA,             /* in chunk-data */
    CK_DATA_CR,          /* chunk-data done, CR expected */
    CK_DATA_LF,          /* LF expected */
    CK_TRAILER_START,    /* start of a trailer field line or of the final CRLF */
    CK_TRAILER_NAME,
    CK_TRAILER_VALUE,
    CK_TRAILER_LF,
    CK_FINAL_LF,
    CK_DONE,
    CK_ERROR,
};

/* RFC 9112 7.1: chunk-size digits we accept (leading zeros included), like h11. */
#define PW_MAX_CHUNK_SIZE_DIGITS 20

void pw_chunked_init(pw_chunked *c)
{
    memset(c, 0, sizeof(*c));
    c->state = CK_SIZE;
}

static int chunk_fail(pw_chunked *c, int status, const char *reason)
{
    c->state = CK_ERROR;
    c->error_status = status;
    c->error_reason = reason;
    return PW_ERROR;
}

int pw_chunked_decode(pw_chunked *c, const char *buf_, size_t len, size_t *consumed,
                      size_t *data_off, size_t *data_len, const pw_limits *lim)
{
    const unsigned char *buf = (const unsigned char *)buf_;
    size_t i = 0;

    *data_off = 0;
    *data_len = 0;
    *consumed = 0;
    if (c->state == CK_DONE)
        return PW_DONE;
    if (c->state == CK_ERROR)
        return PW_ERROR;

    while (i < len) {
        unsigned char ch = buf[i];

        if (c->state == CK_DATA) {
            size_t run = len - i;
            if ((uint64_t)run > c->remaining)
                run = (size_t)c->remaining;
            c->remaining -= run;
            if (c->remaining == 0)
                c->state = CK_DATA_CR;
            *data_off = i;
            *data_len = run;
            *consumed = i + run;
            return PW_CHUNK_DATA;
        }

        if (c->state < CK_SIZE_LF) {
            /* the chunk-size line, before its CR: bound the chunk-ext */
            if (c->line_len - c->size_digits > lim->max_chunk_ext)
                return chunk_fail(c, 400, "chunk extension too long");
            c->line_len++;
        } else if (c->state >= CK_TRAILER_START && c->state <= CK_TRAILER_LF) {
            /* trailer lines: same bounds as header field lines */
            c->line_len++;
            c->trailer_bytes++;
            if (c->line_len > lim->max_field_size + 2)
                return chunk_fail(c, 431, "trailer field line too long");
            if (c->trailer_bytes > lim->max_head_size)
                return chunk_fail(c, 431, "trailer section too large");
        }

        switch (c->state) {
        case CK_SIZE:
            if (IS(CC_HEXDIG, ch)) {
                unsigned v = IS(CC_DIGIT, ch) ? (unsigned)(ch - '0')
                                              : (unsigned)(lower_ascii(ch) - 'a' + 10);
                if (++c->size_digits > PW_MAX_CHUNK_SIZE_DIGITS)
                    return chunk_fail(c, 400, "chunk-size too long");
                if (c->remaining > ((uint64_t)INT64_MAX >> 4))
                    return chunk_fail(c, 400, "chunk-size overflow");
                c->remaining = (c->remaining << 4) | v;
                break;
            }
            if (c->size_digits == 0)
                return chunk_fail(c, 400, "invalid chunk-size");
            if (ch == '\r')
                c->state = CK_SIZE_LF;
            else if (ch == ';')
                c->state = CK_EXT_BWS_NAME;
            else if (IS(CC_OWS, ch))
                c->state = CK_EXT_BWS_SEMI;
            else
                return chunk_fail(c, 400, "invalid chunk-size");
            break;
        case CK_EXT_BWS_SEMI:
            /* BWS is only allowed before a ";" (no trailing whitespace on the size line) */
            if (ch == ';')
                c->state = CK_EXT_BWS_NAME;
            else if (!IS(CC_OWS, ch))
                return chunk_fail(c, 400, "invalid chunk extension");
            break;
        case CK_EXT_BWS_NAME:
            if (IS(CC_TCHAR, ch))
                c->state = CK_EXT_NAME;
            else if (!IS(CC_OWS, ch))
                return chunk_fail(c, 400, "invalid chunk extension");
            break;
        case CK_EXT_NAME:
            if (IS(CC_TCHAR, ch))
                break;
            if (ch == '\r')
                c->state = CK_SIZE_LF;
            else if (ch == ';')
                c->state = CK_EXT_BWS_NAME;
            else if (ch == '=')
                c->state = CK_EXT_BWS_VAL;
            else if (IS(CC_OWS, ch))
                c->state = CK_EXT_BWS_EQ;
            else
                return chunk_fail(c, 400, "invalid chunk extension");
            break;
        case CK_EXT_BWS_EQ:
            if (ch == '=')
                c->state = CK_EXT_BWS_VAL;
            else if (ch == ';')
                c->state = CK_EXT_BWS_NAME;
            else if (!IS(CC_OWS, ch))
                return chunk_fail(c, 400, "invalid chunk extension");
            break;
        case CK_EXT_BWS_VAL:
            if (IS(CC_TCHAR, ch))
                c->state = CK_EXT_TOKEN;
            else if (ch == '"')
                c->state = CK_EXT_QUOTED;
            else if (!IS(CC_OWS, ch))
                return chunk_fail(c, 400, "invalid chunk extension");
            break;
        case CK_EXT_TOKEN:
            if (IS(CC_TCHAR, ch))
                break;
            if (ch == '\r')
                c->state = CK_SIZE_LF;
            else if (ch == ';')
                c->state = CK_EXT_BWS_NAME;
            else if (IS(CC_OWS, ch))
                c->state = CK_EXT_BWS_SEMI;
            else
                return chunk_fail(c, 400, "invalid chunk extension");
            break;
        case CK_EXT_QUOTED:
            /* RFC 9110 5.6.4: quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE */
            if (ch == '"')
                c->state = CK_EXT_AFTER_QUOTED;
            else if (ch == '\\')
                c->state = CK_EXT_QUOTED_PAIR;
            else if (!IS(CC_QDTEXT, ch))
                return chunk_fail(c, 400, "invalid chunk extension");
            break;
        case CK_EXT_QUOTED_PAIR:
            /* RFC 9110 5.6.4: quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ) */
            if (!(IS(CC_FIELD, ch)))
                return chunk_fail(c, 400, "invalid chunk extension");
            c->state = CK_EXT_QUOTED;
            break;
        case CK_EXT_AFTER_QUOTED:
            if (ch == '\r')
                c->state = CK_SIZE_LF;
            else if (ch == ';')
                c->state = CK_EXT_BWS_NAME;
            else if (IS(CC_OWS, ch))
                c->state = CK_EXT_BWS_SEMI;
            else
                return chunk_fail(c, 400, "invalid chunk extension");
            break;
        case CK_SIZE_LF:
            if (ch != '\n')
                return chunk_fail(c, 400, "bare CR in chunk-size line");
            c->line_len = 0;
            c->size_digits = 0;
            if (c->remaining == 0) {
                /* last-chunk: the trailer section follows */
                c->state = CK_TRAILER_START;
            } else {
                c->state = CK_DATA;
            }
            break;
        case CK_DATA_CR:
            if (ch != '\r')
                return chunk_fail(c, 400, "chunk-data not followed by CRLF");
            c->state = CK_DATA_LF;
            break;
        case CK_DATA_LF:
            if (ch != '\n')
                return chunk_fail(c, 400, "chunk-data not followed by CRLF");
            c->state = CK_SIZE;
            break;
        case CK_TRAILER_START:
            if (ch == '\r') {
                c->state = CK_FINAL_LF;
            } else if (IS(CC_TCHAR, ch)) {
                /* RFC 9110 6.5.1: trailer fields are bounded like header fields */
                if (++c->trailer_count > lim->max_fields)
                    return chunk_fail(c, 431, "too many trailer fields");
                c->state = CK_TRAILER_NAME;
            } else if (IS(CC_OWS, ch)) {
                return chunk_fail(c, 400, "obs-fold or whitespace in trailer section");
            } else {
                return chunk_fail(c, 400, "invalid trailer field name");
            }
            break;
        case CK_TRAILER_NAME:
            if (ch == ':')
                c->state = CK_TRAILER_VALUE;
            else if (!IS(CC_TCHAR, ch))
                return chunk_fail(c, 400,
                                  IS(CC_OWS, ch) ? "whitespace between trailer field name and colon"
                                                 : "invalid trailer field name");
            break;
        case CK_TRAILER_VALUE:
            if (ch == '\r')
                c->state = CK_TRAILER_LF;
            else if (!IS(CC_FIELD, ch))
                return chunk_fail(c, 400, "invalid character in trailer field value");
            break;
        case CK_TRAILER_LF:
            if (ch != '\n')
                return chunk_fail(c, 400, "bare CR in trailer section");
            c->line_len = 0;
            c->state = CK_TRAILER_START;
            break;
        case CK_FINAL_LF:
            if (ch != '\n')
                return chunk_fail(c, 400, "bare CR at the end of the chunked body");
            c->state = CK_DONE;
            *consumed = i + 1;
            return PW_DONE;
        default: return chunk_fail(c, 400, "internal chunked state");
        }
        i++;
    }
    *consumed = i;
    return PW_AGAIN;
}
