/*
 * probes.h -- health and readiness answered by the core (--health-url, --ready-url;
 * docs/deploying.md): no application call, no thread, no lock.  Plain C, no Python.
 *
 * A server process answers a request for either URL as soon as its head is parsed (reactor.c;
 * a pipelined one when the request before it is released), framed like every other response
 * (pw_head_finish), logged and counted like any other answer:
 *   --health-url  liveness: 200 while the process serves;
 *   --ready-url   readiness: 200 when every daemon process group the process relays to has a
 *                 live process, 503 while one has none (starting, or all of its processes
 *                 restarting), and from the instant the master begins a graceful stop of the
 *                 whole server (its flag in the shared scoreboard segment) - while the server
 *                 still accepts for --shutdown-delay.
 * Only clients on loopback, over a UNIX socket or in a --health-allow network may ask (403 to
 * others), with GET or HEAD (405 to other methods).  The client is the request's (peer_host:
 * a trusted proxy's forwarded client, docs/proxies.md), so a probe a proxy forwards from
 * outside is refused.
 */
#ifndef PW_PROBES_H
#define PW_PROBES_H

#include <stddef.h>
#include <stdint.h>
#include "proxy_trust.h"

#define PW_PROBE_GROUPS 64 /* daemon process groups a readiness answer looks at */

struct pw_sb_group;

typedef struct {
    const char *health_url; /* the raw request path that gets the liveness answer; NULL: none */
    size_t health_url_len;
    const char *ready_url; /* ... the readiness answer; NULL: none */
    size_t ready_url_len;
    pw_trust allow;          /* who may ask: networks, and unix_peers for UNIX-socket clients */
    const int32_t *stopping; /* the master's "graceful stop under way" flag (pw_scoreboard
                                .stopping, shared memory); NULL: no scoreboard */
    int ngroups;
    struct pw_sb_group *groups[PW_PROBE_GROUPS]; /* their `live` counts (scoreboard.h) */
} pw_probes;

#endif
