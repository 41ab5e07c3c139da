/*
 * relay_async.c -- daemon mode, the relay the reactor runs itself: body-less requests relayed without
 * a thread, and the rest of any relay whose client is slow (relay.c has the threads' relay).  Plain C, no Python; see server.h and reactor.h.
 */
#include "server.h"

#include "relay.h"

#include <sys/un.h>

/* The reactor thread relays a body-less request itself when it can: it writes the request on a
 * pooled connection without blocking and relays the response as it comes, as fast as the
 * client takes it, without any thread; it also carries on the relays that threads hand it for
 * slow clients. */

/* The reactor thread's idle daemon connections, a ring used first in, first out: each pooled
 * connection reaches the daemon process that accepted it, so taking the one idle longest
 * spreads requests over the daemons where always taking the last one back (a stack) kept a
 * light load on one daemon while the others idled. */
#define ASYNC_POOL_CAP 256
typedef struct async_idle {
    int fd;
    double since; /* when it was opened (PW_RELAY_POOL_RENEW) */
} async_idle;
static __thread async_idle async_pool[ASYNC_POOL_CAP];
static __thread int async_pool_head, async_pool_n;
static __thread char async_buf[65536];

static async_idle async_pool_take(void)
{
    async_idle e = async_pool[async_pool_head];
    async_pool_head = (async_pool_head + 1) % ASYNC_POOL_CAP;
    async_pool_n--;
    return e;
}

static void async_pool_put(int fd, double since)
{
    if (async_pool_n < ASYNC_POOL_CAP)
        async_pool[(async_pool_head + async_pool_n++) % ASYNC_POOL_CAP] = (async_idle){fd, since};
    else
        close(fd); /* (closing takes it out of the poller too) */
}

int relay_async_drop_idle(int fd)
{
    for (int i = 0; i < async_pool_n; i++) {
        int at = (async_pool_head + i) % ASYNC_POOL_CAP;
        if (async_pool[at].fd == fd) {
            /* the newest idle one takes its place: the order matters little, and it is rare */
            async_pool[at] = async_pool[(async_pool_head + --async_pool_n) % ASYNC_POOL_CAP];
            close(fd);
            return 1;
        }
    }
    return 0;
}

/* A new non-blocking connection to the group, or -1 (a full backlog or no group: the relay
 * thread waits for it). */
static int async_connect(const pw_relay_target *t)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(t->socket_path) >= sizeof sa.sun_path)
        return -1;
    strcpy(sa.sun_path, t->socket_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int relay_async_send(pw_server *s, pw_conn *c, const pw_relay_target *t)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        int fd = -1, reused = 0;
        double now = pw_now(), since = now;
        /* Until as many connections as the group has processes are idle in the pool, a new one
         * is opened rather than an idle one reused: the daemons take new connections in turn
         * (reactor_accept), so even one client's sequential requests reach every daemon.  That
         * is a connect per daemon process, once; the pool never holds more than the relays in
         * flight at once plus that many. */
        if (async_pool_n < t->processes)
            fd = async_connect(t);
        if (fd < 0 && async_pool_n > 0) {
            async_idle e = async_pool_take();
            fd = e.fd;
            since = e.since;
            reused = 1;
            if (now - since > PW_RELAY_POOL_RENEW) {
                int fresh = async_connect(t); /* renewed: the next daemon in turn takes it */
                if (fresh >= 0) {
                    close(fd);
                    fd = fresh;
                    since = now;
                    reused = 0;
                }
            }
        }
        if (fd < 0)
            return -1;
        unsigned char pre[PW_PREAMBLE_FIXED + 64];
        const char *vars;
        size_t vars_len;
        size_t plen = build_preamble(s, c, 1, pre, &vars, &vars_len);
        struct iovec iov[3] = {{pre, plen}, {(void *)vars, vars_len}, {c->buf, c->req.head_len}};
        struct msghdr m;
        memset(&m, 0, sizeof m);
        m.msg_iov = iov;
        m.msg_iovlen = 3;
        ssize_t n = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n == (ssize_t)(plen + vars_len + c->req.head_len)) {
            pw_relay_progress_init(c, 1, reused);
            c->relay_since = since;
            return fd;
        }
        int err = errno;
        close(fd); /* (a partial request on it is dropped by the daemon with the connection) */
        if (n < 0 && reused && (err == EPIPE || err == ECONNRESET))
            continue; /* closed by its daemon while idle: the daemon never saw this request */
        return -1;
    }
    return -1;
}

