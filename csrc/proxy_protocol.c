/*
 * proxy_protocol.c -- PROXY protocol v1 (text) and v2 (binary), per haproxy's
 * doc/proxy-protocol.txt.  See proxy_protocol.h.
 */
#include "proxy_protocol.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

/* "\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A" - the v2 signature (12 bytes) */
static const char v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

static int fail(const char **error, const char *why)
{
    *error = why;
    return -1;
}

/* Decimal port, 0..65535, at most 5 digits, no leading zero (canonical form only). */
static int v1_port(const char *p, size_t n)
{
    if (n > 1 && p[0] == '0')
        return -1;
    return pw_port_number(p, n);
}

static int v1_addr(const char *p, size_t n, int family, unsigned char bin[16])
{
    char tmp[64];
    if (n == 0 || n >= sizeof tmp)
        return -1;
    memcpy(tmp, p, n);
    tmp[n] = 0;
    return inet_pton(family == 4 ? AF_INET : AF_INET6, tmp, bin) == 1 ? 0 : -1;
}

/*
 * v1: "PROXY" SP ( "TCP4" / "TCP6" ) SP srcaddr SP dstaddr SP srcport SP dstport CRLF
 *  or "PROXY" SP "UNKNOWN" [anything up to CRLF]; the whole line at most 107 bytes.
 */
static int parse_v1(const char *buf, size_t len, pw_proxy_info *info, const char **error)
{
    static const char prefix[] = "PROXY ";
    size_t plen = sizeof prefix - 1;
    if (memcmp(buf, prefix, len < plen ? len : plen) != 0)
        return fail(error, "not a PROXY protocol header");
    const char *lf = memchr(buf, '\n', len < PW_PROXY_V1_MAX ? len : PW_PROXY_V1_MAX);
    if (!lf) {
        if (len >= PW_PROXY_V1_MAX)
            return fail(error, "PROXY v1 line longer than 107 bytes");
        /* fail early on a byte that can never be in a v1 line */
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)buf[i] < 0x20 && !(buf[i] == '\r' && i == len - 1))
                return fail(error, "control character in a PROXY v1 line");
        return 0;
    }
    size_t line = (size_t)(lf - buf); /* without the LF */
    if (line < plen || buf[line - 1] != '\r')
        return fail(error, "PROXY v1 line not ended by CRLF");
    const char *p = buf + plen, *end = buf + line - 1;
    for (const char *q = buf; q < end; q++)
        if ((unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e)
            return fail(error, "control character in a PROXY v1 line");
    info->version = 1;
    info->has_addr = 0;
    info->ssl = 0;
    if ((size_t)(end - p) >= 7 && memcmp(p, "UNKNOWN", 7) == 0 && (p + 7 == end || p[7] == ' ')) {
        /* "the receiver must ignore anything presented before the CRLF" */
        return (int)(line + 1);
    }
    int family;
    if ((size_t)(end - p) >= 5 && memcmp(p, "TCP4 ", 5) == 0)
        family = 4;
    else if ((size_t)(end - p) >= 5 && memcmp(p, "TCP6 ", 5) == 0)
        family = 6;
    else
        return fail(error, "PROXY v1 protocol is not TCP4, TCP6 or UNKNOWN");
    p += 5;
    /* four fields separated by exactly one space */
    const char *field[4];
    size_t flen[4];
    for (int i = 0; i < 4; i++) {
        const char *sp = i < 3 ? memchr(p, ' ', (size_t)(end - p)) : end;
        if (!sp)
            return fail(error, "PROXY v1 line has too few fields");
        field[i] = p;
        flen[i] = (size_t)(sp - p);
        p = sp + 1;
    }
    if (memchr(field[3], ' ', flen[3]))
        return fail(error, "PROXY v1 line has too many fields");
    unsigned char src[16], dst[16];
    if (v1_addr(field[0], flen[0], family, src) != 0 ||
        v1_addr(field[1], flen[1], family, dst) != 0)
        return fail(error, "PROXY v1 address does not match its protocol");
    int sport = v1_port(field[2], flen[2]), dport = v1_port(field[3], flen[3]);
    if (sport < 0 || dport < 0)
        return fail(error, "PROXY v1 port is not a number 0-65535");
    info->has_addr = 1;
    info->family = family;
    inet_ntop(family == 4 ? AF_INET : AF_INET6, src, info->src, sizeof info->src);
    info->src_port = sport;
    return (int)(line + 1);
}

