/*
 * accept.c -- accepting connections: the --max-clients cap and eviction of idle ones, running out
 * of descriptors, spreading accepts over sibling processes.  Plain C, no Python; see server.h and reactor.h.
 */
#include "server.h"

#include <limits.h>

/* Make an fd-indexed table (*table, *cap entries) hold index fd; new entries are NULL. */
int fd_table_fit(pw_conn ***table, int *cap, int fd)
{
    if (fd < *cap)
        return 0;
    int want = *cap ? *cap : 1024;
    while (want <= fd)
        want *= 2;
    pw_conn **n = realloc(*table, want * sizeof *n);
    if (!n)
        return -1;
    memset(n + *cap, 0, (want - *cap) * sizeof *n);
    *table = n;
    *cap = want;
    return 0;
}

pw_conn *conn_slot(pw_server *s, int fd)
{
    if (fd_table_fit(&s->conns, &s->conns_cap, fd) != 0)
        return NULL;
    pw_conn *c = s->conns[fd];
    if (!c) {
        if (!s->slabs || s->slabs->used == PW_CONN_SLAB) {
            pw_conn_slab *slab = calloc(1, sizeof *slab);
            if (!slab)
                return NULL;
            slab->next = s->slabs;
            s->slabs = slab;
        }
        c = &s->slabs->conns[s->slabs->used++]; /* buffer, header table: with its first byte */
        c->fd = c->out_file_fd = -1;
        s->conns[fd] = c;
    }
    return c;
}

/* Whether the listening sockets are in the poller.  Not while every worker here is busy with
 * several server processes (a burst then goes to the siblings instead of queueing behind one),
 * nor for a moment after accept ran out of descriptors (accept_resume_at). */
void accept_balance(pw_server *s)
{
    if (!s->listening)
        return;
    int over = s->cfg.accept_busy_limit > 0 &&
        atomic_load_int(&s->busy) + s->pending >= s->cfg.accept_busy_limit;
    if (s->accept_resume_at > 0) {
        /* out of descriptors: try again after the pause, or as soon as a connection was
         * handed back idle (it can be closed to make room) */
        if (pw_now() < s->accept_resume_at &&
            __atomic_load_n(&s->handbacks, __ATOMIC_RELAXED) == s->pause_handbacks) {
            over = 1;
        } else {
            s->accept_resume_at = 0;
            atomic_store_int(&s->fds_paused, 0);
        }
    }
    if (over && !atomic_load_int(&s->accept_paused)) {
        for (int k = 0; k < s->cfg.num_listen; k++)
            poller_del(s, s->cfg.listen_fds[k]);
        atomic_store_int(&s->accept_paused, 1);
    } else if (!over && atomic_load_int(&s->accept_paused)) {
        atomic_store_int(&s->accept_paused, 0);
        for (int k = 0; k < s->cfg.num_listen; k++)
            poller_add_level(s, s->cfg.listen_fds[k], 1);
    }
}

/*
 * Make room (at --max-clients, or out of descriptors) by closing connections that cost nothing
 * to drop, best first: idle keep-alive connections (least recently used first; a client that
 * sends on one just as it closes retries, as for any keep-alive close), then lingering ones
 * (answered already), then connections that have not sent a byte yet (longest silent first);
 * an idle or silent one only once it has been so for PW_EVICT_MIN_IDLE.  A connection with a
 * request under way (part of a head, a body being buffered, with a worker or a daemon, bytes
 * waiting unread in its socket) is never chosen, nor `keep` (the connection just accepted).
 * Closes an eighth of the candidates, at least 1 and at most PW_EVICT_BATCH (nginx's
 * ngx_drain_connections), so under a flood one walk of the table makes room for a run of new
 * connections.  Returns how many it closed.  Reactor only.
 */
