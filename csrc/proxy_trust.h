/*
 * proxy_trust.h -- trusted proxies (--trust-proxy) and the forwarding headers they may send
 * (--trust-proxy-header: X-Forwarded-For/-Proto/-Host/-Port, Forwarded).  Plain C, no
 * allocation: the reactor runs it on each complete request head from a trusted peer.
 *
 * The client address is found the way Apache's mod_remoteip does: walk the address list from
 * the right (the hop nearest to us) and skip every address that is itself a trusted proxy; the
 * first one that is not is the client.  When every listed address is trusted, the left-most
 * is the client.  A malformed value is ignored as a whole (the peer address stays) and
 * reported through pw_forwarded.error, never trusted in part.
 */
#ifndef PW_PROXY_TRUST_H
#define PW_PROXY_TRUST_H

#include <stddef.h>
#include <stdint.h>
#include "http_parser.h"

#define PW_TRUST_MAX 64
#define PW_HOST_MAX 64 /* same as pw_conn.peer_host */

/* Which forwarding headers are honoured from trusted peers (bits of pw_trust.headers). */
enum {
    PW_FWD_XFF = 1,        /* X-Forwarded-For   -> REMOTE_ADDR */
    PW_FWD_PROTO = 2,      /* X-Forwarded-Proto -> wsgi.url_scheme, HTTPS */
    PW_FWD_HOST = 4,       /* X-Forwarded-Host  -> HTTP_HOST, SERVER_NAME, SERVER_PORT */
    PW_FWD_PORT = 8,       /* X-Forwarded-Port  -> SERVER_PORT */
    PW_FWD_FORWARDED = 16, /* Forwarded (RFC 7239): for= proto= host= */
};

typedef struct {
    uint8_t family;   /* 4 or 6 */
    uint8_t bits;     /* prefix length */
    uint8_t addr[16]; /* network address, host bits zero */
} pw_cidr;

typedef struct {
    int count;
    int unix_peers;   /* connections over a UNIX-domain socket are trusted */
    unsigned headers; /* PW_FWD_* */
    pw_cidr nets[PW_TRUST_MAX];
} pw_trust;

/* Add "CIDR", "ADDRESS" or "unix".  0 ok; -1 malformed; -2 the list is full. */
int pw_trust_add(pw_trust *t, const char *text);

/* Whether the literal address text (IPv4 or IPv6; an IPv4-mapped IPv6 address matches IPv4
 * networks) is in the list.  0 for anything that is not an address. */
int pw_trust_host(const pw_trust *t, const char *host);

/* What the forwarding headers of one request say. */
typedef struct {
    int have_addr;               /* host/port below replace the peer's */
    char host[PW_HOST_MAX];      /* the client address, as text */
    int port;                    /* its port when the header gave one, else 0 */
    int https;                   /* -1 nothing said, 0 http, 1 https */
    uint32_t host_off, host_len; /* forwarded Host (in the caller's buffer); len 0: none */
    int server_port;             /* X-Forwarded-Port, or 0 */
    const char *error;           /* a malformed value that was ignored: why (static text) */
} pw_forwarded;

/*
 * Evaluate the honoured forwarding headers of a request from a trusted peer.
 * walk_addresses = 0 leaves the address alone (the daemon side: the relay already did it).
 */
void pw_forwarded_eval(const pw_trust *t, const char *buf, const pw_header *headers,
                       uint32_t num_headers, int walk_addresses, pw_forwarded *out);

#endif
