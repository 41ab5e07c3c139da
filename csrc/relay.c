/* relay.c -- see relay.h.  Daemon mode: server process -> daemon process group and back. */
#include "relay.h"
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef MSG_NOSIGNAL
#  define MSG_NOSIGNAL 0
#endif

static int wait_ready(int fd, short events, double deadline)
{
    for (;;) {
        double left = deadline - pw_now();
        if (left <= 0)
            return 0;
        struct pollfd p = {fd, events, 0};
        int n = poll(&p, 1, (int)(left * 1000) + 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n > 0)
            return 1;
    }
}

/* Write all of iov to the daemon socket; 0 ok, -1 failed (daemon gone or stuck). */
static int daemon_writev(int fd, struct iovec *iov, int cnt, double timeout)
{
    double deadline = pw_now() + timeout;
    while (cnt > 0) {
        struct msghdr m = {0};
        m.msg_iov = iov;
        m.msg_iovlen = cnt;
        ssize_t n = sendmsg(fd, &m, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if ((errno == EAGAIN || errno == EWOULDBLOCK) && wait_ready(fd, POLLOUT, deadline) == 1)
                continue;
            return -1;
        }
        while (cnt > 0 && (size_t)n >= iov->iov_len) {
            n -= iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + n;
            iov->iov_len -= n;
        }
    }
    return 0;
}

/* Connect to the group's socket; the master holds it listening, so a restarting group only
 * means waiting in its backlog.  A full backlog (EAGAIN) is retried until the queue timeout. */
static int daemon_connect(const pw_relay_target *t, int *status)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(t->socket_path) >= sizeof sa.sun_path) {
        *status = 500;
        return -1;
    }
    strcpy(sa.sun_path, t->socket_path);
    double deadline = pw_now() + t->queue_timeout;
    for (;;) {
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0) {
            *status = 503;
            return -1;
        }
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
            return fd;
        int err = errno;
        close(fd);
        if (err != EAGAIN && err != ECONNREFUSED && err != ENOENT && err != EINTR) {
            *status = 503;
            return -1;
        }
        if (pw_now() >= deadline) {
            *status = 503;
            return -1;
        }
        struct timespec pause = {0, 5 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
}

static int send_body(pw_server *s, pw_conn *c, int fd, double timeout)
{
    int chunked = c->req.body_kind == PW_BODY_CHUNKED;
    for (;;) {
        const char *p;
        ssize_t n = pw_body_peek(s, c, &p);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        char size_line[24];
        struct iovec iov[3];
        int cnt = 0;
        if (chunked) {
            int l = snprintf(size_line, sizeof size_line, "%zx\r\n", (size_t)n);
            iov[cnt++] = (struct iovec){size_line, (size_t)l};
        }
        iov[cnt++] = (struct iovec){(void *)p, (size_t)n};
        if (chunked)
            iov[cnt++] = (struct iovec){"\r\n", 2};
        pw_body_consume(c, (size_t)n);
        if (daemon_writev(fd, iov, cnt, timeout) != 0)
            return -2;
    }
    if (chunked) {
        struct iovec end = {"0\r\n\r\n", 5};
        if (daemon_writev(fd, &end, 1, timeout) != 0)
            return -2;
    }
    return 0;
}

/* m: one buffer (iov) and room for ancillary data (the descriptor of a file record). */
static void message_with_control(struct msghdr *m, struct iovec *iov, void *control, size_t size)
{
    memset(m, 0, sizeof *m);
    m->msg_iov = iov;
    m->msg_iovlen = 1;
    m->msg_control = control;
    m->msg_controllen = size;
}

/* The first read of a response: like recv(), but takes a descriptor passed with a file record.
 * Returns the bytes read into buf (0 when it was only the record: *file_fd is then set), -1 with
 * errno as recv(), -2 for a malformed record. */
