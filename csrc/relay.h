/*
 * relay.h -- daemon mode, the server-process side: forward one request to a daemon process
 * group over a UNIX-domain socket and relay the response to the client.  Plain C, called by
 * a worker with the GIL released; the server process runs no Python for the request.
 *
 * Wire format to the daemon, per request, on a fresh or pooled UNIX connection:
 *   preamble (below)  +  the client's request head, byte for byte  +  the body, re-framed
 *   (Content-Length bodies as they are, chunked bodies re-chunked, trailers dropped).
 * The daemon is pywsgi's own core in daemon role: it reads the preamble (which carries the
 * client's address, so REMOTE_ADDR is the client's), serves the request exactly as embedded
 * mode would frame it for the client, and then closes -- or, on a pooled connection (preamble
 * flag KEEP) after a self-delimited response, waits for the next preamble.  The response bytes
 * are already the client's response; the relay copies them and notes `Connection: close`.
 *
 * Preamble (host byte order: both ends are on one machine):
 *   "PWD1" | u16 length of the whole preamble | u8 flags | u8 address length |
 *   u16 client port | u16 length of the SSL variables | f64 enqueued at (CLOCK_MONOTONIC
 *   seconds) | address | SSL variables ("NAME\0VALUE\0..." of an https client with
 *   --ssl-environ, tls.h)
 */
#ifndef PW_RELAY_H
#define PW_RELAY_H

#include "reactor.h"

#define PW_PREAMBLE_MAGIC "PWD1"
#define PW_PREAMBLE_FIXED 20
#define PW_PREAMBLE_VARS_MAX 8192    /* the SSL variables, at most */
#define PW_PREAMBLE_EXPECT_HANDLED 1 /* the server process answers Expect: 100-continue */
#define PW_PREAMBLE_KEEP 2          /* pooled connection: keep it after a self-delimited response */
#define PW_PREAMBLE_PROXY_TRUSTED 4 /* came through a trusted proxy (docs/proxies.md) */
#define PW_PREAMBLE_HTTPS 8 /* the client used https (TLS here, or a trusted proxy said so) */
#define PW_PREAMBLE_CLIENT_CLOSES \
    16 /* the server process is stopping and closes the client
                                          connection after this response: frame it so
                                          (Connection: close), as if the client had asked */

/* wsgi.file_wrapper in a daemon: instead of copying the file through the UNIX socket, the
 * daemon sends, as the very first bytes of its response, a file record with the open file
 * descriptor attached (SCM_RIGHTS), then the response head and no body bytes; the relay
 * sendfile()s the file to the client.  Record: "PWF1" | u32 reserved | i64 offset | i64 count. */
#define PW_FILE_MAGIC "PWF1"
#define PW_FILE_RECORD 24

/* Each relay thread keeps one idle connection per daemon group (pool slot) for requests without
 * a body, so a relayed GET costs no connect/accept/close.  A reused connection that turns out to
 * be closed by its daemon before it read the request (EPIPE on write, ECONNRESET on read -- Linux
 * reports a reset when a UNIX socket is closed with unread data) is retried once on a fresh one:
 * the daemon never saw it.  An EOF after the daemon read it is a 502, as without pooling. */
#define PW_RELAY_POOL_SLOTS 32

/* A pooled connection reaches the daemon process that accepted it, for as long as it lives.  So
 * that a light load keeps reaching every daemon of a group after one restarted (recycling,
 * a crash, a reload: meanwhile the others took its connections), a pooled connection is replaced
 * by a new one once it is this many seconds old; the daemons take new connections in turn
 * (reactor_accept in reactor.c).  A connect per pooled connection every few seconds. */
#define PW_RELAY_POOL_RENEW 5.0

typedef struct pw_relay_target {
    const char *socket_path; /* the group's listening UNIX socket */
    double queue_timeout;    /* how long the connect may wait for the group */
    double response_timeout; /* longest wait for the next byte of the daemon's response */
    int pool_slot;           /* 0..PW_RELAY_POOL_SLOTS-1: pool idle connections; -1: never */
    int processes;           /* the group's daemon processes: the reactor's pool spreads its
                                  requests over that many connections at least */
} pw_relay_target;

/*
 * Relay the request in c (head complete, body not read yet).  Returns 1 when the client
 * connection may be kept, 0 when it must be closed.  When the daemon fails before any byte
 * of its response, the client gets 502 (the daemon died), 503 (no daemon accepted within the
 * queue timeout) or 504 (no answer in time) from here, and *status_out says which; otherwise
 * *status_out is 0.
 */
int pw_relay(pw_server *s, pw_conn *c, const pw_relay_target *t, int *status_out);
/* ... or PW_RELAY_HANDED: the client is slow, and the reactor relays the rest of the response
 * (pw_relay_handoff); the connection is no longer the caller's. */
#define PW_RELAY_HANDED 2

/* Free what c->rp (a response's progress) holds: a partial head, a passed file. */
void pw_relay_progress_free(pw_conn *c);

/* Daemon side: send the file record for fd (offset, count) on c, before the response head.
 * 0 when sent, -1 when the connection failed. */
int pw_daemon_send_file(pw_server *s, pw_conn *c, int fd, long long offset, long long count);

/* Daemon side: parse a preamble at the start of c->buf.  Returns the preamble's length once it
 * is complete (and fills c->peer_host, c->peer_port, c->enqueued_at, c->sent_continue), 0 when
 * more bytes are needed, -1 when it is malformed. */
int pw_preamble_parse(pw_conn *c);

#endif
