/*
 * probes.c -- health and readiness answered by the core (see probes.h).  Plain C, no Python.
 */
#include "server.h"

enum { PROBE_NONE = 0, PROBE_HEALTH, PROBE_READY };

static int path_is(const pw_conn *c, const char *url, size_t n)
{
    const pw_span *p = &c->req.path;
    return url && p->len == n && memcmp(c->buf + p->off, url, n) == 0;
}

/* Which probe URL c's request names (the raw path, the query aside), if any. */
static int probe_target(pw_server *s, const pw_conn *c)
{
    const pw_probes *p = &s->cfg.probes;
    if (!p->health_url && !p->ready_url)
        return PROBE_NONE; /* the usual case: two loads per request */
    if (path_is(c, p->health_url, p->health_url_len))
        return PROBE_HEALTH;
    if (path_is(c, p->ready_url, p->ready_url_len))
        return PROBE_READY;
    return PROBE_NONE;
}

int stop_announced(pw_server *s)
{
    const int32_t *flag = s->cfg.probes.stopping;
    return flag && __atomic_load_n(flag, __ATOMIC_ACQUIRE) != 0;
}

/* Why this server cannot take requests now (written into why), or 0 when it can. */
static int not_ready(pw_server *s, char *why, size_t room)
{
    const pw_probes *p = &s->cfg.probes;
    if (stop_announced(s)) {
        snprintf(why, room, "the server is stopping");
        return 1;
    }
    for (int i = 0; i < p->ngroups; i++) {
        const struct pw_sb_group *g = p->groups[i];
        if (__atomic_load_n(&g->live, __ATOMIC_ACQUIRE) <= 0) {
            snprintf(why, room, "daemon process group %.*s has no live process",
                     (int)strnlen(g->name, sizeof g->name), g->name);
            return 1;
        }
    }
    return 0;
}

static int allowed(pw_server *s, const pw_conn *c)
{
    if (!c->peer_host[0]) /* a UNIX-socket client: the socket file's mode says who */
        return s->cfg.probes.allow.unix_peers;
    return pw_trust_host(&s->cfg.probes.allow, c->peer_host);
}

static int method_is(const pw_conn *c, const char *name, size_t n)
{
    return c->req.method.len == n && memcmp(c->buf + c->req.method.off, name, n) == 0;
}

/* Answer c's request for a probe URL (the owner's connection: the reactor's, or a worker's
 * for a pipelined one); returns whether the connection may stay, for conn_release_one. */
static int probe_answer(pw_server *s, pw_conn *c, int which)
{
    const pw_request *r = &c->req;
    const char *name = which == PROBE_HEALTH ? "--health-url" : "--ready-url";
    char body[160], why[120], head[512];
    int status = 200;
    clear_pending(s, c);
    if (!allowed(s, c)) {
        pw_log(s, PW_LOG_INFO, "%s:%d: client not allowed to ask %s (--health-allow): 403",
               c->peer_host[0] ? c->peer_host : "unix", c->peer_port, name);
        status = 403;
        snprintf(body, sizeof body, "forbidden\n");
    } else if (!method_is(c, "GET", 3) && !method_is(c, "HEAD", 4)) {
        status = 405;
        snprintf(body, sizeof body, "only GET and HEAD\n");
    } else if (which == PROBE_HEALTH) {
        snprintf(body, sizeof body, "ok\n");
    } else if (not_ready(s, why, sizeof why)) {
        status = 503;
        snprintf(body, sizeof body, "not ready: %s\n", why);
    } else {
        snprintf(body, sizeof body, "ready\n");
    }
    int blen = (int)strlen(body);
    int hlen =
        snprintf(head, sizeof head,
                 "HTTP/1.1 %d %s\r\n"
                 "Content-Type: text/plain; charset=utf-8\r\n"
                 "Cache-Control: no-store\r\n"
                 "%s",
                 status, pw_status_reason(status), status == 405 ? "Allow: GET, HEAD\r\n" : "");
    /* A probe that sends a body gets its answer and a close (the body is not read here:
     * the reactor never waits); so does every client while the server stops. */
    pw_head h = {.status = status,
                 .http10 = r->version_major == 1 && r->version_minor == 0,
                 .no_body = method_is(c, "HEAD", 4),
                 .content_length = blen,
                 .keep_alive =
                     r->keep_alive && r->body_kind == PW_BODY_NONE && !pw_server_stopping(s),
                 .server_line = "Server: pywsgi\r\n"};
    hlen += pw_head_finish(&h, head + hlen, (int)sizeof head - hlen);
    struct iovec iov[2] = {{head, (size_t)hlen}, {body, (size_t)blen}};
    c->resp_status = status;
    c->resp_bytes = h.no_body ? 0 : blen;
    pw_conn_send(s, c, iov, h.no_body ? 1 : 2); /* what the socket does not take waits in c */
    return h.keep_alive;
}

int conn_next_probes(pw_server *s, pw_conn *c)
{
    int which;
    while ((which = probe_target(s, c)) != PROBE_NONE)
        if (!conn_release_one(s, c, probe_answer(s, c, which)))
            return 0;
    return 1;
}