static ssize_t recv_file_record(int fd, char *buf, size_t cap, int *file_fd, long long *offset,
                                long long *count)
{
    union {
        struct cmsghdr align;
        char space[CMSG_SPACE(sizeof(int) * 4)];
    } control;
    struct iovec iov = {buf, cap};
    struct msghdr m;
    message_with_control(&m, &iov, control.space, sizeof control.space);
#ifdef MSG_CMSG_CLOEXEC
    ssize_t n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
#else
    ssize_t n = recvmsg(fd, &m, 0);
#endif
    if (n < 0)
        return -1;
    int got = -1, extra = 0;
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
        if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
            continue;
        int fds[4];
        size_t k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        memcpy(fds, CMSG_DATA(h), k * sizeof(int));
        for (size_t i = 0; i < k; i++) {
            if (got < 0)
                got = fds[i];
            else {
                close(fds[i]);
                extra = 1;
            }
        }
    }
    int is_record = n >= PW_FILE_RECORD && memcmp(buf, PW_FILE_MAGIC, 4) == 0;
    if (got < 0 && !is_record)
        return n; /* the usual case: the head's first bytes */
    if (got < 0 || !is_record || extra || (m.msg_flags & MSG_CTRUNC) || n != PW_FILE_RECORD) {
        if (got >= 0)
            close(got);
        return -2;
    }
    memcpy(offset, buf + 8, 8);
    memcpy(count, buf + 16, 8);
    if (*offset < 0 || *count <= 0) {
        close(got);
        return -2;
    }
    *file_fd = got;
    return 0;
}

int pw_daemon_send_file(pw_server *s, pw_conn *c, int fd, long long offset, long long count)
{
    (void)s;
    char record[PW_FILE_RECORD];
    memset(record, 0, sizeof record);
    memcpy(record, PW_FILE_MAGIC, 4);
    memcpy(record + 8, &offset, 8);
    memcpy(record + 16, &count, 8);
    union {
        struct cmsghdr align;
        char space[CMSG_SPACE(sizeof(int))];
    } control;
    memset(&control, 0, sizeof control);
    struct iovec iov = {record, sizeof record};
    struct msghdr m;
    message_with_control(&m, &iov, control.space, sizeof control.space);
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(h), &fd, sizeof(int));
    double deadline = pw_now() + 30.0;
    for (;;) {
        /* 24 bytes into an empty socket buffer: one message, all or nothing in practice */
        ssize_t n = sendmsg(c->fd, &m, MSG_NOSIGNAL);
        if (n == (ssize_t)sizeof record)
            return 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
            wait_ready(c->fd, POLLOUT, deadline) == 1)
            continue;
        c->broken = 1;
        return -1;
    }
}

size_t build_preamble(pw_server *s, pw_conn *c, int pooled, unsigned char *pre, const char **vars,
                      size_t *vars_len)
{
    size_t alen = strlen(c->peer_host);
    if (alen > 63)
        alen = 63;
    *vars = NULL;
    *vars_len = 0;
    if (s->cfg.ssl_environ) {
        *vars = pw_conn_ssl_vars(c, vars_len);
        if (*vars_len > PW_PREAMBLE_VARS_MAX) {
            *vars = NULL;
            *vars_len = 0;
        }
    }
    uint16_t plen = (uint16_t)(PW_PREAMBLE_FIXED + alen + *vars_len), port = (uint16_t)c->peer_port,
             vlen = (uint16_t)*vars_len;
    double enq = pw_now();
    memcpy(pre, PW_PREAMBLE_MAGIC, 4);
    memcpy(pre + 4, &plen, 2);
    pre[6] = PW_PREAMBLE_EXPECT_HANDLED | (pooled ? PW_PREAMBLE_KEEP : 0) |
        (c->proxy_trusted ? PW_PREAMBLE_PROXY_TRUSTED : 0) |
        (c->fwd_https == 1 ? PW_PREAMBLE_HTTPS : 0) |
        /* the daemon frames the client's response; a stopping server process closes the
              * client's connection after it, so the head must say Connection: close */
        (pw_server_stopping(s) ? PW_PREAMBLE_CLIENT_CLOSES : 0);
    pre[7] = (unsigned char)alen;
    memcpy(pre + 8, &port, 2);
    memcpy(pre + 10, &vlen, 2);
    memcpy(pre + 12, &enq, 8);
    memcpy(pre + PW_PREAMBLE_FIXED, c->peer_host, alen);
    return PW_PREAMBLE_FIXED + alen;
}

