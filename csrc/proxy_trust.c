/*
 * proxy_trust.c -- trusted proxy networks and the forwarding headers (see proxy_trust.h).
 * Plain C, no Python, no allocation.
 */
#include "proxy_trust.h"
#include "proxy_protocol.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PW_MAX_HOPS 64

/* ---------------------------------------------------------------- the trust list */

static int parse_ip(const char *text, size_t n, int *family, uint8_t addr[16])
{
    char tmp[64];
    if (n == 0 || n >= sizeof tmp)
        return -1;
    memcpy(tmp, text, n);
    tmp[n] = 0;
    memset(addr, 0, 16);
    if (inet_pton(AF_INET, tmp, addr) == 1) {
        *family = 4;
        return 0;
    }
    if (inet_pton(AF_INET6, tmp, addr) == 1) {
        *family = 6;
        return 0;
    }
    return -1;
}

static void mask_bits(uint8_t addr[16], int bits, int size)
{
    for (int i = 0; i < size; i++) {
        int keep = bits - i * 8;
        uint8_t m = keep >= 8 ? 0xff : keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
        addr[i] &= m;
    }
}

int pw_trust_add(pw_trust *t, const char *text)
{
    if (strcasecmp(text, "unix") == 0) {
        t->unix_peers = 1;
        return 0;
    }
    if (t->count >= PW_TRUST_MAX)
        return -2;
    const char *slash = strchr(text, '/');
    size_t alen = slash ? (size_t)(slash - text) : strlen(text);
    pw_cidr net;
    int family;
    if (parse_ip(text, alen, &family, net.addr) != 0)
        return -1;
    int maxbits = family == 4 ? 32 : 128, bits = maxbits;
    if (slash) {
        const char *p = slash + 1;
        if (!*p || strlen(p) > 3)
            return -1;
        bits = 0;
        for (; *p; p++) {
            if (*p < '0' || *p > '9')
                return -1;
            bits = bits * 10 + (*p - '0');
        }
        if (bits > maxbits)
            return -1;
    }
    net.family = (uint8_t)family;
    net.bits = (uint8_t)bits;
    mask_bits(net.addr, bits, family == 4 ? 4 : 16);
    t->nets[t->count++] = net;
    return 0;
}