static int relay_async_read(pw_server *s, pw_conn *c, int fd, int *keep, int *status_out)
{
    *keep = 0;
    *status_out = 0;
    for (int round = 0; round < 16; round++) { /* then the other connections get their turn */
        if (pw_conn_out_pending(c) >= pw_server_config(s)->out_high)
            return PW_RA_PAUSE;
        ssize_t n = rp_recv(s, c, fd, async_buf, sizeof async_buf, status_out);
        int rc = -1;
        if (n == RP_FILE_ONLY)
            continue;
        if (n == RP_MALFORMED) {
            rc = PW_RA_FAILED;
        } else if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return PW_RA_AGAIN;
            if (errno == ECONNRESET && c->rp.reused && c->rp.relayed == 0 && c->rp.file_fd < 0) {
                close(fd); /* closed by its daemon with the request unread */
                return PW_RA_RETRY;
            }
            rc = rp_eof(s, c, keep, status_out);
        } else if (n == 0) {
            rc = rp_eof(s, c, keep, status_out);
        } else if (rp_take(s, c, async_buf, (size_t)n) != 0) {
            rc = PW_RA_FAILED;
        } else if (c->rp.complete) {
            rc = PW_RA_DONE;
            *keep = !c->rp.close_after && c->req.keep_alive;
        }
        if (rc < 0)
            continue;
        if (rc == PW_RA_DONE && c->rp.pooled && c->rp.complete && c->rp.body != RP_BODY_UNTIL_CLOSE)
            async_pool_put(fd, c->relay_since); /* the response is whole: the daemon keeps it */
        else
            close(fd);
        pw_relay_progress_free(c);
        return rc;
    }
    return PW_RA_AGAIN;
}

static int relay_owner_set(pw_server *s, int fd, pw_conn *c)
{
    if (fd_table_fit(&s->relay_owner, &s->relay_owner_cap, fd) != 0)
        return -1;
    s->relay_owner[fd] = c;
    return 0;
}

/* A relay the reactor counted (relayed, in flight) goes to a thread, which counts it itself. */
static void relay_async_uncount(pw_server *s, pw_conn *c)
{
    if (c->relay_counted) {
        PW_SB_ADD(s->cfg.relay_counters->relayed, -1);
        PW_SB_ADD(s->cfg.relay_counters->in_flight, -1);
        c->relay_counted = 0;
    }
}

/* 0: the request is with a daemon (or waits its turn) and the reactor follows it; -1: a relay
 * thread must. */
int relay_async_start(pw_server *s, pw_conn *c)
{
    if (s->cfg.relay_counters && !c->relay_counted) {
        pw_sb_relay_start(s->cfg.relay_counters); /* waiting counts as queued, as in a daemon */
        c->relay_counted = 1;
    }
    if (s->cfg.relay_async_limit > 0 && s->relay_inflight >= s->cfg.relay_async_limit) {
        clear_pending(s, c);
        c->relay_fd = -1;
        c->next = NULL;
        if (s->relay_wait_tail)
            s->relay_wait_tail->next = c;
        else
            s->relay_wait_head = c;
        s->relay_wait_tail = c;
        c->deadline = pw_now() + s->cfg.relay_async->queue_timeout;
        atomic_store_int(&c->state, PW_CONN_RELAYING);
        return 0;
    }
    int fd = relay_async_send(s, c, s->cfg.relay_async);
    if (fd < 0) {
        relay_async_uncount(s, c);
        return -1;
    }
    s->relay_inflight++;
    c->relay_slot_freed = c->relay_paused = 0;
    c->relay_timeout = s->cfg.relay_async->response_timeout;
    /* a pooled fd is still registered; a new one is added */
    if (relay_owner_set(s, fd, c) != 0 || (!c->rp.reused && poller_add_level(s, fd, 0) != 0)) {
        if (fd < s->relay_owner_cap)
            s->relay_owner[fd] = NULL;
        close(fd);
        s->relay_inflight--;
        if (c->relay_counted) {
            pw_sb_relay_done(s->cfg.relay_counters, 502);
            c->relay_counted = 0;
        }
        /* the daemon may have the request: answering it here would be a guess, so 502 */
        pw_send_error(s, c, 502);
        log_reactor_answer(s, c, 1);
        conn_close(s, c);
        return 0;
    }
    clear_pending(s, c);
    c->relay_fd = fd;
    c->deadline = pw_now() + s->cfg.relay_async->response_timeout;
    atomic_store_int(&c->state, PW_CONN_RELAYING);
    return 0;
}