/* ---------------------------------------------------------------- relaying the response
 * The daemon's response is copied to the client as it comes, following its framing: the
 * client connection is kept only when the response arrived whole (a daemon that dies half-way
 * must not leave a truncated response on a connection that looks reusable).  The progress
 * lives in c->rp, so a relay thread (pw_relay) and the reactor (relay_async.c) run the
 * same steps, and the reactor carries on where a thread stopped: writes to the client never
 * wait (pw_conn_send); past cfg.out_high pending, the reader stops until the client has
 * taken most of it - and a thread hands the relay to the reactor rather than wait. */

void pw_relay_progress_init(pw_conn *c, int pooled, int reused)
{
    struct pw_relay_progress *rp = &c->rp;
    free(rp->head);
    memset(rp, 0, sizeof *rp);
    rp->pooled = pooled;
    rp->reused = reused;
    rp->body = RP_BODY_UNTIL_CLOSE;
    rp->file_fd = -1;
    rp->is_head = c->req.method.len == 4 && memcmp(c->buf + c->req.method.off, "HEAD", 4) == 0;
    pw_chunked_init(&rp->chunks);
}

void pw_relay_progress_free(pw_conn *c)
{
    free(c->rp.head);
    c->rp.head = NULL;
    c->rp.head_len = 0;
    if (c->rp.file_fd >= 0)
        close(c->rp.file_fd);
    c->rp.file_fd = -1;
}

#define RP_HEAD_MAX 65536

/* The response head is whole (hlen bytes of rp->head): note its status, Connection: close and
 * framing (the daemon is pywsgi's own core, so its framing headers have one spelling). */
static void rp_head_done(pw_conn *c, size_t hlen)
{
    struct pw_relay_progress *rp = &c->rp;
    const char *h = rp->head;
    if (memmem(h, hlen, "\r\nConnection: close\r\n", 21))
        rp->close_after = 1;
    if (rp->head_len > 12 && memcmp(h, "HTTP/1.", 7) == 0)
        c->resp_status = atoi(h + 9);
    c->resp_bytes = -(long long)hlen; /* the body's bytes are what follows the head */
    rp->head_done = 1;
    const char *cl = memmem(h, hlen, "\r\nContent-Length: ", 18);
    int st = c->resp_status;
    if (rp->is_head || (st >= 100 && st < 200) || st == 204 || st == 304) {
        rp->body = RP_BODY_NONE;
    } else if (cl) {
        rp->body = RP_BODY_LENGTH;
        rp->left = strtoll(cl + 18, NULL, 10);
    } else if (memmem(h, hlen, "\r\nTransfer-Encoding: chunked\r\n", 30)) {
        rp->body = RP_BODY_CHUNKED;
    } else {
        rp->close_after = 1; /* close-delimited */
    }
    if (rp->body == RP_BODY_NONE || (rp->body == RP_BODY_LENGTH && rp->left == 0))
        rp->complete = 1;
}

/* Follow the response body's framing over the bytes relayed: sets rp->complete at its end. */
static void rp_track(struct pw_relay_progress *rp, const char *p, size_t n)
{
    if (rp->complete || n == 0)
        return;
    if (rp->body == RP_BODY_LENGTH) {
        rp->left -= (long long)n;
        if (rp->left <= 0)
            rp->complete = 1;
    } else if (rp->body == RP_BODY_CHUNKED) {
        pw_limits limits;
        pw_limits_default(&limits);
        while (n > 0) {
            size_t used = 0, off = 0, dlen = 0;
            int rc = pw_chunked_decode(&rp->chunks, p, n, &used, &off, &dlen, &limits);
            if (rc == PW_DONE) {
                rp->complete = 1;
                return;
            }
            if (rc == PW_ERROR || used == 0)
                return; /* not framed as we think: never complete, so the connection closes */
            p += used;
            n -= used;
        }
    }
}

/* n response bytes read from the daemon: the head is held until it is whole, then everything
 * goes to the client as it comes (never waiting: what it does not take stays pending), and a
 * passed file after the head.  0 ok, -1 the client failed. */