static int match(const pw_cidr *net, const uint8_t *addr)
{
    int full = net->bits / 8, rest = net->bits % 8;
    if (memcmp(net->addr, addr, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t m = (uint8_t)(0xff << (8 - rest));
    return (addr[full] & m) == net->addr[full];
}

static int trusted_bin(const pw_trust *t, int family, const uint8_t addr[16])
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    const uint8_t *v4 = NULL;
    if (family == 4)
        v4 = addr;
    else if (memcmp(addr, v4mapped, 12) == 0)
        v4 = addr + 12; /* ::ffff:a.b.c.d from a dual-stack socket is a.b.c.d */
    for (int i = 0; i < t->count; i++) {
        const pw_cidr *net = &t->nets[i];
        if (net->family == 4 ? v4 && match(net, v4) : family == 6 && match(net, addr))
            return 1;
    }
    return 0;
}

int pw_trust_host(const pw_trust *t, const char *host)
{
    int family;
    uint8_t addr[16];
    if (parse_ip(host, strlen(host), &family, addr) != 0)
        return 0;
    return trusted_bin(t, family, addr);
}

/* ---------------------------------------------------------------- small lexing helpers */

typedef struct {
    const char *p;
    size_t n;
} text;

static int is_ows(char ch)
{
    return ch == ' ' || ch == '\t';
}

static text trim(const char *p, size_t n)
{
    while (n && is_ows(*p)) {
        p++;
        n--;
    }
    while (n && is_ows(p[n - 1]))
        n--;
    return (text){p, n};
}

static int name_is(const char *buf, const pw_header *h, const char *name)
{
    size_t n = strlen(name);
    return h->name.len == n && strncasecmp(buf + h->name.off, name, n) == 0;
}

static int parse_port(const char *p, size_t n)
{
    int v = pw_port_number(p, n);
    return v >= 1 ? v : -1;
}

/* One address of X-Forwarded-For: "a.b.c.d", "a.b.c.d:port", "v6", "[v6]", "[v6]:port". */
static int parse_node_addr(text s, int *family, uint8_t addr[16], int *port)
{
    *port = 0;
    if (s.n && s.p[0] == '[') {
        const char *end = memchr(s.p, ']', s.n);
        if (!end)
            return -1;
        size_t after = s.n - (size_t)(end + 1 - s.p);
        if (after) {
            if (end[1] != ':' || (*port = parse_port(end + 2, after - 1)) < 0)
                return -1;
        }
        if (parse_ip(s.p + 1, (size_t)(end - s.p - 1), family, addr) != 0 || *family != 6)
            return -1;
        return 0;
    }
    const char *colon = memchr(s.p, ':', s.n);
    if (colon && !memchr(colon + 1, ':', s.n - (size_t)(colon + 1 - s.p))) {
        /* exactly one colon: IPv4 with a port */
        if ((*port = parse_port(colon + 1, s.n - (size_t)(colon + 1 - s.p))) < 0)
            return -1;
        if (parse_ip(s.p, (size_t)(colon - s.p), family, addr) != 0 || *family != 4)
            return -1;
        return 0;
    }
    return parse_ip(s.p, s.n, family, addr);
}

static void set_client(pw_forwarded *out, int family, const uint8_t addr[16], int port)
{
    inet_ntop(family == 4 ? AF_INET : AF_INET6, addr, out->host, sizeof out->host);
    out->port = port;
    out->have_addr = 1;
}

/* The last non-empty element of the last header named `name`: its span, or len 0. */
static text last_element(const char *buf, const pw_header *headers, uint32_t n, const char *name)
{
    for (uint32_t i = n; i-- > 0;) {
        if (!name_is(buf, &headers[i], name))
            continue;
        const char *v = buf + headers[i].value.off;
        size_t len = headers[i].value.len;
        while (len) {
            const char *comma = NULL;
            for (size_t k = len; k-- > 0;)
                if (v[k] == ',') {
                    comma = v + k;
                    break;
                }
            text e = comma ? trim(comma + 1, len - (size_t)(comma + 1 - v)) : trim(v, len);
            if (e.n)
                return e;
            if (!comma)
                break;
            len = (size_t)(comma - v);
        }
    }
    return (text){NULL, 0};
}

/* https: 1, http: 0, anything else: -1 */
static int parse_proto(text s)
{
    if (s.n == 5 && strncasecmp(s.p, "https", 5) == 0)
        return 1;
    if (s.n == 4 && strncasecmp(s.p, "http", 4) == 0)
        return 0;
    return -1;
}

/* RFC 9110 7.2 Host = uri-host [ ":" port ]: a reg-name or an IP literal in brackets. */
static int valid_host(text s)
{
    if (s.n == 0 || s.n > 255)
        return 0;
    size_t i = 0;
    if (s.p[0] == '[') {
        const char *end = memchr(s.p, ']', s.n);
        int fam;
        uint8_t a[16];
        if (!end || parse_ip(s.p + 1, (size_t)(end - s.p - 1), &fam, a) != 0 || fam != 6)
            return 0;
        i = (size_t)(end + 1 - s.p);
    } else {
        static const char ok[] = "-._~!$&'()*+;=%";
        for (; i < s.n && s.p[i] != ':'; i++) {
            unsigned char ch = (unsigned char)s.p[i];
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || strchr(ok, ch)))
                return 0;
        }
        if (i == 0)
            return 0;
    }
    if (i == s.n)
        return 1;
    return s.p[i] == ':' && parse_port(s.p + i + 1, s.n - i - 1) >= 0;
}

/* ---------------------------------------------------------------- X-Forwarded-For */

static void eval_xff(const pw_trust *t, const char *buf, const pw_header *headers, uint32_t n,
                     pw_forwarded *out)
{
    text hops[PW_MAX_HOPS];
    int nhops = 0, dropped = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!name_is(buf, &headers[i], "x-forwarded-for"))
            continue;
        const char *v = buf + headers[i].value.off, *end = v + headers[i].value.len;
        for (;;) {
            const char *comma = memchr(v, ',', (size_t)(end - v));
            const char *stop = comma ? comma : end;
            text e = trim(v, (size_t)(stop - v));
            if (e.n) { /* RFC 9110 5.6.1: empty list elements are ignored */
                if (nhops == PW_MAX_HOPS) {
                    /* only the right end matters: a client padding the list on the left
                     * must not make the proxy's own entry unreadable */
                    memmove(hops, hops + 1, (PW_MAX_HOPS - 1) * sizeof *hops);
                    nhops--;
                    dropped = 1;
                }
                hops[nhops++] = e;
            }
            if (!comma)
                break;
            v = comma + 1;
        }
    }
    /* mod_remoteip: from the right, skip trusted proxies; the first other address is the
     * client.  Addresses left of it were written by the client and are not looked at. */
    for (int i = nhops; i-- > 0;) {
        int family, port;
        uint8_t addr[16];
        if (parse_node_addr(hops[i], &family, addr, &port) != 0) {
            out->error = "X-Forwarded-For holds something that is not an IP address";
            out->have_addr = 0;
            return;
        }
        set_client(out, family, addr, port);
        if (!trusted_bin(t, family, addr))
            return;
    }
    if (dropped) { /* 64 trusted hops and more to the left: give up */
        out->error = "X-Forwarded-For has more than 64 trusted addresses";
        out->have_addr = 0;
    }
}