/* A relay the reactor followed is over (or went to a thread): start the next waiting one. */
static void relay_async_slot_free(pw_server *s)
{
    s->relay_inflight--;
    while (s->relay_wait_head && s->relay_inflight < s->cfg.relay_async_limit) {
        pw_conn *c = s->relay_wait_head;
        s->relay_wait_head = c->next;
        if (!s->relay_wait_head)
            s->relay_wait_tail = NULL;
        c->next = NULL;
        if (relay_async_start(s, c) != 0)
            queue_to_worker(s, c);
    }
}

/* The relay of c is over (answered, or failed with an error answer): count it, and keep or
 * close the client's connection as a worker's pw_conn_release would. */
static void relay_async_finish(pw_server *s, pw_conn *c, int keep, int status)
{
    if (c->relay_counted) {
        pw_sb_relay_done(s->cfg.relay_counters, status);
        c->relay_counted = 0;
    }
    atomic_store_int(&c->state, PW_CONN_BUSY);
    if (conn_release(s, c, keep))
        queue_push(s, c); /* a pipelined request is already complete */
}

/* A relay the reactor followed no longer needs its in-flight slot (done, or only waiting
 * for a slow client now: its daemon thread is free). */
static void relay_slot_release(pw_server *s, pw_conn *c)
{
    if (!c->relay_slot_freed) {
        c->relay_slot_freed = 1;
        relay_async_slot_free(s);
    }
}

/* While the reactor relays a response, the client is watched for room to write only when
 * some of it is pending (state WRITING, after_output PW_AFTER_RELAY), else not at all. */
static void relay_client_watch(pw_server *s, pw_conn *c)
{
    int pending = pw_conn_out_pending(c) > 0;
    pthread_mutex_lock(&s->lock);
    if (pending) {
        if (atomic_load_int(&c->state) != PW_CONN_WRITING)
            out_slow_start(c);
        c->after_output = PW_AFTER_RELAY;
        atomic_store_int(&c->state, PW_CONN_WRITING);
        if (conn_watch(s, c, PW_WATCH_OUT) != 0) {
            c->broken = 1;
            c->out_progress_at = 0; /* the next scan drops it */
        }
    } else {
        atomic_store_int(&c->state, PW_CONN_RELAYING);
        conn_unwatch(s, c);
    }
    pthread_mutex_unlock(&s->lock);
}

/* The relay of c is over with failure or success: the daemon fd is already closed or pooled. */
static void relay_async_over(pw_server *s, pw_conn *c, int fd)
{
    s->relay_owner[fd] = NULL;
    c->relay_fd = -1;
    c->relay_paused = 0;
    relay_slot_release(s, c);
}

void relay_async_event(pw_server *s, int fd)
{
    pw_conn *c = s->relay_owner[fd];
    int keep = 0, status = 0;
    int rc = relay_async_read(s, c, fd, &keep, &status);
    switch (rc) {
    case PW_RA_AGAIN:
        c->deadline = pw_now() + c->relay_timeout;
        relay_client_watch(s, c); /* the fd stays registered: more comes with an event */
        return;
    case PW_RA_PAUSE:
        /* the client has plenty to take: read on once it has taken most of it */
        poller_del(s, fd);
        c->relay_paused = 1;
        relay_slot_release(s, c);
        relay_client_watch(s, c);
        return;
    case PW_RA_DONE:
        relay_async_over(s, c, fd);
        relay_async_finish(s, c, keep, 0);
        return;
    case PW_RA_RETRY:
        relay_async_over(s, c, fd);
        if (relay_async_start(s, c) != 0)
            queue_to_worker(s, c);
        return;
    default:
        relay_async_over(s, c, fd);
        relay_async_finish(s, c, 0, status);
        return;
    }
}

