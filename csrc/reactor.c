/*
 * reactor.c -- the server and the reactor's turn, and a connection's life: reading and parsing
 * heads, small bodies, deadlines, keep-alive, lingering close, the hand-back after a response.  Plain C, no Python; see server.h and reactor.h.
 */
#include "server.h"

/* The access log's failed writes (accesslog.h) go to the error log. */
static void access_log_report(void *arg, int level, const char *line)
{
    pw_log(arg, level, "%s", line);
}

pw_server *pw_server_new(const pw_config *cfg, char *err, size_t errlen)
{
    pw_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    s->poll_fd = -1;
    s->wake_rd = s->wake_wr = -1;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->qlock, NULL);
    pthread_cond_init(&s->qcond, NULL);
    s->poll_fd = poller_create();
    int p[2];
    if (s->poll_fd < 0 || pipe(p) != 0) {
        snprintf(err, errlen, "poller: %s", strerror(errno));
        pw_server_free(s);
        return NULL;
    }
    s->wake_rd = p[0];
    s->wake_wr = p[1];
    for (int i = 0; i < 2; i++) {
        fcntl(p[i], F_SETFL, fcntl(p[i], F_GETFL) | O_NONBLOCK);
        fcntl(p[i], F_SETFD, FD_CLOEXEC);
    }
    if (poller_add_level(s, s->wake_rd, 0) != 0) {
        snprintf(err, errlen, "poller: %s", strerror(errno));
        pw_server_free(s);
        return NULL;
    }
    for (int i = 0; i < cfg->num_listen; i++) {
        int fd = cfg->listen_fds[i];
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        if (poller_add_level(s, fd, 1) != 0) {
            snprintf(err, errlen, "listen fd %d: %s", fd, strerror(errno));
            pw_server_free(s);
            return NULL;
        }
    }
    s->listening = 1;
    if (s->cfg.access_log)
        pw_access_log_on_failure(s->cfg.access_log, access_log_report, s,
                                 s->cfg.scoreboard ? &s->cfg.scoreboard->access_log_dropped : NULL);
    return s;
}

void pw_server_stop_accepting(pw_server *s)
{
    atomic_store_int(&s->stopping, 1);
    wake_reactor(s);
}

int pw_server_stopping(pw_server *s)
{
    return atomic_load_int(&s->stopping) || stop_announced(s);
}
int pw_server_accepting(pw_server *s)
{
    return !atomic_load_int(&s->let_go);
}
int pw_server_open_conns(pw_server *s)
{
    return atomic_load_int(&s->open_conns);
}
const pw_config *pw_server_config(pw_server *s)
{
    return &s->cfg;
}

void clear_pending(pw_server *s, pw_conn *c)
{
    if (c->pending) {
        c->pending = 0;
        s->pending--;
    }
}

void conn_close(pw_server *s, pw_conn *c)
{
    int fd = c->fd;
    clear_pending(s, c);
    /* Read what the client already sent, so closing does not turn into a reset that could
     * destroy the response it has not read yet.  Not in a daemon: a UNIX socket delivers what
     * was sent before the reset, and the reset is how the relay learns that a request on a
     * pooled connection was never read (so it may retry it). */
    char sink[4096];
    for (int i = 0; i < 16 && !s->cfg.daemon_role; i++)
        if (recv(fd, sink, sizeof sink, MSG_DONTWAIT) <= 0)
            break;
    if (c->held)
        out_unhold(s, c);
    tls_conn_free(c, 1);
    free(c->ssl_vars);
    c->ssl_vars = NULL;
    c->ssl_vars_len = 0;
    c->fd = -1;
    c->watch = PW_WATCH_NONE;
    free(c->out);
    c->out = NULL;
    c->out_off = c->out_len = c->out_cap = 0;
    if (c->out_file_fd >= 0)
        close(c->out_file_fd);
    c->out_file_fd = -1;
    c->out_file_left = 0;
    c->after_output = 0;
    c->resuming = 0;
    pw_relay_progress_free(c);
    if (c->cap > PW_KEEP_BUF) {
        free(c->buf);
        c->buf = NULL;
        c->cap = 0;
    }
    c->len = 0;
    atomic_store_int(&c->state, PW_CONN_FREE);
    close(fd); /* after FREE: the fd number (and so this slot) may be reused at once */
    atomic_add_int(&s->open_conns, -1);
    SB_ADD(s, connections, -1);
}

/*
 * End a connection after its last response.  If the client may still be sending its request
 * body (an upload answered 413, or any early answer), closing now would make the kernel answer
 * its next bytes with a reset, which can destroy the response before the client reads it (curl:
 * "Connection reset by peer").  So, as Apache's lingering close does, shut the sending side and
 * hand the connection to the reactor, which reads and drops what still comes until the client
 * closes (conn_linger_read, the scan).  Caller: the owner (reactor, or a worker from
 * conn_release); the connection must be registered or disarmed as in state READING.
 */