int rp_take(pw_server *s, pw_conn *c, const char *buf, size_t n)
{
    struct pw_relay_progress *rp = &c->rp;
    rp->relayed += (long long)n;
    if (!rp->head_done) {
        size_t room = RP_HEAD_MAX - rp->head_len, take = n < room ? n : room;
        char *h = realloc(rp->head, rp->head_len + take);
        if (!h)
            return -1;
        rp->head = h;
        memcpy(h + rp->head_len, buf, take);
        rp->head_len += take;
        buf += take;
        n -= take;
        char *end = memmem(h, rp->head_len, "\r\n\r\n", 4);
        if (!end && rp->head_len < RP_HEAD_MAX)
            return 0; /* hold the bytes until the whole head is here */
        size_t hlen = end ? (size_t)(end - h) + 4 : rp->head_len;
        rp_head_done(c, hlen);
        rp_track(rp, h + hlen, rp->head_len - hlen);
        struct iovec out[2] = {{h, rp->head_len}, {(void *)buf, n}};
        c->resp_bytes += (long long)rp->head_len;
        rp_track(rp, buf, n);
        int rc = pw_conn_send(s, c, out, n ? 2 : 1);
        c->resp_bytes += (long long)n;
        free(rp->head);
        rp->head = NULL;
        rp->head_len = 0;
        if (rc != 0)
            return -1;
    } else if (n > 0) {
        rp_track(rp, buf, n);
        struct iovec out = {(void *)buf, n};
        if (pw_conn_send(s, c, &out, 1) != 0)
            return -1;
        c->resp_bytes += (long long)n;
    }
    if (rp->head_done && rp->file_fd >= 0) {
        int rc = rp->body == RP_BODY_LENGTH
            ? pw_conn_sendfile(s, c, rp->file_fd, (off_t)rp->file_off, (size_t)rp->file_count)
            : -1;
        close(rp->file_fd);
        rp->file_fd = -1;
        if (rc != 0)
            return -1;
        rp->relayed += rp->file_count;
        c->resp_bytes += rp->file_count;
        rp->left -= rp->file_count;
        if (rp->left <= 0)
            rp->complete = 1;
    }
    return 0;
}

/* The daemon closed its end: is that the response's end (close-delimited), or a failure?
 * PW_RA_DONE or PW_RA_FAILED (a 502 answered when it sent nothing at all). */
int rp_eof(pw_server *s, pw_conn *c, int *keep, int *status_out)
{
    struct pw_relay_progress *rp = &c->rp;
    *keep = 0;
    if (rp->relayed == 0) {
        pw_log(s, PW_LOG_ERROR,
               "%s:%d: the daemon process closed without a response "
               "(it may have died): 502",
               c->peer_host, c->peer_port);
        *status_out = 502;
        pw_send_error(s, c, 502);
        return PW_RA_FAILED;
    }
    if (rp->head_done && rp->body == RP_BODY_UNTIL_CLOSE)
        return PW_RA_DONE;
    pw_log(s, PW_LOG_ERROR,
           "%s:%d: the daemon process's response ended early (it may have "
           "died): client connection closed",
           c->peer_host, c->peer_port);
    return PW_RA_FAILED;
}

/* Read from the daemon without waiting: like recv() (>0 bytes, 0 end, -1 errno), but the
 * first read may bring a file record with a descriptor: RP_FILE_ONLY when that was all,
 * RP_MALFORMED for a bad one (502 answered). */
ssize_t rp_recv(pw_server *s, pw_conn *c, int fd, char *buf, size_t cap, int *status_out)
{
    struct pw_relay_progress *rp = &c->rp;
    if (rp->relayed > 0 || rp->file_fd >= 0)
        return recv(fd, buf, cap, MSG_DONTWAIT);
    ssize_t n = recv_file_record(fd, buf, cap, &rp->file_fd, &rp->file_off, &rp->file_count);
    if (n == -2) {
        pw_log(s, PW_LOG_ERROR, "%s:%d: malformed file record from the daemon process: 502",
               c->peer_host, c->peer_port);
        *status_out = 502;
        pw_send_error(s, c, 502);
        return RP_MALFORMED;
    }
    if (n == 0 && rp->file_fd >= 0)
        return RP_FILE_ONLY; /* the record alone: the head follows */
    return n;
}