/* A relay thread's relay of c whose client is slow: the reactor carries it on (relay_adopt). */
void pw_relay_handoff(pw_server *s, pw_conn *c)
{
    pthread_mutex_lock(&s->qlock);
    c->next = s->handoff;
    s->handoff = c;
    pthread_mutex_unlock(&s->qlock);
    wake_reactor(s);
    busy_done(s); /* c may belong to the reactor already: not touched here */
}

/* Reactor: take over the relays threads handed over.  The client is behind (that is why), so
 * the daemon fd waits out of the poller until the client has taken most of what is pending. */
void relay_adopt(pw_server *s)
{
    pthread_mutex_lock(&s->qlock);
    pw_conn *c = s->handoff;
    s->handoff = NULL;
    pthread_mutex_unlock(&s->qlock);
    while (c) {
        pw_conn *next = c->next;
        c->next = NULL;
        c->relay_slot_freed = 1; /* never counted: the thread's own relay */
        c->relay_counted = 0;
        c->relay_paused = 1;
        c->deadline = pw_now() + c->relay_timeout;
        if (relay_owner_set(s, c->relay_fd, c) != 0) {
            close(c->relay_fd);
            c->relay_fd = -1;
            c->broken = 1;
        }
        relay_client_watch(s, c);
        c = next;
    }
}

/* Reactor: the client of a relay took output: read from the daemon again when it has taken
 * most of it (the relay was paused), and stop watching it when it has taken all. */
void relay_client_took(pw_server *s, pw_conn *c)
{
    if (c->relay_paused && c->relay_fd >= 0 && pw_conn_out_pending(c) < s->cfg.out_low) {
        if (poller_add_level(s, c->relay_fd, 0) != 0) {
            output_failed(s, c);
            return;
        }
        c->relay_paused = 0;
        c->deadline = pw_now() + c->relay_timeout;
    }
    if (pw_conn_out_pending(c) == 0)
        relay_client_watch(s, c);
}

/* The response timeout passed for relays the reactor follows (waiting for the daemon, not for
 * a slow client): 504 when nothing of the response was read yet, as the relay threads give
 * it, else the client connection is closed (the response stalled half-way). */
void relay_async_timeouts(pw_server *s, double now)
{
    for (int fd = 0; fd < s->conns_cap; fd++) {
        pw_conn *c = s->conns[fd];
        if (!c || now < c->deadline)
            continue;
        int state = atomic_load_int(&c->state);
        if (state != PW_CONN_RELAYING &&
            !(state == PW_CONN_WRITING && c->after_output == PW_AFTER_RELAY && !c->relay_paused))
            continue;
        if (c->relay_fd < 0) { /* still waiting for a relay slot: the group's queue-timeout */
            pw_conn **p = &s->relay_wait_head, *prev = NULL;
            while (*p && *p != c) {
                prev = *p;
                p = &(*p)->next;
            }
            if (*p) {
                *p = c->next;
                if (s->relay_wait_tail == c)
                    s->relay_wait_tail = prev;
            }
            c->next = NULL;
            pw_log(s, PW_LOG_ERROR,
                   "%s:%d: no daemon process of the group was free within its "
                   "queue timeout: 503",
                   c->peer_host, c->peer_port);
            pw_send_error(s, c, 503);
            relay_async_finish(s, c, 0, 503);
            continue;
        }
        int fresh = c->rp.relayed == 0;
        if (fresh)
            pw_log(s, PW_LOG_ERROR, "%s:%d: the daemon process did not answer in time: 504",
                   c->peer_host, c->peer_port);
        else
            pw_log(s, PW_LOG_ERROR,
                   "%s:%d: the daemon process's response stalled: client "
                   "connection closed",
                   c->peer_host, c->peer_port);
        int relay_fd = c->relay_fd;
        close(relay_fd);
        relay_async_over(s, c, relay_fd);
        pw_relay_progress_free(c);
        if (fresh)
            pw_send_error(s, c, 504);
        c->broken |= !fresh;
        relay_async_finish(s, c, 0, fresh ? 504 : 0);
    }
}

void relay_client_failed(pw_server *s, pw_conn *c)
{
    int relay_fd = c->relay_fd;
    if (relay_fd >= 0) {
        close(relay_fd); /* the daemon sees its response cut, closes its iterable, moves on */
        relay_async_over(s, c, relay_fd);
    }
    if (c->relay_counted) {
        pw_sb_relay_done(s->cfg.relay_counters, 0);
        c->relay_counted = 0;
    }
    conn_close(s, c);
}
