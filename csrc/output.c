/*
 * output.c -- response output: writes never wait for a slow client (what it does not take stays
 * on the connection and the reactor sends it), suspended responses, error answers.  Plain C, no Python; see server.h and reactor.h.
 */
#include "server.h"

void pw_send_error(pw_server *s, pw_conn *c, int status)
{
    send_answer(s, c, status, NULL, NULL);
}

void send_answer(pw_server *s, pw_conn *c, int status, const char *message, const char *headers)
{
    c->resp_status = status;
    if (!tls_handshaken(c))
        return; /* no HTTP before the TLS handshake: the connection just closes */
    char body[512], local[1024];
    int blen = pw_error_page(status, message, body, sizeof body);
    size_t room = sizeof local + (headers ? strlen(headers) : 0);
    char *head = room > sizeof local ? malloc(room) : local;
    if (!head) {
        head = local;
        room = sizeof local;
        headers = NULL;
    }
    int hlen = snprintf(head, room,
                        "HTTP/1.1 %d %s\r\n"
                        "Content-Type: text/html; charset=utf-8\r\n%s",
                        status, pw_status_reason(status), headers ? headers : "");
    pw_head h = {.status = status,
                 .content_length = blen,
                 .keep_alive = 0,
                 .server_line = "Server: pywsgi\r\n",
                 .extra_lines = pw_conn_hsts(s, c)};
    hlen += pw_head_finish(&h, head + hlen, (int)room - hlen);
    struct iovec iov[2] = {{head, (size_t)hlen}, {body, (size_t)blen}};
    c->resp_status = status;
    c->resp_bytes = blen;
    pw_conn_writev(s, c, iov, 2);
    conn_shut_write(c);
    if (head != local)
        free(head);
}