void conn_end(pw_server *s, pw_conn *c)
{
    if (s->cfg.daemon_role || c->broken || !body_unread(c) || c->fd < 0) {
        conn_close(s, c);
        return;
    }
    clear_pending(s, c);
    conn_shut_write(c);
    double now = pw_now();
    pthread_mutex_lock(&s->lock);
    c->linger_until = now + PW_LINGER_MAX;
    c->deadline = now + PW_LINGER_PAUSE;
    atomic_store_int(&c->state, PW_CONN_LINGERING);
    __atomic_add_fetch(&s->handbacks, 1, __ATOMIC_RELAXED); /* evictable (evict_idle) */
    int armed = conn_arm(s, c, 0);
    pthread_mutex_unlock(&s->lock);
    if (armed != 0)
        conn_close(s, c);
}

/* Reactor: a lingering connection is readable: drop what came; close at its end. */
static void conn_linger_read(pw_server *s, pw_conn *c)
{
    char sink[16384];
    for (int i = 0; i < 64; i++) { /* up to 1 MiB per event: other connections get their turn */
        ssize_t n = recv(c->fd, sink, sizeof sink, MSG_DONTWAIT);
        if (n > 0)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            break;
        conn_close(s, c); /* the client closed (or reset): done */
        return;
    }
    double next = pw_now() + PW_LINGER_PAUSE;
    c->deadline = next < c->linger_until ? next : c->linger_until;
}

/* An answer the reactor gave itself (parse error, limit, timeout): log it, with the request
 * line when the head was parsed (captured), else "-". */
void log_reactor_answer(pw_server *s, pw_conn *c, int captured)
{
    if (s->cfg.scoreboard)
        pw_sb_request_done(s->cfg.scoreboard, c->resp_status, c->resp_bytes,
                           captured ? pw_now() - c->req_start : 0);
    if (!s->cfg.access_log)
        return;
    if (!captured) {
        c->log_rl_len = 0;
        for (int i = 0; i < PW_LOG_MAX_HEADERS; i++)
            c->log_hdr_len[i] = 0xffff;
        c->req_time = time(NULL);
        c->req_start = pw_now();
    }
    pw_access_log_write(s->cfg.access_log, c);
}

void conn_reset_request(pw_server *s, pw_conn *c)
{
    pw_request_init(&c->req, c->headers, s->cfg.limits.max_fields);
}

/* The header table (limit_request_fields entries) of a connection about to parse a head: an
 * idle connection has none (conn_slot, reactor_scan), so a silent one costs ~1 KiB. */
static int conn_headers(pw_server *s, pw_conn *c)
{
    if (c->headers)
        return 0;
    c->headers = calloc(s->cfg.limits.max_fields ? s->cfg.limits.max_fields : 1, sizeof(pw_header));
    if (!c->headers)
        return -1;
    conn_reset_request(s, c); /* nothing parsed yet: the connection was idle */
    return 0;
}

/* The head is complete: set up body reading; 0 = hand to a worker, -1 = answered and closed. */

/* Trusted proxies (docs/proxies.md): the client of this request, from the connection's peer
 * and - when that is a trusted proxy - its forwarding headers. */
static void conn_find_client(pw_server *s, pw_conn *c)
{
    memcpy(c->peer_host, c->conn_host, sizeof c->peer_host);
    c->peer_port = c->conn_port;
    c->fwd_https = c->tls ? 1 : c->proxy_https;
    c->fwd_host_len = 0;
    c->fwd_server_port = 0;
    if (!c->proxy_trusted || !s->cfg.trust.headers)
        return;
    pw_forwarded f;
    /* daemon role: the server process already put the client's address in the preamble */
    pw_forwarded_eval(&s->cfg.trust, c->buf, c->req.headers, c->req.num_headers,
                      !s->cfg.daemon_role, &f);
    if (f.error)
        pw_log(s, PW_LOG_INFO, "%s:%d: forwarding header from a trusted proxy ignored: %s",
               c->conn_host, c->conn_port, f.error);
    if (f.have_addr) {
        memcpy(c->peer_host, f.host, sizeof c->peer_host);
        c->peer_port = f.port;
    }
    if (f.https >= 0)
        c->fwd_https = f.https;
    c->fwd_host_off = f.host_off;
    c->fwd_host_len = f.host_len;
    c->fwd_server_port = f.server_port;
}

int trust_on(pw_server *s)
{
    return s->cfg.trust.count > 0 || s->cfg.trust.unix_peers;
}

static int conn_head_done(pw_server *s, pw_conn *c)
{
    pw_request *r = &c->req;
    conn_find_client(s, c);
    c->req_start = pw_now();
    c->req_time = time(NULL);
    c->resp_status = 0;
    c->resp_bytes = 0;
    c->status_page = 0;
    if (s->cfg.access_log)
        pw_access_log_capture(s->cfg.access_log, c);
    c->body_pos = r->head_len;
    c->body_left = r->body_kind == PW_BODY_LENGTH ? r->content_length : 0;
    c->body_total = 0;
    c->chunk_off = c->chunk_len = 0;
    pw_chunked_init(&c->chunked);
    c->body_done = r->body_kind == PW_BODY_NONE;
    c->body_error = 0;
    c->sent_continue = c->expect_handled;
    c->idle = 0;
    if (c->client_closes)
        r->keep_alive = 0; /* frames the response as for a client that asked to close */
    /* plain HTTP to the HTTPS port (400), --https-only (301 to https) */
    if ((c->plain_on_tls || s->cfg.https_redirect_port) && tls_head_check(s, c) != 0)
        return -1;
    if (r->body_kind == PW_BODY_LENGTH && s->cfg.limit_request_body &&
        r->content_length > s->cfg.limit_request_body) {
        pw_log(s, PW_LOG_INFO,
               "%s:%d: request body of %llu bytes over --limit-request-body "
               "(%llu): 413",
               c->peer_host, c->peer_port, (unsigned long long)r->content_length,
               (unsigned long long)s->cfg.limit_request_body);
        pw_send_error(s, c, 413);
        log_reactor_answer(s, c, 1);
        return -1;
    }
    return 0;
}