int evict_idle(pw_server *s, pw_conn *keep)
{
    double now = pw_now();
    /* Under a flood at the cap with nothing to close, every refusal would walk the table:
     * not again until a connection was handed back or one seen too young has aged. */
    if (s->evict_fruitless && now < s->evict_ripe_at &&
        __atomic_load_n(&s->handbacks, __ATOMIC_RELAXED) == s->evict_fruitless_at)
        return 0;
    struct {
        pw_conn *c;
        int rank;
        double since;
    } best[PW_EVICT_BATCH];
    int found = 0, candidates = 0;
    double ripe_at = now + 3600;
    pthread_mutex_lock(&s->lock); /* a worker may be handing a connection back (conn_release) */
    int handbacks = __atomic_load_n(&s->handbacks, __ATOMIC_RELAXED);
    for (int fd = 0; fd < s->conns_cap; fd++) {
        pw_conn *c = s->conns[fd];
        if (!c || c == keep)
            continue;
        int state = atomic_load_int(&c->state), rank;
        double since;
        if (state == PW_CONN_READING && c->idle && !c->prebuffering && c->len == 0) {
            rank = c->requests > 0 ? 0 : 2;
            since = c->head_start; /* keep-alive: since the last response; else since accept */
            if (now - since < PW_EVICT_MIN_IDLE) {
                if (since + PW_EVICT_MIN_IDLE < ripe_at)
                    ripe_at = since + PW_EVICT_MIN_IDLE;
                continue;
            }
        } else if (state == PW_CONN_LINGERING) {
            rank = 1;
            since = c->linger_until;
        } else {
            continue;
        }
        candidates++;
        /* keep the PW_EVICT_BATCH best, sorted by (rank, since) */
        if (found == PW_EVICT_BATCH &&
            (rank > best[found - 1].rank ||
             (rank == best[found - 1].rank && since >= best[found - 1].since)))
            continue;
        int i = found < PW_EVICT_BATCH ? found++ : found - 1;
        while (
            i > 0 &&
            (best[i - 1].rank > rank || (best[i - 1].rank == rank && best[i - 1].since > since))) {
            best[i] = best[i - 1];
            i--;
        }
        best[i].c = c;
        best[i].rank = rank;
        best[i].since = since;
    }
    int want = candidates / 8, closed = 0;
    if (want < 1)
        want = 1;
    for (int i = 0; i < found && closed < want; i++) {
        /* Bytes waiting in the socket (a request that came just now, not read yet): not idle
         * after all, so not dropped. */
        char peek;
        if (best[i].rank != 1 && recv(best[i].c->fd, &peek, 1, MSG_PEEK | MSG_DONTWAIT) > 0)
            continue;
        conn_close(s, best[i].c);
        closed++;
    }
    pthread_mutex_unlock(&s->lock);
    s->evict_fruitless = closed == 0;
    s->evict_fruitless_at = handbacks;
    s->evict_ripe_at = ripe_at;
    return closed;
}

/* The open-file limit in force, for log lines. */
static long open_file_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return -1;
    return (long)rl.rlim_cur;
}

/*
 * accept() failed for want of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM).  Close
 * idle connections to make room (1: accept again now); with none to close, stop accepting for
 * PW_ACCEPT_PAUSE (0) - the listening socket stays readable, so trying again at once would
 * spin (and log) as fast as the CPU allows.
 */
static int accept_out_of_fds(pw_server *s, int err)
{
    double now = pw_now();
    int closed = evict_idle(s, NULL);
    if (closed > 0) {
        log_limited(s, &s->log_no_fds, now, PW_LOG_WARNING,
                    "accept: %s (open-file limit %ld, %d connections open): closed %d idle "
                    "connection(s) to make room",
                    strerror(err), open_file_limit(), atomic_load_int(&s->open_conns), closed);
        return 1;
    }
    log_limited(s, &s->log_no_fds, now, PW_LOG_ERROR,
                "accept: %s (open-file limit %ld, %d connections open, none idle): not "
                "accepting for up to %.1f s",
                strerror(err), open_file_limit(), atomic_load_int(&s->open_conns), PW_ACCEPT_PAUSE);
    /* ... or until an idle connection the walk saw has been idle long enough to be closed */
    s->accept_resume_at =
        now + PW_ACCEPT_PAUSE < s->evict_ripe_at ? now + PW_ACCEPT_PAUSE : s->evict_ripe_at;
    s->pause_handbacks = s->evict_fruitless_at; /* as the walk just saw them */
    atomic_store_int(&s->fds_paused, 1);
    accept_balance(s);
    return 0;
}

/* Over --max-clients with connection c just accepted: make room by closing idle connections
 * (0), or refuse c with 503 when there is none (-1: c is closed). */
static int accept_over_cap(pw_server *s, pw_conn *c)
{
    double now = pw_now();
    int closed = evict_idle(s, c);
    if (closed > 0) {
        log_limited(s, &s->log_evicted, now, PW_LOG_WARNING,
                    "at --max-clients (%d): closed %d idle connection(s) to make room for "
                    "%s:%d",
                    s->cfg.max_clients, closed, c->peer_host, c->peer_port);
        return 0;
    }
    log_limited(s, &s->log_refused, now, PW_LOG_WARNING,
                "%s:%d: over --max-clients (%d), no idle connection to close: 503", c->peer_host,
                c->peer_port, s->cfg.max_clients);
    pw_send_error(s, c, 503);
    conn_close(s, c);
    return -1;
}

static int accept_batch(pw_server *s, int lfd, int index, int most, int draining);

/* A new connection on a socket several processes wait on wakes the first of them in the
 * socket's wait queue that is waiting (EPOLLEXCLUSIVE): the same process whenever it is idle,
 * and in a burst whichever comes back to its poller first takes all that are queued.  A daemon
 * process of a group of several therefore accepts one connection per turn and then goes to the
 * back of the queue, so the relay's pooled connections, and with them its requests, spread
 * over the group's processes instead of leaving all but one idle under a light load.  That is
 * two epoll_ctl calls per accept, and a daemon accepts rarely: the relay keeps its connections
 * (test_daemon_pool.py, test_idle_requests_spread_over_the_daemon_processes). */