/* Wait until fd is ready for `events` or the timeout passes; 1 ready, 0 timeout, -1 error. */
int wait_fd(int fd, short events, double timeout)
{
    struct pollfd p = {fd, events, 0};
    int ms = timeout <= 0 ? 0 : (int)(timeout * 1000);
    for (;;) {
        int n = poll(&p, 1, ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        return n > 0 ? 1 : 0;
    }
}

/* A slow client holds no thread: what the socket does not take at once is kept on the
 * connection and sent by its owner - the worker on its next write, or the reactor (WRITING).
 * A client that takes nothing for socket_timeout, or less than send_min_rate on average over a
 * socket_timeout window (a trickle that would hold the connection for hours), is dropped. */

size_t pw_conn_out_pending(const pw_conn *c)
{
    return c->out_len - c->out_off + c->out_file_left;
}

/* Bytes the kernel holds for the client, not yet acknowledged by it (0 where unknown). */
static int kernel_queued(int fd)
{
#ifdef SIOCOUTQ
    int queued = 0;
    if (ioctl(fd, SIOCOUTQ, &queued) == 0 && queued > 0)
        return queued;
#else
    (void)fd;
#endif
    return 0;
}

/* The socket did not take everything: from now on the client's pace is measured. */
void out_slow_start(pw_conn *c)
{
    double now = pw_now();
    c->out_progress_at = c->out_window_start = now;
    c->out_window_bytes = c->out_sent = c->out_taken = 0;
    c->out_base = kernel_queued(c->fd);
}

static void out_progress(pw_conn *c, size_t n)
{
    c->out_sent += n;
}

/* Update what the client has taken (and when it last took any). */
static void out_measure(pw_conn *c, double now)
{
    int64_t taken = (int64_t)(c->out_sent + (uint64_t)c->out_base) - kernel_queued(c->fd);
    if (taken > (int64_t)c->out_taken) {
        c->out_window_bytes += (uint64_t)taken - c->out_taken;
        c->out_taken = (uint64_t)taken;
        c->out_progress_at = now;
    }
}

/* A client dropped for being too slow: its connection is reset when closed, so what the
 * kernel still holds for it (megabytes, on a fast link) is discarded, not trickled out. */
static void out_drop(pw_conn *c)
{
    struct linger now = {1, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &now, sizeof now);
}

/* Is the client too slow to keep?  1 yes (logged, and to be reset): nothing taken for
 * socket_timeout, or less than send_min_rate on average over the window that just ended
 * (then a new one starts). */
int out_too_slow(pw_server *s, pw_conn *c, double now)
{
    /* A daemon's reader is the server process, which reads only as fast as its client and
     * applies these limits to that client itself (then closes this connection). */
    if (s->cfg.daemon_role)
        return 0;
    out_measure(c, now);
    if (now - c->out_progress_at >= s->cfg.socket_timeout) {
        pw_log(s, PW_LOG_INFO,
               "%s:%d: client did not read the response in time "
               "(--socket-timeout %gs): connection closed",
               c->peer_host, c->peer_port, s->cfg.socket_timeout);
        out_drop(c);
        return 1;
    }
    double span = now - c->out_window_start;
    if (s->cfg.send_min_rate > 0 && span >= s->cfg.socket_timeout) {
        if (c->out_window_bytes < s->cfg.send_min_rate * span) {
            pw_log(s, PW_LOG_INFO,
                   "%s:%d: client read the response at %.0f bytes/s, under "
                   "--send-min-rate (%g): connection closed",
                   c->peer_host, c->peer_port, c->out_window_bytes / span, s->cfg.send_min_rate);
            out_drop(c);
            return 1;
        }
        c->out_window_start = now;
        c->out_window_bytes = 0;
    }
    return 0;
}

/* Block until the socket may take more (worker threads that cannot hand the output over);
 * 0 ready, -1 the client is too slow or gone. */
static int out_wait_writable(pw_server *s, pw_conn *c)
{
    for (;;) {
        double now = pw_now();
        if (out_too_slow(s, c, now))
            return -1;
        double t = c->out_progress_at + s->cfg.socket_timeout - now;
        double w = c->out_window_start + s->cfg.socket_timeout - now;
        if (s->cfg.send_min_rate > 0 && w < t)
            t = w;
        if (s->cfg.daemon_role)
            t = s->cfg.socket_timeout; /* (see out_too_slow) */
        int rc = wait_fd(c->fd, conn_wait_events(c, POLLOUT), t > 0.001 ? t : 0.001);
        if (rc == 1)
            return 0;
        if (rc < 0)
            return -1;
    }
}

/* Send without waiting: bytes sent, 0 when the socket is full, -1 failed. */
static ssize_t send_now(pw_conn *c, struct iovec *iov, int iovcnt)
{
    if (c->tls)
        return tls_send(c, iov, iovcnt);
    struct msghdr m = {0};
    m.msg_iov = iov;
    m.msg_iovlen = iovcnt;
    for (;;) {
        ssize_t n = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    }
}

/* Send file bytes without waiting: bytes sent, 0 when the socket is full, -1 failed (or the
 * file shrank under us). */
static ssize_t sendfile_now(pw_conn *c, int fd, off_t *off, size_t count)
{
    if (c->tls)
        return tls_sendfile(c, fd, off, count);
    for (;;) {
#ifdef __linux__
        ssize_t n = sendfile(c->fd, fd, off, count > (1u << 30) ? (1u << 30) : count);
#else
        char chunk[65536];
        ssize_t n = pread(fd, chunk, count < sizeof chunk ? count : sizeof chunk, *off);
        if (n > 0) {
            struct iovec v = {chunk, (size_t)n};
            n = send_now(c, &v, 1);
            if (n > 0)
                *off += n;
            return n;
        }
#endif
        if (n > 0)
            return n;
        if (n == 0)
            return -1;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    }
}

/* Send what is pending, as far as the socket takes it now.  0 ok (maybe not all), -1 failed. */
static int out_flush_now(pw_conn *c)
{
    while (c->out_off < c->out_len) {
        struct iovec v = {c->out + c->out_off, c->out_len - c->out_off};
        ssize_t n = send_now(c, &v, 1);
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        c->out_off += (size_t)n;
        out_progress(c, (size_t)n);
    }
    c->out_off = c->out_len = 0;
    if (c->out_cap > PW_KEEP_BUF) { /* a big response's buffer is not kept */
        free(c->out);
        c->out = NULL;
        c->out_cap = 0;
    }
    while (c->out_file_left > 0) {
        ssize_t n = sendfile_now(c, c->out_file_fd, &c->out_file_off, c->out_file_left);
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        c->out_file_left -= (size_t)n;
        out_progress(c, (size_t)n);
    }
    if (c->out_file_fd >= 0) {
        close(c->out_file_fd);
        c->out_file_fd = -1;
    }
    return 0;
}

/* Keep iov's bytes from `skip` on, after what is pending.  0 ok, -1 out of memory. */
static int out_append(pw_conn *c, const struct iovec *iov, int iovcnt, size_t skip)
{
    size_t more = 0;
    for (int i = 0; i < iovcnt; i++)
        more += iov[i].iov_len;
    more -= skip;
    if (c->out_off > 0 && c->out_len + more > c->out_cap) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    if (c->out_len + more > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 16384;
        while (cap < c->out_len + more)
            cap *= 2;
        char *b = realloc(c->out, cap);
        if (!b)
            return -1;
        c->out = b;
        c->out_cap = cap;
    }
    for (int i = 0; i < iovcnt; i++) {
        size_t len = iov[i].iov_len;
        const char *p = iov[i].iov_base;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        memcpy(c->out + c->out_len, p + skip, len - skip);
        c->out_len += len - skip;
        skip = 0;
    }
    return 0;
}

int pw_conn_out_wait(pw_server *s, pw_conn *c, size_t below)
{
    if (below == 0)
        below = 1;
    while (!c->broken) {
        if (out_flush_now(c) != 0)
            break;
        if (pw_conn_out_pending(c) < below)
            return 0;
        if (out_wait_writable(s, c) != 0)
            break;
    }
    c->broken = 1;
    return -1;
}

/* Before more output: send what is pending as far as the socket takes it now, and all of a
 * pending file range (nothing can queue behind one; rare: a file ends a response).
 * 0 ok, -1 the client failed (c->broken set). */
static int out_before_more(pw_server *s, pw_conn *c)
{
    if (c->broken)
        return -1;
    if (!pw_conn_out_pending(c))
        return 0;
    if (out_flush_now(c) != 0) {
        c->broken = 1;
        return -1;
    }
    return c->out_file_left ? pw_conn_out_wait(s, c, 1) : 0;
}

int pw_conn_send(pw_server *s, pw_conn *c, struct iovec *iov, int iovcnt)
{
    size_t sent = 0;
    if (out_before_more(s, c) != 0)
        return -1;
    if (!pw_conn_out_pending(c)) {
        ssize_t n = send_now(c, iov, iovcnt);
        if (n < 0)
            goto failed;
        size_t total = 0;
        for (int i = 0; i < iovcnt; i++)
            total += iov[i].iov_len;
        if ((size_t)n == total)
            return 0;
        sent = (size_t)n;
        out_slow_start(c);
    }
    if (out_append(c, iov, iovcnt, sent) == 0)
        return 0;
    pw_log(s, PW_LOG_ERROR, "%s:%d: out of memory for the response: connection closed",
           c->peer_host, c->peer_port);
failed:
    c->broken = 1;
    return -1;
}

int pw_conn_sendfile(pw_server *s, pw_conn *c, int fd, off_t offset, size_t count)
{
    if (out_before_more(s, c) != 0)
        return -1;
    if (!pw_conn_out_pending(c)) {
        while (count > 0) {
            ssize_t n = sendfile_now(c, fd, &offset, count);
            if (n < 0)
                goto failed;
            if (n == 0)
                break;
            count -= (size_t)n;
        }
        if (count == 0)
            return 0;
        out_slow_start(c);
    }
    /* the rest goes out later, from a descriptor of our own: the caller may close its file */
    c->out_file_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (c->out_file_fd < 0) {
        pw_log(s, PW_LOG_ERROR,
               "%s:%d: cannot keep the file for a slow client (%s): "
               "connection closed",
               c->peer_host, c->peer_port, strerror(errno));
        goto failed;
    }
    c->out_file_off = offset;
    c->out_file_left = count;
    return 0;
failed:
    c->broken = 1;
    return -1;
}

/*
 * Inline mode (--threads 1) serves every request of a reactor turn on the reactor's thread.
 * Sending each response as it is made wakes its client's thread once per response - where
 * clients and server share the cores, a good part of the whole cost (docs/benchmarks.md,
 * "Where the time goes").  Instead a small response complete in one write waits on its
 * connection until the turn's requests are served; then the turn's responses go out
 * together (out_flush_held) and their clients wake once per batch.  The wait is bounded:
 * before each next request, what has waited PW_HOLD_AGE goes out first, and holding stops
 * for a while after a request that ran PW_HOLD_SLOW (out_dispatch_holding) - so a response
 * waits at most PW_HOLD_AGE plus one request, and only once in PW_HOLD_PAUSE is that request
 * a slow one.  Nothing is held when the connection has its next request already
 * (pipelining: it follows at once), for TLS, or for a response not complete in one write
 * (streaming: every block goes out as it is made).
 *
 * Leader mode does the same per worker: a worker that completes a response while requests
 * wait in the queue - which it takes next (queue.c) - holds it in its own list
 * (worker_held) until the next request it takes was read by a later reactor turn, it goes
 * to the reactor or to sleep, or the bounds above say so (out_worker_flush).  Only for a
 * request that took PW_HOLD_MIN or more: holding a hello world's (a few µs each) measured
 * slower in leader mode, and its p99 with wrk -t1 went from under 1 ms to 3.8-6.8 ms.  A
 * held connection stays BUSY, so no other thread touches it.
 * A worker reads its thread-local list only while s->workers_holding says some worker holds:
 * in a module loaded by dlopen each thread-local access is a call (__tls_get_addr).
 */
static void output_done(pw_server *s, pw_conn *c);

static __thread pw_held worker_held;   /* leader mode: this worker's held responses */
static __thread int worker_batch_ends; /* ... and whether its current request is of a later
                                        * turn than they answer */

static pw_held *held_list(pw_server *s)
{
    return s->cfg.leader_follower ? &worker_held : &s->held;
}

/* Whether the response that c's write completes may be held. */
static int may_hold(pw_server *s, pw_conn *c)
{
    if (!s->cfg.leader_follower || s->cfg.daemon_role)
        return s->hold_turn; /* (a daemon process in leader mode: never, hold_turn is 0) */
    /* A request waits, which this worker takes next (s->queued and s->running are written
     * under qlock), and no other worker is serving one: if one is, the application let the
     * GIL go in the middle of a request (a sleep, I/O), its requests are not all quick, and
     * the next one this worker takes could keep what it holds waiting. */
    if (__atomic_load_n(&s->queued, __ATOMIC_RELAXED) == 0 ||
        __atomic_load_n(&s->running, __ATOMIC_RELAXED) > 1)
        return 0;
    double now = pw_now(), ran = now - c->served_at;
    if (ran >= PW_HOLD_SLOW) {
        /* with requests this long, a response held behind one would wait for it */
        __atomic_store_n(&s->hold_paused_until_us, (long long)((now + PW_HOLD_PAUSE) * 1e6),
                         __ATOMIC_RELAXED);
        out_worker_flush(s, 1);
        return 0;
    }
    return ran >= PW_HOLD_MIN &&
        (long long)(now * 1e6) >= __atomic_load_n(&s->hold_paused_until_us, __ATOMIC_RELAXED);
}

static void out_hold(pw_server *s, pw_conn *c)
{
    pw_held *h = held_list(s);
    c->held = 1;
    c->held_released = 0;
    c->held_next = NULL;
    if (h->tail)
        h->tail->held_next = c;
    else {
        h->head = c;
        h->since = pw_now();
        h->turn = c->turn;
        if (s->cfg.leader_follower)
            __atomic_add_fetch(&s->workers_holding, 1, __ATOMIC_RELAXED);
    }
    h->tail = c;
}

int pw_conn_send_last(pw_server *s, pw_conn *c, struct iovec *iov, int iovcnt)
{
    if (c->tls || c->broken || pw_conn_out_pending(c) || c->len > c->body_pos || !may_hold(s, c))
        return pw_conn_send(s, c, iov, iovcnt);
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    if (total > PW_HOLD_BYTES || out_append(c, iov, iovcnt, 0) != 0)
        return pw_conn_send(s, c, iov, iovcnt);
    out_hold(s, c);
    return 0;
}

/* Send the held responses of h, oldest first, and go on with each connection as its release
 * decided (a suspended response's output is the reactor's already: WRITING). */
static void flush_held(pw_server *s, pw_held *h)
{
    pw_conn *c;
    while ((c = h->head) != NULL) {
        h->head = c->held_next;
        if (!h->head) {
            h->tail = NULL;
            if (h != &s->held)
                __atomic_sub_fetch(&s->workers_holding, 1, __ATOMIC_RELAXED);
        }
        c->held = 0;
        c->held_next = NULL;
        if (!c->held_released)
            continue;
        c->held_released = 0;
        if (out_flush_now(c) != 0) {
            output_failed(s, c);
            continue;
        }
        if (pw_conn_out_pending(c)) {
            /* the client has not taken all of it: the reactor sends the rest (WRITING) */
            out_slow_start(c);
            out_to_reactor(s, c);
            continue;
        }
        output_done(s, c);
    }
}

/* Reactor, inline mode: the turn's held responses go out. */
void out_flush_held(pw_server *s)
{
    int hold = s->hold_turn;
    s->hold_turn = 0; /* a pipelined request served from here sends at once */
    flush_held(s, &s->held);
    s->hold_turn = hold;
}

/* Leader mode, a worker taking request c (queue.c, under qlock): whether the responses held
 * so far answer an earlier reactor turn's requests - then they go out before c is served
 * (out_worker_flush), as inline mode sends a turn's responses at its end. */
void out_worker_next(pw_server *s, pw_conn *c)
{
    if (__atomic_load_n(&s->workers_holding, __ATOMIC_RELAXED) && worker_held.head &&
        c->turn != worker_held.turn)
        worker_batch_ends = 1;
}

int out_worker_holding(pw_server *s)
{
    return __atomic_load_n(&s->workers_holding, __ATOMIC_RELAXED) && worker_held.head;
}

/* Leader mode, a worker between requests, not under qlock: its held responses go out if it
 * is about to poll or sleep (before_waiting), if the request it took next is of a later turn,
 * or if the oldest has waited PW_HOLD_AGE (a request that ran PW_HOLD_SLOW sends them at its
 * end: may_hold). */
void out_worker_flush(pw_server *s, int before_waiting)
{
    if (!__atomic_load_n(&s->workers_holding, __ATOMIC_RELAXED) || !worker_held.head)
        return;
    if (!before_waiting && !worker_batch_ends && pw_now() - worker_held.since < PW_HOLD_AGE)
        return;
    worker_batch_ends = 0;
    flush_held(s, &worker_held);
}

/* c is closed before its held response went out: off the list. */
void out_unhold(pw_server *s, pw_conn *c)
{
    pw_held *h = held_list(s);
    pw_conn *prev = NULL;
    for (pw_conn *x = h->head; x; prev = x, x = x->held_next) {
        if (x != c)
            continue;
        if (prev)
            prev->held_next = c->held_next;
        else
            h->head = c->held_next;
        if (h->tail == c)
            h->tail = prev;
        if (!h->head && h != &s->held)
            __atomic_sub_fetch(&s->workers_holding, 1, __ATOMIC_RELAXED);
        break;
    }
    c->held = c->held_released = 0;
    c->held_next = NULL;
}

/* Reactor, inline mode, responses being held: serve c (cfg.dispatch), what has waited
 * PW_HOLD_AGE going out first.  A request that runs PW_HOLD_SLOW or longer ends the holding:
 * what waited for it goes out now, and nothing is held for PW_HOLD_PAUSE. */
void out_dispatch_holding(pw_server *s, pw_conn *c)
{
    double start = pw_now();
    if (s->held.head && start - s->held.since >= PW_HOLD_AGE)
        out_flush_held(s);
    s->cfg.dispatch(s, c);
    double end = pw_now();
    if (end - start >= PW_HOLD_SLOW) {
        s->hold_turn = 0;
        s->held.paused_until = end + PW_HOLD_PAUSE;
        if (s->held.head)
            out_flush_held(s);
    }
}

/* Blocking: everything pending, then iov. */
int pw_conn_writev(pw_server *s, pw_conn *c, struct iovec *iov, int iovcnt)
{
    if (c->broken)
        return -1;
    if (pw_conn_out_pending(c) && pw_conn_out_wait(s, c, 1) != 0)
        return -1;
    int waited = 0;
    while (iovcnt > 0) {
        ssize_t n = send_now(c, iov, iovcnt);
        if (n < 0)
            break;
        if (n == 0) {
            if (!waited++)
                out_slow_start(c);
            if (out_wait_writable(s, c) != 0)
                break;
            continue;
        }
        if (waited)
            out_progress(c, (size_t)n);
        while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
            n -= iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov->iov_base = (char *)iov->iov_base + n;
            iov->iov_len -= n;
        }
    }
    if (iovcnt == 0)
        return 0;
    c->broken = 1;
    return -1;
}