/* ---------------------------------------------------------------- Forwarded (RFC 7239) */

typedef struct {
    int has_for, has_proto, has_host;
    text for_; /* unquoted content */
    int https;
    text host;
} fwd_element;

static int is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
        (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/*
 * RFC 7239 4:
 *   Forwarded   = 1#forwarded-element
 *   forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] )
 *   forwarded-pair = token "=" value
 *   value          = token / quoted-string
 * Values are kept as spans of the buffer; a quoted-string with a quoted-pair inside is
 * refused (none of for/proto/host can need one).  Returns 0, or -1 when malformed.
 */
static int parse_forwarded(const char *v, size_t len, fwd_element *els, int *nels, int *dropped)
{
    size_t i = 0;
    fwd_element *e = NULL;
    int start_element = 1;
    for (;;) {
        while (i < len && is_ows(v[i]))
            i++;
        if (i == len)
            return 0;
        if (v[i] == ',') {
            start_element = 1;
            i++;
            continue;
        }
        if (v[i] == ';') {
            i++;
            continue;
        }
        if (start_element) {
            if (*nels == PW_MAX_HOPS) { /* keep the right end, as for X-Forwarded-For */
                memmove(els, els + 1, (PW_MAX_HOPS - 1) * sizeof *els);
                (*nels)--;
                *dropped = 1;
            }
            e = &els[(*nels)++];
            memset(e, 0, sizeof *e);
            start_element = 0;
        }
        size_t ns = i;
        while (i < len && is_tchar((unsigned char)v[i]))
            i++;
        size_t nlen = i - ns;
        if (nlen == 0 || i == len || v[i] != '=')
            return -1;
        i++;
        text val;
        if (i < len && v[i] == '"') {
            size_t vs = ++i;
            while (i < len && v[i] != '"') {
                unsigned char ch = (unsigned char)v[i];
                if (ch == '\\' || (ch < 0x20 && ch != '\t') || ch == 0x7f)
                    return -1;
                i++;
            }
            if (i == len)
                return -1;
            val = (text){v + vs, i - vs};
            i++;
        } else {
            size_t vs = i;
            while (i < len && is_tchar((unsigned char)v[i]))
                i++;
            if (i == vs)
                return -1;
            val = (text){v + vs, i - vs};
        }
        /* after a pair: OWS then ';' ',' or the end */
        size_t j = i;
        while (j < len && is_ows(v[j]))
            j++;
        if (j < len && v[j] != ';' && v[j] != ',')
            return -1;
        const char *name = v + ns;
        /* "Each parameter MUST NOT occur more than once per forwarded-element." */
        if (nlen == 3 && strncasecmp(name, "for", 3) == 0) {
            if (e->has_for++)
                return -1;
            e->for_ = val;
        } else if (nlen == 5 && strncasecmp(name, "proto", 5) == 0) {
            if (e->has_proto++)
                return -1;
            e->https = parse_proto(val);
            if (e->https < 0)
                return -1;
        } else if (nlen == 4 && strncasecmp(name, "host", 4) == 0) {
            if (e->has_host++)
                return -1;
            if (!valid_host(val))
                return -1;
            e->host = val;
        } /* "by" and extensions: not used */
    }
}

static int obf_chars(const char *p, size_t n)
{
    /* obfnode / obfport = "_" 1*(ALPHA / DIGIT / "." / "_" / "-") */
    if (n < 2 || p[0] != '_')
        return 0;
    for (size_t i = 1; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return 0;
    }
    return 1;
}

/*
 * RFC 7239 6: node = nodename [ ":" node-port ]
 *   nodename = IPv4address / "[" IPv6address "]" / "unknown" / obfnode
 * Returns 1 for an IP address (family/addr/port set), 0 for "unknown" or an obfuscated
 * identifier, -1 when malformed.
 */
static int parse_fwd_node(text s, int *family, uint8_t addr[16], int *port)
{
    *port = 0;
    text name = s, portpart = {NULL, 0};
    const char *colon = NULL;
    if (s.n && s.p[0] == '[') {
        const char *end = memchr(s.p, ']', s.n);
        if (!end)
            return -1;
        if ((size_t)(end + 1 - s.p) < s.n) {
            if (end[1] != ':')
                return -1;
            colon = end + 1;
        }
    } else {
        colon = memchr(s.p, ':', s.n);
    }
    if (colon) {
        name = (text){s.p, (size_t)(colon - s.p)};
        portpart = (text){colon + 1, s.n - (size_t)(colon + 1 - s.p)};
        if (!obf_chars(portpart.p, portpart.n) && (*port = parse_port(portpart.p, portpart.n)) < 0)
            return -1;
        if (*port < 0)
            *port = 0;
    }
    if (name.n == 7 && strncasecmp(name.p, "unknown", 7) == 0)
        return 0;
    if (obf_chars(name.p, name.n))
        return 0;
    if (name.n >= 2 && name.p[0] == '[' && name.p[name.n - 1] == ']')
        return parse_ip(name.p + 1, name.n - 2, family, addr) == 0 && *family == 6 ? 1 : -1;
    return parse_ip(name.p, name.n, family, addr) == 0 && *family == 4 ? 1 : -1;
}

/* Returns 1 when a Forwarded header was used (valid), 0 when absent, -1 when malformed. */
static int eval_forwarded(const pw_trust *t, const char *buf, const pw_header *headers, uint32_t n,
                          int walk_addresses, pw_forwarded *out)
{
    fwd_element els[PW_MAX_HOPS];
    int nels = 0, seen = 0, dropped = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!name_is(buf, &headers[i], "forwarded"))
            continue;
        seen = 1;
        if (parse_forwarded(buf + headers[i].value.off, headers[i].value.len, els, &nels,
                            &dropped) != 0) {
            out->error = "malformed Forwarded header (RFC 7239)";
            return -1;
        }
    }
    if (!seen)
        return 0;
    if (nels == 0) {
        out->error = "empty Forwarded header";
        return -1;
    }
    /* Walk from the right like X-Forwarded-For; the element where the walk stops is the one
     * the proxy facing the client wrote, so its proto= and host= describe the client's
     * request. */
    pw_forwarded tmp = *out;
    int stop = 0, walked_all = 1;
    for (int i = nels; i-- > 0;) {
        stop = i;
        int family, port;
        uint8_t addr[16];
        int kind = els[i].has_for ? parse_fwd_node(els[i].for_, &family, addr, &port) : 0;
        if (kind < 0) {
            out->error = "Forwarded for= is not a valid node (RFC 7239 6)";
            return -1;
        }
        if (kind == 0) {
            walked_all = 0;
            break; /* unknown or obfuscated: no address to go on with */
        }
        if (walk_addresses)
            set_client(&tmp, family, addr, port);
        if (!trusted_bin(t, family, addr)) {
            walked_all = 0;
            break;
        }
    }
    if (walked_all && dropped) {
        out->error = "Forwarded has more than 64 trusted elements";
        return -1;
    }
    if (walk_addresses) {
        out->have_addr = tmp.have_addr;
        memcpy(out->host, tmp.host, sizeof out->host);
        out->port = tmp.port;
    }
    if (els[stop].has_proto)
        out->https = els[stop].https;
    if (els[stop].has_host) {
        out->host_off = (uint32_t)(els[stop].host.p - buf);
        out->host_len = (uint32_t)els[stop].host.n;
    }
    return 1;
}