static int conn_parse(pw_server *s, pw_conn *c)
{
    int rc = pw_parse_head(&c->req, c->buf, c->len, &s->cfg.limits);
    if (rc == PW_ERROR) {
        pw_log(s, PW_LOG_INFO, "%s:%d: bad request (%d): %s", c->peer_host, c->peer_port,
               c->req.error_status, c->req.error_reason ? c->req.error_reason : "");
        pw_send_error(s, c, c->req.error_status ? c->req.error_status : 400);
        log_reactor_answer(s, c, 0);
        conn_close(s, c);
        return PW_ERROR;
    }
    return rc;
}

/* Make room to read more of a head: heads are bounded by max_head_size. */
int conn_grow(pw_conn *c, size_t want)
{
    if (c->cap - c->len >= want)
        return 0;
    size_t cap = c->cap ? c->cap : PW_INITIAL_BUF;
    while (cap - c->len < want)
        cap *= 2;
    char *b = realloc(c->buf, cap);
    if (!b)
        return -1;
    c->buf = b;
    c->cap = cap;
    return 0;
}

/* Is the small body the reactor is collecting complete?  1 yes (or: stop waiting, let the
 * worker handle it, e.g. a malformed chunk), 0 not yet, PW_OVER_LIMIT: a chunked body is
 * over --limit-request-body (answer 413 before any application runs). */
#define PW_OVER_LIMIT 2
static int prebuffer_complete(pw_server *s, pw_conn *c)
{
    pw_request *r = &c->req;
    if (r->body_kind == PW_BODY_LENGTH)
        return c->len - r->head_len >= r->content_length;
    while (c->scan_pos < c->len) {
        size_t consumed = 0, off = 0, dlen = 0;
        int rc = pw_chunked_decode(&c->scan, c->buf + c->scan_pos, c->len - c->scan_pos, &consumed,
                                   &off, &dlen, &s->cfg.limits);
        c->scan_pos += consumed;
        if (rc == PW_CHUNK_DATA)
            c->scan_total += dlen;
        if (rc != PW_ERROR && chunked_over_limit(s, c->scan_total, &c->scan))
            return PW_OVER_LIMIT;
        if (rc == PW_DONE || rc == PW_ERROR)
            return 1;
        if (rc == PW_AGAIN)
            break;
    }
    /* larger than we buffer: the worker streams the rest */
    return c->len - r->head_len > s->cfg.body_buffer_size;
}

/* The reactor found the body over the limit while buffering it: 413, then a lingering close. */
static void prebuffer_refuse(pw_server *s, pw_conn *c)
{
    log_chunked_413(s, c);
    pw_send_error(s, c, 413);
    log_reactor_answer(s, c, 1);
    conn_end(s, c);
}

/*
 * The head is complete.  A small body (up to body_buffer_size) is read here, in the reactor,
 * before any worker is involved: a client that trickles its body then holds no thread.
 * Returns 1 when the connection should be queued now, 0 when it waits for more body bytes,
 * -1 when it was answered (413) and is no longer the caller's.
 */
static int prebuffer_start(pw_server *s, pw_conn *c)
{
    pw_request *r = &c->req;
    c->prebuffering = 0;
    /* A client that sent Expect: 100-continue waits for the worker's go-ahead. */
    if (r->expect_continue || s->cfg.body_buffer_size == 0)
        return 1;
    if (r->body_kind == PW_BODY_LENGTH) {
        if (r->content_length > s->cfg.body_buffer_size)
            return 1;
    } else if (r->body_kind == PW_BODY_CHUNKED) {
        pw_chunked_init(&c->scan);
        c->scan_pos = r->head_len;
        c->scan_total = 0;
    } else {
        return 1;
    }
    int rc = prebuffer_complete(s, c);
    if (rc == PW_OVER_LIMIT) {
        prebuffer_refuse(s, c);
        return -1;
    }
    if (rc)
        return 1;
    c->prebuffering = 1;
    c->deadline = pw_now() + s->cfg.body_timeout;
    return 0;
}

/* --proxy-protocol: the header's client becomes the connection's peer. */
void conn_proxy_apply(pw_server *s, pw_conn *c, const pw_proxy_info *info)
{
    if (info->has_addr) {
        /* the proxy's client is now this connection's peer; its own forwarding headers count
         * only if it is a trusted proxy too */
        memcpy(c->conn_host, info->src, sizeof c->conn_host);
        c->conn_port = info->src_port;
        c->proxy_trusted = pw_trust_host(&s->cfg.trust, c->conn_host);
    }
    c->proxy_https = info->ssl ? 1 : -1;
    memcpy(c->peer_host, c->conn_host, sizeof c->peer_host);
    c->peer_port = c->conn_port;
}