/*
 * v2: 12-byte signature, ver_cmd (0x2 << 4 | LOCAL 0x0 / PROXY 0x1), fam (address family << 4
 * | transport), u16 length (network order) of what follows: the addresses for the family
 * (INET 12 bytes, INET6 36, UNIX 216), then TLVs (u8 type, u16 length, value) - skipped.
 */
static int parse_v2(const char *buf, size_t len, pw_proxy_info *info, const char **error)
{
    if (len < 16)
        return 0;
    const unsigned char *u = (const unsigned char *)buf;
    if ((u[12] & 0xf0) != 0x20)
        return fail(error, "PROXY v2 header with a version other than 2");
    int cmd = u[12] & 0x0f;
    if (cmd > 1)
        return fail(error, "PROXY v2 command is neither LOCAL nor PROXY");
    size_t body = (size_t)u[14] << 8 | u[15];
    if (16 + body > PW_PROXY_V2_MAX)
        return fail(error, "PROXY v2 header longer than 4096 bytes");
    int fam = u[13] >> 4, transport = u[13] & 0x0f;
    size_t need;
    switch (fam) {
    case 0: need = 0; break;   /* AF_UNSPEC */
    case 1: need = 12; break;  /* AF_INET: src, dst (4 each), ports (2 each) */
    case 2: need = 36; break;  /* AF_INET6 */
    case 3: need = 216; break; /* AF_UNIX: two 108-byte paths */
    default: return fail(error, "PROXY v2 address family unknown");
    }
    if (transport > 2)
        return fail(error, "PROXY v2 transport unknown");
    if (cmd == 1 && (fam == 0) != (transport == 0))
        return fail(error, "PROXY v2 family and transport disagree");
    if (cmd == 1 && transport == 2)
        return fail(error, "PROXY v2 DGRAM on a stream connection");
    if (body < need)
        return fail(error, "PROXY v2 length shorter than its addresses");
    if (len < 16 + body)
        return 0;
    /* TLVs must tile the rest exactly; all are skipped except PP2_TYPE_SSL (0x20), whose
     * first byte has PP2_CLIENT_SSL (0x01) set "when the client connected over SSL/TLS" */
    int ssl = 0;
    size_t pos = 16 + need, stop = 16 + body;
    while (pos < stop) {
        if (stop - pos < 3)
            return fail(error, "PROXY v2 TLV truncated");
        size_t tlen = (size_t)u[pos + 1] << 8 | u[pos + 2];
        if (stop - pos - 3 < tlen)
            return fail(error, "PROXY v2 TLV longer than the header");
        if (u[pos] == 0x20 && tlen >= 1 && (u[pos + 3] & 0x01))
            ssl = 1;
        pos += 3 + tlen;
    }
    info->version = 2;
    info->has_addr = 0;
    info->ssl = cmd == 1 && ssl;
    /* LOCAL: "the receiver must accept this connection as valid and must use the real
     * connection endpoints and discard the protocol block including the family". */
    if (cmd == 1 && (fam == 1 || fam == 2)) {
        info->has_addr = 1;
        info->family = fam == 1 ? 4 : 6;
        const unsigned char *a = u + 16;
        size_t alen = fam == 1 ? 4 : 16;
        inet_ntop(fam == 1 ? AF_INET : AF_INET6, a, info->src, sizeof info->src);
        info->src_port = a[2 * alen] << 8 | a[2 * alen + 1];
    }
    return (int)(16 + body);
}

int pw_proxy_parse(const char *buf, size_t len, pw_proxy_info *info, const char **error)
{
    *error = NULL;
    if (len == 0)
        return 0;
    if (buf[0] == 'P')
        return parse_v1(buf, len, info, error);
    if (memcmp(buf, v2_sig, len < 12 ? len : 12) != 0)
        return fail(error, "not a PROXY protocol header");
    return parse_v2(buf, len, info, error);
}