/* Hand c's pending output to the reactor (state WRITING; c->after_output says what then). */
void out_to_reactor(pw_server *s, pw_conn *c)
{
    pthread_mutex_lock(&s->lock);
    atomic_store_int(&c->state, PW_CONN_WRITING);
    if (conn_watch(s, c, conn_out_watch(c)) != 0) {
        c->broken = 1;
        c->out_progress_at = 0; /* the next scan drops it (output_failed) */
    }
    pthread_mutex_unlock(&s->lock);
}

void pw_conn_suspend(pw_server *s, pw_conn *c)
{
    c->after_output = PW_AFTER_RESUME;
    out_to_reactor(s, c);
    busy_done(s); /* c may belong to the reactor already: not touched here */
}

/* Reactor: the WRITING connection's output is sent (or, for a suspended response, down to
 * out_low): resume the response, or do what the release decided. */
static void output_done(pw_server *s, pw_conn *c)
{
    switch (c->after_output) {
    case PW_AFTER_RESUME:
        pthread_mutex_lock(&s->lock);
        conn_unwatch(s, c);
        pthread_mutex_unlock(&s->lock);
        c->resuming = 1;
        queue_to_worker(s, c);
        break;
    case PW_AFTER_KEEP:
        /* a pipelined request was complete already (not a probe URL, answered here) */
        if (conn_keep(s, c) && conn_next_probes(s, c)) {
            pthread_mutex_lock(&s->lock);
            conn_unwatch(s, c);
            pthread_mutex_unlock(&s->lock);
            queue_push(s, c);
        }
        break;
    default: conn_end(s, c);
    }
}

