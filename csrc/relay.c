/* relay.c -- see relay.h.  Daemon mode: server process -> daemon process group and back. */
#include "relay.h"

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

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int wait_ready(int fd, short events, double deadline)
{
    for (;;) {
        double left = deadline - now_mono();
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
    double deadline = now_mono() + timeout;
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
    double deadline = now_mono() + t->queue_timeout;
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
        if (now_mono() >= deadline) {
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

int pw_relay(pw_server *s, pw_conn *c, const pw_relay_target *t, int *status_out)
{
    const pw_config *cfg = pw_server_config(s);
    *status_out = 0;
    int fd = daemon_connect(t, status_out);
    if (fd < 0) {
        pw_log(s, PW_LOG_ERROR, "%s:%d: no daemon process of %s accepted the request in time: %d",
               c->peer_host, c->peer_port, t->socket_path, *status_out);
        pw_send_error(s, c, *status_out);
        return 0;
    }

    /* preamble + head */
    unsigned char pre[PW_PREAMBLE_FIXED + 64];
    size_t alen = strlen(c->peer_host);
    if (alen > 63)
        alen = 63;
    uint16_t plen = (uint16_t)(PW_PREAMBLE_FIXED + alen), port = (uint16_t)c->peer_port, zero = 0;
    double enq = now_mono();
    memcpy(pre, PW_PREAMBLE_MAGIC, 4);
    memcpy(pre + 4, &plen, 2);
    pre[6] = PW_PREAMBLE_EXPECT_HANDLED;
    pre[7] = (unsigned char)alen;
    memcpy(pre + 8, &port, 2);
    memcpy(pre + 10, &zero, 2);
    memcpy(pre + 12, &enq, 8);
    memcpy(pre + PW_PREAMBLE_FIXED, c->peer_host, alen);
    struct iovec iov[2] = {{pre, plen}, {c->buf, c->req.head_len}};
    int body_ok = 1;
    if (daemon_writev(fd, iov, 2, t->response_timeout) != 0) {
        body_ok = 0;
    } else {
        int rc = send_body(s, c, fd, t->response_timeout);
        if (rc == -1) {  /* the client failed us (bad chunk, timeout, gone) */
            close(fd);
            int st = c->body_error;
            if (st && st != 499 && !c->broken)
                pw_send_error(s, c, st);
            return 0;
        }
        body_ok = rc == 0;  /* -2: the daemon stopped reading; its answer still counts */
    }
    shutdown(fd, SHUT_WR);

    /* relay the response */
    char buf[65536];
    size_t relayed = 0, head_seen = 0;
    int close_after = !body_ok, head_done = 0;
    double deadline = now_mono() + t->response_timeout;
    for (;;) {
        ssize_t n = recv(fd, buf + head_seen, sizeof buf - head_seen, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                int w = wait_ready(fd, POLLIN, deadline);
                if (w == 1)
                    continue;
                if (w == 0 && relayed == 0 && head_seen == 0) {
                    pw_log(s, PW_LOG_ERROR, "%s:%d: the daemon process did not answer in "
                           "time: 504", c->peer_host, c->peer_port);
                    *status_out = 504;
                    pw_send_error(s, c, 504);
                    close(fd);
                    return 0;
                }
            }
            break;
        }
        if (n == 0)
            break;
        deadline = now_mono() + t->response_timeout;
        size_t avail = head_seen + (size_t)n;
        if (!head_done) {
            /* Hold the bytes until the whole head is here, to read its Connection header. */
            void *end = memmem(buf, avail, "\r\n\r\n", 4);
            if (!end && avail < sizeof buf) {
                head_seen = avail;
                continue;
            }
            size_t hlen = end ? (size_t)((char *)end - buf) + 4 : avail;
            if (memmem(buf, hlen, "\r\nConnection: close\r\n", 21))
                close_after = 1;
            if (avail > 12 && memcmp(buf, "HTTP/1.", 7) == 0)
                c->resp_status = atoi(buf + 9);
            c->resp_bytes = -(long long)hlen;  /* the body's bytes are what follows the head */
            head_done = 1;
            head_seen = 0;
        }
        struct iovec out = {buf, avail};
        if (pw_conn_writev(s, c, &out, 1) != 0) {
            close(fd);
            return 0;
        }
        relayed += avail;
        c->resp_bytes += avail;
        head_seen = 0;
    }
    close(fd);
    if (relayed == 0) {
        pw_log(s, PW_LOG_ERROR, "%s:%d: the daemon process closed without a response "
               "(it may have died): 502", c->peer_host, c->peer_port);
        *status_out = 502;
        pw_send_error(s, c, 502);
        return 0;
    }
    (void)cfg;
    return !close_after && c->req.keep_alive;
}

int pw_preamble_parse(pw_conn *c)
{
    if (c->len < 6)
        return memcmp(c->buf, PW_PREAMBLE_MAGIC, c->len < 4 ? c->len : 4) == 0 ? 0 : -1;
    if (memcmp(c->buf, PW_PREAMBLE_MAGIC, 4) != 0)
        return -1;
    uint16_t plen;
    memcpy(&plen, c->buf + 4, 2);
    if (plen < PW_PREAMBLE_FIXED || plen > PW_PREAMBLE_FIXED + 63)
        return -1;
    if (c->len < plen)
        return 0;
    unsigned alen = (unsigned char)c->buf[7];
    if (PW_PREAMBLE_FIXED + alen != plen)
        return -1;
    uint16_t port;
    memcpy(&port, c->buf + 8, 2);
    memcpy(&c->enqueued_at, c->buf + 12, 8);
    memcpy(c->peer_host, c->buf + PW_PREAMBLE_FIXED, alen);
    c->peer_host[alen] = 0;
    c->peer_port = port;
    c->expect_handled = (c->buf[6] & PW_PREAMBLE_EXPECT_HANDLED) != 0;
    return plen;
}