/* Watch c for its next read: input, or output when TLS must write before it can read on. */
static int conn_rearm(pw_server *s, pw_conn *c)
{
    return conn_watch(s, c, conn_wait_events(c, POLLIN) == POLLOUT ? PW_WATCH_OUT : PW_WATCH_IN);
}

/* A connection to an HTTPS port before its handshake is done: the PROXY header that may come
 * first, then the handshake, which the reactor drives without waiting.  1: go on reading
 * (TLS is up, or this is plain HTTP sent to the HTTPS port), 0: wait (watched), -1 closed. */
static int reactor_tls_start(pw_server *s, pw_conn *c)
{
    if (c->need_proxy_header) {
        int rc = tls_proxy_header(s, c);
        if (rc <= 0) {
            if (rc < 0 || conn_rearm(s, c) != 0)
                conn_close(s, c);
            return rc < 0 ? -1 : 0;
        }
        c->need_proxy_header = 0;
    }
    switch (tls_handshake(s, c)) {
    case TLS_HS_DONE: return 1;
    case TLS_HS_AGAIN:
        if (conn_rearm(s, c) != 0) {
            conn_close(s, c);
            return -1;
        }
        return 0;
    case TLS_HS_PLAIN:
        tls_conn_free(c, 0);
        c->plain_on_tls = 1; /* read its head as usual, then answer 400 (tls_head_check) */
        return 1;
    default: conn_close(s, c); return -1;
    }
}

static void reactor_readable(pw_server *s, pw_conn *c)
{
    size_t room;
    if (c->tls && !tls_handshaken(c) && reactor_tls_start(s, c) <= 0)
        return;
    if (c->prebuffering) {
        pw_request *r = &c->req;
        room = r->body_kind == PW_BODY_LENGTH ? (size_t)(r->head_len + r->content_length - c->len)
                                              : 4096;
    } else {
        if (c->len >= (size_t)s->cfg.limits.max_head_size + 1024) {
            pw_send_error(s, c, 431);
            conn_close(s, c);
            return;
        }
        room = c->len < PW_INITIAL_BUF ? 1024 : 4096;
    }
    if (conn_grow(c, room) != 0 || conn_headers(s, c) != 0) {
        pw_send_error(s, c, 503);
        conn_close(s, c);
        return;
    }
    ssize_t n = conn_recv_buf(c);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        conn_close(s, c);
        return;
    }
    if (n > 0) {
        double now = pw_now();
        c->len += n;
        if (c->prebuffering) {
            c->deadline = now + s->cfg.body_timeout;
            int done = prebuffer_complete(s, c);
            if (done == PW_OVER_LIMIT) {
                c->prebuffering = 0;
                prebuffer_refuse(s, c);
                return;
            }
            if (done) {
                c->prebuffering = 0;
                queue_push(s, c);
                return;
            }
        } else {
            if (c->idle) {
                /* The first byte of a new request starts its header deadline. */
                c->idle = 0;
                c->head_start = now;
                c->deadline = now + s->cfg.header_timeout;
            }
            if (c->need_proxy_header) {
                pw_proxy_info info;
                const char *why;
                int plen = pw_proxy_parse(c->buf, c->len, &info, &why);
                if (plen < 0) {
                    pw_log(s, PW_LOG_WARNING, "%s:%d: %s (--proxy-protocol): connection closed",
                           c->conn_host, c->conn_port, why);
                    conn_close(s, c);
                    return;
                }
                if (plen == 0)
                    goto rearm;
                memmove(c->buf, c->buf + plen, c->len - plen);
                c->len -= plen;
                c->need_proxy_header = 0;
                conn_proxy_apply(s, c, &info);
                if (c->len == 0)
                    goto rearm;
            }
            if (c->need_preamble) {
                int plen = pw_preamble_parse(c);
                if (plen < 0) {
                    pw_log(s, PW_LOG_ERROR, "daemon: malformed relay preamble; connection closed");
                    conn_close(s, c);
                    return;
                }
                if (plen == 0)
                    goto rearm;
                /* the server process vouches for the client address it sends, and says whether
                 * it came through a trusted proxy (whose other headers then count here) */
                memcpy(c->conn_host, c->peer_host, sizeof c->conn_host);
                c->conn_port = c->peer_port;
                c->proxy_trusted = (c->buf[6] & PW_PREAMBLE_PROXY_TRUSTED) != 0;
                c->proxy_https = (c->buf[6] & PW_PREAMBLE_HTTPS) ? 1 : -1;
                c->client_closes = (c->buf[6] & PW_PREAMBLE_CLIENT_CLOSES) != 0;
                memmove(c->buf, c->buf + plen, c->len - plen);
                c->len -= plen;
                c->need_preamble = 0;
                if (c->len == 0)
                    goto rearm;
            }
            /* mod_reqtimeout's MinRate: data earns time, up to the maximum. */
            if (s->cfg.header_min_rate > 0) {
                double d = c->deadline + n / s->cfg.header_min_rate;
                double cap = c->head_start + s->cfg.header_max_timeout;
                c->deadline = d < cap ? d : cap;
            }
            int rc = conn_parse(s, c);
            if (rc == PW_ERROR)
                return;
            if (rc == PW_DONE) {
                if (conn_head_done(s, c) != 0) {
                    conn_end(s, c); /* answered (413): the body may be on its way */
                    return;
                }
                if (!conn_next_probes(s, c))
                    return; /* a probe URL, answered here (probes.c) */
                int ready = prebuffer_start(s, c);
                if (ready < 0)
                    return;
                if (ready) {
                    queue_push(s, c);
                    return;
                }
            }
        }
    }