/* Reactor: the client failed (gone, or too slow): a suspended response goes back to a worker
 * to be closed by its application; a relay ends (the daemon connection is closed, the daemon
 * sees its response cut); anything else is closed here. */
void output_failed(pw_server *s, pw_conn *c)
{
    c->broken = 1;
    if (c->after_output == PW_AFTER_RELAY) {
        relay_client_failed(s, c);
        return;
    }
    if (c->after_output != PW_AFTER_RESUME) {
        conn_close(s, c);
        return;
    }
    pthread_mutex_lock(&s->lock);
    conn_unwatch(s, c);
    pthread_mutex_unlock(&s->lock);
    c->resuming = 1;
    queue_to_worker(s, c);
}

/* Reactor: a WRITING connection's socket has room (or failed). */
void conn_write_ready(pw_server *s, pw_conn *c)
{
    if (out_flush_now(c) != 0) {
        output_failed(s, c);
        return;
    }
    if (c->after_output == PW_AFTER_RELAY) {
        relay_client_took(s, c);
        return;
    }
    size_t left = pw_conn_out_pending(c);
    if (c->after_output == PW_AFTER_RESUME ? left < s->cfg.out_low : left == 0) {
        output_done(s, c);
    } else if (c->tls && c->watch != conn_out_watch(c)) {
        /* TLS must read before it can write on (or the other way back) */
        pthread_mutex_lock(&s->lock);
        if (conn_watch(s, c, conn_out_watch(c)) != 0)
            c->broken = 1; /* the next scan drops it */
        pthread_mutex_unlock(&s->lock);
    }
}