void reactor_accept(pw_server *s, int lfd, int index)
{
    int take_turns = s->cfg.daemon_role && s->cfg.accept_busy_limit > 0;
    if (accept_batch(s, lfd, index, take_turns ? 1 : 64, 0) > 0 && take_turns && s->listening &&
        !atomic_load_int(&s->accept_paused)) {
        poller_del(s, lfd);
        poller_add_level(s, lfd, 1);
    }
}

/* A stop: accept every connection queued on listening socket `index`, until EAGAIN and
 * whatever the busy limit, right before this process lets go of it (listen_let_go).  With
 * several processes on one socket each drains it when it stops: what the others have not
 * taken by then. */
void accept_drain(pw_server *s, int index)
{
    accept_batch(s, s->cfg.listen_fds[index], index, INT_MAX, 1);
}

/* Accept what is waiting, `most` at most (then other events get their turn); how many.
 * draining: ignore the busy limit (accept_drain). */
static int accept_batch(pw_server *s, int lfd, int index, int most, int draining)
{
    int accepted = 0;
    for (int i = 0; i < most; i++) {
        if (!draining && s->cfg.accept_busy_limit > 0 &&
            atomic_load_int(&s->busy) + s->pending >= s->cfg.accept_busy_limit)
            return accepted;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
#ifdef __linux__
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
        int fd = accept(lfd, (struct sockaddr *)&ss, &sl);
        if (fd >= 0) {
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
            fcntl(fd, F_SETFD, FD_CLOEXEC);
            int one = 1;
            setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
        }
#endif
        if (fd < 0) {
            int err = errno;
            if ((err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) &&
                accept_out_of_fds(s, err))
                continue; /* idle connections were closed: there is room now */
            if (err == ECONNABORTED || err == EINTR)
                continue;    /* that client is gone; the next may be there */
            return accepted; /* EAGAIN: another process took it, or nothing left */
        }
        accepted++;
        atomic_add_int(&s->open_conns, 1);
        pw_conn *c = conn_slot(s, fd);
        if (!c) {
            close(fd);
            atomic_add_int(&s->open_conns, -1);
            continue;
        }
        SB_ADD(s, connections, 1);
        c->fd = fd;
        c->relay_fd = c->rp.file_fd = c->out_file_fd = -1;
        c->out_off = c->out_len = c->out_file_left = 0;
        c->after_output = c->resuming = 0;
        c->relay_counted = c->relay_paused = 0;
        c->listen_index = index;
        c->len = 0;
        c->requests = 0;
        c->broken = 0;
        c->idle = 1;
        c->prebuffering = 0;
        c->head_start = c->accepted_at = pw_now();
        c->need_preamble = c->one_shot = s->cfg.daemon_role;
        c->expect_handled = c->client_closes = c->kept_while_stopping = 0;
        c->enqueued_at = 0;
        if (s->cfg.accept_busy_limit > 0) {
            c->pending = 1; /* its request is about to come: count it as work here */
            s->pending++;
        }
        c->peer_port = 0;
        c->peer_host[0] = 0;
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, c->peer_host, sizeof c->peer_host);
            c->peer_port = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, c->peer_host, sizeof c->peer_host);
            c->peer_port = ntohs(a->sin6_port);
        }
        if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        memcpy(c->conn_host, c->peer_host, sizeof c->conn_host);
        c->conn_port = c->peer_port;
        c->proxy_https = -1;
        c->fwd_https = -1;
        c->fwd_host_len = 0;
        c->fwd_server_port = 0;
        c->proxy_trusted = 0;
        c->need_proxy_header = 0;
        c->plain_on_tls = 0;
        if (s->cfg.tls[index] && tls_conn_start(s, c, s->cfg.tls[index]) != 0) {
            conn_close(s, c);
            continue;
        }
        if (trust_on(s) && !s->cfg.daemon_role) {
            c->proxy_trusted = ss.ss_family == AF_UNIX ? s->cfg.trust.unix_peers
                                                       : pw_trust_host(&s->cfg.trust, c->peer_host);
            if (s->cfg.proxy_protocol) {
                if (!c->proxy_trusted) {
                    pw_log(s, PW_LOG_WARNING,
                           "%s:%d: connection from a peer that is not a "
                           "trusted proxy (--proxy-protocol, --trust-proxy): closed",
                           c->peer_host[0] ? c->peer_host : "unix", c->peer_port);
                    conn_close(s, c);
                    continue;
                }
                c->need_proxy_header = 1;
            }
        }
        conn_reset_request(s, c);
        atomic_store_int(&c->state, PW_CONN_READING);
        if (s->cfg.max_clients > 0 && atomic_load_int(&s->open_conns) > s->cfg.max_clients &&
            accept_over_cap(s, c) != 0)
            continue;
        /* A fresh connection gets the header timeout (the client is about to send). */
        c->deadline = pw_now() + s->cfg.header_timeout;
        if (conn_arm(s, c, 1) != 0)
            conn_close(s, c);
        else
            s->evict_fruitless = 0; /* while it sends nothing, it may be evicted */
    }
    return accepted;
}