rearm:
    if (conn_rearm(s, c) != 0)
        conn_close(s, c);
}

/* Reactor, under s->lock: c has been idle (READING, no byte of a next request) for a while.
 * Free its read buffer, header table, access-log capture and (empty) output buffer - its next
 * request, if any, gets new ones - so thousands of idle keep-alive connections cost ~0.9 KiB
 * each (docs/security.md), and OpenSSL's record buffers on HTTPS.  A busy keep-alive connection
 * is never idle this long. */
static void conn_shed_memory(pw_server *s, pw_conn *c)
{
    if (c->len != 0 || c->out_off != c->out_len || c->out_file_fd >= 0)
        return;
    s->idle_freed += tls_shed_memory(c);
    if (!c->buf && !c->headers && !c->log_capture && !c->out)
        return;
    s->idle_freed += c->cap + c->out_cap + (c->log_capture ? PW_LOG_CAPTURE : 0) +
        (c->headers ? s->cfg.limits.max_fields * sizeof(pw_header) : 0);
    free(c->buf);
    c->buf = NULL;
    c->cap = 0;
    free(c->out);
    c->out = NULL;
    c->out_off = c->out_len = c->out_cap = 0;
    free(c->log_capture);
    c->log_capture = NULL;
    free(c->headers);
    c->headers = NULL;
    conn_reset_request(s, c);
}