/* This thread's idle pooled connection per group, as fd + 1 (0: none), and when it was opened. */
static __thread int pool_fds[PW_RELAY_POOL_SLOTS];
static __thread double pool_since[PW_RELAY_POOL_SLOTS];

/* Wait until the daemon has bytes for us, flushing the client's pending output meanwhile;
 * 1 ready, 0 the deadline passed, -1 the client failed. */
static int wait_daemon(pw_server *s, pw_conn *c, int fd, double deadline)
{
    for (;;) {
        double left = deadline - pw_now();
        if (left <= 0)
            return 0;
        struct pollfd p[2] = {{fd, POLLIN, 0}, {c->fd, conn_wait_events(c, POLLOUT), 0}};
        int n = poll(p, pw_conn_out_pending(c) ? 2 : 1, (int)(left * 1000) + 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (p[0].revents)
            return 1;
        if (n > 0) { /* the client took some: send it more (never waiting) */
            struct iovec none = {NULL, 0};
            if (pw_conn_send(s, c, &none, 0) != 0)
                return -1;
        }
    }
}

int pw_relay(pw_server *s, pw_conn *c, const pw_relay_target *t, int *status_out)
{
    *status_out = 0;
    /* Only body-less requests use pooled connections: a body may be streamed from the client
     * and could not be sent again if a reused connection turned out dead. */
    int pooled =
        t->pool_slot >= 0 && t->pool_slot < PW_RELAY_POOL_SLOTS && c->req.body_kind == PW_BODY_NONE;
    int reused = 0, fd = -1;
    double since = 0; /* when fd was opened (0: by this call) */
    int body_ok = 1;
    if (pooled && pool_fds[t->pool_slot] > 0) {
        fd = pool_fds[t->pool_slot] - 1;
        pool_fds[t->pool_slot] = 0;
        since = pool_since[t->pool_slot];
        reused = 1;
        if (pw_now() - since > PW_RELAY_POOL_RENEW) {
            close(fd); /* renewed: the next daemon in turn takes the new one */
            fd = -1;
            reused = 0;
        }
    }
again:
    if (fd < 0) {
        fd = daemon_connect(t, status_out);
        since = 0;
    }
    if (fd < 0) {
        pw_log(s, PW_LOG_ERROR, "%s:%d: no daemon process of %s accepted the request in time: %d",
               c->peer_host, c->peer_port, t->socket_path, *status_out);
        pw_send_error(s, c, *status_out);
        return 0;
    }

    /* preamble + head */
    unsigned char pre[PW_PREAMBLE_FIXED + 64];
    const char *vars;
    size_t vars_len;
    size_t plen = build_preamble(s, c, pooled, pre, &vars, &vars_len);
    struct iovec iov[3] = {{pre, plen}, {(void *)vars, vars_len}, {c->buf, c->req.head_len}};
    if (daemon_writev(fd, iov, 3, t->response_timeout) != 0) {
        if (reused) { /* the daemon closed its end while the connection was idle */
            close(fd);
            fd = -1;
            reused = 0;
            goto again;
        }
        body_ok = 0;
    } else if (!pooled) {
        int rc = send_body(s, c, fd, t->response_timeout);
        if (rc == -1) { /* the client failed us (bad chunk, timeout, gone) */
            close(fd);
            int st = c->body_error;
            if (st && st != 499 && !c->broken)
                pw_send_error(s, c, st);
            return 0;
        }
        body_ok = rc == 0; /* -2: the daemon stopped reading; its answer still counts */
    }
    if (!pooled)
        shutdown(fd, SHUT_WR);

    pw_relay_progress_init(c, pooled, reused);
    c->rp.close_after = !body_ok;
    double deadline = pw_now() + t->response_timeout;
    char buf[65536];
    int keep = 0, rc;
    for (;;) {
        if (pw_conn_out_pending(c) >= pw_server_config(s)->out_high) {
            /* the client is slow: the reactor relays the rest, this thread moves on */
            c->rp.pooled = 0; /* (the pool is this thread's) */
            c->relay_fd = fd;
            c->relay_timeout = t->response_timeout;
            pw_relay_handoff(s, c);
            return PW_RELAY_HANDED;
        }
        int w = wait_daemon(s, c, fd, deadline);
        if (w < 0) {
            rc = PW_RA_FAILED;
            break;
        }
        if (w == 0) {
            if (c->rp.relayed == 0) {
                pw_log(s, PW_LOG_ERROR, "%s:%d: the daemon process did not answer in time: 504",
                       c->peer_host, c->peer_port);
                *status_out = 504;
                pw_send_error(s, c, 504);
            } else {
                pw_log(s, PW_LOG_ERROR,
                       "%s:%d: the daemon process's response stalled: client "
                       "connection closed",
                       c->peer_host, c->peer_port);
            }
            rc = PW_RA_FAILED;
            break;
        }
        ssize_t n = rp_recv(s, c, fd, buf, sizeof buf, status_out);
        if (n == RP_MALFORMED) {
            rc = PW_RA_FAILED;
            break;
        }
        if (n == RP_FILE_ONLY)
            continue;
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            if (errno == ECONNRESET && reused && c->rp.relayed == 0 && c->rp.file_fd < 0) {
                /* closed by the daemon with our request unread: it never saw it */
                close(fd);
                fd = -1;
                reused = 0;
                goto again;
            }
            n = 0; /* a reset: as an end, which says whether it cut the response */
        }
        deadline = pw_now() + t->response_timeout;
        if (n == 0) {
            rc = rp_eof(s, c, &keep, status_out);
            break;
        }
        if (rp_take(s, c, buf, (size_t)n) != 0) {
            rc = PW_RA_FAILED;
            break;
        }
        if (c->rp.complete) {
            rc = PW_RA_DONE;
            keep = !c->rp.close_after && c->req.keep_alive;
            break;
        }
    }
    int whole = rc == PW_RA_DONE && c->rp.complete && c->rp.body != RP_BODY_UNTIL_CLOSE;
    if (pooled && whole && pool_fds[t->pool_slot] == 0) {
        pool_fds[t->pool_slot] = fd + 1; /* the daemon keeps it for the next request */
        pool_since[t->pool_slot] = since ? since : pw_now();
    } else {
        close(fd);
    }
    pw_relay_progress_free(c);
    return rc == PW_RA_DONE ? keep : 0;
}

