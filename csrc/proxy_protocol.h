/*
 * proxy_protocol.h -- the PROXY protocol header (haproxy's proxy-protocol.txt, versions 1 and
 * 2) that a load balancer sends first on each connection with the client's real address.
 * Plain C, no allocation, no Python.
 *
 * Resumable over partial reads the simple way: call pw_proxy_parse() again with the same
 * buffer grown by the new bytes; it answers "need more" until the header is complete, and
 * refuses as soon as the bytes so far cannot start a valid header (so a client speaking HTTP
 * to a PROXY-protocol port is refused at once, not after a timeout).
 */
#ifndef PW_PROXY_PROTOCOL_H
#define PW_PROXY_PROTOCOL_H

#include <stddef.h>

#define PW_PROXY_V1_MAX 107  /* "a receiver ... 107 bytes" including the CRLF */
#define PW_PROXY_V2_MAX 4096 /* our bound on a v2 header with its TLVs (16 + length) */

typedef struct {
    int version;  /* 1 or 2 */
    int has_addr; /* 0: LOCAL, UNKNOWN, UNSPEC or AF_UNIX - keep the connection's address */
    int family;   /* 4 or 6 when has_addr */
    char src[64]; /* the client's address as text */
    int src_port;
    int ssl; /* v2 PP2_TYPE_SSL TLV with PP2_CLIENT_SSL: the client used TLS */
} pw_proxy_info;

/* A port number in decimal: 1 to 5 digits, at most 65535; -1 when it is not one.  Shared by the
 * proxy parsers, which add their grammar's own rule (PROXY v1: no leading zero; the forwarding
 * headers of proxy_trust.c: no port 0). */
static inline int pw_port_number(const char *p, size_t n)
{
    if (n == 0 || n > 5)
        return -1;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v <= 65535 ? v : -1;
}

/* > 0: the header is complete and that many bytes long (info filled); 0: need more bytes;
 * -1: not a valid PROXY header (*error says why, static text). */
int pw_proxy_parse(const char *buf, size_t len, pw_proxy_info *info, const char **error);

#endif