/* Bytes wait in c's socket, not read yet. */
static int conn_has_input(const pw_conn *c)
{
    char peek;
    return recv(c->fd, &peek, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

static void reactor_scan(pw_server *s, double now)
{
    if (s->cfg.access_log)
        pw_access_log_flush(s->cfg.access_log);
    pthread_mutex_lock(&s->lock);
    int late = 0, slow = 0;
    for (int fd = 0; fd < s->conns_cap; fd++) {
        pw_conn *c = s->conns[fd];
        if (c && atomic_load_int(&c->state) == PW_CONN_RELAYING && now >= c->deadline)
            late = 1;
        if (c && atomic_load_int(&c->state) == PW_CONN_LINGERING && now >= c->deadline) {
            conn_close(s, c); /* the client paused, or lingered too long: enough */
            continue;
        }
        if (c && atomic_load_int(&c->state) == PW_CONN_WRITING &&
            (c->broken || out_too_slow(s, c, now))) {
            c->broken = 1; /* dropped below, without the lock (it may go back to a worker) */
            slow = 1;
            continue;
        }
        if (!c || atomic_load_int(&c->state) != PW_CONN_READING)
            continue;
        /* A connection that sends nothing soon stops counting as work, so idle or slow
         * clients cannot make every process refuse to accept. */
        if (c->pending && now - c->accepted_at > 0.5)
            clear_pending(s, c);
        if (c->idle && now - c->head_start >= PW_IDLE_FREE && now < c->deadline)
            conn_shed_memory(s, c);
        if (now >= c->deadline && c->idle && c->len == 0 && conn_has_input(c)) {
            /* its request came just as it was to be closed (the reactor had not read it
             * yet, e.g. busy with an inline request): read it, not drop it */
            c->idle = 0;
            c->head_start = now;
            c->deadline = now + s->cfg.header_timeout;
            continue;
        }
        if (now >= c->deadline) {
            if (c->need_proxy_header && c->len > 0) {
                /* a proxy, not a browser: no HTTP answer to a header it never finished */
                pw_log(s, PW_LOG_WARNING,
                       "%s:%d: PROXY header not complete in time "
                       "(--proxy-protocol): connection closed",
                       c->conn_host, c->conn_port);
            } else if (!tls_handshaken(c)) {
                if (tls_started(c)) /* (a client that never said a word closes quietly) */
                    pw_log(s, PW_LOG_INFO,
                           "%s:%d: TLS handshake not complete in time (--header-timeout): "
                           "connection closed",
                           c->peer_host, c->peer_port);
            } else if (!c->idle && c->len > 0) {
                pw_log(s, PW_LOG_INFO, "%s:%d: request %s not complete in time: 408", c->peer_host,
                       c->peer_port, c->prebuffering ? "body" : "head");
                pw_send_error(s, c, 408);
                log_reactor_answer(s, c, 0);
            }
            conn_close(s, c);
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (late)
        relay_async_timeouts(s, now);
    for (int fd = 0; slow && fd < s->conns_cap; fd++) {
        pw_conn *c = s->conns[fd];
        if (c && atomic_load_int(&c->state) == PW_CONN_WRITING && c->broken)
            output_failed(s, c);
    }
    log_limited_flush(s, &s->log_no_fds, now);
    log_limited_flush(s, &s->log_evicted, now);
    log_limited_flush(s, &s->log_refused, now);
#ifdef __GLIBC__
    /* Freed buffers go back to malloc's free lists, not to the system: give the pages back
     * once a good many were freed (at most once a second; trimming walks the heap). */
    if (s->idle_freed >= (1u << 20) && now - s->last_trim >= 1.0) {
        malloc_trim(0);
        s->idle_freed = 0;
        s->last_trim = now;
    }
#endif
}

/* Stopping: drain each listening socket's backlog (drain: not at a quick stop), then give up
 * this process's hold on it at once, not at its exit.  A socket is closed - and what is queued
 * in it reset - when the last process holding it lets go; the master lets go when the whole
 * server stops, before it stops the server processes (process/arbiter.py), so the last to let
 * go is a process that has just drained the backlog, and a connection that comes later is
 * refused (the load balancer tries another server) instead of being accepted into a queue
 * nobody reads.  One that comes between a socket's last accept and its let-go is still reset
 * if this process is the last holder: so nothing else happens in between (/dev/null is opened
 * before, each socket lets go right after its own drain, the poller forgot them already).  The
 * descriptor becomes /dev/null (dup2 replaces it at once), so its number stays valid for the
 * Python socket object that owns it. */
static void listen_let_go(pw_server *s, int drain)
{
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    for (int k = 0; k < s->cfg.num_listen; k++) {
        if (drain)
            accept_drain(s, k);
        if (null_fd >= 0)
            dup2(null_fd, s->cfg.listen_fds[k]);
    }
    if (null_fd >= 0)
        close(null_fd);
    atomic_store_int(&s->let_go, 1);
}

/* One round of the reactor: wait for events (up to the next scan or lazy wake-up), handle them,
 * then the housekeeping.  -1: the poller failed.  Run by the reactor thread, or in leader mode
 * by whichever worker holds the reactor (pw_queue_pop), never by two threads at once. */
int reactor_turn(pw_server *s)
{
#ifdef PW_USE_EPOLL
    struct epoll_event evs[256];
#else
    struct kevent evs[256];
#endif
    double wait = PW_SCAN_INTERVAL;
    if (s->cfg.leader_follower) {
        __atomic_thread_fence(__ATOMIC_SEQ_CST); /* token taken, then busy read (busy_done) */
        accept_balance(s);
    }
    long long due_us = __atomic_load_n(&s->lazy_due_us, __ATOMIC_RELAXED);
    if (due_us) {
        double left = due_us / 1e6 - pw_now();
        wait = left < 0 ? 0 : left < wait ? left : wait;
    }
    if (s->accept_resume_at > 0) { /* out of descriptors: accept again then (accept_balance) */
        double left = s->accept_resume_at - pw_now();
        wait = left < 0 ? 0 : left < wait ? left : wait;
    }
#ifdef PW_USE_EPOLL
    /* rounded up: waking before the due time would only spin */
    int n = epoll_wait(s->poll_fd, evs, 256, (int)(wait * 1000 + 0.999));
#else
    struct timespec ts = {0, (long)(wait * 1e9)};
    int n = kevent(s->poll_fd, NULL, 0, evs, 256, &ts);
#endif
    if (n < 0 && errno != EINTR) {
        pw_log(s, PW_LOG_ERROR, "poller: %s", strerror(errno));
        return -1;
    }
    s->hold_turn = s->cfg.dispatch != NULL && pw_now() >= s->held.paused_until; /* out_hold */
    s->turns++; /* (leader mode: what this turn queues is one batch, output.c) */
    for (int i = 0; i < n; i++) {
#ifdef PW_USE_EPOLL
        int fd = evs[i].data.fd;
#else
        int fd = (int)evs[i].ident;
#endif
        if (fd == s->wake_rd) {
            char sink[64];
            while (read(s->wake_rd, sink, sizeof sink) > 0) {
            }
            continue;
        }
        int li = -1;
        for (int k = 0; k < s->cfg.num_listen; k++)
            if (s->cfg.listen_fds[k] == fd)
                li = k;
        if (li >= 0) {
            if (s->listening)
                reactor_accept(s, fd, li);
            continue;
        }
        if (fd < s->relay_owner_cap && s->relay_owner[fd]) {
            relay_async_event(s, fd);
            continue;
        }
        if (fd < s->conns_cap && s->conns[fd]) {
            pw_conn *c = s->conns[fd];
            int state = atomic_load_int(&c->state);
            if (state == PW_CONN_FREE)
                goto not_a_client;
            if (state == PW_CONN_BUSY || state == PW_CONN_RELAYING)
                state = conn_disarm(s, c, fd);
            if (state == PW_CONN_READING)
                reactor_readable(s, c);
            else if (state == PW_CONN_LINGERING)
                conn_linger_read(s, c);
            else if (state == PW_CONN_WRITING)
                conn_write_ready(s, c);
            continue;
        }
    not_a_client:
        if (s->cfg.relay_async)
            relay_async_drop_idle(fd); /* an idle daemon connection: its daemon closed it */
    }
    s->hold_turn = 0;
    if (s->held.head)
        out_flush_held(s);
    if (atomic_load_int(&s->stopping) && s->listening) {
        /* What clients already queued in the listen backlog are accepted and served (their
         * responses close the connection), not left to be reset when the socket closes, and
         * the sockets let go right after (listen_let_go).  Fresh, the drained connections
         * count as idle below: one that sends nothing is not waited for long. */
        if (!atomic_load_int(&s->accept_paused))
            for (int k = 0; k < s->cfg.num_listen; k++)
                poller_del(s, s->cfg.listen_fds[k]);
        s->listening = 0;
        listen_let_go(s, !atomic_load_int(&s->shutdown));
        /* Stopping: an idle connection is not closed at once - its client may be sending
         * on it right now and would see a reset.  It gets at most the keep-alive timeout
         * from now; a request that comes meanwhile is served with Connection: close.
         * A daemon's idle connections are the relay's pool: a request the daemon never
         * read is retried elsewhere by the relay, so they go almost at once. */
        double cap = pw_now() + (s->cfg.daemon_role ? 0.1 : s->cfg.keep_alive_timeout);
        pthread_mutex_lock(&s->lock);
        for (int fd = 0; fd < s->conns_cap; fd++) {
            pw_conn *c = s->conns[fd];
            if (c && atomic_load_int(&c->state) == PW_CONN_READING && c->idle && c->deadline > cap)
                c->deadline = cap;
            if (c && atomic_load_int(&c->state) == PW_CONN_LINGERING &&
                c->linger_until > cap + PW_LINGER_PAUSE)
                c->linger_until = cap + PW_LINGER_PAUSE;
        }
        pthread_mutex_unlock(&s->lock);
    }
    if (__atomic_load_n(&s->handoff, __ATOMIC_ACQUIRE))
        relay_adopt(s);
    accept_balance(s);
    double now = pw_now();
    due_us = __atomic_load_n(&s->lazy_due_us, __ATOMIC_RELAXED);
    if (due_us && now * 1e6 >= due_us)
        queue_lazy_check(s, now);
    if (now - s->last_scan >= PW_SCAN_INTERVAL) {
        s->last_scan = now;
        reactor_scan(s, now);
    }
    return 0;
}

static void *reactor_main(void *arg)
{
    pw_server *s = arg;
    if (s->cfg.thread_start)
        s->cfg.thread_start();
    while (!atomic_load_int(&s->shutdown)) {
        int rc = reactor_turn(s);
        if (s->cfg.turn_done)
            s->cfg.turn_done();
        if (rc != 0)
            break;
    }
    if (s->cfg.thread_stop)
        s->cfg.thread_stop();
    return NULL;
}

int pw_server_start(pw_server *s)
{
    s->last_scan = pw_now();
    if (s->cfg.leader_follower)
        return 0; /* the workers run the reactor (leader_pop) */
    if (pthread_create(&s->reactor, NULL, reactor_main, s) != 0)
        return -1;
    s->reactor_started = 1;
    return 0;
}

void pw_server_shutdown(pw_server *s)
{
    atomic_store_int(&s->stopping, 1);
    atomic_store_int(&s->shutdown, 1);
    wake_reactor(s);
    pthread_mutex_lock(&s->qlock);
    pthread_cond_broadcast(&s->qcond);
    pthread_mutex_unlock(&s->qlock);
    if (s->reactor_started) {
        pthread_join(s->reactor, NULL);
        s->reactor_started = 0;
    }
    if (s->cfg.access_log)
        pw_access_log_finish(s->cfg.access_log);
}

void pw_server_free(pw_server *s)
{
    if (!s)
        return;
    if (s->cfg.access_log) /* it may outlive this server: nothing to report to any more */
        pw_access_log_on_failure(s->cfg.access_log, NULL, NULL, NULL);
    int busy = 0;
    for (int fd = 0; fd < s->conns_cap; fd++) {
        pw_conn *c = s->conns[fd];
        if (!c)
            continue;
        int st = atomic_load_int(&c->state);
        if (c->fd >= 0 &&
            (st == PW_CONN_READING || st == PW_CONN_RELAYING || st == PW_CONN_LINGERING ||
             st == PW_CONN_WRITING))
            close(c->fd);
        if (st != PW_CONN_BUSY && c->out_file_fd >= 0)
            close(c->out_file_fd);
        if ((st == PW_CONN_RELAYING || st == PW_CONN_WRITING) && c->relay_fd >= 0)
            close(c->relay_fd);
        if (st != PW_CONN_BUSY) {
            tls_conn_free(c, 0);
            free(c->ssl_vars);
            free(c->out);
            pw_relay_progress_free(c);
            free(c->log_capture);
            free(c->buf);
            free(c->headers);
        } else {
            busy = 1;
        }
        /* a BUSY connection may still be in a worker that outlived the graceful timeout;
         * the process is about to exit, so it is left alone rather than freed under it. */
    }
    while (s->slabs && !busy) {
        pw_conn_slab *next = s->slabs->next;
        free(s->slabs);
        s->slabs = next;
    }
    free(s->conns);
    free(s->relay_owner);
    if (s->poll_fd >= 0)
        close(s->poll_fd);
    if (s->wake_rd >= 0)
        close(s->wake_rd);
    if (s->wake_wr >= 0)
        close(s->wake_wr);
    free(s);
}

/* After a response: keep or close c (below), and answer the pipelined requests that follow
 * while they are for a probe URL.  1: the next request is complete (the caller serves it). */
int conn_release(pw_server *s, pw_conn *c, int keep_alive)
{
    return conn_release_one(s, c, keep_alive) && conn_next_probes(s, c);
}

/* Released with output pending: the reactor sends it - at the end of its turn if the
 * response is held (out_hold), else as the client takes it (WRITING). */
static void conn_output_to_reactor(pw_server *s, pw_conn *c)
{
    if (c->held)
        c->held_released = 1;
    else
        out_to_reactor(s, c);
}

int conn_release_one(pw_server *s, pw_conn *c, int keep_alive)
{
    c->requests++;
    if (s->cfg.scoreboard && c->resp_status && !c->status_page)
        pw_sb_request_done(s->cfg.scoreboard, c->resp_status, c->resp_bytes,
                           pw_now() - c->req_start);
    if (s->cfg.access_log && c->resp_status)
        pw_access_log_write(s->cfg.access_log, c);
    /* Stopping: a response framed before the stop began promised the client a persistent
     * connection, and a close now would meet the client's next request (a reset, or an empty
     * answer to it).  Such a connection is kept like an idle one (the keep-alive timeout at
     * most) and its next request is answered with Connection: close - once, so a server that
     * stops ends.  A daemon's connection is the relay's, which retries a request the daemon
     * never read, so it closes at once. */
    int stop_close = 0;
    if (atomic_load_int(&s->stopping)) {
        stop_close = s->cfg.daemon_role || c->kept_while_stopping;
        c->kept_while_stopping = 1;
    }
    if (!keep_alive || c->one_shot || c->broken || c->body_error || stop_close ||
        body_drain(s, c) != 0) {
        if (pw_conn_out_pending(c) && !c->broken) {
            c->after_output = PW_AFTER_CLOSE; /* the reactor sends the rest, then closes */
            conn_output_to_reactor(s, c);
        } else {
            conn_end(s, c);
        }
        return 0;
    }
    if (pw_conn_out_pending(c)) {
        c->after_output = PW_AFTER_KEEP; /* the reactor sends the rest, then conn_keep */
        conn_output_to_reactor(s, c);
        return 0;
    }
    return conn_keep(s, c);
}

/* The response is out and the connection is kept: the pipelined bytes that follow it are the
 * next request's.  1: that request is complete (serve it, in order), 0: back to READING. */
int conn_keep(pw_server *s, pw_conn *c)
{
    /* Keep the pipelined bytes that follow this request. */
    size_t rest = c->len - c->body_pos;
    if (s->cfg.daemon_role) {
        /* A pooled relay connection: the next request starts with its own preamble, and the
         * relay never sends it before this response is complete. */
        if (rest) {
            conn_close(s, c);
            return 0;
        }
        c->need_preamble = 1;
    }
    if (rest && c->body_pos)
        memmove(c->buf, c->buf + c->body_pos, rest);
    c->len = rest;
    c->body_pos = 0;
    if (c->cap > PW_KEEP_BUF && rest < PW_INITIAL_BUF) {
        char *b = realloc(c->buf, PW_INITIAL_BUF);
        if (b) {
            c->buf = b;
            c->cap = PW_INITIAL_BUF;
        }
    }
    conn_reset_request(s, c);
    /* the forwarded client was this request's: until the next head says otherwise, log lines
     * name the connection's peer */
    memcpy(c->peer_host, c->conn_host, sizeof c->peer_host);
    c->peer_port = c->conn_port;
    if (rest) {
        int rc = pw_parse_head(&c->req, c->buf, c->len, &s->cfg.limits);
        if (rc == PW_ERROR) {
            pw_log(s, PW_LOG_INFO, "%s:%d: bad request (%d): %s", c->peer_host, c->peer_port,
                   c->req.error_status, c->req.error_reason ? c->req.error_reason : "");
            pw_send_error(s, c, c->req.error_status ? c->req.error_status : 400);
            conn_close(s, c);
            return 0;
        }
        if (rc == PW_DONE) {
            if (conn_head_done(s, c) != 0) {
                conn_end(s, c); /* answered (413): the body may be on its way */
                return 0;
            }
            return 1; /* serve the pipelined request on this thread, in order */
        }
    }
    pthread_mutex_lock(&s->lock);
    c->idle = rest == 0;
    if (c->idle)
        __atomic_add_fetch(&s->handbacks, 1, __ATOMIC_RELAXED); /* evictable (evict_idle) */
    c->prebuffering = 0;
    c->head_start = pw_now();
    c->deadline = pw_now() + (rest ? s->cfg.header_timeout : s->cfg.keep_alive_timeout);
    atomic_store_int(&c->state, PW_CONN_READING);
    int armed = conn_arm(s, c, 0);
    if (armed != 0)
        conn_close(s, c);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

int pw_conn_release(pw_server *s, pw_conn *c, int keep_alive)
{
    int again = conn_release(s, c, keep_alive);
    if (!again)
        busy_done(s); /* c may belong to the reactor already: not touched here */
    return again;
}