int pw_preamble_parse(pw_conn *c)
{
    if (c->len < 6)
        return memcmp(c->buf, PW_PREAMBLE_MAGIC, c->len < 4 ? c->len : 4) == 0 ? 0 : -1;
    if (memcmp(c->buf, PW_PREAMBLE_MAGIC, 4) != 0)
        return -1;
    uint16_t plen, vlen;
    memcpy(&plen, c->buf + 4, 2);
    if (plen < PW_PREAMBLE_FIXED || plen > PW_PREAMBLE_FIXED + 63 + PW_PREAMBLE_VARS_MAX)
        return -1;
    if (c->len < plen)
        return 0;
    unsigned alen = (unsigned char)c->buf[7];
    memcpy(&vlen, c->buf + 10, 2);
    if (alen > 63 || vlen > PW_PREAMBLE_VARS_MAX || PW_PREAMBLE_FIXED + alen + vlen != plen)
        return -1;
    uint16_t port;
    memcpy(&port, c->buf + 8, 2);
    memcpy(&c->enqueued_at, c->buf + 12, 8);
    memcpy(c->peer_host, c->buf + PW_PREAMBLE_FIXED, alen);
    c->peer_host[alen] = 0;
    c->peer_port = port;
    c->expect_handled = (c->buf[6] & PW_PREAMBLE_EXPECT_HANDLED) != 0;
    c->one_shot = (c->buf[6] & PW_PREAMBLE_KEEP) == 0;
    free(c->ssl_vars); /* (a pooled connection: the previous request's) */
    c->ssl_vars = NULL;
    c->ssl_vars_len = 0;
    if (vlen) {
        c->ssl_vars = malloc(vlen);
        if (!c->ssl_vars)
            return -1;
        memcpy(c->ssl_vars, c->buf + PW_PREAMBLE_FIXED + alen, vlen);
        c->ssl_vars_len = vlen;
    }
    return plen;
}
