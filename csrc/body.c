/*
 * body.c -- request bodies as a worker reads them: Content-Length or chunked, limits, draining.  Plain C, no Python; see server.h and reactor.h.
 */
#include "server.h"

/* Does the client still have request-body bytes to send (the body was not read to its end)? */
int body_unread(const pw_conn *c)
{
    switch (c->req.body_kind) {
    case PW_BODY_LENGTH: return c->body_left > 0;
    case PW_BODY_CHUNKED: return !c->body_done;
    default: return 0;
    }
}

int pw_conn_release_may_wait(const pw_conn *c)
{
    if (!body_unread(c))
        return 0;
    /* a Content-Length body whose rest is in the buffer already is drained without a read */
    return !(c->req.body_kind == PW_BODY_LENGTH && c->body_left <= c->len - c->body_pos);
}

/* A chunked body is over --limit-request-body once its data so far plus what the current
 * chunk's size line still announces passes it: known before those bytes arrive. */
int chunked_over_limit(pw_server *s, uint64_t total, const pw_chunked *ch)
{
    return s->cfg.limit_request_body && total + ch->remaining > s->cfg.limit_request_body;
}

/* The 413 for a chunked body found over the limit: logged with the setting's name. */
void log_chunked_413(pw_server *s, pw_conn *c)
{
    pw_log(s, PW_LOG_INFO, "%s:%d: chunked request body over --limit-request-body (%llu): 413",
           c->peer_host, c->peer_port, (unsigned long long)s->cfg.limit_request_body);
}

/* Read more body bytes into buf (everything before body_pos is already consumed). */
static int body_fill(pw_server *s, pw_conn *c)
{
    if (c->req.expect_continue && !c->sent_continue) {
        c->sent_continue = 1;
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        struct iovec iov = {(void *)cont, sizeof cont - 1};
        if (pw_conn_writev(s, c, &iov, 1) != 0) {
            c->body_error = 499;
            return -1;
        }
    }
    if (c->body_pos == c->len) {
        c->body_pos = c->len = 0; /* the head was copied into the environ already */
    } else if (c->body_pos > 0) {
        memmove(c->buf, c->buf + c->body_pos, c->len - c->body_pos);
        c->len -= c->body_pos;
        c->body_pos = 0;
    }
    if (c->cap - c->len < 4096 && conn_grow(c, 4096) != 0) {
        c->body_error = 500;
        return -1;
    }
    for (;;) {
        ssize_t n = conn_recv_buf(c);
        if (n > 0) {
            c->len += n;
            return 0;
        }
        if (n == 0) {
            c->body_error = 400; /* the client closed before the end of its body */
            c->broken = 1;
            return -1;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int w = wait_fd(c->fd, conn_wait_events(c, POLLIN), s->cfg.body_timeout);
            if (w == 1)
                continue;
            if (w == 0) {
                pw_log(s, PW_LOG_INFO, "%s:%d: request body not received in time: 408",
                       c->peer_host, c->peer_port);
                c->body_error = 408;
                return -1;
            }
        }
        c->body_error = 400;
        c->broken = 1;
        return -1;
    }
}

ssize_t pw_body_peek(pw_server *s, pw_conn *c, const char **ptr)
{
    if (c->body_error)
        return -1;
    if (c->req.body_kind == PW_BODY_LENGTH) {
        if (c->body_left == 0)
            return 0;
        if (c->body_pos == c->len && body_fill(s, c) != 0)
            return -1;
        size_t avail = c->len - c->body_pos;
        if (avail > c->body_left)
            avail = (size_t)c->body_left;
        *ptr = c->buf + c->body_pos;
        return (ssize_t)avail;
    }
    if (c->req.body_kind != PW_BODY_CHUNKED)
        return 0;
    for (;;) {
        if (c->chunk_len > 0) {
            *ptr = c->buf + c->chunk_off;
            return (ssize_t)c->chunk_len;
        }
        if (c->body_done)
            return 0;
        size_t consumed = 0, off = 0, dlen = 0;
        int rc = pw_chunked_decode(&c->chunked, c->buf + c->body_pos, c->len - c->body_pos,
                                   &consumed, &off, &dlen, &s->cfg.limits);
        size_t base = c->body_pos;
        c->body_pos += consumed;
        if (rc == PW_CHUNK_DATA) {
            c->chunk_off = base + off;
            c->chunk_len = dlen;
            c->body_total += dlen;
        }
        if (rc != PW_ERROR && chunked_over_limit(s, c->body_total, &c->chunked)) {
            log_chunked_413(s, c);
            c->chunk_len = 0;
            c->body_error = 413;
            return -1;
        }
        if (rc == PW_CHUNK_DATA)
            continue;
        if (rc == PW_DONE) {
            c->body_done = 1;
            return 0;
        }
        if (rc == PW_ERROR) {
            pw_log(s, PW_LOG_INFO, "%s:%d: bad chunked body: %s", c->peer_host, c->peer_port,
                   c->chunked.error_reason ? c->chunked.error_reason : "");
            c->body_error = c->chunked.error_status ? c->chunked.error_status : 400;
            return -1;
        }
        if (body_fill(s, c) != 0)
            return -1;
    }
}

void pw_body_consume(pw_conn *c, size_t n)
{
    if (c->req.body_kind == PW_BODY_LENGTH) {
        c->body_pos += n;
        c->body_left -= n;
    } else {
        c->chunk_off += n;
        c->chunk_len -= n;
    }
}

/* Read and discard the rest of the body, so the next request on the connection is framed
 * right; gives up (returns -1: close) past PW_DRAIN_LIMIT or on any error. */
int body_drain(pw_server *s, pw_conn *c)
{
    if (c->req.body_kind == PW_BODY_LENGTH && c->body_left > PW_DRAIN_LIMIT)
        return -1;
    /* Nothing was read and the client waits for 100 Continue: it will not send the body. */
    if (c->req.expect_continue && !c->sent_continue) {
        if (c->req.body_kind == PW_BODY_CHUNKED || c->body_left > c->len - c->body_pos)
            return -1;
    }
    size_t drained = 0;
    for (;;) {
        const char *p;
        ssize_t n = pw_body_peek(s, c, &p);
        if (n == 0)
            return 0;
        if (n < 0)
            return -1;
        pw_body_consume(c, (size_t)n);
        drained += (size_t)n;
        if (drained > PW_DRAIN_LIMIT)
            return -1;
    }
}