/* ---------------------------------------------------------------- all together */

void pw_forwarded_eval(const pw_trust *t, const char *buf, const pw_header *headers,
                       uint32_t num_headers, int walk_addresses, pw_forwarded *out)
{
    memset(out, 0, sizeof *out);
    out->https = -1;
    unsigned want = t->headers;
    if (want & PW_FWD_FORWARDED) {
        int rc = eval_forwarded(t, buf, headers, num_headers, walk_addresses, out);
        if (rc == 1)
            want &= ~(unsigned)(PW_FWD_XFF | (out->https >= 0 ? PW_FWD_PROTO : 0) |
                                (out->host_len ? PW_FWD_HOST : 0));
    }
    if ((want & PW_FWD_XFF) && walk_addresses)
        eval_xff(t, buf, headers, num_headers, out);
    if (want & PW_FWD_PROTO) {
        /* the right-most value: the one our trusted proxy wrote */
        text v = last_element(buf, headers, num_headers, "x-forwarded-proto");
        if (v.n) {
            int https = parse_proto(v);
            if (https < 0)
                out->error = "X-Forwarded-Proto is neither http nor https";
            else
                out->https = https;
        }
    }
    if (want & PW_FWD_HOST) {
        text v = last_element(buf, headers, num_headers, "x-forwarded-host");
        if (v.n) {
            if (!valid_host(v)) {
                out->error = "X-Forwarded-Host is not a valid host[:port]";
            } else {
                out->host_off = (uint32_t)(v.p - buf);
                out->host_len = (uint32_t)v.n;
            }
        }
    }
    if (want & PW_FWD_PORT) {
        text v = last_element(buf, headers, num_headers, "x-forwarded-port");
        if (v.n) {
            int port = parse_port(v.p, v.n);
            if (port < 0)
                out->error = "X-Forwarded-Port is not a port number";
            else
                out->server_port = port;
        }
    }
}
